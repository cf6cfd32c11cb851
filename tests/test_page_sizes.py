"""No list page renders more rows than its page size, and no list reads the connection's cached
model list (its one large value) unless it shows models.

Each list gets one row more than its page holds, every row named `rowmark-NNN`; the page must
show a full page of them and no more, and say how many there are."""

import datetime
import re
from collections.abc import Callable

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Invitation, Membership, Role, User
from connections.models import ConnectionErrorEvent
from connections.selectors import RECENT_ERRORS
from gateway.usage_views import USAGE_PAGE_SIZE
from lib.pagination import PAGE_SIZE
from tests.assistants.helpers import make_assistant, make_run
from tests.connections.helpers import make_connection
from tests.gateway.usage_helpers import make_call, make_price, make_token

MARK = re.compile(r"rowmark-(\d{3})")


def _name(number: int) -> str:
    return f"rowmark-{number:03d}"


def _connections(team, admin, connection, count):
    for number in range(count):
        make_connection(team, name=_name(number), key=f"sk-test-ok-{number:020d}")


def _assistants(team, admin, connection, count):
    for number in range(count):
        make_assistant(team, connection, name=_name(number))


def _runs(team, admin, connection, count):
    assistant = make_assistant(team, connection, name="Tutor")
    for number in range(count):
        make_run(assistant, started_by=admin, input=_name(number))


def _usage(team, admin, connection, count):
    for number in range(count):
        make_run(make_assistant(team, connection, name=_name(number)), started_by=admin)


def _members(team, admin, connection, count):
    users = User.objects.bulk_create(User(email=f"{_name(n)}@example.com") for n in range(count))
    Membership.objects.bulk_create(Membership(team=team, user=u, role=Role.MEMBER) for u in users)


def _invitations(team, admin, connection, count):
    Invitation.objects.bulk_create(
        Invitation(
            team=team,
            email=f"{_name(number)}@example.com",
            invited_by=admin,
            expires_at=timezone.now() + datetime.timedelta(days=3),
        )
        for number in range(count)
    )


def _models(team, admin, connection, count):
    connection.models_cache = [{"id": _name(n), "created": n} for n in range(count)]
    connection.models_cached_at = timezone.now()
    connection.save(update_fields=["models_cache", "models_cached_at"])


def _audit(team, admin, connection, count):
    AuditEvent.objects.bulk_create(
        AuditEvent(
            team=team,
            actor=admin,
            actor_email=admin.email,
            action="team.rename",
            target_type="team",
            target_repr=_name(number),
        )
        for number in range(count)
    )


def _tokens(team, admin, connection, count):
    for number in range(count):
        make_token(team, connection, owner=admin, name=_name(number))


def _gateway_usage(team, admin, connection, count):
    token = make_token(team, connection, owner=admin)
    for number in range(count):
        make_call(token, model=_name(number))


def _prices(team, admin, connection, count):
    for number in range(count):
        make_price(team, model=_name(number))


def _errors(team, admin, connection, count):
    ConnectionErrorEvent.objects.bulk_create(
        ConnectionErrorEvent(
            connection=connection,
            kind="rate_limited",
            # Each its own code: repeated errors are grouped, and each group is one row.
            code=f"rate_limit_{number}",
            status=429,
            operation="connection.test",
            message=_name(number),
        )
        for number in range(count)
    )


Seed = Callable[..., None]
# page: (how to seed its rows, its route, extra URL parameters, its page size)
LISTS: dict[str, tuple[Seed, str, dict, int]] = {
    "connections": (_connections, "connections:list", {}, PAGE_SIZE),
    "assistants": (_assistants, "assistants:list", {}, PAGE_SIZE),
    "runs": (_runs, "assistants:runs", {}, PAGE_SIZE),
    "members": (_members, "accounts:members", {}, PAGE_SIZE),
    "invitations": (_invitations, "accounts:members", {}, PAGE_SIZE),
    "models": (_models, "connections:models", {}, PAGE_SIZE),
    "audit": (_audit, "accounts:audit", {}, PAGE_SIZE),
    "tokens": (_tokens, "gateway:tokens", {}, PAGE_SIZE),
    "usage": (_usage, "assistants:usage", {}, PAGE_SIZE),
    "gateway usage": (_gateway_usage, "gateway_usage:summary", {"by": "model"}, USAGE_PAGE_SIZE),
    "prices": (_prices, "gateway_usage:prices", {}, USAGE_PAGE_SIZE),
    "error history": (_errors, "connections:detail", {}, RECENT_ERRORS),
}
# The team's dashboard pages that hold a list. The notifications page is a form of one's own
# alert choices, no list: nothing to page there.
WITH_CONNECTION = {"models", "error history"}


@pytest.mark.parametrize("page", LISTS)
def test_a_list_renders_no_more_rows_than_its_page_and_no_model_list(
    admin_client_, admin_user, team, page
):
    seed, route, params, size = LISTS[page]
    # Every list's connection carries a cached model list, which only the models page may read.
    connection = make_connection(team, name="Main", models_cache=[{"id": "gpt-4o"}] * 50)
    seed(team, admin_user, connection, size + 1)
    url = reverse(route, args=[team.pk, connection.pk] if page in WITH_CONNECTION else [team.pk])
    assert admin_client_.get(url, params).status_code == 200  # the team goes into the session
    with CaptureQueriesContext(db) as captured:
        response = admin_client_.get(url, params)
    body = response.content.decode()

    shown = set(MARK.findall(body))
    # The lists that also hold the fixture's row sort it first: the admin who looks at the
    # members, the connection "Main" (capitals sort first).
    already = 1 if page in ("members", "connections") else 0
    assert len(shown) == size - already, page
    assert f"1–{size} of {size + 1 + already}" in body
    reads_models = [q["sql"] for q in captured if '."models_cache"' in q["sql"]]
    assert bool(reads_models) == (page == "models"), reads_models
