"""Reading what a provider sends: JSON made fit to store and show, and the fields of an error.

Everything the provider sends back is untrusted. `load_json` drops NUL characters, replaces
lone surrogates, turns numbers that are not finite into None, refuses a document nested too
deep, and masks the connection's keys in every string. `error_fields` reads an error answer of
any of the usual shapes; `plain_text` the message of one in plain text.
"""

from __future__ import annotations

import json as jsonlib
import math
from typing import Any

import httpx

from provider.secrets import (
    SECRET_PART,
    mask_secrets,
    mask_text,
    safe_error_type,
    safe_identifier,
    safe_param,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "UnusableJSON",
    "clean_text",
    "error_fields",
    "load_json",
    "plain_text",
]

# The provider's documents nest a few levels. A deeper answer is refused here: the database's
# JSON encoder (and any later walk of the document) recurses once per level.
MAX_JSON_DEPTH = 64


def _text_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def clean_text(value: str) -> str:
    """`value` without NUL characters (PostgreSQL stores none) and with each lone surrogate
    (which no database, page or log encodes) replaced by "?"."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


class UnusableJSON(ValueError):
    """JSON that parses but that Tablero cannot store or show."""


def _finite_or_none(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def load_json(body: bytes, secrets: tuple[str, ...] = ()) -> Any:
    """A JSON answer with every value fit to store and show.

    JSON lets a body say "\\u0000" or a lone "\\ud800", and Python's parser takes NaN,
    Infinity and 1e999; each would fail later, far from here (no database stores them). NUL
    characters are dropped, lone surrogates replaced, numbers that are not finite become None,
    and a document nested more than `MAX_JSON_DEPTH` levels is refused (`UnusableJSON`).
    `secrets` (the connection's keys) are masked wherever a string holds one: a provider that
    echoes the key puts it nowhere Tablero stores or shows.
    Walks the document with a stack, not recursion, so a deep answer cannot overflow it.
    """
    document = jsonlib.loads(body, parse_constant=lambda _name: None, parse_float=_finite_or_none)

    secrets = tuple(secret for secret in secrets if secret and len(secret) >= 8)
    # Shorter strings (most of them: ids, names, statuses) cannot hold a secret's part.
    shortest = min((min(len(secret), SECRET_PART) for secret in secrets), default=0)

    def clean(text: str) -> str:
        text = clean_text(text)
        if secrets and len(text) >= shortest:
            text = mask_text(text, secrets, key_shapes=False)
        return text

    if isinstance(document, str):
        return clean(document)
    pending = [(document, 1)] if isinstance(document, (dict, list)) else []
    while pending:
        node, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise UnusableJSON(f"The answer is nested more than {MAX_JSON_DEPTH} levels deep.")
        if isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, str):
                    node[index] = clean(item)
                elif isinstance(item, (dict, list)):
                    pending.append((item, depth + 1))
            continue
        for key in list(node):
            item = node[key]
            if isinstance(item, str):
                item = clean(item)
            elif isinstance(item, (dict, list)):
                pending.append((item, depth + 1))
            clean_key = clean(key)
            if clean_key != key:
                del node[key]
            node[clean_key] = item
    return document


def error_fields(
    body: bytes, secrets: tuple[str, ...] = ()
) -> tuple[str, str | None, str | None, str | None]:
    """(message, code, type, param) from an error body of any of the usual shapes.

    Every field is untrusted: the message comes back with `secrets` and key-shaped tokens
    masked; a code, type or param is kept only when it has the shape of one and holds no
    secret (a proxy may echo the key anywhere)."""
    message, code, error_type, param = _raw_error_fields(body, secrets)
    return (
        mask_secrets(message, *secrets),
        safe_identifier(code, *secrets),
        safe_error_type(error_type, *secrets),
        safe_param(param, *secrets),
    )


def _raw_error_fields(
    body: bytes, secrets: tuple[str, ...]
) -> tuple[str, str | None, str | None, str | None]:
    try:
        document = load_json(body, secrets)
    except (ValueError, RecursionError):
        return "", None, None, None
    if not isinstance(document, dict):
        return "", None, None, None
    error = document.get("error", document)
    if isinstance(error, str):
        return error, None, None, None
    if not isinstance(error, dict):
        return "", None, None, None
    message = error.get("message") or document.get("detail") or ""
    return (
        message if isinstance(message, str) else jsonlib.dumps(message),
        _text_or_none(error.get("code")),
        _text_or_none(error.get("type")),
        _text_or_none(error.get("param")),
    )


def plain_text(response: httpx.Response, body: bytes, secrets: tuple[str, ...]) -> str:
    """The message of an error answer in plain text (a 503 "Slow Down"), or "" for a web
    page or a JSON document without a message. Masked before it is shortened."""
    content_type = response.headers.get("content-type", "").lower()
    plain = content_type.startswith("text/plain") or (
        not content_type and not body.lstrip().startswith(b"<")
    )
    if not plain:
        return ""
    text = mask_secrets(clean_text(body[:2000].decode("utf-8", "replace")), *secrets)
    return text.strip()[:500]
