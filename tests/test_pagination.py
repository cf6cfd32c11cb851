"""Every list shows one page at a time: how many there are, the rows of that page only, a link
to the next page and back, and the same number of queries whatever the size of the team."""

from datetime import timedelta

import pytest
from django.db import connection as db
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Invitation, Membership, Role, User
from assistants.models import Assistant, Run, RunStatus, SyncState
from connections.models import Connection, ConnectionErrorEvent
from lib.pagination import paginate

MANY = 60  # more than a page of 50


def _connections(team, count, *, start=0):
    made = []
    for number in range(start, start + count):
        connection = Connection(team=team, name=f"Conn {number:03d}", base_url="http://x.test/v1")
        connection.set_api_key(f"sk-test-{number:020d}")
        made.append(connection)
    return Connection.objects.bulk_create(made)


def _assistants(team, connection, count, *, start=0):
    return Assistant.objects.bulk_create(
        Assistant(
            team=team,
            connection=connection,
            name=f"Helper {number:03d}",
            model="gpt-4o",
            sync_state=SyncState.SYNCED,
        )
        for number in range(start, start + count)
    )


def _runs(team, assistant, count, user, *, start=0):
    now = timezone.now()
    return Run.objects.bulk_create(
        Run(
            team=team,
            assistant=assistant,
            assistant_name=assistant.name,
            connection=assistant.connection,
            backend="assistants",
            status=RunStatus.COMPLETED,
            input=f"Question {number:03d}",
            thread_id=f"thread_{number}",
            remote_run_id=f"run_{number}",
            started_by=user,
            created_at=now - timedelta(minutes=number),
        )
        for number in range(start, start + count)
    )


def _members(team, count, *, start=0):
    users = User.objects.bulk_create(
        User(email=f"person{number:03d}@example.com") for number in range(start, start + count)
    )
    Membership.objects.bulk_create(Membership(team=team, user=u, role=Role.MEMBER) for u in users)


def _invitations(team, count, user, *, start=0):
    Invitation.objects.bulk_create(
        Invitation(
            team=team,
            email=f"guest{number:03d}@example.com",
            invited_by=user,
            created_at=timezone.now() - timedelta(minutes=number),
            expires_at=timezone.now() + timedelta(days=3),
        )
        for number in range(start, start + count)
    )


def _errors(connection, count, *, start=0):
    now = timezone.now()
    ConnectionErrorEvent.objects.bulk_create(
        ConnectionErrorEvent(
            connection=connection,
            kind="rate_limited",
            # A code of its own each: repeated errors are grouped, these are 30 groups.
            code=f"rate_limit_{number:03d}",
            status=429,
            operation="connection.test",
            message=f"Slow down {number:03d}",
            created_at=now - timedelta(minutes=number),
        )
        for number in range(start, start + count)
    )


def _audit(team, user, count, *, start=0):
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        AuditEvent(
            team=team,
            actor=user,
            actor_email=user.email,
            action="team.rename",
            target_type="team",
            target_repr=f"Name {number:03d}",
            created_at=now - timedelta(minutes=number),
        )
        for number in range(start, start + count)
    )


def _rows(body: str, marker: str) -> int:
    return body.count(marker)


