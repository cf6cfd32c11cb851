"""The gateway's section on a connection's page: the calls programs made through it, and the
fair share of the provider's rate limit (gateway.fairshare): what the provider last said is
left, whether it is being shared, and which tokens were held back lately."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from connections.models import Connection
from gateway import fairshare
from gateway.models import GatewayCall
from gateway.selectors import calls_since_each, held_back
from lib import panels

RECENT_CALLS = 10
# The fair-share refusals the page lists: those of the last few minutes.
HELD_BACK_MINUTES = 15
_KIND_LABELS = {"requests": _("Requests"), "tokens": _("Tokens")}


@dataclass(frozen=True)
class ProviderLimit:
    """One of the provider's limits as the gateway last saw it."""

    label: str
    remaining: int
    limit: int
    resets_at: datetime
    shared: bool


def _provider_limits(connection: Connection) -> dict[str, Any] | None:
    seen = fairshare.snapshot(connection.pk)
    if seen is None:
        return None
    limits = []
    try:
        for kind, label in _KIND_LABELS.items():
            values = seen["limits"].get(kind)
            if values is None:
                continue
            limits.append(
                ProviderLimit(
                    label=str(label),
                    remaining=int(values["remaining"]),
                    limit=int(values["limit"]),
                    resets_at=datetime.fromtimestamp(float(values["reset_at"]), UTC),
                    shared=kind in seen["sharing"],
                )
            )
        seen_at = datetime.fromtimestamp(float(seen["seen_at"]), UTC)
        active = int(seen["active"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None
    shared = [limit for limit in limits if limit.shared]
    return {
        "limits": limits,
        "seen_at": seen_at,
        "sharing": bool(shared),
        "active": active,
        "until": max((limit.resets_at for limit in shared), default=None),
        "below_percent": round(settings.TABLERO_FAIR_SHARE_BELOW * 100),
    }


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
        # Today's and the month's counts in one read of the month's calls.
        **calls_since_each(
            team=access.team,
            since={"today": day_start, "month": now - timedelta(days=30)},
            user=user,
            connection=connection,
        ),
        "recent": recent,
        "provider_limits": _provider_limits(connection),
        "held_back": held_back(
            connection=connection, since=now - timedelta(minutes=HELD_BACK_MINUTES), user=user
        ),
        "held_back_minutes": HELD_BACK_MINUTES,
    }
    return render_to_string("gateway/partials/connection_traffic.html", context, request=request)


def register() -> None:
    panels.register("connection_detail", "gateway_traffic", connection_traffic)
