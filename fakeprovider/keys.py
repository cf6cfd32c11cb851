"""The keys the fake provider knows: each one decides what goes wrong.

Any other key starting with ``sk-`` is accepted; admin keys start with ``sk-admin-``.
"""

from __future__ import annotations

from fakeprovider.router import Reply

KEY_OK = "sk-test-ok-000000000000abcd"
KEY_INVALID = "sk-test-invalid-0000000401"
KEY_QUOTA = "sk-test-quota-00000000429q"
KEY_RATE_LIMIT = "sk-test-ratelimit-000429r"
KEY_OVERLOADED = "sk-test-overloaded-00503"
KEY_SLOW = "sk-test-slow-0000000slow"
KEY_NOT_JSON = "sk-test-notjson-00000html"
ADMIN_KEY_OK = "sk-admin-test-ok-00000adm1"

KEYS = {
    "KEY_OK": KEY_OK,
    "KEY_INVALID": KEY_INVALID,
    "KEY_QUOTA": KEY_QUOTA,
    "KEY_RATE_LIMIT": KEY_RATE_LIMIT,
    "KEY_OVERLOADED": KEY_OVERLOADED,
    "KEY_SLOW": KEY_SLOW,
    "KEY_NOT_JSON": KEY_NOT_JSON,
    "ADMIN_KEY_OK": ADMIN_KEY_OK,
}

RATE_LIMIT_REQUESTS = 5000
RATE_LIMIT_TOKENS = 800000


def masked(key: str) -> str:
    return f"{key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}"


def key_failure(key: str | None) -> Reply | None:
    """The answer a key gets before any route, or None when the key is accepted."""
    if not key:
        return Reply.error(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
            "or as the password field (with blank username) if you're accessing the API "
            "from your browser and are prompted for a username. You can obtain an API key "
            "from https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
        )
    if key == KEY_INVALID or not key.startswith("sk-"):
        return Reply.error(
            401,
            f"Incorrect API key provided: {masked(key)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )
    if key == KEY_QUOTA:
        return Reply.error(
            429,
            "You exceeded your current quota, please check your plan and billing details. "
            "For more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            "insufficient_quota",
        )
    if key == KEY_RATE_LIMIT:
        return Reply.error(
            429,
            "Rate limit reached for gpt-4o in organization org-fake on requests per min "
            "(RPM): Limit 3, Used 3, Requested 1. Please try again in 1s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
            headers={
                "Retry-After": "1",
                "x-ratelimit-limit-requests": "3",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "1s",
            },
        )
    if key == KEY_OVERLOADED:
        return Reply.error(
            503,
            "The server is overloaded or not ready yet.",
            "server_error",
            "server_is_overloaded",
        )
    if key == KEY_NOT_JSON:
        return Reply(
            200,
            b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
            b"<body><h1>Please sign in</h1></body></html>",
            {"Content-Type": "text/html; charset=utf-8"},
        )
    return None
