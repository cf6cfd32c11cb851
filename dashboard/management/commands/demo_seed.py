"""Fill the database with a demo team that shows every state, against the fake provider.

    python -m fakeprovider --port 8765 &
    TABLERO_ALLOWED_UPSTREAM_HOSTS=127.0.0.1 \
        python manage.py demo_seed --upstream http://127.0.0.1:8765/v1

`make demo` does all of this. Running it again brings the demo back to its first state
(idempotent). Each part is a function so other apps can add theirs (`seed_connections`
returns the connections by name for them).
"""

import socket
import time
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from accounts.models import AuditAction, Membership, Role, Team, User
from accounts.services import audit_log
from assistants.demo import seed_assistants
from connections import costs, services
from connections.models import Connection, Health
from fakeprovider import KEYS

TEAM_NAME = "Demo"
PASSWORD = "tablero-demo-password"
ROLES = [Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER]
# The demo people, by role: real names, as a team would have. The owner is also staff and
# superuser, as the first-run setup makes the first account, so the admin site can be seen.
DEMO_PEOPLE = {
    Role.OWNER: "Ana García",
    Role.ADMIN: "Luis Pérez",
    Role.MEMBER: "Marta Ruiz",
    Role.VIEWER: "Tomás Silva",
}
STAFF_ROLE = Role.OWNER
# A port nothing listens on: connections to it are refused at once.
UNREACHABLE_URL = "http://127.0.0.1:9/v1"

# name, the fake's key constant, base URL ("" = the fake), whether to test it.
CONNECTIONS: list[tuple[str, str, str, bool]] = [
    ("Production", "KEY_OK", "", True),
    ("Revoked key", "KEY_INVALID", "", True),
    ("Out of credit", "KEY_QUOTA", "", True),
    ("Busy", "KEY_RATE_LIMIT", "", True),
    ("Overloaded", "KEY_OVERLOADED", "", True),
    ("Offline server", "KEY_OK", UNREACHABLE_URL, True),
    ("Not tested yet", "KEY_OK", "", False),
]
UNREADABLE_NAME = "Lost encryption key"


def seed_users(password: str = PASSWORD) -> dict[Role, User]:
    """One user per role: owner@demo.test, admin@demo.test, member@demo.test, viewer@..."""
    users = {}
    for role in ROLES:
        email = f"{role.value}@demo.test"
        user = User.objects.filter(email=email).first() or User(email=email)
        user.name = DEMO_PEOPLE[role]
        user.is_staff = user.is_superuser = role == STAFF_ROLE
        user.set_password(password)
        user.save()
        users[role] = user
    return users


def seed_team(users: dict[Role, User]) -> Team:
    team = Team.objects.filter(name=TEAM_NAME, memberships__user=users[Role.OWNER]).first()
    if team is None:
        team = Team.objects.create(name=TEAM_NAME)
        audit_log(team=team, actor=users[Role.OWNER], action=AuditAction.TEAM_CREATE, target=team)
    for role, user in users.items():
        Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return team


def _connection(team: Team, user: User, name: str, key: str, base_url: str) -> Connection:
    connection = Connection.objects.filter(team=team, name=name).first() or Connection(
        team=team, name=name, created_by=user
    )
    connection.base_url = base_url
    connection.set_api_key(key)
    connection.health = Health.UNCHECKED
    connection.last_checked_at = None
    connection.last_error = connection.last_error_kind = ""
    connection.rate_limit = {}
    connection.models_cache = []
    connection.models_cached_at = None
    connection.full_clean()
    connection.save()
    return connection


def seed_connections(team: Team, user: User, upstream: str) -> dict[str, Connection]:
    """A connection in every health state, each tested against the fake (except "unchecked")."""
    connections = {}
    for name, key_name, base_url, test in CONNECTIONS:
        connection = _connection(team, user, name, KEYS[key_name], base_url or upstream)
        if test:
            services.connection_test(connection=connection, user=user)
        connections[name] = connection

    # The working connection can read its organization's costs (the fake's admin key).
    services.connection_set_admin_key(
        connection=connections["Production"], user=user, admin_key=KEYS["ADMIN_KEY_OK"]
    )
    # Its costs page shows what was fetched: fetch them now, as the hourly task would.
    for group in costs.GROUP_CHOICES:
        costs.costs_refresh(connection=connections["Production"], group=group)

    # A row whose ciphertext was made for another row: it cannot be decrypted here.
    unreadable = _connection(team, user, UNREADABLE_NAME, KEYS["KEY_OK"], upstream)
    unreadable.api_key_encrypted = connections["Production"].api_key_encrypted
    unreadable.save(update_fields=["api_key_encrypted"])
    services.connection_test(connection=unreadable, user=user)
    connections[UNREADABLE_NAME] = unreadable
    return connections


def wait_for(url: str, seconds: float) -> None:
    """Wait until something listens at `url`'s host and port."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(address, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Nothing answers at {address[0]}:{address[1]}. Start the fake provider "
                    "first: python -m fakeprovider --port 8765"
                ) from None
            time.sleep(0.2)


class Command(BaseCommand):
    help = "Create (or reset) the demo team, its users and a connection in every health state."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--upstream",
            default="http://127.0.0.1:8765/v1",
            help="Base URL of the fake provider (python -m fakeprovider).",
        )
        parser.add_argument("--password", default=PASSWORD, help="Password for every demo user.")
        parser.add_argument(
            "--wait", type=float, default=10.0, help="Seconds to wait for the fake provider."
        )
        parser.add_argument(
            "--site", default="http://127.0.0.1:8000/", help="Where Tablero will be served."
        )

    def handle(
        self, *args, upstream: str, password: str, wait: float, site: str, **options
    ) -> None:
        wait_for(upstream, wait)
        users = seed_users(password)
        team = seed_team(users)
        connections = seed_connections(team, users[Role.ADMIN], upstream)
        assistants = seed_assistants(team, users, connections)

        self.stdout.write(self.style.SUCCESS(f"Demo team {team.name!r} is ready."))
        for name, connection in connections.items():
            self.stdout.write(f"  {name:<22} {connection.get_health_display()}")
        self.stdout.write(
            f"  and {len(assistants)} assistants with runs in every state, and a three-turn "
            "conversation on each run API."
        )
        self.stdout.write(f"Sign in at {site} as any of:")
        for role, user in users.items():
            staff = ", can open the admin site" if user.is_staff else ""
            self.stdout.write(f"  {user.email:<20} {user.name} ({role.label}{staff})")
        self.stdout.write(f"Password for all of them: {password}")
