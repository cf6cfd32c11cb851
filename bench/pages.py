"""How every list page holds up as a team grows (not a test).

    .venv/bin/python bench/pages.py [--sizes 10,10000] [--renders 15] [--database-url URL]
                                    [--only connections,runs,...]

Builds, in a throwaway SQLite database (or the one --database-url names: it must be empty or
disposable, the tables are created there), one team per size with that many rows of every
kind: connections (each with a cached list of 80 models), assistants, runs, provider errors,
members, pending invitations, audit events, API tokens, model prices, gateway calls (this
month, each of its own model), and as many models on the first connection. Then
renders each list page (and the team home, and a near-empty page on the base template) as an
admin with Django's test client, alternating the sizes render by
render (so a busy machine slows both alike), and prints per page and size the queries of one
render, the median and 95th percentile time and the HTML size, with the growth from the
smallest size to the largest. A page holds 50 rows, so `--sizes 50,10000` compares a full
first page with the same page of a big team (growth there is what the team's size costs);
`--sizes 10,10000` also counts the 40 more rows a full page renders.

It reuses bench/home_page.py's throwaway environment and team builder; nothing from tests/.
"""

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import home_page

PAGES = (
    "connections",
    "assistants",
    "runs",
    "members",
    "audit",
    "models",
    "usage",
    "errors",
    "tokens",
    "prices",
    "gateway",
    "home",
    "base",
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,10000", help="comma-separated row counts")
    parser.add_argument("--renders", type=int, default=15)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--only", default="", help="comma-separated pages: " + ",".join(PAGES))
    return parser.parse_args()


def _build(size: int):
    """A team with `size` rows of every kind; returns (team, admin, urls by page)."""
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import AuditAction, AuditEvent, Invitation, Membership, Role, User
    from connections.models import Connection

    sizes = {"connections": size, "assistants": size, "runs": size, "errors": size}
    team, admin, _viewer = home_page._build(f"Pages {size}", sizes)
    now = timezone.now()
    tag = team.pk.hex[:8]
    users = User.objects.bulk_create(
        [User(email=f"member-{n:05d}-{tag}@bench.test", name=f"Member {n}") for n in range(size)],
        batch_size=1000,
    )
    Membership.objects.bulk_create(
        [Membership(team=team, user=user, role=Role.MEMBER) for user in users], batch_size=1000
    )
    Invitation.objects.bulk_create(
        [
            Invitation(
                team=team,
                email=f"invited-{n:05d}-{tag}@bench.test",
                role=Role.VIEWER,
                invited_by=admin,
                expires_at=now + timedelta(days=7),
            )
            for n in range(size)
        ],
        batch_size=1000,
    )
    connections = list(Connection.objects.filter(team=team).order_by("name").only("pk", "name"))
    actions = list(AuditAction)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                team=team,
                actor=users[n % len(users)],
                actor_email=users[n % len(users)].email,
                action=actions[n % len(actions)],
                target_type="connection",
                target_id=str(connections[n % len(connections)].pk),
                target_repr=connections[n % len(connections)].name,
                data={"field": "name"},
                created_at=now - timedelta(minutes=n),
            )
            for n in range(size)
        ],
        batch_size=1000,
    )
    first = connections[0]
    _gateway(team, admin, first, size, now)
    Connection.objects.filter(pk=first.pk).update(
        models_cache=[
            {"id": f"gpt-4o-bench-{n:05d}", "object": "model", "owned_by": "system"}
            for n in range(size)
        ],
        models_cached_at=now,
    )
    urls = {
        "connections": reverse("connections:list", args=[team.pk]),
        "assistants": reverse("assistants:list", args=[team.pk]),
        "runs": reverse("assistants:runs", args=[team.pk]),
        "members": reverse("accounts:members", args=[team.pk]),
        "audit": reverse("accounts:audit", args=[team.pk]),
        "models": reverse("connections:models", args=[team.pk, first.pk]),
        "usage": reverse("assistants:usage", args=[team.pk]),
        "errors": reverse("connections:detail", args=[team.pk, first.pk]),
        "tokens": reverse("gateway:tokens", args=[team.pk]),
        "prices": reverse("gateway_usage:prices", args=[team.pk]),
        "gateway": reverse("gateway_usage:summary", args=[team.pk]) + "?by=model",
        "home": reverse("dashboard:team_home", args=[team.pk]),
        # A page that is the base template and little else (navigation, team switcher, the
        # context processors): what every page pays before its own content.
        "base": reverse("accounts:password_change"),
    }
    return team, admin, urls


