"""Two requests at once on the rules that guard a team: the last owner, and an invitation that
is used once. They need real row locks, so they run on PostgreSQL (CI runs the suite there);
each thread has its own database connection and transaction, as two requests would."""

import contextlib
import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, connections

from accounts import services
from accounts.models import Invitation, Membership, Role, Team, User
from tests.accounts.helpers import make_invitation
from tests.conftest import make_user

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL's row locks (CI runs it)"
    ),
    pytest.mark.django_db(transaction=True),
]

NEW_PASSWORD = "plum-orbit-cascade-77"


def _recording(outcomes: dict[str, str], name: str, call: Callable[[], object]) -> Callable:
    """`call` as a thread's target: stores "ok" or the exception's class name under `name`."""

    def target() -> None:
        try:
            call()
            outcomes[name] = "ok"
        except Exception as error:  # the test reports whatever happened
            outcomes[name] = type(error).__name__
        finally:
            connections.close_all()  # each thread had its own connection

    return target


def _wait_until_someone_waits_for_a_lock() -> None:
    with connection.cursor() as cursor:
        for _attempt in range(100):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)


@pytest.fixture
def two_owners() -> tuple[Team, list[User], list[Membership]]:
    team = Team.objects.create(name="Acme")
    owners = [make_user("ana@example.com"), make_user("bo@example.com")]
    memberships = [Membership.objects.create(team=team, user=u, role=Role.OWNER) for u in owners]
    return team, owners, memberships


@pytest.fixture
def both_at_the_owner_check(monkeypatch):
    """Hold each request at the last-owner check until the other one has reached it too."""
    barrier = threading.Barrier(2, timeout=5)
    check = services._locked_owner_count

    def check_together(*args, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return check(*args, **kwargs)

    monkeypatch.setattr(services, "_locked_owner_count", check_together)


def _demote(actor: User, membership: Membership) -> Callable[[], object]:
    return lambda: services.member_role_change(
        membership=membership, role=Role.ADMIN, actor=actor, actor_role=Role.OWNER
    )


def _remove(actor: User, membership: Membership) -> Callable[[], object]:
    return lambda: services.member_remove(membership=membership, actor=actor, actor_role=Role.OWNER)


@pytest.mark.parametrize(
    ("first", "second"),
    [(_demote, _demote), (_remove, _remove), (_demote, _remove)],
    ids=["demote-demote", "remove-remove", "demote-remove"],
)
def test_two_owners_acting_on_each_other_at_once_keep_one_owner(
    two_owners, both_at_the_owner_check, first, second
):
    team, (ana, bo), (ana_membership, bo_membership) = two_owners

    outcomes: dict[str, str] = {}
    threads = [
        threading.Thread(target=_recording(outcomes, "ana", first(ana, bo_membership))),
        threading.Thread(target=_recording(outcomes, "bo", second(bo, ana_membership))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # One goes through; the other is told why not (a message on the page), not a deadlock.
    assert sorted(outcomes.values()) == ["ValidationError", "ok"]
    assert Membership.objects.filter(team=team, role=Role.OWNER).count() == 1


def test_an_invitation_signed_up_for_twice_at_once_makes_one_account(monkeypatch):
    team = Team.objects.create(name="Acme")
    invitation = make_invitation(team)
    first_created = threading.Event()
    release_first = threading.Event()
    create = services.user_create

    def create_then_hold_the_first(**kwargs):
        user = create(**kwargs)
        if threading.current_thread().name == "first":
            first_created.set()
            release_first.wait(timeout=5)
        return user

    monkeypatch.setattr(services, "user_create", create_then_hold_the_first)

    def sign_up() -> User:
        fresh = Invitation.objects.get(pk=invitation.pk)
        return services.invitation_sign_up(invitation=fresh, name="Nora", password=NEW_PASSWORD)

    outcomes: dict[str, str] = {}
    first = threading.Thread(target=_recording(outcomes, "first", sign_up), name="first")
    first.start()
    assert first_created.wait(timeout=5)
    second = threading.Thread(target=_recording(outcomes, "second", sign_up))
    second.start()
    _wait_until_someone_waits_for_a_lock()  # the second submission is queued behind the first
    release_first.set()
    first.join(timeout=30)
    second.join(timeout=30)

    assert outcomes == {"first": "ok", "second": "ValidationError"}
    assert User.objects.filter(email="newcomer@example.com").count() == 1
    assert Membership.objects.filter(team=team, user__email="newcomer@example.com").count() == 1


def test_two_first_visits_at_once_make_one_owner():
    barrier = threading.Barrier(2, timeout=5)

    def set_up(email: str) -> Callable[[], object]:
        def call():
            barrier.wait()
            return services.setup_first_owner(
                email=email, name="", password=NEW_PASSWORD, team_name=email
            )

        return call

    outcomes: dict[str, str] = {}
    threads = [
        threading.Thread(target=_recording(outcomes, email, set_up(email)))
        for email in ("ana@example.com", "bo@example.com")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["SetupAlreadyDone", "ok"]
    assert User.objects.count() == 1
    assert Team.objects.count() == 1


def test_an_invitation_accepted_twice_at_once_joins_once():
    team = Team.objects.create(name="Acme")
    user = make_user("newcomer@example.com")
    invitation = make_invitation(team)
    barrier = threading.Barrier(2, timeout=5)

    def accept():
        fresh = Invitation.objects.get(pk=invitation.pk)
        barrier.wait()
        return services.invitation_accept(invitation=fresh, user=user)

    outcomes: dict[str, str] = {}
    threads = [threading.Thread(target=_recording(outcomes, name, accept)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["ValidationError", "ok"]
    assert Membership.objects.filter(team=team, user=user).count() == 1
