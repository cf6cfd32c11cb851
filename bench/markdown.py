"""How long the model's answers take to render as Markdown on a run's page (not a test).

    .venv/bin/python bench/markdown.py [--repeat 5]

Renders, with the parser the page uses (assistants.markdown, markdown-it-py with raw HTML off)
and no cache, a typical answer (a list, a code block, links, a quote; about 1.6 KB), a long
one (about 70 KB of the same), and markdown-it's worst inputs of about 20,000 and 90,000
characters (unclosed brackets, emphasis runs, backticks, nested lists and quotes). Prints the
best time of `--repeat` for each. The page renders an answer once and keeps the HTML in the
cache; an answer above MAX_CHARS is shown as plain text and never parsed.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TYPICAL = (
    "Here is how to do it:\n\n"
    "1. Install the package with `pip install example`.\n"
    "2. Import it and call **run()**:\n\n"
    "```python\nimport example\n\nprint(example.run(limit=10))\n```\n\n"
    "- See [the docs](https://example.com/docs) for *more*.\n"
    "- Or write to <mailto:help@example.com>.\n\n"
    "> Note: this only works with Python 3.11 or newer.\n\n"
) * 5


def inputs() -> dict[str, str]:
    long = TYPICAL * 45
    return {
        f"typical answer ({len(TYPICAL) // 1000} KB)": TYPICAL,
        f"long answer ({len(long) // 1000} KB)": long,
        **{
            f"{name} ({size // 1000}k chars)": make(size)
            for size in (20_000, 90_000)
            for name, make in {
                "unclosed brackets": lambda n: "[" * n,
                "emphasis runs": lambda n: "*a _b " * (n // 6),
                "backticks": lambda n: "`a" * (n // 2),
                "nested lists": lambda n: "\n".join(
                    "  " * (i % 200) + "- x" for i in range(n // 200)
                ),
                "nested quotes": lambda n: ">" * n + " x",
            }.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()
    from assistants.markdown import _MD, MAX_CHARS

    print(f"markdown-it-py, raw HTML off; answers above {MAX_CHARS:,} characters are not parsed")
    for name, text in inputs().items():
        best = min(_timed(_MD.render, text) for _ in range(args.repeat))
        print(f"{name:<34} {best * 1000:9.1f} ms  ({best / len(text) * 1e6:5.2f} µs/char)")


def _timed(render, text: str) -> float:
    start = time.perf_counter()
    render(text)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
