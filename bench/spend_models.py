"""How the Spend page and a connection's models page hold up with a large team (not a test).

    .venv/bin/python bench/spend_models.py [--connections 50] [--items 8] [--models 2000]
                                           [--renders 5] [--database-url URL]

Builds a team in a throwaway SQLite database (or the one --database-url names: it must be
empty or disposable) with --connections connections, each with an admin key and 31 days of
kept costs (--items line items and 3 projects a day), and one connection to api.openai.com
whose model list has --models models; then renders the Spend page grouped each way, its CSV,
and the models page (all of it, and searched), as an admin, and prints the number of queries and
the median time of each. No provider is asked: the pages read what Tablero kept.
"""

import argparse
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gateway_usage  # noqa: E402  (its way of measuring a page; bench/ is on the path)
import home_page  # noqa: E402  (its throwaway environment)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--renders", type=int, default=5)
    parser.add_argument("--database-url", default="")
    return parser.parse_args()


def _build(arguments: argparse.Namespace):
    """The team; returns (team, admin, the connection with the long model list)."""
    from django.utils import timezone

    from accounts.models import Membership, Role, Team, User
    from connections import costs
    from connections.models import Connection, CostSnapshot
    from provider.costs import CostLine

    now = timezone.now()
    today = costs.utc_today(now)
    start = costs.window_start(today)
    days = [start + timedelta(days=n) for n in range((today - start).days + 1)]
    team = Team.objects.create(name="Bench")
    admin = User.objects.create_user(email="admin@bench.test")
    Membership.objects.create(team=team, user=admin, role=Role.ADMIN)
    groups = {
        "line_item": [f"gpt-model-{n}, input" for n in range(arguments.items)],
        "project": ["proj_web", "proj_batch", ""],
    }
    for number in range(arguments.connections):
        connection = Connection(team=team, name=f"Connection {number:03}")
        connection.set_api_key("sk-bench-00000000000000000000")
        connection.set_admin_key("sk-admin-bench-0000000000000000")
        connection.save()
        for group, values in groups.items():
            lines = [
                CostLine(day, value, Decimal(n % 7) + Decimal("0.25"), "usd")
                for day in days
                for n, value in enumerate(values)
            ]
            report = costs.CostReport(group, start, today, now, lines)
            CostSnapshot.objects.create(
                connection=connection,
                group=group,
                key_digest=costs._key_digest(connection),
                report=report.to_cache(),
                fetched_at=now,
            )
    listed = Connection(team=team, name="OpenAI", base_url="https://api.openai.com/v1")
    listed.set_api_key("sk-bench-00000000000000000000")
    listed.models_cache = [
        {"id": name, "object": "model", "created": 1700000000 + n, "owned_by": "system"}
        for n, name in enumerate(
            ["gpt-4o", "o4-mini", "text-embedding-3-small", "whisper-1"]
            + [f"ft:gpt-4o-mini-2024-07-18:bench::{n:05}" for n in range(arguments.models - 4)]
        )
    ]
    listed.models_cached_at = now
    listed.save()
    return team, admin, listed


def main() -> None:
    arguments = _arguments()
    with tempfile.TemporaryDirectory(prefix="tablero-bench-") as directory:
        url = arguments.database_url or f"sqlite:///{directory}/bench.sqlite3"
        home_page._setup(url)
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import override_settings
        from django.urls import reverse

        call_command("migrate", verbosity=0)
        warnings.filterwarnings("ignore", "No directory at", UserWarning)
        with override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            STORAGES={
                "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            },
        ):
            started = time.perf_counter()
            team, admin, listed = _build(arguments)
            print(
                f"Database: {url.split('://', 1)[0]}; {arguments.connections} connections with "
                f"31 days of costs ({arguments.items} line items, 3 projects a day), "
                f"{arguments.models} models (built in {time.perf_counter() - started:.1f} s); "
                f"median of {arguments.renders} renders."
            )
            client = Client()
            client.force_login(admin)
            spend = reverse("dashboard:spend", args=[team.pk])
            client.get(spend)  # the session learns the team
            targets = [
                (f"spend by {group}", f"{spend}?group={group}", False)
                for group in ("connection", "model", "line_item", "project")
            ]
            targets.append(
                (
                    "spend csv by line_item",
                    reverse("dashboard:spend_csv", args=[team.pk]) + "?group=line_item",
                    True,
                )
            )
            models = reverse("connections:models", args=[team.pk, listed.pk])
            targets += [
                ("models page", models, False),
                ("models searched", f"{models}?q=00042", False),
            ]
            for name, target, streaming in targets:
                queries, median = gateway_usage._measure(
                    client, target, arguments.renders, streaming=streaming
                )
                print(f"  {name:<24} {queries:>3} queries  median {median:8.1f} ms")


if __name__ == "__main__":
    main()
