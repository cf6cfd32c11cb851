"""How much memory each server worker holds as requests go by (not a test).

    .venv/bin/python bench/memory.py --database-url postgres://postgres@127.0.0.1:5432/tablero_mem \
        --redis-url redis://127.0.0.1:6379/12 [--requests 10000] [--every 1000] [--workers 1] \
        [--concurrency 10] [--port 9830] [--server-env NAME=VALUE ...]

Prepares the same production-like server as bench/load.py (the database --database-url names
must be empty or disposable: it is migrated and a team of 300 connections, 3,000 assistants
and 5,000 runs is added to it; --redis-url: the cache and the task queue, a db number of its
own), starts the Makefile's SERVER (`uvicorn config.asgi:application --no-server-header`, with
the environment `make run` gives it) with --workers, signs in as the team's admin, then sends
--requests requests in rounds of --every: each round is a quarter of the team home, a quarter of
the connections list, a quarter of the sign-in page (signed out) and a quarter of a static
file, at --concurrency clients on keep-alive connections. After each round it prints each
worker's memory (RSS, MB) and the round's errors (an answer other than 200). --server-env sets
a variable in the server's environment (e.g. MALLOC_ARENA_MAX=16, glibc's default on two
cores, to see what the Makefile's 2 saves); as in bench/load.py, each worker keeps a pool of
DATABASE_POOL_SIZE (from this environment, 10 if unset) PostgreSQL connections.

The client is asyncio httpx (as in bench/load.py; wrk cannot stop after a number of requests:
its main thread always waits out -d). It shares the machine's cores with the server, which
does not matter here: only memory is measured. Nothing leaves loopback; the server is stopped
at the end.
"""

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load
import slow_provider

ROOT = slow_provider.ROOT


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="PostgreSQL to fill (disposable)")
    parser.add_argument("--redis-url", default="", help="e.g. redis://127.0.0.1:6379/12")
    parser.add_argument("--requests", type=int, default=10000, help="requests in all")
    parser.add_argument("--every", type=int, default=1000, help="requests per round")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--port", type=int, default=9830)
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for the server's environment (repeatable)",
    )
    return parser.parse_args()


def _make_run_environment() -> dict[str, str]:
    """What `make run` exports to the server (`run demo: export NAME = VALUE` lines)."""
    text = (ROOT / "Makefile").read_text()
    return dict(re.findall(r"^run demo: export (\w+) = (\S+)$", text, re.MULTILINE))


async def _send(site: str, path: str, cookie: str, count: int, concurrency: int) -> int:
    import httpx

    headers = {"Cookie": cookie} if cookie else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    left, failed = count, 0
    async with httpx.AsyncClient(base_url=site, limits=limits, timeout=60) as client:

        async def one_client() -> None:
            nonlocal left, failed
            while left > 0:
                left -= 1
                try:
                    response = await client.get(path, headers=headers)
                    failed += response.status_code != 200
                except httpx.HTTPError:
                    failed += 1

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return failed


def main() -> None:
    arguments = _arguments()
    # Stopped with a signal (kill, or Ctrl-C where a background job ignores it), it still
    # stops the server and removes its folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    folder = Path(tempfile.mkdtemp(prefix="tablero-memory-"))
    # bench/load.py's environment wants its own arguments; the ones it reads are the same.
    env = load._environment(folder, arguments)
    os.environ.update(env)
    slow_provider._manage(env, "migrate", "--noinput")
    slow_provider._manage(env, "collectstatic", "--noinput")
    import django

    django.setup()
    email, home, listing = load._seed()
    slow_provider.EMAIL = email  # whom slow_provider._sign_in signs in

    server_env = {**env, **_make_run_environment()}
    server_env.update(item.split("=", 1) for item in arguments.server_env)
    site = f"http://127.0.0.1:{arguments.port}"
    logs = (folder / "server.log").open("w")
    command = load.server_command(arguments.port, arguments.workers)
    web = subprocess.Popen(command, cwd=ROOT, env=server_env, stdout=logs, stderr=subprocess.STDOUT)
    try:
        slow_provider._wait_for(f"{site}/healthz")
        time.sleep(1)  # every worker has started (healthz answered from one)
        # With one worker uvicorn serves from its own process; with more, from its children.
        workers = load._workers(web.pid) if arguments.workers > 1 else [web.pid]
        started = {pid: load._rss_mb(pid) for pid in workers}
        signed_in = slow_provider._sign_in(site)
        cookie = "; ".join(f"{name}={value}" for name, value in signed_in.cookies.items())
        signed_in.close()
        targets = [
            (home, cookie),
            (listing, cookie),
            ("/login/", ""),
            ("/static/css/tablero.css", ""),
        ]
        chosen = {k: v for k, v in server_env.items() if k.startswith("MALLOC_")}
        print(
            f"\nuvicorn --workers {arguments.workers} (DEBUG off), "
            f"{'PostgreSQL' if arguments.database_url else 'SQLite'}, "
            f"cache {'Redis' if arguments.redis_url else 'per-worker memory'}, "
            f"server environment {chosen or 'as is'}; "
            f"{arguments.concurrency} clients; load {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores"
        )
        print("each round: a quarter each of the team home, the connections list, the sign-in")
        print("page and a static file; worker memory (RSS, MB) after it\n")
        print(
            f"{'requests':>9} "
            + " ".join(f"{'worker ' + str(pid):>13}" for pid in workers)
            + f" {'errors':>7} {'seconds':>8}"
        )
        print(f"{'started':>9} " + " ".join(f"{started[pid]:>13.1f}" for pid in workers))
        sent = 0
        while sent < arguments.requests:
            began, errors = time.monotonic(), 0
            share = max(1, arguments.every // len(targets))
            for path, cookie_header in targets:
                errors += asyncio.run(
                    _send(site, path, cookie_header, share, arguments.concurrency)
                )
                sent += share
            print(
                f"{sent:>9} "
                + " ".join(f"{load._rss_mb(pid):>13.1f}" for pid in workers)
                + f" {errors:>7} {time.monotonic() - began:>8.1f}",
                flush=True,
            )
        load._say_why(folder / "server.log")
    finally:
        load.stop_server(web, logs, folder)


if __name__ == "__main__":
    main()
