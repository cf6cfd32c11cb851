"""Tablero under load, served as `make run` serves it (not a test).

    .venv/bin/python bench/load.py --database-url postgres://postgres@127.0.0.1:5432/tablero_load \
        --redis-url redis://127.0.0.1:6379/12 [--duration 10] [--concurrency 10,50] \
        [--workers 2] [--port 9810]

Prepares the database --database-url names (it must be empty or disposable: it is migrated and
a team is added to it; without the flag, a throwaway SQLite file) and a production-like
environment: DEBUG off, the cache and the task queue on the Redis that --redis-url names (one
db number of its own; without it, each worker's memory cache and a SQLite queue), static files
collected for WhiteNoise. Seeds a team that has used Tablero a while (bench/home_page.py's
builder: 300 connections, 3,000 assistants, 5,000 runs, 500 provider errors). Starts the
Makefile's SERVER (`uvicorn config.asgi:application --no-server-header`) with `--workers 2`,
signs in as the team's admin, then for each concurrency drives each of the team home, the
connections list, the sign-in page (signed out) and a static file for --duration seconds: that
many clients on keep-alive connections, each sending its next request when the last one is
answered. Prints per target the requests per second, the median and 99th percentile time,
the errors (an answer other than 200, or none), and each worker's memory (RSS) before the
first request and after the last.

The client is wrk when the machine has it (`apt-get install wrk`; --client wrk or httpx to
choose), else asyncio with httpx (already a dependency), which needs about 4 ms of CPU per
request itself and so measures itself more than the server beyond ~250 requests a second.
Either shares the machine's cores with the server: it prints how much of one core the client
used, and the CPU time the workers spent per request (utime + stime from /proc), which a
busy machine inflates far less than the rates. Nothing leaves loopback; the server is stopped
at the end.
"""

import argparse
import asyncio
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import home_page
import slow_provider

ROOT = slow_provider.ROOT
PASSWORD = slow_provider.PASSWORD
SIZES = {"connections": 300, "assistants": 3000, "runs": 5000, "errors": 500}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="", help="PostgreSQL to fill (disposable)")
    parser.add_argument("--redis-url", default="", help="e.g. redis://127.0.0.1:6379/12")
    parser.add_argument("--duration", type=float, default=10, help="seconds per target")
    parser.add_argument("--concurrency", default="10,50", help="comma-separated client counts")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=9810)
    parser.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto")
    return parser.parse_args()


def _environment(folder: Path, arguments: argparse.Namespace) -> dict[str, str]:
    env = slow_provider._environment(folder)  # DEBUG unset: off, as `make run` has it
    env.update(SECURE_HSTS_SECONDS="0", TASK_QUEUE_IMMEDIATE="false")
    env.setdefault("MALLOC_ARENA_MAX", "2")  # as `make run` and the README's server set it
    if arguments.database_url:
        env["DATABASE_URL"] = arguments.database_url  # each worker pools its connections
    if arguments.redis_url:
        host_and_db = arguments.redis_url.split("://", 1)[1]
        env["CACHE_URL"] = f"rediscache://{host_and_db}"
        env["TASK_QUEUE_URL"] = arguments.redis_url
        env["TASK_QUEUE_NAME"] = "tablero-load-" + secrets.token_hex(4)
    return env


def _seed() -> tuple[str, str, str]:
    """The team; returns (its admin's email, the team home's path, the connections list's)."""
    from django.urls import reverse

    started = time.perf_counter()
    team, admin, _viewer = home_page._build("Load " + secrets.token_hex(3), SIZES)
    admin.set_password(PASSWORD)
    admin.save(update_fields=["password"])
    print(
        "seeded a team of " + ", ".join(f"{n} {kind}" for kind, n in SIZES.items()),
        f"in {time.perf_counter() - started:.0f} s",
    )
    return (
        admin.email,
        reverse("dashboard:team_home", args=[team.pk]),
        reverse("connections:list", args=[team.pk]),
    )


