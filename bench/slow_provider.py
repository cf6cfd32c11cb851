"""Pages while the provider is slow, under the README's production command (not a test).

    .venv/bin/python bench/slow_provider.py [--delay 30] [--workers 3] [--actions 4] \
        [--server uvicorn|gunicorn]

Starts the fake provider (fakeprovider/) on loopback, answering every call made with its slow
key after `--delay` seconds; prepares a throwaway SQLite database and task queue in a temporary
folder (migrate, collectstatic, a seeded team whose connection uses the slow key); starts
Tablero as the README's production section does (`uvicorn config.asgi:application --workers 3`;
`--server gunicorn` for the WSGI server, `gunicorn config.wsgi`) and one task consumer
(`manage.py run_huey --workers 2`); signs in; GETs every page of the team that the URL
configuration names (connections, models, assistants, runs, team home, audit, members,
settings…) and prints each one's time; then sends `--actions` actions that used to wait on the
provider (test the key, refresh the models, start a run, …) at once and times the sign-in page
while their provider calls are in flight.

Figures only: no assertion. Nothing leaves loopback; everything it starts is stopped at the
end, and the temporary folder removed.
"""

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-only-correct-horse-42"
EMAIL = "owner@bench.test"
# Pages left out of the crawl: the admin site, signing out, and links that need a token.
SKIPPED_NAMESPACES = ("admin",)
SKIPPED_NAMES = {
    "accounts:logout",
    "accounts:password_reset_confirm",
    "accounts:invitation_accept",
    "set_language",
}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=30.0, help="the provider's delay, s")
    parser.add_argument("--workers", type=int, default=3, help="server workers (README: 3)")
    parser.add_argument(
        "--server",
        choices=["uvicorn", "gunicorn"],
        default="uvicorn",
        help="uvicorn (ASGI, the README's production command) or gunicorn (WSGI)",
    )
    parser.add_argument("--actions", type=int, default=4, help="slow actions at once")
    parser.add_argument("--port", type=int, default=0, help="Tablero's port (0: any free)")
    return parser.parse_args()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(folder: Path) -> dict[str, str]:
    """A throwaway environment of its own (the fail-closed settings need one); nothing from
    tests/, which the product and its tools never import."""
    from cryptography.fernet import Fernet

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "TASK_QUEUE", "CACHE_", "TABLERO_", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="bench-only-" + secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TABLERO_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        TABLERO_GATEWAY_PEPPER="bench-only-" + secrets.token_urlsafe(32),
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        TABLERO_IGNORE_DOTENV="1",
        TABLERO_ALLOWED_UPSTREAM_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",  # the queue's file lands beside it
        STATIC_ROOT=str(folder / "static"),
        TASK_QUEUE_IMMEDIATE="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _seed(base_url: str) -> dict[str, str]:
    """A team as a team that has used Tablero a while has it; its connection uses the slow key.
    Returns the ids the crawl fills URLs with."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Membership, Role, Team, User
    from assistants.models import Assistant, Run, RunStatus, SyncState
    from connections.models import Connection, ConnectionErrorEvent, Health, RunApi
    from fakeprovider.keys import ADMIN_KEY_OK, KEY_SLOW

    now = timezone.now()
    team = Team.objects.create(name="Bench")
    owner = User.objects.create_user(email=EMAIL, password=PASSWORD)
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    for number, role in enumerate((Role.ADMIN, Role.MEMBER, Role.VIEWER)):
        user = User.objects.create_user(email=f"{role.value}{number}@bench.test")
        Membership.objects.create(team=team, user=user, role=role)
    connection = Connection(
        team=team,
        name="Slow provider",
        base_url=base_url,
        health=Health.OK,
        last_checked_at=now - timedelta(minutes=3),
        run_api=RunApi.ASSISTANTS,
        models_cache=[
            {"id": name, "object": "model", "created": 1715367049, "owned_by": "system"}
            for name in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini", "text-embedding-3-small")
        ],
        models_cached_at=now - timedelta(minutes=3),
    )
    connection.set_api_key(KEY_SLOW)
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.full_clean()
    connection.save()
    assistants = []
    for number in range(3):
        assistant = Assistant(
            team=team,
            connection=connection,
            name=f"Tutor {number}",
            model="gpt-4o",
            remote_id=f"asst_bench{number:020d}",
            sync_state=SyncState.SYNCED,
            created_by=owner,
        )
        assistant.full_clean()
        assistant.save()
        assistants.append(assistant)
    runs = []
    for number, status in enumerate(
        [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.COMPLETED, RunStatus.IN_PROGRESS]
    ):
        run = Run.objects.create(
            team=team,
            assistant=assistants[0],
            assistant_name=assistants[0].name,
            connection=connection,
            backend=RunApi.ASSISTANTS,
            input="What is 2 + 2?",
            status=status,
            thread_id=f"thread_bench{number:018d}",
            remote_run_id=f"run_bench{number:020d}",
            started_by=owner,
            created_at=now - timedelta(minutes=10 - number),
        )
        runs.append(run)
    ConnectionErrorEvent.objects.create(
        connection=connection,
        kind="rate_limited",
        code="rate_limit_exceeded",
        status=429,
        operation="connection.test",
        message="Rate limit reached for requests.",
        user=owner,
    )
    return {
        "team_id": str(team.pk),
        "connection_id": str(connection.pk),
        "assistant_id": str(assistants[0].pk),
        "run_id": str(runs[-1].pk),  # the one still going: its page follows it
        "model_id": "gpt-4o",
        "user_id": str(owner.pk),
    }


def _pages(ids: dict[str, str]) -> list[tuple[str, str]]:
    """(name, path) of every page the URL configuration names whose arguments the seeded team
    fills, the admin site and token links left out."""
    from django.urls import URLPattern, URLResolver, get_resolver, reverse

    found: list[tuple[str, str]] = []

    def walk(patterns, namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                if pattern.namespace in SKIPPED_NAMESPACES:
                    continue
                walk(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                name = f"{namespace}{pattern.name}"
                if name in SKIPPED_NAMES:
                    continue
                wanted = list(pattern.pattern.converters) or re.findall(
                    r"\(\?P<(\w+)>", str(pattern.pattern)
                )
                if any(arg not in ids for arg in wanted):
                    continue
                try:
                    found.append((name, reverse(name, kwargs={arg: ids[arg] for arg in wanted})))
                except Exception:  # a route of an included app with other arguments
                    continue

    walk(get_resolver().url_patterns, "")
    return sorted(set(found), key=lambda item: item[1])


def _wait_for(url: str, seconds: float = 60) -> None:
    import httpx

    until = time.monotonic() + seconds
    while time.monotonic() < until:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"Tablero did not answer at {url}")


def _timed(client, method: str, url: str, **kwargs) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)
    return (time.perf_counter() - started) * 1000, response.status_code


def _sign_in(site: str):
    import httpx

    client = httpx.Client(base_url=site, timeout=120, follow_redirects=False)
    client.get("/login/")
    token = client.cookies["csrftoken"]
    response = client.post(
        "/login/",
        data={"username": EMAIL, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{site}/login/"},
    )
    if response.status_code != 302:
        raise SystemExit(f"signing in failed: {response.status_code}")
    return client


def main() -> None:
    arguments = _arguments()
    folder = Path(tempfile.mkdtemp(prefix="tablero-bench-"))
    env = _environment(folder)
    os.environ.update(env)

    from fakeprovider.server import FakeProvider

    fake = FakeProvider()
    fake.slow_seconds = arguments.delay
    base_url = fake.start()
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput")
    import django

    django.setup()
    ids = _seed(base_url)
    pages = _pages(ids)

    port = arguments.port or _free_port()
    site = f"http://127.0.0.1:{port}"
    logs = (folder / "server.log").open("w")
    server = str(Path(sys.executable).parent / arguments.server)
    if arguments.server == "uvicorn":
        command = [server, "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [server, "config.wsgi", "--bind", f"127.0.0.1:{port}"]
    web = subprocess.Popen(
        [*command, "--workers", str(arguments.workers)],
        cwd=ROOT,
        env=env,
        stdout=logs,
        stderr=subprocess.STDOUT,
    )
    consumer = subprocess.Popen(
        [sys.executable, "manage.py", "run_huey", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=logs,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(f"{site}/healthz")
        print(
            f"Provider delay {arguments.delay:g} s; {arguments.server} --workers "
            f"{arguments.workers}; "
            "one consumer (run_huey --workers 2); SQLite database and queue."
        )
        import httpx

        anonymous = httpx.Client(base_url=site, timeout=120)
        for _ in range(3 * arguments.workers):  # every worker has loaded its code
            anonymous.get("/login/")
        alone = [_timed(anonymous, "GET", "/login/")[0] for _ in range(10)]
        print(f"\nsign-in page, nothing in flight: median {statistics.median(alone):.0f} ms")

        client = _sign_in(site)
        print(f"\n{'page':<40} {'status':>6} {'ms':>8}")
        slowest = 0.0
        for name, path in pages:
            elapsed, status = _timed(client, "GET", path)
            slowest = max(slowest, elapsed) if status == 200 else slowest
            print(f"{name:<40} {status:>6} {elapsed:>8.0f}")
        print(f"slowest page that answered 200: {slowest:.0f} ms ({len(pages)} pages)")

        token = client.cookies["csrftoken"]
        team, connection = ids["team_id"], ids["connection_id"]
        assistant = ids["assistant_id"]
        from django.urls import reverse

        one = {"team_id": team, "connection_id": connection}
        this = {"team_id": team, "assistant_id": assistant}
        actions = [
            ("POST", reverse("connections:test", kwargs=one), {}),
            ("POST", reverse("connections:models_refresh", kwargs=one), {}),
            ("POST", reverse("assistants:sync", kwargs=this), {}),
            ("POST", reverse("assistants:run_start", kwargs=this), {"message": "Hi"}),
        ]
        actions = [actions[n % len(actions)] for n in range(arguments.actions)]
        results: list[tuple[str, float, int]] = []

        def act(method: str, path: str, data: dict) -> None:
            own = httpx.Client(base_url=site, timeout=120, cookies=client.cookies)
            kwargs = {}
            if method == "POST":
                kwargs = {
                    "data": {**data, "csrfmiddlewaretoken": token},
                    "headers": {"Referer": f"{site}{path}"},
                }
            elapsed, status = _timed(own, method, path, **kwargs)
            results.append((f"{method} {path.split(team)[1]}", elapsed, status))

        threads = [threading.Thread(target=act, args=action) for action in actions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Their provider calls are now the consumer's (it takes two at a time): wait for the
        # first to reach the provider, then time the sign-in page while it sleeps.
        until = time.monotonic() + 30
        while not fake.requests and time.monotonic() < until:
            time.sleep(0.1)
        under_load = []
        for _ in range(10):
            under_load.append(_timed(anonymous, "GET", "/login/")[0])
            time.sleep(0.3)
        in_flight = len(fake.requests)
        print(f"\n{len(actions)} actions that used to wait on the provider, sent at once:")
        for label, elapsed, status in results:
            print(f"  {label:<58} {status:>4} {elapsed:>8.0f} ms")
        print(
            f"sign-in page while they (or their tasks) were in flight: median "
            f"{statistics.median(under_load):.0f} ms, max {max(under_load):.0f} ms "
            f"(provider calls received, none answered yet: {in_flight})"
        )
        pages_under_load = []
        for name, path in pages:
            elapsed, status = _timed(client, "GET", path)
            if status == 200:
                pages_under_load.append((elapsed, name))
        worst = max(pages_under_load)
        print(
            f"every page again meanwhile: slowest {worst[0]:.0f} ms ({worst[1]}), median "
            f"{statistics.median(e for e, _ in pages_under_load):.0f} ms"
        )
    finally:
        for process in (web, consumer):
            process.terminate()
        for process in (web, consumer):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        fake.stop()
        logs.close()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {folder}")
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
