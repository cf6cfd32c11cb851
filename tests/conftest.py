"""The one base fixture set: a team with an owner, an admin, a member and a viewer, and an
outsider who belongs to another team."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db.backends.signals import connection_created
from django.test import Client

from accounts.models import Membership, Role, Team, User


def _dirty_reads_in_shared_memory(sender, connection, **kwargs) -> None:
    """SQLite's in-memory test database is shared between the live server's threads through
    a shared cache, whose table locks fail a read at once ("database table is locked") while
    another thread writes, instead of waiting as a file database does. A browser test whose
    page polls while a task writes then saw a 500 that no real deployment would. Readers of
    the shared cache take no table lock."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        connection.connection.execute("PRAGMA read_uncommitted = 1")


connection_created.connect(_dirty_reads_in_shared_memory, dispatch_uid="tests-shared-cache")

PASSWORD = "correct-horse-battery-staple-42"

# The moment tests that depend on the date stand at. 30 November 2026 is a day whose 31-day
# costs window sums to a third decimal of 5 or more (so truncated money shows); noon keeps
# "today" and "this month" away from midnight whatever the test does.
PINNED_NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: no counters, locks or lists from another test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the site's language: a request in Spanish activates Spanish for the
    thread, and it would otherwise stay on for the tests that run after it."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _fast_and_plain(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def make_user(email: str, *, password: str = PASSWORD, **extra) -> User:
    return User.objects.create_user(email=email, password=password, **extra)


@pytest.fixture
def pinned_clock():
    """The clock stands at PINNED_NOW and ticks on from there, for the whole process (the fake
    provider's thread included). Use it in every test whose answer depends on the date."""
    with time_machine.travel(PINNED_NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def team(db) -> Team:
    return Team.objects.create(name="Acme")


@pytest.fixture
def other_team(db) -> Team:
    return Team.objects.create(name="Other Co")


def _member(team: Team, email: str, role: Role) -> User:
    user = make_user(email)
    Membership.objects.create(team=team, user=user, role=role)
    return user


@pytest.fixture
def owner(team) -> User:
    return _member(team, "owner@example.com", Role.OWNER)


@pytest.fixture
def admin_user(team) -> User:
    return _member(team, "admin@example.com", Role.ADMIN)


@pytest.fixture
def member(team) -> User:
    return _member(team, "member@example.com", Role.MEMBER)


@pytest.fixture
def viewer(team) -> User:
    return _member(team, "viewer@example.com", Role.VIEWER)


@pytest.fixture
def outsider(other_team) -> User:
    return _member(other_team, "outsider@example.com", Role.OWNER)


@pytest.fixture
def users(owner, admin_user, member, viewer, outsider) -> dict[str, User]:
    return {
        "owner": owner,
        "admin": admin_user,
        "member": member,
        "viewer": viewer,
        "outsider": outsider,
    }


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner) -> Client:
    return client_for(owner)


@pytest.fixture
def admin_client_(admin_user) -> Client:
    return client_for(admin_user)


@pytest.fixture
def member_client(member) -> Client:
    return client_for(member)


@pytest.fixture
def viewer_client(viewer) -> Client:
    return client_for(viewer)


@pytest.fixture
def outsider_client(outsider) -> Client:
    return client_for(outsider)


@pytest.fixture(scope="session")
def _fake_upstream_server():
    from fakeprovider import FakeProvider

    fake = FakeProvider()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def _live_gateway():
    """The whole ASGI application on a live uvicorn server (tests.gateway.conftest.LiveGateway),
    once per session: the gateway tests and the gateway's contract tests share it."""
    from tests.gateway.conftest import LiveGateway

    server = LiveGateway().start()
    yield server
    server.stop()


@pytest.fixture
def fake_upstream(_fake_upstream_server, settings):
    """The fake provider on loopback (the fakeprovider package), reset, with its host allowed."""
    _fake_upstream_server.reset()
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1"]
    yield _fake_upstream_server
    _fake_upstream_server.reset()


@pytest.fixture
def fake_clock(fake_upstream):
    """The fake provider's clock, standing at PINNED_NOW until the test steps it
    (`fake_clock.advance(seconds)`): runs move and slow answers come out with no waiting."""
    from fakeprovider import ManualClock

    clock = ManualClock(PINNED_NOW)
    system_clock, fake_upstream.clock = fake_upstream.clock, clock
    yield clock
    fake_upstream.clock = system_clock
    clock.advance(24 * 3600)  # lets out any slow answer still waiting on it
