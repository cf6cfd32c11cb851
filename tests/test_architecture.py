"""The house rules for imports, written in pyproject.toml ([tool.importlinter]): the apps depend
downward only (lib <- accounts <- connections <- assistants <- dashboard), the provider library
and the fake provider stand apart from them, and nothing outside tests/ imports tests."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_are_kept():
    # In a process of its own: import-linter configures logging, which would silence the
    # loggers that other tests read.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
