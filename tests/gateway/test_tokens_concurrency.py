"""Two at once on the token rules that take row locks: revoking one token twice, and two
expiry sweeps (two consumers). Each thread has its own connection and transaction; they need
PostgreSQL's row locks (CI runs the suite there)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections

from accounts.models import AuditEvent, Membership, Role, Team
from gateway import services
from tests.conftest import make_user
from tests.gateway.tokenhelpers import make_token, token_connection

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL's row locks (CI runs it)"
    ),
    pytest.mark.django_db(transaction=True),
]


def _together(*calls) -> list[object]:
    """Run the calls in threads that start at the same moment; their results (or errors)."""
    barrier = threading.Barrier(len(calls), timeout=10)
    results: list[object] = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as error:  # the test reports whatever happened
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.fixture
def member_and_connection():
    team = Team.objects.create(name="Acme")
    member = make_user("ana@example.com")
    Membership.objects.create(team=team, user=member, role=Role.MEMBER)
    return team, member, token_connection(team)


def test_one_token_revoked_twice_at_once_is_audited_once(member_and_connection):
    team, member, connection_ = member_and_connection
    token, _value = make_token(team, member, connection=connection_)

    results = _together(
        lambda: services.token_revoke(token=token, actor=member),
        lambda: services.token_revoke(token=token, actor=member),
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


def test_two_sweeps_at_once_note_each_expiry_once(member_and_connection, monkeypatch):
    team, member, connection_ = member_and_connection
    monkeypatch.setattr(services, "EXPIRE_BATCH", 2)
    for n in range(7):
        make_token(team, member, connection=connection_, name=f"t{n}", lifetime=timedelta(days=1))
    later = services.timezone.now() + timedelta(days=2)

    results = _together(
        lambda: services.tokens_expire(now=later), lambda: services.tokens_expire(now=later)
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 7
    events = AuditEvent.objects.filter(action="token.expire")
    assert events.count() == 7
    assert len({e.target_id for e in events}) == 7
