"""How the gateway usage page holds up with many calls (not a test).

    .venv/bin/python bench/gateway_usage.py [--calls 200000] [--members 40] [--models 8]
                                           [--renders 5] [--database-url URL]

Builds a team in a throwaway SQLite database (or the one --database-url names: it must be
empty or disposable, the tables are created there) with members, a token each and a service
token, prices for half of the models, and gateway call records spread over the last 60 days;
then renders the usage page this month grouped each way, as an admin, the CSV export, the
token list and the usage limits page, and runs the gateway alerts' periodic check (a monthly
budget on every token and member), and prints the number of queries and the median time of each.
"""

import argparse
import os
import random
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

import home_page  # noqa: E402  (its throwaway environment; bench/ is on the path)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--renders", type=int, default=5)
    parser.add_argument("--database-url", default="")
    return parser.parse_args()


def _build(arguments: argparse.Namespace):
    """The team; returns (team, admin)."""
    from django.utils import timezone

    from accounts.models import Membership, Role, Team, User
    from connections.models import Connection
    from gateway import tokens
    from gateway.models import ApiToken, GatewayCall, ModelPrice, TokenKind

    now = timezone.now()
    team = Team.objects.create(name="Bench")
    admin = User.objects.create_user(email="admin@bench.test")
    Membership.objects.create(team=team, user=admin, role=Role.ADMIN)
    connection = Connection(team=team, name="Bench", base_url="https://api.openai.com/v1")
    connection.set_api_key("sk-bench-00000000000000000000")
    connection.save()
    members = [admin]
    for number in range(arguments.members):
        user = User.objects.create_user(email=f"member-{number}@bench.test")
        Membership.objects.create(team=team, user=user, role=Role.MEMBER)
        members.append(user)

    def token(owner, name):
        new = tokens.generate()
        return ApiToken(
            team=team,
            connection=connection,
            name=name,
            kind=TokenKind.PERSONAL if owner else TokenKind.SERVICE,
            owner=owner,
            prefix=new.prefix,
            secret_digest=new.secret_digest,
            scopes=["inference"],
            expires_at=now + timedelta(days=90),
        )

    all_tokens = [token(user, f"token {n}") for n, user in enumerate(members)]
    all_tokens.append(token(None, "service"))
    ApiToken.objects.bulk_create(all_tokens)
    models = [f"model-{n}" for n in range(arguments.models)]
    ModelPrice.objects.bulk_create(
        ModelPrice(
            team=team,
            model=model,
            input_per_million=Decimal("0.15"),
            cached_input_per_million=Decimal("0.075"),
            output_per_million=Decimal("0.60"),
            effective_from=(now - timedelta(days=90)).date(),
        )
        for model in models[::2]
    )
    rng = random.Random(14)
    batch = []
    for number in range(arguments.calls):
        chosen = all_tokens[number % len(all_tokens)]
        batch.append(
            GatewayCall(
                team=team,
                token=chosen,
                user=chosen.owner,
                connection=connection,
                family="inference",
                method="POST",
                path="chat/completions",
                model=models[number % len(models)],
                status=429 if number % 50 == 0 else 200,
                latency_ms=rng.randint(50, 4000),
                input_tokens=rng.randint(10, 4000),
                cached_tokens=rng.randint(0, 10),
                output_tokens=rng.randint(10, 1000),
                created_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 60)),
            )
        )
        if len(batch) == 5000:
            GatewayCall.objects.bulk_create(batch)
            batch = []
    GatewayCall.objects.bulk_create(batch)
    return team, admin


def _measure(client, url: str, renders: int, streaming: bool = False) -> tuple[int, float]:
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    def fetch():
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        if streaming:
            b"".join(response.streaming_content)

    with CaptureQueriesContext(db) as captured:
        fetch()
    queries = len(captured)
    if os.environ.get("BENCH_SHOW_QUERIES"):
        for query in captured.captured_queries:
            print(f"      {float(query['time']) * 1000:8.1f} ms  {query['sql'][:110]}")
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        fetch()
        times.append((time.perf_counter() - started) * 1000)
    return queries, statistics.median(times)


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
            team, admin = _build(arguments)
            built = time.perf_counter() - started
            print(
                f"Database: {url.split('://', 1)[0]}; {arguments.calls} calls over 60 days, "
                f"{arguments.members + 1} members, {arguments.models} models "
                f"(built in {built:.1f} s); median of {arguments.renders} renders."
            )
            client = Client()
            client.force_login(admin)
            page = reverse("gateway_usage:summary", args=[team.pk])
            client.get(page)  # the session learns the team
            for group in ("member", "token", "model", "family", "day", "member_model"):
                for period in ("this_month", "30d"):
                    queries, median = _measure(
                        client, f"{page}?by={group}&period={period}", arguments.renders
                    )
                    print(
                        f"  page  by {group:<12} {period:<10} {queries:>3} queries  "
                        f"median {median:8.1f} ms"
                    )
            export = reverse("gateway_usage:export", args=[team.pk])
            queries, median = _measure(
                client, f"{export}?by=member&period=30d", arguments.renders, streaming=True
            )
            label = "csv   by member       30d"
            print(f"  {label:<32} {queries:>3} queries  median {median:8.1f} ms")
            for name, url in (
                ("token list", reverse("gateway:tokens", args=[team.pk])),
                ("limits overview", reverse("gateway_limits:overview", args=[team.pk])),
            ):
                queries, median = _measure(client, url, arguments.renders)
                print(f"  {name:<32} {queries:>3} queries  median {median:8.1f} ms")
            _measure_alerts(team, arguments.renders)


def _measure_alerts(team, renders: int) -> None:
    """The alerts' periodic check with a budget on every token and member, none reached."""
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Membership
    from dashboard import gateway_alerts
    from gateway import limit_services
    from gateway.models import ApiToken, GatewayCall, UsageLimit

    for token in ApiToken.objects.filter(team=team):
        limit_services.usage_limit_set(
            team=team, actor=None, token=token, monthly_token_budget=10**12
        )
    for membership in Membership.objects.filter(team=team):
        limit_services.usage_limit_set(
            team=team, actor=None, user=membership.user, monthly_token_budget=10**12
        )
    # Set long ago: only the spenders with a recent call are measured.
    from django.utils import timezone

    later = timezone.now()
    UsageLimit.objects.filter(team=team).update(updated_at=later - timedelta(days=1))
    recent = GatewayCall.objects.filter(
        team=team, created_at__gte=later - gateway_alerts.RECENT
    ).count()
    for name, check in (
        ("alerts: budgets", gateway_alerts.budget_alerts_run),
        ("alerts: bursts of errors", gateway_alerts.error_burst_alerts_run),
    ):
        with CaptureQueriesContext(db) as captured:
            check(now=later)
        times = []
        for _ in range(renders):
            started = time.perf_counter()
            check(now=later)
            times.append((time.perf_counter() - started) * 1000)
        print(
            f"  {name:<32} {len(captured):>3} queries  median "
            f"{statistics.median(times):8.1f} ms  ({recent} calls in the last 5 minutes)"
        )


if __name__ == "__main__":
    main()
