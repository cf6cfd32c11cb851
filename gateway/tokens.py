"""The gateway token's format, and how its secret is kept: never stored, only its HMAC.

A token reads ``tbl_<prefix>_<secret>``: the prefix (10 lowercase letters and digits) is
public, stored as it is, and finds the row; the secret (256 random bits, URL-safe base64) is
stored only as an HMAC-SHA256 keyed with ``TABLERO_GATEWAY_PEPPER`` (a server setting apart
from SECRET_KEY and from the database), so a copy of the database alone cannot check a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from django.conf import settings

__all__ = [
    "PREFIX_LENGTH",
    "TOKEN_START",
    "NewToken",
    "digest",
    "display",
    "generate",
    "matches",
    "split",
]

TOKEN_START = "tbl_"
PREFIX_LENGTH = 10
SECRET_BYTES = 32
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# URL-safe base64 of 32 bytes, without padding.
_SECRET_LENGTH = 43
_SECRET_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
TOKEN_LENGTH = len(TOKEN_START) + PREFIX_LENGTH + 1 + _SECRET_LENGTH


@dataclass(frozen=True)
class NewToken:
    """A token just made: `value` is shown once and then forgotten; the rest is stored."""

    value: str
    prefix: str
    secret_digest: str


def digest(secret: str) -> str:
    """The stored form of a secret: hex HMAC-SHA256 under the pepper."""
    pepper = settings.TABLERO_GATEWAY_PEPPER
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def generate() -> NewToken:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return NewToken(f"{TOKEN_START}{prefix}_{secret}", prefix, digest(secret))


def split(value: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed token; None for anything else (never raises)."""
    if len(value) != TOKEN_LENGTH or not value.startswith(TOKEN_START):
        return None
    prefix = value[len(TOKEN_START) : len(TOKEN_START) + PREFIX_LENGTH]
    separator = value[len(TOKEN_START) + PREFIX_LENGTH]
    secret = value[len(TOKEN_START) + PREFIX_LENGTH + 1 :]
    if separator != "_" or not all(c in _PREFIX_ALPHABET for c in prefix):
        return None
    if not all(c in _SECRET_ALPHABET for c in secret):
        return None
    return prefix, secret


def matches(secret: str, stored_digest: str) -> bool:
    """Whether `secret` is the one whose digest was stored (constant time)."""
    return hmac.compare_digest(digest(secret), stored_digest)


def display(prefix: str) -> str:
    """How a stored token is shown after its creation page: its public part only."""
    return f"{TOKEN_START}{prefix}_…"