def _gateway(team, admin, connection, size: int, now) -> None:
    """`size` API tokens, model prices and gateway calls (this month, one model each)."""
    from datetime import date
    from decimal import Decimal

    from gateway import tokens
    from gateway.models import ApiToken, GatewayCall, ModelPrice

    made = [tokens.generate() for _ in range(size)]
    listed = ApiToken.objects.bulk_create(
        [
            ApiToken(
                team=team,
                connection=connection,
                name=f"Token {n:05d}",
                owner=admin,
                created_by=admin,
                prefix=new.prefix,
                secret_digest=new.secret_digest,
                scopes=["models", "inference"],
                expires_at=now + timedelta(days=90),
                created_at=now - timedelta(minutes=n),
            )
            for n, new in enumerate(made)
        ],
        batch_size=1000,
    )
    ModelPrice.objects.bulk_create(
        [
            ModelPrice(
                team=team,
                model=f"model-{n:05d}",
                effective_from=date(2026, 1, 1),
                input_per_million=Decimal("0.15"),
                output_per_million=Decimal("0.60"),
            )
            for n in range(size)
        ],
        batch_size=1000,
    )
    month = now.replace(day=1, hour=12)
    GatewayCall.objects.bulk_create(
        [
            GatewayCall(
                team=team,
                token=listed[n],
                user=admin,
                connection=connection,
                family="inference",
                method="POST",
                path="chat/completions",
                model=f"model-{n:05d}",
                status=200,
                latency_ms=100,
                input_tokens=1000,
                output_tokens=500,
                created_at=month + timedelta(seconds=n),
            )
            for n in range(size)
        ],
        batch_size=1000,
    )


def _queries(client, url: str) -> tuple[int, int]:
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm up (and store the team in the session)
    assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(db) as captured:
        response = client.get(url)
    return len(captured), len(response.content)


def _percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    arguments = _arguments()
    sizes = [int(part) for part in arguments.sizes.split(",")]
    pages = [p for p in arguments.only.split(",") if p] or list(PAGES)
    with tempfile.TemporaryDirectory(prefix="tablero-bench-") as directory:
        url = arguments.database_url or f"sqlite:///{directory}/bench.sqlite3"
        home_page._setup(url)
        from django.core.management import call_command
        from django.db import connection as db
        from django.test import Client
        from django.test.utils import override_settings

        call_command("migrate", verbosity=0)
        warnings.filterwarnings("ignore", "No directory at", UserWarning)
        with override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            STORAGES={
                "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            },
        ):
            teams = {}
            for size in sizes:
                started = time.perf_counter()
                _team, admin, urls = _build(size)
                client = Client()
                client.force_login(admin)
                teams[size] = (client, urls)
                print(f"built the team of {size} rows in {time.perf_counter() - started:.1f} s")
            if db.vendor == "postgresql":
                # As autovacuum would soon after such a load (it vacuums after inserts too):
                # plans on fresh statistics, and a visibility map that lets counts read an
                # index alone.
                with db.cursor() as cursor:
                    cursor.execute("VACUUM ANALYZE")
            print(
                f"\nDatabase: {url.split('://', 1)[0]}; {arguments.renders} renders per page "
                "and size, sizes alternating; times in ms, HTML in KiB.\n"
            )
            header = f"{'page':<12} {'rows':>6} {'queries':>7} {'median':>9} {'p95':>9} {'HTML':>9}"
            print(header + "  growth")
            for page in pages:
                found = {size: _queries(teams[size][0], teams[size][1][page]) for size in sizes}
                times: dict[int, list[float]] = {size: [] for size in sizes}
                for _ in range(arguments.renders):
                    for size in sizes:
                        client, urls = teams[size]
                        started = time.perf_counter()
                        client.get(urls[page])
                        times[size].append((time.perf_counter() - started) * 1000)
                smallest = statistics.median(times[sizes[0]])
                for size in sizes:
                    queries, length = found[size]
                    median = statistics.median(times[size])
                    growth = f"{median / smallest:6.1f}x" if size != sizes[0] else ""
                    print(
                        f"{page:<12} {size:>6} {queries:>7} {median:>9.1f} "
                        f"{_percentile(times[size], 0.95):>9.1f} {length / 1024:>9.1f}  {growth}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