def _get(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def _queries(client, url) -> int:
    with CaptureQueriesContext(db) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("page", ["connections", "assistants", "runs", "usage"])
def test_a_list_shows_a_page_a_count_and_the_way_on(admin_client_, admin_user, team, page):
    conns = _connections(team, MANY if page == "connections" else 1)
    helpers = _assistants(team, conns[0], MANY if page in ("assistants", "usage") else 1)
    if page == "usage":
        for number, helper in enumerate(helpers):
            _runs(team, helper, 1, admin_user, start=number)
    else:
        _runs(team, helpers[0], MANY if page == "runs" else 1, admin_user)
    route, marker, name = {
        "connections": ("connections:list", ">Conn ", "Conn"),
        "assistants": ("assistants:list", ">Helper ", "Helper"),
        "runs": ("assistants:runs", "Question ", "Question"),
        "usage": ("assistants:usage", ">Helper ", "Helper"),
    }[page]
    url, first, last = reverse(route, args=[team.pk]), f"{name} 000", f"{name} 059"
    prefix = "assistants_" if page == "usage" else ""

    body = _get(admin_client_, url)
    assert _rows(body, marker) == 50
    assert "1–50 of 60" in body
    assert f'rel="next" href="?{prefix}page=2"' in body
    assert 'rel="prev"' not in body
    assert first in body and last not in body

    second = _get(admin_client_, url, **{f"{prefix}page": 2})
    assert _rows(second, marker) == 10
    assert "51–60 of 60" in second
    assert last in second and first not in second
    assert f'rel="prev" href="?{prefix}page=1"' in second
    assert 'rel="next"' not in second

    # The page size is in the URL too, and kept by the links.
    small = _get(admin_client_, url, **{f"{prefix}size": 10})
    assert _rows(small, marker) == 10
    assert f'rel="next" href="?{prefix}size=10&amp;{prefix}page=2"' in small


def test_members_and_invitations_page_separately(admin_client_, admin_user, team):
    _members(team, MANY)
    _invitations(team, MANY, admin_user)
    url = reverse("accounts:members", args=[team.pk])
    body = _get(admin_client_, url)
    assert _rows(body, "<td>person") == 49  # and the admin, first
    assert _rows(body, "<td>guest") == 50
    assert "1–50 of 61" in body  # and the admin
    assert "1–50 of 60" in body
    second = _get(admin_client_, url, invitations_page=2)
    assert "guest059@example.com" in second and "guest000@example.com" not in second
    assert "1–50 of 61" in second  # the members stay on their first page
    assert "?invitations_page=1" in second


def test_models_and_error_history_are_paged(admin_client_, team):
    (conn,) = _connections(team, 1)
    Connection.objects.filter(pk=conn.pk).update(
        models_cache=[{"id": f"gpt-4o-{n:03d}", "created": n} for n in range(120)],
        models_cached_at=timezone.now(),
    )
    models = _get(admin_client_, reverse("connections:models", args=[team.pk, conn.pk]))
    assert models.count('class="mono" href=') == 50
    assert "1–50 of 120" in models
    assert "gpt-4o-119" in models and "gpt-4o-000" not in models  # newest first
    last = _get(admin_client_, reverse("connections:models", args=[team.pk, conn.pk]), page=3)
    assert "gpt-4o-000" in last and "101–120 of 120" in last

    _errors(conn, 30)
    detail = reverse("connections:detail", args=[team.pk, conn.pk])
    body = _get(admin_client_, detail)
    assert body.count('<details class="error-group">') == 20
    assert "1–20 of 30" in body
    assert "?errors_page=2" in body
    assert _get(admin_client_, detail, errors_page=2).count('<details class="error-group">') == 10


def test_audit_is_paged_with_the_shared_links(admin_client_, admin_user, team):
    _audit(team, admin_user, MANY)
    body = _get(admin_client_, reverse("accounts:audit", args=[team.pk]))
    assert "Name 000" in body and "Name 059" not in body
    assert 'rel="next" href="?page=2"' in body
    second = _get(admin_client_, reverse("accounts:audit", args=[team.pk]), page=2)
    assert "Name 059" in second and "Name 000" not in second


@pytest.mark.parametrize(
    "name", ["connections", "assistants", "runs", "members", "audit", "usage", "detail"]
)
def test_queries_stay_constant_as_lists_grow(admin_client_, admin_user, team, name):
    def grow(start, count):
        conns = _connections(team, count, start=start)
        helpers = _assistants(team, conns[0], count, start=start)
        for number, helper in enumerate(helpers):
            _runs(team, helper, 1, admin_user, start=start + number)
        _members(team, count, start=start)
        _invitations(team, count, admin_user, start=start)
        _audit(team, admin_user, count, start=start)
        _errors(first, count, start=start)
        return conns

    first = _connections(team, 1, start=999)[0]
    grow(0, 3)
    url = {
        "connections": reverse("connections:list", args=[team.pk]),
        "assistants": reverse("assistants:list", args=[team.pk]),
        "runs": reverse("assistants:runs", args=[team.pk]),
        "members": reverse("accounts:members", args=[team.pk]),
        "audit": reverse("accounts:audit", args=[team.pk]),
        "usage": reverse("assistants:usage", args=[team.pk]),
        "detail": reverse("connections:detail", args=[team.pk, first.pk]),
    }[name]
    admin_client_.get(url)  # warm up the session
    few = _queries(admin_client_, url)
    grow(100, 120)
    assert _queries(admin_client_, url) == few


def test_page_size_and_position_come_from_the_url():
    factory = RequestFactory()
    items = list(range(130))
    pages = paginate(factory.get("/", {"page": "x", "size": "7"}), items)
    assert pages.size == 10 and pages.page.number == 1  # nearest allowed size, first page
    pages = paginate(factory.get("/", {"page": "99", "q": "a b"}), items)
    assert pages.page.number == 3 and list(pages.page) == list(range(100, 130))
    assert pages.previous_url == "?page=2&q=a+b" and pages.next_url == ""
    assert paginate(factory.get("/", {"size": "100000"}), items).size == 200
