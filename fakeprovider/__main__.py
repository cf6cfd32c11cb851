"""``python -m fakeprovider --port 8765``: the fake provider alone (`make demo` runs it)."""

from __future__ import annotations

import argparse
import time

from fakeprovider.keys import KEYS
from fakeprovider.server import FakeProvider


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fakeprovider", description="Run the fake OpenAI-compatible provider."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--no-assistants-api", action="store_true", help="answer 404 on assistants and threads"
    )
    parser.add_argument(
        "--litellm", action="store_true", help="answer like LiteLLM: assistants 500, long ids"
    )
    args = parser.parse_args(argv)
    fake = FakeProvider(args.host, args.port)
    fake.assistants_api_removed = args.no_assistants_api
    fake.litellm_mode = args.litellm
    print(f"Fake provider at {fake.start()}", flush=True)
    for name, key in KEYS.items():
        print(f"  {name:<15} {key}", flush=True)
    print(
        f"Allow its host for Tablero: TABLERO_ALLOWED_UPSTREAM_HOSTS={args.host}. Ctrl-C stops it.",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
