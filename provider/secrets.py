"""Keys never leave through what a provider sends back.

A provider or a proxy may echo the key anywhere. `mask_secrets` masks the given secrets in a
text, whole or in part, in any case, percent-encoded or not, and anything shaped like a key or
bearer token; `safe_identifier`, `safe_request_id`, `safe_error_type` and `safe_param` keep an
error's code, type and param or a request id only when it has the shape of one and hides
nothing. `mask` and `last_four` are how a key is shown: ``"sk-…abcd"``.
"""

from __future__ import annotations

import functools
import re
import string
import urllib.parse

__all__ = [
    "last_four",
    "mask",
    "mask_secrets",
    "mask_text",
    "safe_error_type",
    "safe_identifier",
    "safe_param",
    "safe_request_id",
]

# Shorter secrets show nothing of their end: four characters of eight is too much.
_MIN_MASKED_TAIL_LENGTH = 12
# "sk-", "sess-": a short product prefix. A dash deep inside a secret is not a prefix.
_MAX_PREFIX_LENGTH = 6

# A bearer token, or a key-shaped token: "sk-…", "sk-proj-…", "sk-admin-…", also inside a
# longer token ("key_sk-…"), though not a word that merely ends in "sk" ("disk-quota").
_SECRET_TEXT = re.compile(
    r"(?P<bearer>\bBearer\s+)[^\s\"',;]+|(?<![A-Za-z0-9])(?P<key>sk-[A-Za-z0-9_*\-]{6,})",
    re.IGNORECASE,
)

# A request id is short and plain (OpenAI's are "req_" and 32 hex digits, others a UUID).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# What an error's `code` and `type` look like; anything else is not kept.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# An error's `type` is an identifier too, or (RFC 9457 problem details, as Prism and other
# servers answer) a plain http(s) URI.
_ERROR_TYPE = re.compile(r"^(?:[A-Za-z0-9_.:-]{1,64}|https?://[A-Za-z0-9_.:/#-]{1,120})$")
# What an error's `param` looks like: a parameter's path ("messages[0].content").
_PARAM = re.compile(r"^[A-Za-z0-9_.:\[\]-]{1,128}$")


def last_four(secret: str) -> str:
    """The last four characters of a secret long enough to spare them, else ""."""
    if len(secret) < _MIN_MASKED_TAIL_LENGTH:
        return ""
    return secret[-4:]


def mask(secret: str) -> str:
    """``"sk-…abcd"``: a short prefix up to the first '-', an ellipsis, the last four."""
    secret = secret or ""
    dash = secret.find("-")
    prefix = secret[: dash + 1] if 0 < dash < _MAX_PREFIX_LENGTH else ""
    return f"{prefix}…{last_four(secret)}"


# A secret's part this long found anywhere in a text is masked (its prefix, "sk-proj-", is
# shorter); parts are looked for by chunks, so any shared run of `SECRET_PART` is found.
SECRET_PART = 16
_SECRET_CHUNK = 8
# Percent-encoding undone this many times over, looking for an encoded key.
_DECODE_ROUNDS = 3
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


@functools.lru_cache(maxsize=64)
def _chunks(secret: str) -> tuple[tuple[int, str], ...]:
    """`secret` cut in `_SECRET_CHUNK` pieces (the last one aligned on its end)."""
    size = len(secret)
    offsets = sorted({*range(0, size - _SECRET_CHUNK + 1, _SECRET_CHUNK), size - _SECRET_CHUNK})
    return tuple((offset, secret[offset : offset + _SECRET_CHUNK]) for offset in offsets)


