"""Print the largest modules and functions of Tablero, in lines.

    python bench/sizes.py [--top N]

Counts physical lines (blank lines and docstrings included) of every ``.py`` file under the
apps and ``tests/``, skipping migrations and the virtualenv; a function's size runs from its
``def`` (decorators included) to its last line.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP = {".venv", "migrations", "node_modules", "staticfiles", ".demo", "bench"}


def _python_files() -> list[Path]:
    return sorted(
        path for path in ROOT.rglob("*.py") if not SKIP.intersection(path.relative_to(ROOT).parts)
    )


def _functions(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found.append((node.end_lineno - first + 1, f"{module}:{node.name}"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    modules, functions = [], []
    for path in _python_files():
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        modules.append((len(text.splitlines()), name))
        functions.extend(_functions(ast.parse(text), name))
    for title, rows in (("modules", modules), ("functions", functions)):
        print(f"largest {title} (lines)")
        for size, name in sorted(rows, reverse=True)[: args.top]:
            print(f"  {size:5d}  {name}")


if __name__ == "__main__":
    main()
