"""Provider keys at rest: a Fernet keyring of its own, bound to where each secret lives.

The keyring comes from ``settings.TABLERO_ENCRYPTION_KEYS`` (newest first), never from
``SECRET_KEY``: rotating the one must not lose or expose the other. It is read at call time,
so a settings override takes effect at once, and each distinct tuple of keys builds its
``MultiFernet`` only once. The first key encrypts; every key decrypts.

Context binding: the Fernet token carries a small JSON document ``{"ctx": context, "val":
plaintext}``. Fernet authenticates the whole document (AES-CBC + HMAC-SHA256), so nobody can
change the context without the key, and ``decrypt`` compares the context inside with the one
the caller expects (``hmac.compare_digest``). A token copied from one row or field to another
therefore fails to decrypt instead of yielding a key that belongs somewhere else. This needs
no second key derivation and keeps one token format for every field.

Every failure to decrypt raises `DecryptionError`. Nothing here ever returns a token in place
of a secret, and no message ever includes a key or a secret.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

__all__ = [
    "DecryptionError",
    "configuration_errors",
    "decrypt",
    "encrypt",
    "reencrypt",
]

_KEY_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}=$")


class DecryptionError(Exception):
    """The token does not decrypt with any configured key for this context."""


def _configured_keys() -> tuple[str, ...]:
    keys = getattr(settings, "TABLERO_ENCRYPTION_KEYS", None) or ()
    if isinstance(keys, str):
        keys = keys.split(",")
    return tuple(key.strip() for key in keys if key and key.strip())


def _decode_key(key: str) -> bytes | None:
    if not _KEY_SHAPE.match(key):
        return None
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def configuration_errors() -> list[str]:
    """What is wrong with TABLERO_ENCRYPTION_KEYS, in words an operator can act on.

    Used by the system check connections.E001. Never includes a key value.
    """
    keys = _configured_keys()
    if not keys:
        return [
            "TABLERO_ENCRYPTION_KEYS is not set. Set it to one or more comma-separated Fernet "
            "keys, newest first; make one with: python -c 'from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())'"
        ]
    errors = []
    seen: dict[bytes, int] = {}
    for position, key in enumerate(keys, start=1):
        raw = _decode_key(key)
        if raw is None:
            errors.append(
                f"TABLERO_ENCRYPTION_KEYS entry {position} of {len(keys)} is not a Fernet key "
                "(32 bytes in url-safe base64, 44 characters ending in '=')."
            )
        elif raw in seen:
            errors.append(
                f"TABLERO_ENCRYPTION_KEYS entry {position} repeats entry {seen[raw]}; "
                "list each key once."
            )
        else:
            seen[raw] = position
    return errors


@functools.lru_cache(maxsize=8)
def _keyring_for(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    # Imported on first use: cryptography (its Rust extension and OpenSSL) adds about 6 MB to
    # every server process, and most requests (every page that shows no key) never decrypt.
    from cryptography.fernet import Fernet, MultiFernet

    fernets = [Fernet(key.encode("ascii")) for key in keys]
    return MultiFernet(fernets), fernets[0]


def _keyring() -> tuple[MultiFernet, Fernet]:
    keys = _configured_keys()
    problems = configuration_errors()
    if problems:
        raise ImproperlyConfigured(" ".join(problems))
    return _keyring_for(keys)


def _check_context(context: str) -> None:
    if not isinstance(context, str) or not context:
        raise ValueError("An encryption context is required (e.g. 'model:pk:field').")


def encrypt(plaintext: str, *, context: str) -> str:
    """Encrypt `plaintext` with the first key, bound to `context`."""
    _check_context(context)
    if not isinstance(plaintext, str):
        raise TypeError("Only text is encrypted here.")
    keyring, _ = _keyring()
    payload = json.dumps({"ctx": context, "val": plaintext}, separators=(",", ":"))
    return keyring.encrypt(payload.encode("ascii")).decode("ascii")


def _open(fernet: Fernet | MultiFernet, token: str, context: str) -> str:
    from cryptography.fernet import InvalidToken

    if not isinstance(token, str) or not token:
        raise DecryptionError("There is no encrypted value.")
    try:
        payload = fernet.decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError, ValueError, TypeError):
        raise DecryptionError(
            "The value does not decrypt with the configured keys (wrong key or tampered)."
        ) from None
    try:
        document = json.loads(payload)
        stored_context, plaintext = document["ctx"], document["val"]
    except (ValueError, KeyError, TypeError):
        raise DecryptionError("The decrypted value is not in Tablero's format.") from None
    if not (isinstance(stored_context, str) and isinstance(plaintext, str)):
        raise DecryptionError("The decrypted value is not in Tablero's format.")
    if not hmac.compare_digest(stored_context.encode("utf-8"), context.encode("utf-8")):
        raise DecryptionError("The value was encrypted for another record or field.")
    return plaintext


def decrypt(token: str, *, context: str) -> str:
    """The plaintext of `token`; DecryptionError on any failure (never the token itself)."""
    _check_context(context)
    keyring, _ = _keyring()
    return _open(keyring, token, context)


def reencrypt(token: str, *, context: str) -> tuple[str, bool]:
    """`token` under the first key: (token, changed). Already current tokens are kept."""
    _check_context(context)
    keyring, primary = _keyring()
    plaintext = _open(keyring, token, context)
    try:
        _open(primary, token, context)
    except DecryptionError:
        return encrypt(plaintext, context=context), True
    return token, False
