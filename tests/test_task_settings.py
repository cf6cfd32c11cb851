"""Where the task queue lives: a SQLite file in the data folder unless TASK_QUEUE_URL names
Redis (or another SQLite file); anything else, and nonsense intervals, stop the start."""

import json
from pathlib import Path

import pytest

from tests.test_settings import BASE_DIR, production_env, run, startup_error

HUEY_AS_JSON = "import json; from django.conf import settings; print(json.dumps(settings.HUEY))"


def huey_under(**overrides: str | None) -> dict:
    result = run(["-c", HUEY_AS_JSON], production_env(**overrides))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_by_default_the_queue_is_a_sqlite_file_beside_the_database():
    huey = huey_under()

    assert huey["huey_class"] == "huey.SqliteHuey"
    assert huey["filename"] == str(BASE_DIR / "huey.sqlite3")
    assert huey["name"] == "tablero"
    assert huey["immediate"] is False  # not even with DEBUG (djhuey's own default)
    assert huey["consumer"]["worker_type"] == "thread"


def test_the_queue_follows_a_sqlite_database_to_its_folder(tmp_path: Path):
    huey = huey_under(DATABASE_URL=f"sqlite:///{tmp_path / 'tablero.db'}")

    assert huey["filename"] == str(tmp_path / "huey.sqlite3")


def test_with_postgresql_the_default_queue_stays_in_the_project_folder():
    huey = huey_under(DATABASE_URL="postgres://tablero:secret@127.0.0.1:5432/tablero")

    assert huey["filename"] == str(BASE_DIR / "huey.sqlite3")


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://cache.internal:6380/2"])
def test_task_queue_url_selects_redis(url: str):
    huey = huey_under(TASK_QUEUE_URL=url, TASK_QUEUE_NAME="tablero-staging")

    assert (huey["huey_class"], huey["url"], huey["name"]) == (
        "huey.RedisHuey",
        url,
        "tablero-staging",
    )
    assert "filename" not in huey


def test_task_queue_url_may_name_another_sqlite_file():
    huey = huey_under(TASK_QUEUE_URL="sqlite:////var/lib/tablero/queue.sqlite3")

    assert (huey["huey_class"], huey["filename"]) == (
        "huey.SqliteHuey",
        "/var/lib/tablero/queue.sqlite3",
    )


def test_an_unknown_queue_url_stops_the_start():
    stderr = startup_error(production_env(TASK_QUEUE_URL="amqp://guest@127.0.0.1//"))

    assert "TASK_QUEUE_URL must be redis://" in stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TABLERO_CONNECTION_CHECK_MINUTES", "0"),
        ("TABLERO_ERROR_RETENTION_DAYS", "0"),
        ("TABLERO_TASK_PROVIDER_DEADLINE", "0"),
        ("TABLERO_TASK_PROVIDER_DEADLINE", "601"),
    ],
)
def test_nonsense_background_settings_stop_the_start(name: str, value: str):
    assert name in startup_error(production_env(**{name: value}))


def test_background_settings_come_from_the_environment():
    script = (
        "from django.conf import settings; print(settings.TABLERO_CONNECTION_CHECK_INTERVAL, "
        "settings.TABLERO_ERROR_RETENTION.days, settings.TABLERO_TASK_PROVIDER_DEADLINE)"
    )
    env = production_env(
        TABLERO_CONNECTION_CHECK_MINUTES="5",
        TABLERO_ERROR_RETENTION_DAYS="30",
        TABLERO_TASK_PROVIDER_DEADLINE="120",
    )
    result = run(["-c", script], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0:05:00", "30", "120.0"]
