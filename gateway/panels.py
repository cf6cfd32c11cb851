"""The gateway's section on a connection's page: the calls programs made through it."""

from datetime import timedelta
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from connections.models import Connection
from gateway.models import GatewayCall
from gateway.selectors import calls_since
from lib import panels

RECENT_CALLS = 10


def connection_traffic(request: Any, access: Any, *, connection: Connection) -> str:
    """Today's and the last 30 days' calls through this connection, with the latest few: every
    caller's for an admin, the reader's own for anyone else (as on the usage page)."""
    user = None if access.is_admin else request.user
    now = timezone.now()
    day_start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    calls = GatewayCall.objects.filter(connection=connection)
    if user is not None:
        calls = calls.filter(user=user)
    recent = list(
        calls.select_related("token", "user")
        .only(
            "created_at",
            "method",
            "path",
            "model",
            "status",
            "refused",
            "latency_ms",
            "token__prefix",
            "token__name",
            "user__name",
            "user__email",
        )
        .order_by("-created_at")[:RECENT_CALLS]
    )
    context = {
        "connection": connection,
        "team": access.team,
        "everyone": user is None,
        "today": calls_since(team=access.team, since=day_start, user=user, connection=connection),
        "month": calls_since(
            team=access.team, since=now - timedelta(days=30), user=user, connection=connection
        ),
        "recent": recent,
    }
    return render_to_string("gateway/partials/connection_traffic.html", context, request=request)


def register() -> None:
    panels.register("connection_detail", "gateway_traffic", connection_traffic)
