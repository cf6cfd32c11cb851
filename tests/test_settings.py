"""The settings module fails closed and reads its services from URLs.

Each case starts Django in a subprocess with an environment built here from scratch (only
PATH is taken from the test run), so neither the developer's `.env` nor the test run's own
variables leak in.
"""

import json
import os
import re
import secrets
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config import initenv

BASE_DIR = Path(__file__).resolve().parent.parent
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def strong_secret() -> str:
    return secrets.token_urlsafe(50)


def production_env(**overrides: str | None) -> dict[str, str]:
    """The environment of a production start; an override of None removes the variable."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "TABLERO_IGNORE_DOTENV": "1",
        "SECRET_KEY": strong_secret(),
        "ALLOWED_HOSTS": "tablero.example.com",
        "TABLERO_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "TABLERO_GATEWAY_PEPPER": secrets.token_urlsafe(48),
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(
    args: list[str], env: dict[str, str], *, cwd: Path = BASE_DIR
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


SETTINGS_AS_JSON = """
import json
import re
from django.conf import settings
print(json.dumps({name: str(getattr(settings, name)) for name in %r}))
"""


def settings_under(env: dict[str, str], *names: str) -> dict[str, str]:
    result = run(["-c", SETTINGS_AS_JSON % (names,)], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def startup_error(env: dict[str, str]) -> str:
    result = run(["-c", "from django.conf import settings; settings.SECRET_KEY"], env)
    assert result.returncode != 0, "settings started but should have refused"
    return result.stderr


def test_check_deploy_is_clean_under_production_settings():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_missing_secret_key_stops_startup_with_a_clear_message():
    stderr = startup_error(production_env(SECRET_KEY=None))

    assert "ImproperlyConfigured: SECRET_KEY is not set" in stderr
    assert ".env.example" in stderr


@pytest.mark.parametrize(
    "weak",
    ["short-secret", "a" * 60, "django-insecure-" + strong_secret()],
    ids=["short", "repetitive", "django-insecure"],
)
def test_weak_secret_key_is_refused_in_production(weak):
    stderr = startup_error(production_env(SECRET_KEY=weak))

    assert "SECRET_KEY is too weak for production" in stderr


def test_weak_secret_key_is_accepted_when_debug_is_on():
    values = settings_under(production_env(SECRET_KEY="short-secret", DEBUG="true"), "DEBUG")

    assert values == {"DEBUG": "True"}


@pytest.mark.parametrize("hosts", ["", None], ids=["empty", "unset"])
def test_empty_allowed_hosts_is_refused_in_production(hosts):
    stderr = startup_error(production_env(ALLOWED_HOSTS=hosts))

    assert "ALLOWED_HOSTS is empty" in stderr


def test_debug_defaults_to_off_and_security_defaults_to_on():
    values = settings_under(
        production_env(),
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
    )

    assert values == {
        "DEBUG": "False",
        "SECURE_SSL_REDIRECT": "True",
        "SESSION_COOKIE_SECURE": "True",
        "CSRF_COOKIE_SECURE": "True",
        "SECURE_HSTS_SECONDS": "31536000",
    }


def test_proxy_ssl_header_is_trusted_only_when_enabled():
    plain = settings_under(production_env(), "SECURE_PROXY_SSL_HEADER")
    behind_proxy = settings_under(
        production_env(SECURE_PROXY_SSL_HEADER_ENABLED="true"), "SECURE_PROXY_SSL_HEADER"
    )

    assert plain == {"SECURE_PROXY_SSL_HEADER": "None"}
    assert behind_proxy == {"SECURE_PROXY_SSL_HEADER": "('HTTP_X_FORWARDED_PROTO', 'https')"}


def test_cache_url_selects_djangos_own_redis_backend_with_shared_pools():
    env = production_env(CACHE_URL=f"rediscache://{REDIS_HOST}:{REDIS_PORT}/1")
    script = "import json; from django.conf import settings; print(json.dumps(settings.CACHES))"
    result = run(["-c", script], env)

    assert result.returncode == 0, result.stderr
    cache = json.loads(result.stdout)["default"]
    assert cache["BACKEND"] == "lib.rediscache.RedisCache"
    assert cache["LOCATION"] == f"redis://{REDIS_HOST}:{REDIS_PORT}/1"


def test_sessions_are_read_from_redis_when_the_cache_is_redis():
    redis = production_env(CACHE_URL=f"rediscache://{REDIS_HOST}:{REDIS_PORT}/1")
    assert settings_under(redis, "SESSION_ENGINE") == {
        "SESSION_ENGINE": "django.contrib.sessions.backends.cached_db"
    }
    # The per-process memory cache would keep a session that another process ended.
    assert settings_under(production_env(), "SESSION_ENGINE") == {
        "SESSION_ENGINE": "django.contrib.sessions.backends.db"
    }


def test_postgresql_connections_come_from_a_pool_of_the_configured_size():
    url = "postgres://tablero@127.0.0.1:5432/tablero"
    default = settings_under(production_env(DATABASE_URL=url), "DATABASES")
    assert "'pool': {'min_size': 1, 'max_size': 10, 'timeout': 30}" in default["DATABASES"]
    assert "'CONN_MAX_AGE': 0" in default["DATABASES"]
    pooled = settings_under(production_env(DATABASE_URL=url, DATABASE_POOL_SIZE="4"), "DATABASES")
    assert "'pool': {'min_size': 1, 'max_size': 4, 'timeout': 30}" in pooled["DATABASES"]
    assert "'CONN_MAX_AGE': 0" in pooled["DATABASES"]
    plain = settings_under(production_env(DATABASE_URL=url, DATABASE_POOL_SIZE="0"), "DATABASES")
    assert "'pool'" not in plain["DATABASES"] and "'CONN_MAX_AGE': 60" in plain["DATABASES"]
    sqlite = settings_under(production_env(DATABASE_POOL_SIZE="4"), "DATABASES")
    assert "'pool'" not in sqlite["DATABASES"] and "'CONN_MAX_AGE': 60" in sqlite["DATABASES"]


def test_default_cache_is_local_memory():
    values = settings_under(production_env(), "CACHES")

    assert "django.core.cache.backends.locmem.LocMemCache" in values["CACHES"]


def redis_reachable() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1):
            return True
    except OSError:
        return False


ROUND_TRIP = """
import django
django.setup()
from django.core.cache import cache
key = {key!r}
cache.set(key, {{"answer": 42}}, timeout=30)
print(cache.get(key))
cache.delete(key)
print(cache.get(key))
"""


def test_redis_cache_round_trip():
    if not redis_reachable():
        pytest.skip(f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT}")
    env = production_env(CACHE_URL=f"rediscache://{REDIS_HOST}:{REDIS_PORT}/1")
    key = f"tablero-test-{uuid.uuid4()}"
    result = run(["-c", ROUND_TRIP.format(key=key)], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["{'answer': 42}", "None"]


def test_email_defaults_to_the_console_and_sends_nothing():
    values = settings_under(production_env(), "EMAIL_BACKEND", "TABLERO_SEND_EMAIL")

    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        "TABLERO_SEND_EMAIL": "False",
    }


def test_email_url_configures_smtp_and_enables_sending():
    env = production_env(EMAIL_URL="smtp+tls://mailer:app-password@mail.example.com:587")
    values = settings_under(
        env, "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS", "TABLERO_SEND_EMAIL"
    )

    assert values == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "mail.example.com",
        "EMAIL_PORT": "587",
        "EMAIL_USE_TLS": "True",
        "TABLERO_SEND_EMAIL": "True",
    }


def test_plain_settings_come_from_the_environment():
    env = production_env(TIME_ZONE="Europe/Madrid", INVITATION_DAYS="3", AXES_FAILURE_LIMIT="9")
    values = settings_under(env, "TIME_ZONE", "INVITATION_MAX_AGE", "AXES_FAILURE_LIMIT")

    assert values == {
        "TIME_ZONE": "Europe/Madrid",
        "INVITATION_MAX_AGE": "3 days, 0:00:00",
        "AXES_FAILURE_LIMIT": "9",
    }


def test_initenv_writes_a_private_env_file_once(tmp_path):
    target = tmp_path / ".env"

    assert initenv.main(str(target)) == 0
    first = target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert initenv.main(str(target)) == 0
    assert target.read_text() == first

    written = dict(
        line.split("=", 1) for line in first.splitlines() if line and not line.startswith("#")
    )
    assert "DEBUG" not in written  # off; `make dev` turns it on for its own run
    assert len(written["SECRET_KEY"]) >= 50
    Fernet(written["TABLERO_ENCRYPTION_KEYS"].encode())


def test_initenv_keeps_an_existing_file_and_adds_only_what_it_lacks(tmp_path):
    target = tmp_path / ".env"
    target.write_text("# mine\nSECRET_KEY=mine\nDEBUG=false\n")

    initenv.main(str(target))

    text = target.read_text()
    assert text.startswith("# mine\nSECRET_KEY=mine\nDEBUG=false\n")
    added = dict(line.split("=", 1) for line in text.splitlines()[3:])
    assert set(added) == {"ALLOWED_HOSTS", "TABLERO_ENCRYPTION_KEYS", "TABLERO_GATEWAY_PEPPER"}
    assert len(added["TABLERO_GATEWAY_PEPPER"]) >= 32

    initenv.main(str(target))

    assert target.read_text() == text


def test_initenv_output_is_a_configuration_that_starts(tmp_path):
    target = tmp_path / ".env"
    initenv.main(str(target))
    written = dict(
        line.split("=", 1)
        for line in target.read_text().splitlines()
        if line and not line.startswith("#")
    )
    env = production_env(
        SECRET_KEY=None,
        ALLOWED_HOSTS=None,
        TABLERO_ENCRYPTION_KEYS=None,
        TABLERO_GATEWAY_PEPPER=None,
    )
    result = run(["manage.py", "check"], {**env, **written})

    assert result.returncode == 0, result.stdout + result.stderr


def settings_variables() -> set[str]:
    source = (BASE_DIR / "config" / "settings.py").read_text()
    return set(re.findall(r"""env\.\w+\(\s*["']([A-Z][A-Z0-9_]+)["']""", source)) | set(
        re.findall(r"""["']([A-Z][A-Z0-9_]+)["'] in env\b""", source)
    )


@pytest.mark.parametrize("document", [".env.example", "README.md"])
def test_every_variable_is_documented(document):
    text = (BASE_DIR / document).read_text()
    variables = settings_variables()

    assert {"SECRET_KEY", "DATABASE_URL", "TABLERO_ENCRYPTION_KEYS"} <= variables
    undocumented = sorted(name for name in variables if f"{name}" not in text)
    assert undocumented == [], f"{document} does not mention {undocumented}"


def test_env_example_as_is_does_not_start_production():
    lines = (BASE_DIR / ".env.example").read_text().splitlines()
    example = dict(
        line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")
    )
    env = production_env(SECRET_KEY=None, ALLOWED_HOSTS=None, TABLERO_ENCRYPTION_KEYS=None)

    stderr = startup_error({**env, **example})

    assert "SECRET_KEY is too weak for production" in stderr


def test_missing_encryption_keys_stop_a_production_start():
    env = production_env(TABLERO_ENCRYPTION_KEYS=None)

    stderr = startup_error(env)

    assert "TABLERO_ENCRYPTION_KEYS is not set" in stderr
    assert "Fernet.generate_key()" in stderr


@pytest.mark.parametrize("pepper", [None, "too-short"])
def test_a_missing_or_short_gateway_pepper_stops_a_production_start(pepper):
    env = production_env(TABLERO_GATEWAY_PEPPER=pepper)

    stderr = startup_error(env)

    assert "TABLERO_GATEWAY_PEPPER is not set" in stderr