def _secret_spans(lowered: str, secret: str) -> list[tuple[int, int, bool]]:
    """(start, end, reaches the secret's end) of each run of `lowered` that is a part of
    `secret` (lower case) at least `SECRET_PART` long, or all of a shorter secret."""
    size = len(secret)
    if size < SECRET_PART:
        spans, at = [], lowered.find(secret)
        while at != -1:
            spans.append((at, at + size, True))
            at = lowered.find(secret, at + size)
        return spans
    spans = []
    for offset, chunk in _chunks(secret):
        at = lowered.find(chunk)
        while at != -1:
            start, back = at, offset
            while start > 0 and back > 0 and lowered[start - 1] == secret[back - 1]:
                start, back = start - 1, back - 1
            end, ahead = at + _SECRET_CHUNK, offset + _SECRET_CHUNK
            while end < len(lowered) and ahead < size and lowered[end] == secret[ahead]:
                end, ahead = end + 1, ahead + 1
            if end - start >= SECRET_PART:
                spans.append((start, end, ahead == size))
                at = lowered.find(chunk, end)
            else:
                at = lowered.find(chunk, at + 1)
    return spans


def _mask_known(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with each of `secrets`, or a long part of one, masked, in any letter case."""
    lowered = _ascii_lower(text)
    for secret in secrets:
        if not secret or len(secret) < 8:
            continue
        merged: list[list] = []
        for start, end, to_the_end in sorted(_secret_spans(lowered, secret.lower())):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
                merged[-1][2] = merged[-1][2] or to_the_end
            else:
                merged.append([start, end, to_the_end])
        if not merged:
            continue
        out, done = [], 0
        for start, end, to_the_end in merged:
            out.append(text[done:start])
            if lowered[start:end] == secret.lower():
                out.append(mask(secret))
            else:
                out.append(f"…{last_four(secret)}" if to_the_end else "…")
            done = end
        out.append(text[done:])
        text = "".join(out)
        lowered = _ascii_lower(text)
    return text


def _ascii_lower(text: str) -> str:
    """`text` with A-Z in lower case, and of the same length (str.lower() may lengthen it)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _mask_key_shapes(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group("bearer"):
            return f"{match.group('bearer')}…"
        return mask(match.group("key"))

    return _SECRET_TEXT.sub(replace, text)


def mask_text(text: str, secrets: tuple[str, ...], *, key_shapes: bool) -> str:
    def masked(value: str) -> str:
        value = _mask_known(value, secrets)
        return _mask_key_shapes(value) if key_shapes else value

    result = masked(text)
    if "%" in result:
        # A key may come back percent-encoded (in a URL the provider quotes): when decoding
        # reveals one, the decoded text is kept, masked.
        decoded = result
        for _round in range(_DECODE_ROUNDS):
            once = urllib.parse.unquote(decoded, errors="replace")
            if once == decoded:
                break
            decoded = once
        if decoded != result and masked(decoded) != decoded:
            result = masked(decoded)
    return result


def mask_secrets(text: str, *secrets: str) -> str:
    """`text` with the given secrets and anything shaped like a key or bearer token masked.

    A secret is found whole or in part (any `SECRET_PART` characters of it, so without its
    "sk-" prefix too), in any letter case, and percent-encoded."""
    if not text:
        return ""
    return mask_text(text, secrets, key_shapes=True)


def _shaped(value: str | None, shape: re.Pattern[str], *secrets: str) -> str | None:
    """`value` if it has `shape` and holds no secret or key-shaped token, else None."""
    if not value:
        return None
    value = value.strip()
    if not shape.match(value) or mask_secrets(value, *secrets) != value:
        return None
    return value


def safe_identifier(value: str | None, *secrets: str) -> str | None:
    """An error code or type from the provider, if it looks like one and hides nothing."""
    return _shaped(value, _IDENTIFIER, *secrets)


def safe_request_id(value: str | None, *secrets: str) -> str | None:
    """A request id from the provider, if it looks like one and hides nothing."""
    return _shaped(value, _REQUEST_ID, *secrets)


def safe_error_type(value: str | None, *secrets: str) -> str | None:
    """An error's type from the provider, if it looks like one and hides nothing."""
    return _shaped(value, _ERROR_TYPE, *secrets)


def safe_param(value: str | None, *secrets: str) -> str | None:
    """An error's param from the provider, if it looks like one and hides nothing."""
    return _shaped(value, _PARAM, *secrets)
