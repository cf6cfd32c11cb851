"""What the fair share of the provider's limit adds to each gateway call (not a test).

    .venv/bin/python bench/fairshare.py [--calls 20000] [--redis redis://127.0.0.1:6379/9]

Times `gateway.fairshare`'s three hooks as `gateway.proxy` calls them for one request
(`check` before forwarding, `observe` on the answer's headers, `settle` at the end), in this
process, with no server: far from the provider's limit (the usual case), and while the limit
is shared, with the counts in this process's memory and, when Redis answers at `--redis`, in
Redis (one round trip per request). Prints microseconds per request: median and 99th
percentile.
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _setup(redis_url: str | None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x7Qv2Lp9Rk4Tz8Wm3Yn6Bd1Fh5Jc0Gs" * 2)
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("TABLERO_IGNORE_DOTENV", "1")
    os.environ.setdefault("TABLERO_ENCRYPTION_KEYS", "dGFibGVyby10ZXN0LWtleS1vbmUtMDAwMDAwMDAwMDA=")
    if redis_url:
        os.environ["CACHE_URL"] = redis_url
    import django

    django.setup()


def _run(calls: int, remaining: int) -> list[float]:
    from gateway import fairshare
    from gateway.recorder import Call

    def headers(limit: str, remaining: str, reset: str, kind: str = "requests") -> list:
        return [
            (f"x-ratelimit-{name}-{kind}".encode(), value.encode())
            for name, value in (("limit", limit), ("remaining", remaining), ("reset", reset))
        ]

    def make_call(connection_id: uuid.UUID, token_id: uuid.UUID) -> Call:
        found = Call.begin(
            team_id=connection_id,
            token_id=token_id,
            user_id=None,
            connection_id=connection_id,
            method="POST",
            path="chat/completions",
            address=None,
        )
        found.family, found.model, found.refused = "inference", "gpt-4o", False
        return found

    fairshare.forget_local()
    connection = uuid.uuid4()
    tokens = [uuid.uuid4() for _ in range(3)]
    answer = [
        (b"content-type", b"application/json"),
        (b"x-request-id", b"req_123"),
        *headers("1000000", str(remaining), "6m0s"),
        *headers("90000000", "89000000", "6m0s", kind="tokens"),
    ]
    timings = []
    for number in range(calls):
        call = make_call(connection, tokens[number % 3])
        call.input_tokens = call.output_tokens = 10
        started = time.perf_counter()
        held = fairshare.check(call)
        if held is None:
            fairshare.observe(call, answer)
        fairshare.settle(call)
        timings.append((time.perf_counter() - started) * 1e6)
    return timings


def _show(label: str, timings: list[float]) -> None:
    timings = sorted(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(f"{label:<44} median {statistics.median(timings):7.1f} µs   p99 {p99:7.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    options = parser.parse_args()

    _setup(None)
    _show("far from the limit (nothing shared)", _run(options.calls, 900_000))
    # A limit that stays shared for the whole run: a million left of what is below 10 %.
    _show("sharing, counts in this process", _run(options.calls, 99_000))

    from django.conf import settings
    from django.test.utils import override_settings

    try:
        import redis

        redis.Redis.from_url(options.redis).ping()
    except Exception as error:
        print(f"sharing, counts in Redis: skipped ({type(error).__name__})")
        return
    caches = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": options.redis,
            "KEY_PREFIX": f"bench-{uuid.uuid4().hex}",
        },
    }
    with override_settings(CACHES=caches):
        _show("far from the limit, Redis cache", _run(options.calls, 900_000))
        _show("sharing, counts in Redis (one round trip)", _run(options.calls, 99_000))


if __name__ == "__main__":
    main()