def server_command(port: int, workers: int) -> list[str]:
    """The Makefile's SERVER, on loopback with this port and number of workers."""
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    command = [uvicorn, "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    return [*command, "--no-server-header", "--workers", str(workers)]


def _workers(server_pid: int) -> list[int]:
    """The server's worker processes (uvicorn's supervisor spawns them)."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    found = []
    for pid in children:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"resource_tracker" not in command:
            found.append(int(pid))
    return found


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _drive(site: str, path: str, cookies, concurrency: int, duration: float) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    times: list[float] = []
    errors = 0
    async with httpx.AsyncClient(
        base_url=site, cookies=cookies, limits=limits, timeout=60
    ) as client:
        stop = time.monotonic() + duration

        async def one_client() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                    await response.aread()
                    failed = response.status_code != 200
                except httpx.HTTPError:
                    failed = True
                times.append((time.perf_counter() - started) * 1000)
                errors += failed

        began, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        elapsed, cpu = time.monotonic() - began, time.process_time() - cpu
    times.sort()
    return {
        "requests": len(times),
        "rate": len(times) / elapsed,
        "p50": statistics.median(times) if times else 0.0,
        "p99": times[min(len(times) - 1, int(0.99 * len(times)))] if times else 0.0,
        "errors": errors,
        "client_cpu": cpu / elapsed,
    }


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def _wrk(site: str, path: str, cookies, concurrency: int, duration: float) -> dict:
    """One wrk run (one thread, `concurrency` keep-alive connections); the same figures as
    `_drive`. Errors: answers other than 2xx/3xx, and socket errors (timeouts included)."""
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", "--latency"]
    command += ["--timeout", "60s"]
    if cookies:
        command += ["-H", "Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items())]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(
        [*command, site + path], capture_output=True, text=True, check=True
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    elapsed_match = re.search(r"requests in ([\d.]+)(ms|s|m)", output)
    elapsed = float(elapsed_match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[elapsed_match.group(2)]
    percentile = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors += sum(int(n) for n in socket.groups()) if socket else 0
    return {
        "requests": requests,
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _wrk_ms(percentile["50"]) if "50" in percentile else 0.0,
        "p99": _wrk_ms(percentile["99"]) if "99" in percentile else 0.0,
        "errors": errors,
        "client_cpu": cpu / elapsed if elapsed else 0.0,
    }


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def _say_why(log: Path) -> None:
    """The server's errors, each kind once with how often (their last line)."""
    found: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        if (
            line
            and not line.startswith((" ", "INFO", "Traceback", "The above"))
            and ("Error" in line or "Exception" in line)
        ):
            found[line[:200]] = found.get(line[:200], 0) + 1
    for line, count in sorted(found.items(), key=lambda item: -item[1])[:5]:
        print(f"server error, {count} times: {line}")


def main() -> None:
    arguments = _arguments()
    counts = [int(part) for part in arguments.concurrency.split(",")]
    client = arguments.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "httpx"
    elif client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    folder = Path(tempfile.mkdtemp(prefix="tablero-load-"))
    env = _environment(folder, arguments)
    os.environ.update(env)
    slow_provider._manage(env, "migrate", "--noinput")
    slow_provider._manage(env, "collectstatic", "--noinput")
    import django

    django.setup()
    email, home, listing = _seed()
    slow_provider.EMAIL = email  # whom slow_provider._sign_in signs in

    site = f"http://127.0.0.1:{arguments.port}"
    logs = (folder / "server.log").open("w")
    command = server_command(arguments.port, arguments.workers)
    web = subprocess.Popen(command, cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT)
    try:
        slow_provider._wait_for(f"{site}/healthz")
        time.sleep(1)  # every worker has started (healthz answered from one)
        workers = _workers(web.pid)
        signed_in = slow_provider._sign_in(site)
        targets = [
            ("team home", home, signed_in.cookies),
            ("connections list", listing, signed_in.cookies),
            ("sign-in page", "/login/", None),
            ("static file", "/static/css/tablero.css", None),
        ]
        before = {pid: _rss_mb(pid) for pid in workers}
        import httpx

        signed_out = httpx.Client(base_url=site)
        for _name, path, cookies in targets:  # each worker has loaded its code and templates
            for _ in range(4 * arguments.workers):
                (signed_in if cookies else signed_out).get(path)
        signed_out.close()
        database = "PostgreSQL" if arguments.database_url else "SQLite"
        cache = "Redis" if arguments.redis_url else "per-worker memory"
        print(
            f"\nuvicorn --workers {arguments.workers} (DEBUG off), {database}, cache {cache}; "
            f"client {client}; {arguments.duration:g} s per target; load "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores before the first run"
        )
        header = f"{'target':<18} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        print(header + f" {'errors':>7} {'requests':>9} {'client CPU':>10} {'server CPU/req':>14}")
        total = 0
        for concurrency in counts:
            for name, path, cookies in targets:
                cpu = _cpu_seconds(workers)
                if client == "wrk":
                    found = _wrk(site, path, cookies, concurrency, arguments.duration)
                else:
                    found = asyncio.run(
                        _drive(site, path, cookies, concurrency, arguments.duration)
                    )
                cpu = _cpu_seconds(workers) - cpu
                total += found["requests"]
                per_request = 1000 * cpu / found["requests"] if found["requests"] else 0.0
                print(
                    f"{name:<18} {concurrency:>7} {found['rate']:>8.0f} {found['p50']:>8.1f} "
                    f"{found['p99']:>8.1f} {found['errors']:>7} {found['requests']:>9} "
                    f"{found['client_cpu']:>9.0%} {per_request:>11.2f} ms",
                    flush=True,
                )
        print(f"\nworker memory (RSS, MB) when started and after {total} requests:")
        for pid in workers:
            print(f"  worker {pid}: {before[pid]:.0f} -> {_rss_mb(pid):.0f}")
        _say_why(folder / "server.log")
    finally:
        stop_server(web, logs, folder)


def stop_server(web: subprocess.Popen, logs, folder: Path) -> None:
    """Stops the server (killed if it takes over 30 s), closes its log, removes the folder."""
    web.terminate()
    try:
        web.wait(timeout=30)
    except subprocess.TimeoutExpired:
        web.kill()
        web.wait()
    logs.close()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
