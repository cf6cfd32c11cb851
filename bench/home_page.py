"""How the team's home page holds up with a big team (not a test).

    .venv/bin/python bench/home_page.py [--connections 300] [--assistants 3000] [--runs 5000]
                                        [--errors 500] [--renders 30] [--database-url URL]

Builds a team in a throwaway SQLite database (or the one --database-url names: it must be
empty or disposable, the tables are created there), with connections in every health state
(a sixth of them with an admin key, half of those with this month's costs fetched),
assistants, runs (some in progress, some failed) and provider errors; then renders the home
page with Django's test client as an admin and as a viewer, and prints the number of queries
and the median and 95th percentile time: with the page's parts cached (as most visits find
them), and computed (the cache emptied before each render, as after a change). For
comparison it does the same for a team of three connections first.
"""

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--assistants", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--errors", type=int, default=500)
    parser.add_argument("--renders", type=int, default=30)
    parser.add_argument("--database-url", default="")
    return parser.parse_args()


def _setup(database_url: str) -> None:
    # A throwaway environment of its own (the fail-closed settings need one); nothing from
    # tests/, which the product and its tools never import.
    from cryptography.fernet import Fernet

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + secrets.token_urlsafe(50))
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.environ.setdefault("TABLERO_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("TABLERO_GATEWAY_PEPPER", "bench-only-" + secrets.token_urlsafe(32))
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("TABLERO_IGNORE_DOTENV", "1")
    os.environ.setdefault("TASK_QUEUE_IMMEDIATE", "true")
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def _build(team_name: str, sizes: dict[str, int]):
    """A team of the given sizes; returns (team, admin, viewer)."""
    from django.utils import timezone

    from accounts.models import Membership, Role, Team, User
    from assistants.models import Assistant, Run, RunStatus, SyncState
    from connections.costs import CostReport, month_spend_store, utc_today, window_start
    from connections.models import Connection, ConnectionErrorEvent, Health, RunApi
    from provider.costs import CostLine

    now = timezone.now()
    team = Team.objects.create(name=team_name)
    people = []
    for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER):
        user = User.objects.create_user(email=f"{role.value}-{team.pk.hex[:8]}@bench.test")
        Membership.objects.create(team=team, user=user, role=role)
        people.append(user)
    admin, member, viewer = people

    healths = [Health.OK] * 6 + [
        Health.NO_QUOTA,
        Health.INVALID_KEY,
        Health.RATE_LIMITED,
        Health.UNREACHABLE,
        Health.UNCHECKED,
        Health.OVERLOADED,
    ]
    rate_limit = {
        "limit_requests": 5000,
        "remaining_requests": 4200,
        "reset_requests": "12ms",
        "limit_tokens": 800000,
        "remaining_tokens": 350000,
        "reset_tokens": "6m0s",
        "captured_at": now.isoformat(),
    }
    models_cache = [
        {"id": f"model-{n}", "object": "model", "owned_by": "system"} for n in range(80)
    ]
    connections = []
    for number in range(sizes["connections"]):
        connection = Connection(
            team=team,
            name=f"Connection {number:04d}",
            base_url="https://api.openai.com/v1",
            health=healths[number % len(healths)],
            last_checked_at=now - timedelta(minutes=number),
            rate_limit=rate_limit,
            models_cache=models_cache,
        )
        connection.set_api_key(f"sk-bench-{number:020d}")
        if number % 6 == 0:
            connection.set_admin_key(f"sk-admin-bench-{number:016d}")
        connections.append(connection)
    Connection.objects.bulk_create(connections, batch_size=500)

    today = utc_today()
    start = window_start(today)
    for connection in connections[::12]:  # half of those with an admin key were fetched
        report = CostReport(
            group="line_item",
            start=start,
            end=today,
            fetched_at=now,
            lines=[
                CostLine(start + timedelta(days=day), "gpt-4o, output", Decimal("1.25"), "usd")
                for day in range(31)
            ],
        )
        month_spend_store(connection=connection, report=report)

    assistants = [
        Assistant(
            team=team,
            connection=connections[number % len(connections)],
            name=f"Assistant {number:05d}",
            model="gpt-4o",
            sync_state=SyncState.SYNCED,
            created_by=member,
        )
        for number in range(sizes["assistants"])
    ]
    Assistant.objects.bulk_create(assistants, batch_size=500)

    statuses = [RunStatus.COMPLETED] * 14 + [
        RunStatus.IN_PROGRESS,
        RunStatus.QUEUED,
        RunStatus.FAILED,
        RunStatus.EXPIRED,
        RunStatus.CANCELLED,
        RunStatus.INCOMPLETE,
    ]
    runs = []
    for number in range(sizes["runs"]):
        assistant = assistants[number % len(assistants)]
        status = statuses[number % len(statuses)]
        runs.append(
            Run(
                team=team,
                assistant=assistant,
                assistant_name=assistant.name,
                connection=assistant.connection,
                backend=RunApi.ASSISTANTS,
                input="What is 2 + 2?",
                status=status,
                thread_id=f"thread_{number}",
                remote_run_id=f"run_{number}",
                started_by=member if number % 2 else admin,
                created_at=now - timedelta(hours=number % (40 * 24)),
                input_tokens=100,
                output_tokens=20,
                total_tokens=120,
                last_error_code="server_error" if status == RunStatus.FAILED else "",
            )
        )
    Run.objects.bulk_create(runs, batch_size=500)

    ConnectionErrorEvent.objects.bulk_create(
        [
            ConnectionErrorEvent(
                connection=connections[number % len(connections)],
                kind="quota_exhausted" if number % 2 else "rate_limited",
                code="insufficient_quota" if number % 2 else "rate_limit_exceeded",
                status=429,
                operation="connection.test",
                message="You exceeded your current quota, please check your plan.",
                user=admin,
                created_at=now - timedelta(minutes=number),
            )
            for number in range(sizes["errors"])
        ],
        batch_size=500,
    )
    return team, admin, viewer


