"""Tablero's one settings module.

Everything comes from the environment (or a local `.env` that `make run` writes on the first
start). The module fails closed: DEBUG is off unless set, and a missing or weak SECRET_KEY or an
empty ALLOWED_HOSTS stops a production start with a message that says what to set.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = BASE_DIR / ".env"
if _env_file.is_file() and not env.bool("TABLERO_IGNORE_DOTENV", default=False):
    environ.Env.read_env(_env_file, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment or in .env "
            "(`make run` writes a .env with a fresh one; see .env.example)."
        )
    weak = len(key) < 50 or len(set(key)) < 5 or key.startswith("django-insecure")
    if weak and not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak for production: use at least 50 random characters, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is empty. Set it to the host names Tablero is served under, "
        "e.g. ALLOWED_HOSTS=tablero.example.com"
    )
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Fernet keys for provider secrets, newest first; independent of SECRET_KEY.
# Checked by the system check connections.E001.
TABLERO_ENCRYPTION_KEYS = env.list("TABLERO_ENCRYPTION_KEYS", default=[])
if not TABLERO_ENCRYPTION_KEYS and not DEBUG:
    # A server started straight under gunicorn runs no system checks; refuse here too.
    raise ImproperlyConfigured(
        "TABLERO_ENCRYPTION_KEYS is not set: provider keys cannot be stored or read. Set one or "
        "more comma-separated Fernet keys, newest first; make one with: python -c 'from "
        "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    )
# The server-side secret with which gateway tokens' secrets are hashed (HMAC-SHA256); kept
# apart from SECRET_KEY and from the database, so a copy of the database cannot check guesses.
# Changing it makes every gateway token stop working.
TABLERO_GATEWAY_PEPPER = env.str("TABLERO_GATEWAY_PEPPER", default="")
if len(TABLERO_GATEWAY_PEPPER) < 32:
    if not DEBUG:
        raise ImproperlyConfigured(
            "TABLERO_GATEWAY_PEPPER is not set (or shorter than 32 characters): gateway tokens "
            "cannot be checked. Set a long random value, e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'"
        )
    TABLERO_GATEWAY_PEPPER = "development-only-gateway-pepper-" + SECRET_KEY
# Hosts a connection's base URL may point at even over http or on a private address
# (for example a local OpenAI-compatible server). Empty by default.
TABLERO_ALLOWED_UPSTREAM_HOSTS = env.list("TABLERO_ALLOWED_UPSTREAM_HOSTS", default=[])
# The largest request body the gateway (/v1/) forwards, in megabytes; larger ones get 413.
TABLERO_GATEWAY_MAX_BODY_MB = env.int("TABLERO_GATEWAY_MAX_BODY_MB", default=100)
if TABLERO_GATEWAY_MAX_BODY_MB < 1:
    raise ImproperlyConfigured("TABLERO_GATEWAY_MAX_BODY_MB must be at least 1.")
# The gateway shares a connection's remaining provider rate limit (requests or tokens) among the
# tokens using it once less than this fraction of the limit is left (gateway.fairshare); 0 turns
# fair sharing off.
TABLERO_FAIR_SHARE_BELOW = env.float("TABLERO_FAIR_SHARE_BELOW", default=0.1)
if not 0 <= TABLERO_FAIR_SHARE_BELOW <= 1:
    raise ImproperlyConfigured(
        "TABLERO_FAIR_SHARE_BELOW is the fraction of the provider's rate limit below which the "
        "gateway shares what is left among the active tokens: from 0 (off) to 1."
    )
# How long Tablero keeps asking the provider about a run that has not finished, when the
# provider sets no earlier limit of its own (an Assistants API run's `expires_at`). After it,
# one last check, then the run is shown as expired and its page stops polling.
_run_poll_minutes = env.int("TABLERO_RUN_POLL_LIMIT_MINUTES", default=60)
if _run_poll_minutes < 1:
    raise ImproperlyConfigured("TABLERO_RUN_POLL_LIMIT_MINUTES must be 1 or more.")
TABLERO_RUN_POLL_LIMIT = timedelta(minutes=_run_poll_minutes)

# Seconds a provider call made for a page may take in all, retries and waits included.
TABLERO_PROVIDER_DEADLINE = env.float("TABLERO_PROVIDER_DEADLINE", default=10.0)
if not 0 < TABLERO_PROVIDER_DEADLINE <= 600:
    raise ImproperlyConfigured(
        "TABLERO_PROVIDER_DEADLINE is the number of seconds a page waits on the provider: "
        "more than 0, at most 600 (about 10 is right for pages)."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "csp",
    "huey.contrib.djhuey",  # manage.py run_huey: the task consumer
    "accounts",
    "connections",
    "assistants",
    "gateway",
    "dashboard",
]

MIDDLEWARE = [
    # /healthz answers before the host check and the https redirect: load balancers probe
    # the address over plain http (config/health.py).
    "config.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # django-axes must come last of those that act on a request.
    "axes.middleware.AxesMiddleware",
    # Keeps the stack above synchronous under ASGI: one thread per page, not a thread round
    # trip per middleware (config/middleware.py).
    "config.middleware.SynchronousStack",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.navigation",
                "accounts.context_processors.team_access",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Under ASGI (uvicorn) each request runs its database work in a thread of its own, and a
# persistent connection stays with the thread that opened it: two workers at 50 requests in
# flight opened more connections than PostgreSQL allows (100 by default), and pages failed.
# On PostgreSQL each process keeps a pool of at most DATABASE_POOL_SIZE connections instead
# (psycopg's pool; a request waits up to 30 s for a free one); 0 turns it off. A page hands its
# connection back when it ends; work outside a request (the gateway's threads, a task-queue
# signal handler) hands it back after each unit of work (lib/dbwork.py), or it would hold a
# pool slot for good.
_pool_size = env.int("DATABASE_POOL_SIZE", default=10)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and _pool_size > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "pool", {"min_size": 1, "max_size": _pool_size, "timeout": 30}
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Take SQLite's write lock when a transaction begins: two requests that read, then write
    # (first-run setup, the last-owner check) then wait for each other, where otherwise the
    # second one fails with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("transaction_mode", "IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://tablero")}
# django-environ maps redis:// to django-redis whenever that package happens to be installed;
# Tablero always uses Django's own Redis backend, with its connection pools shared by the whole
# process (lib/rediscache.py: Django's own opened a connection per request under ASGI).
if CACHES["default"]["BACKEND"].endswith(".RedisCache"):
    CACHES["default"]["BACKEND"] = "lib.rediscache.RedisCache"
    # Every signed-in page reads its session: from Redis, shared by every process, instead of
    # a database query (written through to the database, which stays the record). Not with
    # the per-process memory cache, where one process would keep a session another ended.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"


# The task queue (Huey): provider work that no page waits on, and the periodic checks. Its
# storage is SQLite in the data folder (beside the SQLite database, else beside manage.py), so
# `make run` needs nothing installed; set TASK_QUEUE_URL=redis://… in production, so that every
# web process and every consumer (`manage.py run_huey`), on any machine, share one queue.
# Tests run each task at once, in the calling process (TASK_QUEUE_IMMEDIATE).
def _task_queue(url: str, database: dict) -> dict:
    immediate = env.bool("TASK_QUEUE_IMMEDIATE", default=False)
    common = {
        # Names the queue within its storage: two installations may share one Redis.
        "name": env.str("TASK_QUEUE_NAME", default="tablero"),
        # Tasks return nothing anyone reads: they store their outcome in the database.
        "results": False,
        "immediate": immediate,  # djhuey would otherwise follow DEBUG
        "utc": True,
        "consumer": {"workers": 4, "worker_type": "thread"},
    }
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {**common, "huey_class": "huey.RedisHuey", "url": url}
    if url.startswith("sqlite:///"):
        filename = url.removeprefix("sqlite:///")
    elif url:
        raise ImproperlyConfigured(
            "TASK_QUEUE_URL must be redis://host:6379/0 (rediss:// for TLS) or "
            "sqlite:////absolute/path/huey.sqlite3; leave it unset for SQLite in the data folder."
        )
    elif database["ENGINE"] == "django.db.backends.sqlite3" and database["NAME"] not in (
        "",
        ":memory:",
    ):
        filename = str(Path(database["NAME"]).parent / "huey.sqlite3")
    else:
        filename = str(BASE_DIR / "huey.sqlite3")
    return {**common, "huey_class": "huey.SqliteHuey", "filename": filename}


HUEY = _task_queue(env.str("TASK_QUEUE_URL", default=""), DATABASES["default"])
# Every connection's key is checked this often, each at its own moment within the interval.
_check_minutes = env.int("TABLERO_CONNECTION_CHECK_MINUTES", default=15)
if _check_minutes < 1:
    raise ImproperlyConfigured("TABLERO_CONNECTION_CHECK_MINUTES must be 1 or more.")
TABLERO_CONNECTION_CHECK_INTERVAL = timedelta(minutes=_check_minutes)
# Seconds one provider call made by a background task may take, retries included (the consumer
# uses it in place of TABLERO_PROVIDER_DEADLINE: no page waits on it).
TABLERO_TASK_PROVIDER_DEADLINE = env.float("TABLERO_TASK_PROVIDER_DEADLINE", default=60.0)
if not 0 < TABLERO_TASK_PROVIDER_DEADLINE <= 600:
    raise ImproperlyConfigured(
        "TABLERO_TASK_PROVIDER_DEADLINE is the number of seconds a background call to the "
        "provider may take: more than 0, at most 600."
    )
# Provider errors older than this are deleted from the connections' error history.
_error_days = env.int("TABLERO_ERROR_RETENTION_DAYS", default=90)
if _error_days < 1:
    raise ImproperlyConfigured("TABLERO_ERROR_RETENTION_DAYS must be 1 or more.")
TABLERO_ERROR_RETENTION = timedelta(days=_error_days)

vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tablero <tablero@localhost>")
# Invitations are mailed only when an operator configured a real mail server.
TABLERO_SEND_EMAIL = "EMAIL_URL" in env

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# django-axes: after AXES_FAILURE_LIMIT failed sign-ins for an account, from all addresses
# together, signing in to it is paused until AXES_COOLOFF_TIME has passed without one; except
# for a browser that has signed in to it before (a signed "known device" cookie), which only its
# own failures can pause, so a stranger cannot lock the owner out (accounts/throttle.py).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = "accounts.throttle.lockout_parameters"
AXES_WHITELIST_CALLABLE = "accounts.throttle.is_trusted_device"
# The sign-in form posts the email as "username"; count it lower-cased so case variants of one
# address share one counter.
AXES_USERNAME_CALLABLE = "accounts.forms.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_SENSITIVE_PARAMETERS = ["password", "api_key", "admin_key", "new_key"]
# The address an attempt is counted against: REMOTE_ADDR, or behind TABLERO_PROXY_COUNT reverse
# proxies the client's address as the first proxy it reached wrote it into X-Forwarded-For.
AXES_CLIENT_IP_CALLABLE = "accounts.forms.axes_client_ip"
TABLERO_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` gathers the files WhiteNoise serves.
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Security. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_ENABLED=true.
_secure = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_secure)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_secure)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_secure)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# HSTS preloading commits the whole domain and its subdomains to HTTPS in every browser; only
# the domain's owner can decide that, so the deploy check's reminder (W021) stays quiet.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("SECURE_PROXY_SSL_HEADER_ENABLED", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 24 * 14)

# django-csp 4: no inline scripts or styles; everything is served from 'self'.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

INVITATION_MAX_AGE = timedelta(days=env.int("INVITATION_DAYS", default=7))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # httpx logs full request URLs at INFO; keep it quiet.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # The task consumer: its start and stop, and tasks that fail; not every task it runs.
        "huey": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "huey.consumer": {"level": "INFO"},
        "huey.consumer.Scheduler": {"level": "WARNING"},
        "huey.consumer.Worker": {"level": "WARNING"},
    },
}
