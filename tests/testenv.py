"""Loaded by pytest (`-p tests.testenv`) before Django is set up.

Gives the test run the environment a deployment would have, with throwaway values, so that the
fail-closed settings start. Values already set in the environment win (CI sets DATABASE_URL).
"""

import os

# Fixed, obviously-fake values; they protect nothing.
TEST_FERNET_KEYS = (
    "dGFibGVyby10ZXN0LWtleS1vbmUtMDAwMDAwMDAwMDA=,dGFibGVyby10ZXN0LWtleS10d28tMDAwMDAwMDAwMDA="
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "test-only-" + "x7Qv2Lp9Rk4Tz8Wm3Yn6Bd1Fh5Jc0Gs" * 2)
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("TABLERO_ENCRYPTION_KEYS", TEST_FERNET_KEYS)
os.environ.setdefault("TABLERO_GATEWAY_PEPPER", "test-only-gateway-pepper-" + "Kd8Wq2Zr5Nv7" * 3)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")
os.environ.setdefault("DEBUG", "false")
# Tests never read a developer's .env.
os.environ.setdefault("TABLERO_IGNORE_DOTENV", "1")
# Tasks run at once, in the test's own process, on Huey's in-memory storage.
os.environ.setdefault("TASK_QUEUE_IMMEDIATE", "true")
