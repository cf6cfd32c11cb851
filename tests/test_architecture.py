"""The house rules for imports, written in pyproject.toml ([tool.importlinter]): the apps depend
downward only (accounts <- connections <- assistants <- dashboard), so no two of them import
each other, and nothing outside tests/ imports tests."""

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def test_apps_depend_downward_and_nothing_imports_tests(capsys):
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert status == 0, capsys.readouterr().out
