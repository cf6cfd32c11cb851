"""What the gateway adds to a call (not a test).

    .venv/bin/python bench/gateway.py [--calls 2000] [--streams 1000] [--seconds 3]
                                      [--database-url URL] [--redis redis://127.0.0.1:6379/8]
                                      [--port-base 9100]

Starts, each in a process of its own: an instant local upstream (uvicorn serving a tiny
OpenAI-shaped app: a small chat completion, or a short stream of server-sent events) and
Tablero (`uvicorn config.asgi:application`, one worker, as `make run` serves it) on a
throwaway SQLite database with one team, a connection to that upstream and a token. Then, in
one run and alternating direct and through-Tablero calls so both see the same machine:

- the added latency of a small chat completion: median and 99th percentile, direct and
  through Tablero (one keep-alive connection each, a raw HTTP/1.1 client), with a token
  without limits and one with every limit (requests and tokens per minute, concurrency, a
  monthly budget in tokens and in money: none reached), and what the limits add; with
  `--redis`, the same through a second Tablero process whose cache, and so whose counters,
  are that Redis database (without it the counters are the process's memory);
- the time to the first streamed byte, direct and through Tablero;
- requests per second at concurrency 1, 10 and 100 (an asyncio client, `--seconds` each);
- the memory of the Tablero process with `--streams` streams held open at once;
- the same through LiteLLM's proxy, when `litellm` is installed (it is not a dependency).

The goal held to: median overhead at most 1 ms, p99 at most 5 ms. The client runs in this
process and on the same cores: figures are for comparison within one run.
"""

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SMALL_CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
STREAM_CHAT = {**SMALL_CHAT, "stream": True}
HELD_CHAT = {**STREAM_CHAT, "user": "hold"}
UPSTREAM_KEY = "sk-bench-0000000000000000000000"


# -- the instant upstream (run in its own process) ------------------------------------------

ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1764500000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
    }
).encode()
EVENT = b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'  # noqa: E501
LAST_EVENTS = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","choices":[],'
    b'"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}\n\n'
    b"data: [DONE]\n\n"
)
UPSTREAM_HEADERS = [
    (b"x-request-id", b"req_bench"),
    (b"openai-processing-ms", b"1"),
    (b"x-ratelimit-remaining-requests", b"4999"),
]


async def upstream(scope, receive, send) -> None:
    """An OpenAI-shaped server that answers at once."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if b'"stream": true' not in body:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(ANSWER)).encode()),
                    *UPSTREAM_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": ANSWER})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), *UPSTREAM_HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": EVENT, "more_body": True})
    if b'"hold"' in body:  # held open until the client goes
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    await send({"type": "http.response.body", "body": EVENT * 2, "more_body": True})
    await send({"type": "http.response.body", "body": LAST_EVENTS})


# -- a raw HTTP/1.1 client -------------------------------------------------------------------


def request_bytes(port: int, path: str, token: str, payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class RawClient:
    """One keep-alive connection; `call` returns (seconds to the first body byte, in all)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk

    def call(self, request: bytes) -> tuple[float, float]:
        started = time.perf_counter()
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            raise RuntimeError(f"status {status}: {head!r}")
        headers = {
            line.split(b":", 1)[0].strip().lower(): line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")[1:]
        }
        first = None
        if b"content-length" in headers:
            length = int(headers[b"content-length"])
            while len(self.buffer) < max(1, length):
                self._more()
            first = time.perf_counter()
            self.buffer = self.buffer[length:]
        else:  # chunked
            while True:
                while b"\r\n" not in self.buffer:
                    self._more()
                size_line, rest = self.buffer.split(b"\r\n", 1)
                size = int(size_line, 16)
                while len(rest) < size + 2:
                    self._more()
                    rest = self.buffer.split(b"\r\n", 1)[1]
                if first is None and size:
                    first = time.perf_counter()
                self.buffer = rest[size + 2 :]
                if size == 0:
                    break
        done = time.perf_counter()
        return (first or done) - started, done - started

    def close(self) -> None:
        self.sock.close()