def _measure(team, user, renders: int, *, cold: bool) -> tuple[int, float, float, float, int]:
    """(queries of one render, median ms, p95 ms, median CPU ms of this process, page size in
    bytes). `cold`: the page's cached parts are dropped before each render (what a render
    costs after a change). The CPU time is this process's alone: on a busy machine it says
    what the page costs when the wall clock does not (SQLite's work is in it, PostgreSQL's
    is not)."""
    from django.core.cache import cache
    from django.db import connection as db
    from django.db import reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client = Client()
    client.force_login(user)
    url = reverse("dashboard:team_home", args=[team.pk])
    response = client.get(url)  # warm up (and store the team in the session)
    assert response.status_code == 200, response.status_code
    reset_queries()
    if cold:
        cache.clear()
    with CaptureQueriesContext(db) as captured:
        response = client.get(url)
    queries = len(captured)  # now: the next requests empty the log it reads from
    times, cpu_times = [], []
    for _ in range(renders):
        if cold:
            cache.clear()  # the sessions live in the database: signed in all the same
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.process_time() - cpu_started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return (
        queries,
        statistics.median(times),
        p95,
        statistics.median(cpu_times),
        len(response.content),
    )


def main() -> None:
    arguments = _arguments()
    with tempfile.TemporaryDirectory(prefix="tablero-bench-") as directory:
        url = arguments.database_url or f"sqlite:///{directory}/bench.sqlite3"
        _setup(url)
        from django.core.management import call_command
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
            small = {"connections": 3, "assistants": 3, "runs": 5, "errors": 3}
            big = {
                "connections": arguments.connections,
                "assistants": arguments.assistants,
                "runs": arguments.runs,
                "errors": arguments.errors,
            }
            print(f"Database: {url.split('://', 1)[0]}; {arguments.renders} renders each.")
            for label, sizes in (("small", small), ("big", big)):
                started = time.perf_counter()
                team, admin, viewer = _build(f"Bench {label}", sizes)
                built = time.perf_counter() - started
                description = ", ".join(f"{count} {name}" for name, count in sizes.items())
                print(f"\n{label} team ({description}; built in {built:.1f} s)")
                for role, user in (("admin", admin), ("viewer", viewer)):
                    for cold in (False, True):
                        queries, median, p95, cpu, size = _measure(
                            team, user, arguments.renders, cold=cold
                        )
                        state = "computed" if cold else "cached"
                        print(
                            f"  {role:<6} {state:<8} {queries:>3} queries  median {median:7.1f} ms"
                            f"  p95 {p95:7.1f} ms  CPU {cpu:6.1f} ms  page {size / 1024:6.1f} KiB"
                        )


if __name__ == "__main__":
    main()