async def _async_worker(port: int, request: bytes, until: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while time.perf_counter() < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
        counts.append(done)


def requests_per_second(port: int, request: bytes, concurrency: int, seconds: float) -> float:
    async def run() -> float:
        counts: list[int] = []
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(
            *(_async_worker(port, request, until, counts) for _ in range(concurrency))
        )
        return sum(counts) / (time.perf_counter() - started)

    return asyncio.run(run())


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server stopped at start (exit {process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("a server did not start")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def environment(database_url: str) -> dict[str, str]:
    """A throwaway environment of its own (the fail-closed settings need one); nothing from
    tests/, which the product and its tools never import."""
    from cryptography.fernet import Fernet

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "bench-only-" + secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "TABLERO_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "TABLERO_GATEWAY_PEPPER": secrets.token_urlsafe(48),
        "TABLERO_ALLOWED_UPSTREAM_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "TABLERO_IGNORE_DOTENV": "1",
        "TASK_QUEUE_IMMEDIATE": "true",
        "DEBUG": "false",
        "DATABASE_URL": database_url,
    }
    env.pop("CACHE_URL", None)
    return env


def every_limit() -> dict:
    """Every limit of a UsageLimit, set so high that the bench reaches none."""
    from decimal import Decimal

    return {
        "requests_per_minute": 10**9,
        "tokens_per_minute": 10**12,
        "concurrent_requests": 100_000,
        "monthly_token_budget": 10**14,
        "monthly_money_budget": Decimal("1000000000"),
        "budget_currency": "USD",
    }


def prepare(env: dict[str, str], upstream_port: int) -> tuple[str, str]:
    """Migrate, and make a team, a connection to the upstream and two tokens, the second
    with every limit (none of which the bench reaches); the tokens."""
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import Membership, Role, Team, User
    from connections.models import Connection
    from gateway.scopes import Scope
    from gateway.services import token_create

    team = Team.objects.create(name="Bench")
    # The plain token's owner has no member limit (one would apply to all of their tokens):
    # the limited token's owner has one.
    plain_user, user = (
        User.objects.create_user(email=f"{name}@example.com", password=secrets.token_hex(16))
        for name in ("bench", "bench-limited")
    )
    for member in (plain_user, user):
        Membership.objects.create(team=team, user=member, role=Role.MEMBER)
    connection = Connection(
        team=team, name="Instant", base_url=f"http://127.0.0.1:{upstream_port}/v1"
    )
    connection.set_api_key(UPSTREAM_KEY)
    connection.full_clean()
    connection.save()
    from decimal import Decimal

    from gateway.models import LimitTarget, ModelPrice, UsageLimit

    made = [
        token_create(
            team=team,
            connection=connection,
            name=name,
            created_by=owner,
            owner=owner,
            scopes=list(Scope),
        )
        for name, owner in (("bench", plain_user), ("bench-limited", user))
    ]
    ModelPrice.objects.create(
        team=team,
        model="gpt-4o-mini",
        effective_from="2020-01-01",
        input_per_million=Decimal("0.15"),
        output_per_million=Decimal("0.60"),
    )
    limited_token = made[1][0]
    UsageLimit.objects.create(
        team=team, target=LimitTarget.TOKEN, token=limited_token, **every_limit()
    )
    UsageLimit.objects.create(team=team, target=LimitTarget.MEMBER, user=user, **every_limit())
    return made[0][1], made[1][1]


def start_tablero(port: int, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import resource, sys; s, h = resource.getrlimit(resource.RLIMIT_NOFILE); "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (h, h)); "
            "from uvicorn.main import main; sys.exit(main())",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
        cwd=ROOT,
        env=env,
    )
    wait_port(port, process)
    return process


def start_litellm(upstream_port: int, workdir: Path) -> tuple[subprocess.Popen, int] | None:
    if shutil.which("litellm") is None:
        return None
    port = free_port()
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/gpt-4o-mini\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        f"      api_key: {UPSTREAM_KEY}\n"
    )
    process = subprocess.Popen(
        ["litellm", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, process, seconds=120)
    return process, port


# -- the measures ----------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.3f} ms"


def alternate(targets: dict[str, tuple[int, bytes]], calls: int) -> dict[str, list[tuple]]:
    """`calls` calls to each target, taking turns (the order turning too)."""
    clients = {name: RawClient(port) for name, (port, _request) in targets.items()}
    names = list(targets)
    for name in names:  # warm up: connections, caches, the token's grant
        for _ in range(max(50, calls // 10)):
            clients[name].call(targets[name][1])
    timings: dict[str, list[tuple]] = {name: [] for name in names}
    for number in range(calls):
        order = names if number % 2 == 0 else names[::-1]
        for name in order:
            timings[name].append(clients[name].call(targets[name][1]))
    for client in clients.values():
        client.close()
    return timings


def report_latency(title: str, timings: dict[str, list[tuple]], index: int) -> None:
    print(f"\n{title}")
    direct = [t[index] for t in timings["direct"]]
    base_median, base_p99 = statistics.median(direct), percentile(direct, 0.99)
    print(f"  {'direct':<10} median {ms(base_median)}   p99 {ms(base_p99)}")
    for name, values in timings.items():
        if name == "direct":
            continue
        measured = [t[index] for t in values]
        median, p99 = statistics.median(measured), percentile(measured, 0.99)
        print(
            f"  {name:<10} median {ms(median)}   p99 {ms(p99)}   added: median "
            f"{ms(median - base_median)}, p99 {ms(p99 - base_p99)}"
        )


def counters_alone(redis_url: str, calls: int) -> None:
    """The limits' own cost, in this process: a reservation and its settlement, against a
    token's and a member's limits with every limit set (what the gateway does per call)."""
    import uuid

    from gateway import limits
    from gateway.models import ModelPrice
    from gateway.prices import PriceBook

    team = uuid.uuid4()
    every = every_limit()
    pair = [
        limits.Limit(
            source=limits.LimitSource.TOKEN,
            key=f"bench:t:{uuid.uuid4().hex}",
            team_id=team,
            token_id=uuid.uuid4(),
            user_id=None,
            **every,
        ),
        limits.Limit(
            source=limits.LimitSource.MEMBER,
            key=f"bench:m:{uuid.uuid4().hex}",
            team_id=team,
            token_id=None,
            user_id=uuid.uuid4(),
            **every,
        ),
    ]
    prices = PriceBook(ModelPrice.objects.all())

    class Call:
        status, model = 200, "gpt-4o-mini"
        input_tokens, cached_tokens, output_tokens = 8, 0, 2

    def reserve_and_settle(store: object):
        async def one() -> None:
            ticket = await limits.acquire(
                pair, limits.Demand(30, "gpt-4o-mini"), prices=prices, store=store
            )
            assert isinstance(ticket, limits.Ticket), ticket
            await limits.settle(ticket, Call)

        return one

    measures = [("memory counters", reserve_and_settle(limits.MemoryCounters()))]
    if redis_url:
        measures.append(("Redis counters", reserve_and_settle(limits.RedisCounters(redis_url))))

    async def run() -> dict[str, list[float]]:
        if redis_url:  # the yardstick: one bare round trip to the same Redis
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(redis_url)
            measures.append(("Redis PING", client.ping))
        timings: dict[str, list[float]] = {label: [] for label, _measure in measures}
        for number in range(calls + 100):  # taking turns, so all see the same machine
            for label, measure in measures if number % 2 else measures[::-1]:
                started = time.perf_counter()
                await measure()
                timings[label].append(time.perf_counter() - started)
        # The first ones seed the month's spend from the database.
        return {label: values[100:] for label, values in timings.items()}

    try:  # the event loop uvicorn serves the gateway with, when installed
        import uvloop

        runner, loop_name = uvloop.run, "uvloop"
    except ImportError:
        runner, loop_name = asyncio.run, "asyncio"
    print(
        f"\nThe counters alone: reserve and settle a call, {calls} times, in this process "
        f"({loop_name})"
    )
    for label, values in runner(run()).items():
        print(
            f"  {label:<16} median {ms(statistics.median(values))}   "
            f"p99 {ms(percentile(values, 0.99))}"
        )


def report_limits(timings: dict[str, list[tuple]], redis: str) -> None:
    """What the limits add: the limited token against the plain one, same process."""
    pairs = [("limits", "tablero", "memory counters")]
    if redis:
        pairs.append(("limits+r", "redis", "Redis counters"))
    print("\nWhat the limits add (every limit set on the token and its member, none reached)")
    for limited, plain, label in pairs:
        with_limits = [t[1] for t in timings[limited]]
        without = [t[1] for t in timings[plain]]
        median = statistics.median(with_limits) - statistics.median(without)
        p99 = percentile(with_limits, 0.99) - percentile(without, 0.99)
        print(f"  {label:<16} median {ms(median)}   p99 {ms(p99)}")


async def hold_streams(port: int, token: str, count: int) -> list[asyncio.StreamWriter]:
    request = request_bytes(port, "/v1/chat/completions", token, HELD_CHAT)

    async def one() -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await reader.readuntil(b"\r\n\r\n")
        await reader.readuntil(b"\n\n")  # the first event
        return writer

    writers = []
    for start in range(0, count, 100):
        writers += await asyncio.gather(*(one() for _ in range(min(100, count - start))))
    return writers


def memory_with_streams(pid: int, port: int, token: str, count: int) -> tuple[int, int, float]:
    async def run() -> tuple[int, int, float]:
        before = rss_kib(pid)
        started = time.perf_counter()
        writers = await hold_streams(port, token, count)
        opened = time.perf_counter() - started
        await asyncio.sleep(0.5)
        during = rss_kib(pid)
        for writer in writers:
            writer.close()
        await asyncio.sleep(0.5)
        return before, during, opened

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--redis", default="", help="also measure a Tablero whose cache is this Redis URL"
    )
    parser.add_argument(
        "--port-base", type=int, default=0, help="serve on this port and the next two"
    )
    parser.add_argument("--serve-upstream", type=int, default=0, help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    raise_file_limit()
    if arguments.serve_upstream:
        import uvicorn

        uvicorn.run(
            upstream,
            host="127.0.0.1",
            port=arguments.serve_upstream,
            log_level="warning",
            access_log=False,
            backlog=4096,
        )
        return

    workdir = Path(tempfile.mkdtemp(prefix="tablero-bench-"))
    database_url = arguments.database_url or f"sqlite:///{workdir / 'db.sqlite3'}"
    env = environment(database_url)
    base = arguments.port_base
    upstream_port, tablero_port = (base, base + 1) if base else (free_port(), free_port())
    processes: list[subprocess.Popen] = []
    try:
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, "--serve-upstream", str(upstream_port)], env=env
            )
        )
        wait_port(upstream_port, processes[-1])
        token, limited = prepare(env, upstream_port)
        tablero = start_tablero(tablero_port, env)
        processes.append(tablero)
        if arguments.redis:
            redis_port = base + 2 if base else free_port()
            processes.append(start_tablero(redis_port, {**env, "CACHE_URL": arguments.redis}))
        litellm = start_litellm(upstream_port, workdir)
        if litellm is not None:
            processes.append(litellm[0])

        # name: (port, the key or token it is called with)
        ports = {
            "direct": (upstream_port, UPSTREAM_KEY),
            "tablero": (tablero_port, token),
            "limits": (tablero_port, limited),
        }
        if arguments.redis:
            ports["redis"] = (redis_port, token)
            ports["limits+r"] = (redis_port, limited)
        if litellm is not None:
            ports["litellm"] = (litellm[1], UPSTREAM_KEY)

        def targets_for(payload: dict) -> dict[str, tuple[int, bytes]]:
            return {
                name: (port, request_bytes(port, "/v1/chat/completions", key, payload))
                for name, (port, key) in ports.items()
            }

        targets = targets_for(SMALL_CHAT)
        print(f"Tablero gateway bench: {arguments.calls} calls each, alternating")
        print(f"LiteLLM: {'measured' if litellm else 'not installed, skipped'}")
        small = alternate(targets, arguments.calls)
        report_latency("Small chat completion, whole answer", small, 1)
        report_limits(small, arguments.redis)
        counters_alone(arguments.redis, arguments.calls)

        streaming = targets_for(STREAM_CHAT)
        report_latency(
            "Streamed chat completion, time to the first streamed byte",
            alternate(streaming, max(200, arguments.calls // 4)),
            0,
        )

        print(f"\nRequests per second ({arguments.seconds:g} s each)")
        for concurrency in (1, 10, 100):
            figures = []
            for name, (port, request) in targets.items():
                rate = requests_per_second(port, request, concurrency, arguments.seconds)
                figures.append(f"{name} {rate:8.0f}/s")
            print(f"  concurrency {concurrency:>3}: " + "   ".join(figures))

        before, during, opened = memory_with_streams(
            tablero.pid, tablero_port, token, arguments.streams
        )
        print(f"\nMemory of the Tablero process with {arguments.streams} streams open")
        print(
            f"  before {before / 1024:.1f} MiB, with the streams {during / 1024:.1f} MiB: "
            f"{(during - before) / max(1, arguments.streams):.1f} KiB per stream "
            f"(opened in {opened:.2f} s)"
        )
    finally:
        if arguments.redis:
            from gateway.limits import RedisCounters

            RedisCounters(arguments.redis).clear()  # the bench's counters, not left behind
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
