"""The only code that speaks HTTP to a provider.

One pooled ``httpx.Client`` per process, whose connections go through the SSRF guard's
network backend; explicit timeouts, and one deadline per call that every attempt, wait and
byte of the answer keeps; no redirects; at most a few retries, and only where another
attempt can help and cannot run something twice; every failure raised as a classified
`ProviderError` with the provider's message, keys masked. It knows nothing of the ORM or the
request: callers hand it an `Endpoint` with the decrypted key and store what it returns.

Everything the provider sends back is untrusted (a provider or a proxy may echo the key
anywhere): the connection's keys are masked in every string of every answer, whole or in
part, in any case, percent-encoded or not; an error's code, type and param and the
x-request-id are kept only when they have the shape of one and hide nothing, and a
rate-limit header only when it is a count or a duration.

The log gets one line per attempt (method, path without query, status, request id, attempt,
duration), never a key, a header or a body.
"""

from __future__ import annotations

import email.utils
import functools
import http
import json as jsonlib
import logging
import math
import random
import re
import string
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx

from connections.crypto import last_four, mask
from connections.errors import ErrorKind, ProviderError
from connections.urlguard import GuardedBackend, GuardedTransport, validate_base_url

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "Answer",
    "Endpoint",
    "ProviderClient",
    "RateLimit",
    "classify",
    "mask_secrets",
    "path_segment",
    "safe_identifier",
    "safe_request_id",
    "shared_http_client",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
# A call gives up after this many seconds in all: every attempt, every wait between them, every
# byte of the answer. Pages pass settings.TABLERO_PROVIDER_DEADLINE (`client_for`); work done
# off the request path may pass a longer one.
DEFAULT_DEADLINE = 10.0
# No retry starts with less than this left before the deadline: it could not finish.
MIN_ATTEMPT_SECONDS = 0.5
# No single wait between attempts is longer than this; a Retry-After above it ends the call.
MAX_RETRY_WAIT = 8.0
BACKOFF_BASE = 0.5
# A provider answer larger than this is not an answer Tablero expects.
MAX_BODY_BYTES = 16 * 1024 * 1024
# The read timeout bounds each wait for data, not the whole answer: a body that trickles in
# byte by byte would hold a worker for hours. No answer takes longer than this in all.
MAX_ANSWER_SECONDS = 60.0
USER_AGENT = "Tablero/0.1"

# Methods whose second run does no more than the first (RFC 9110, 9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Answers by which the provider refused the request before doing anything: another attempt
# cannot run anything twice, whatever the method.
_REFUSED_ANSWERS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED})
# Failures after which the request may or may not have been carried out: only an idempotent
# request (or one that certainly never left) is sent again.
_UNCERTAIN_FAILURES = frozenset(
    {
        ErrorKind.SERVER_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.UNREACHABLE,
        ErrorKind.CONNECTION_DROPPED,
    }
)
# Never sent again, whatever the provider's x-should-retry says: billing does not change in the
# next seconds, and each attempt through a proxy that retries too is multiplied by its own.
_NEVER_RETRIED = frozenset({ErrorKind.QUOTA_EXHAUSTED})
# Transport failures after the connection was made: the server closed or reset it, or broke
# the protocol, before the whole answer arrived.
_DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError)
# Errors raised while a request is built or written out, before the provider sees any of it:
# a URL too long or malformed, a scheme httpx does not speak, a header or body that cannot be
# encoded. Another attempt would fail the same way.
_UNSENDABLE = (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError)
# The provider's documents nest a few levels. A deeper answer is refused here: the database's
# JSON encoder (and any later walk of the document) recurses once per level.
MAX_JSON_DEPTH = 64
_QUOTA_CODES = frozenset(
    {"insufficient_quota", "credit_balance_exhausted", "billing_hard_limit_reached"}
)
_AUTH_HEADERS = frozenset({"authorization", "api-key", "openai-organization", "openai-project"})
# A bearer token, or a key-shaped token: "sk-…", "sk-proj-…", "sk-admin-…", also inside a
# longer token ("key_sk-…"), though not a word that merely ends in "sk" ("disk-quota").
_SECRET_TEXT = re.compile(
    r"(?P<bearer>\bBearer\s+)[^\s\"',;]+|(?<![A-Za-z0-9])(?P<key>sk-[A-Za-z0-9_*\-]{6,})",
    re.IGNORECASE,
)
_PRINTABLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
# Headers no caller's `extra_headers` replace: the key's, and the codings Tablero can read.
_FIXED_HEADERS = _AUTH_HEADERS | {"accept-encoding"}


class _NoProviderText(logging.Filter):
    """Keeps what a provider wrote out of httpx's and httpcore's own log lines (settings keep
    them quiet, but a DEBUG configuration would not): httpcore's DEBUG trace of the response
    headers is dropped, and the reason phrase httpx logs is replaced by the standard one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "httpx":
            args = record.args
            if isinstance(args, tuple) and len(args) == 5 and isinstance(args[3], int):
                record.args = (*args[:4], _standard_reason(args[3]))
            return True
        return not str(record.msg).startswith("receive_response_headers")


def _standard_reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


for _name in ("httpx", "httpcore.http11", "httpcore.http2"):
    logging.getLogger(_name).addFilter(_NoProviderText())


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to call: a connection's settings with its decrypted key."""

    base_url: str
    api_key: str = field(repr=False)
    provider: str = "openai"  # "openai" | "azure" | "compatible"
    organization: str = ""
    project: str = ""
    api_version: str = ""  # azure
    # Other secrets of the same connection (its admin key, or its API key when `api_key` is
    # the admin key): masked too in whatever the provider sends back.
    other_secrets: tuple[str, ...] = field(default=(), repr=False)


# A count in a rate-limit header: ASCII digits only (str.isdigit() also takes "²", which int()
# refuses), and few enough that int() and a JSON column take them.
_HEADER_COUNT = re.compile(r"^[0-9]{1,18}$")
# A rate-limit reset as the provider writes it: a duration ("6m0s", "12ms", "1s", "20.5s") or
# a number of seconds. Nothing else a header says is kept: it is shown to every role.
_HEADER_DURATION = re.compile(
    r"^(?:[0-9]{1,9}(?:\.[0-9]{1,6})?(?:ms|us|µs|ns|[hmsd]))+$|^[0-9]{1,9}(?:\.[0-9]{1,6})?$"
)
_HEADER_TEXT_LIMIT = 32
# A request id is short and plain (OpenAI's are "req_" and 32 hex digits, others a UUID).
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# What an error's `code` and `type` look like; anything else is not kept.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# An error's `type` is an identifier too, or (RFC 9457 problem details, as Prism and other
# servers answer) a plain http(s) URI.
_ERROR_TYPE = re.compile(r"^(?:[A-Za-z0-9_.:-]{1,64}|https?://[A-Za-z0-9_.:/#-]{1,120})$")
# What an error's `param` looks like: a parameter's path ("messages[0].content").
_PARAM = re.compile(r"^[A-Za-z0-9_.:\[\]-]{1,128}$")


def _header_text(value: str | None) -> str | None:
    """A rate-limit reset, kept only when it is a duration or a number."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > _HEADER_TEXT_LIMIT or not _HEADER_DURATION.match(value):
        return None
    return value


def _header_int(value: str | None) -> int | None:
    """A rate-limit count, kept only when it is one."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if _HEADER_COUNT.match(value) else None


@dataclass
class RateLimit:
    """The provider's x-ratelimit-* headers: counts and durations; a value of any other shape
    (which could carry anything, a key included) is left out."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: str | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        lowered = {key.lower(): value for key, value in headers.items()}

        def get(name: str) -> str | None:
            return lowered.get(f"x-ratelimit-{name}")

        rate_limit = cls(
            limit_requests=_header_int(get("limit-requests")),
            remaining_requests=_header_int(get("remaining-requests")),
            reset_requests=_header_text(get("reset-requests")),
            limit_tokens=_header_int(get("limit-tokens")),
            remaining_tokens=_header_int(get("remaining-tokens")),
            reset_tokens=_header_text(get("reset-tokens")),
        )
        if all(value is None for value in asdict(rate_limit).values()):
            return None
        return rate_limit

    def as_dict(self) -> dict[str, int | str | None]:
        return asdict(self)


@dataclass
class Answer:
    status: int
    data: Any
    request_id: str | None
    rate_limit: RateLimit | None


# A secret's part this long found anywhere in a text is masked (its prefix, "sk-proj-", is
# shorter); parts are looked for by chunks, so any shared run of `_SECRET_PART` is found.
_SECRET_PART = 16
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
    `secret` (lower case) at least `_SECRET_PART` long, or all of a shorter secret."""
    size = len(secret)
    if size < _SECRET_PART:
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
            if end - start >= _SECRET_PART:
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


def _mask_text(text: str, secrets: tuple[str, ...], *, key_shapes: bool) -> str:
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

    A secret is found whole or in part (any `_SECRET_PART` characters of it, so without its
    "sk-" prefix too), in any letter case, and percent-encoded."""
    if not text:
        return ""
    return _mask_text(text, secrets, key_shapes=True)


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


def path_segment(value: str) -> str:
    """`value` quoted for use as one segment of a path (ids the provider gave us)."""
    if value in ("", ".", ".."):
        raise ValueError("An empty or dot path segment.")
    return urllib.parse.quote(value, safe=":@")


# The monotonic time by which the call being made in this thread (or task) must be over;
# `_DeadlineStream` cuts every socket wait at it.
_CALL_DEADLINE: ContextVar[float | None] = ContextVar("provider_call_deadline", default=None)


def _within_deadline(timeout: float | None, expired: type[Exception]) -> float | None:
    """`timeout` cut to what is left of the current call's deadline; `expired` raised when
    nothing is left."""
    deadline = _CALL_DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise expired("The call's deadline has passed.")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the call's deadline.

    httpx's read timeout bounds each wait for data, and httpcore fixes it once per answer: a
    server sending a byte a second, or going quiet just before the deadline, would hold the
    call far past it. Here each socket operation is cut to the time left.
    """

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(GuardedBackend):
    """The SSRF guard's backend, with connections that keep the call's deadline."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(
            host,
            port,
            timeout=_within_deadline(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream)


def _bounded_timeout(timeout: httpx.Timeout, seconds: float) -> httpx.Timeout:
    """`timeout` with no phase longer than `seconds`."""

    def cut(value: float | None) -> float:
        return seconds if value is None else min(value, seconds)

    return httpx.Timeout(
        connect=cut(timeout.connect),
        read=cut(timeout.read),
        write=cut(timeout.write),
        pool=cut(timeout.pool),
    )


_shared_client: httpx.Client | None = None
_shared_lock = threading.Lock()


def shared_http_client() -> httpx.Client:
    """The process's one pooled client, built on first use (thread-safe)."""
    global _shared_client
    if _shared_client is None:
        with _shared_lock:
            if _shared_client is None:
                _shared_client = httpx.Client(
                    transport=GuardedTransport(network_backend=_DeadlineBackend()),
                    follow_redirects=False,
                    trust_env=False,
                    timeout=DEFAULT_TIMEOUT,
                )
    return _shared_client


def _parse_retry_after(headers: httpx.Headers) -> float | None:
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _text_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


# What servers write when they are overloaded, whatever the status code they chose.
_OVERLOADED_CODES = frozenset({"server_is_overloaded", "overloaded_error", "slowdown", "slow_down"})
_OVERLOADED_TEXT = re.compile(r"\boverloaded\b", re.IGNORECASE)
# S3-style "Slow Down" on a 503 (a 429 that says "slow down" is a plain rate limit).
_SLOW_DOWN_TEXT = re.compile(r"^slow down\b", re.IGNORECASE)
# Billing, said in words (a proxy that rewrites the code keeps the upstream's message).
_QUOTA_TEXT = re.compile(
    r"exceeded your current quota|insufficient[_ ]quota|credit balance|insufficient credits",
    re.IGNORECASE,
)
# Words that say quota or billing but also appear in rate-limit messages ("add a payment
# method ... /account/billing", Azure's "aka.ms/oai/quotaincrease"): billing only when nothing
# in the message speaks of a rate.
_QUOTA_HINT = re.compile(r"\bquota\b|\bbilling\b", re.IGNORECASE)
_RATE_TEXT = re.compile(
    r"rate.?limit|per (?:second|minute|hour|day)|try again in|retry after|\b[rt]p[msd]\b",
    re.IGNORECASE,
)
# A model that does not exist, as OpenAI, LiteLLM and others word it.
_MODEL_MISSING_TEXT = re.compile(
    r"model_not_found|model not found|no such model|unknown model|invalid model name"
    r"|\bmodel\b.{0,200}?\b(?:does not exist|doesn't exist|not found)",
    re.IGNORECASE,
)
_NO_ORGANIZATION_CODES = frozenset({"no_organization"})
_NO_ORGANIZATION_TEXT = re.compile(r"member of an organi[sz]ation", re.IGNORECASE)
_WRONG_ORGANIZATION_CODES = frozenset({"invalid_organization", "mismatched_organization"})
_WRONG_ORGANIZATION_TEXT = re.compile(
    r"no such organi[sz]ation|should match organi[sz]ation|invalid organi[sz]ation",
    re.IGNORECASE,
)
_IP_CODES = frozenset({"ip_not_authorized", "ip_not_allowed", "ip_restricted"})
_IP_TEXT = re.compile(
    r"\bip\b(?: address)?.{0,80}?\bnot (?:authori[sz]ed|allowed|permitted|whitelisted)"
    r"|unauthori[sz]ed (?:source )?ip",
    re.IGNORECASE,
)
# A proxy (LiteLLM) whose own setup fails: without a database it takes only its master key.
_PROXY_SETUP_TEXT = re.compile(
    r"no connected db|not connected to (?:the )?db|no database connected", re.IGNORECASE
)
_PROXY_SETUP_TYPES = frozenset({"no_db_connection"})


def classify(status: int, code: str | None, error_type: str | None, message: str) -> ErrorKind:
    """The kind of a failed answer: from its error code and type first, then its message (a
    proxy in front of the provider may rewrite both code and status, but keeps the message),
    then its status."""
    code = (code or "").lower()
    error_type = (error_type or "").lower()
    message = message.strip()
    if (
        code in _OVERLOADED_CODES
        or error_type in _OVERLOADED_CODES
        or status == 529
        or ((status == 429 or status >= 500) and _OVERLOADED_TEXT.search(message))
        or (status >= 500 and _SLOW_DOWN_TEXT.search(message))
    ):
        return ErrorKind.OVERLOADED
    if (
        code in _QUOTA_CODES
        or code.endswith("_spend_limit_exceeded")
        or error_type == "insufficient_quota"
        or status == 402
        or (status in (400, 403, 429) and _QUOTA_TEXT.search(message))
        or (
            status == 429
            and code != "rate_limit_exceeded"
            and _QUOTA_HINT.search(message)
            and not _RATE_TEXT.search(message)
        )
    ):
        return ErrorKind.QUOTA_EXHAUSTED
    if error_type in _PROXY_SETUP_TYPES or (status >= 400 and _PROXY_SETUP_TEXT.search(message)):
        return ErrorKind.PROXY_MISCONFIGURED
    refused = status in (401, 403)
    if code in _NO_ORGANIZATION_CODES or (refused and _NO_ORGANIZATION_TEXT.search(message)):
        return ErrorKind.NO_ORGANIZATION
    if code in _WRONG_ORGANIZATION_CODES or (refused and _WRONG_ORGANIZATION_TEXT.search(message)):
        return ErrorKind.WRONG_ORGANIZATION
    if code in _IP_CODES or (refused and _IP_TEXT.search(message)):
        return ErrorKind.IP_NOT_ALLOWED
    if status == 401 or code == "invalid_api_key":
        return ErrorKind.INVALID_KEY
    if status == 403:
        return ErrorKind.PERMISSION_DENIED
    if code == "model_not_found" or (status in (400, 404) and _MODEL_MISSING_TEXT.search(message)):
        return ErrorKind.MODEL_NOT_FOUND
    if status in (404, 410):
        return ErrorKind.NOT_FOUND
    if status == 429 or code == "rate_limit_exceeded":
        return ErrorKind.RATE_LIMITED
    if status >= 500:
        return ErrorKind.SERVER_ERROR
    return ErrorKind.BAD_REQUEST


def _clean_text(value: str) -> str:
    """`value` without NUL characters (PostgreSQL stores none) and with each lone surrogate
    (which no database, page or log encodes) replaced by "?"."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


class _UnusableJSON(ValueError):
    """JSON that parses but that Tablero cannot store or show."""


def _finite_or_none(text: str) -> float | None:
    number = float(text)
    return number if math.isfinite(number) else None


def _load_json(body: bytes, secrets: tuple[str, ...] = ()) -> Any:
    """A JSON answer with every value fit to store and show.

    JSON lets a body say "\\u0000" or a lone "\\ud800", and Python's parser takes NaN,
    Infinity and 1e999; each would fail later, far from here (no database stores them). NUL
    characters are dropped, lone surrogates replaced, numbers that are not finite become None,
    and a document nested more than `MAX_JSON_DEPTH` levels is refused (`_UnusableJSON`).
    `secrets` (the connection's keys) are masked wherever a string holds one: a provider that
    echoes the key puts it nowhere Tablero stores or shows.
    Walks the document with a stack, not recursion, so a deep answer cannot overflow it.
    """
    document = jsonlib.loads(body, parse_constant=lambda _name: None, parse_float=_finite_or_none)

    secrets = tuple(secret for secret in secrets if secret and len(secret) >= 8)
    # Shorter strings (most of them: ids, names, statuses) cannot hold a secret's part.
    shortest = min((min(len(secret), _SECRET_PART) for secret in secrets), default=0)

    def clean(text: str) -> str:
        text = _clean_text(text)
        if secrets and len(text) >= shortest:
            text = _mask_text(text, secrets, key_shapes=False)
        return text

    if isinstance(document, str):
        return clean(document)
    pending = [(document, 1)] if isinstance(document, (dict, list)) else []
    while pending:
        node, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise _UnusableJSON(f"The answer is nested more than {MAX_JSON_DEPTH} levels deep.")
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


def _error_fields(
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
        _shaped(error_type, _ERROR_TYPE, *secrets),
        _shaped(param, _PARAM, *secrets),
    )


def _raw_error_fields(
    body: bytes, secrets: tuple[str, ...]
) -> tuple[str, str | None, str | None, str | None]:
    try:
        document = _load_json(body, secrets)
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


def _plain_text(response: httpx.Response, body: bytes, secrets: tuple[str, ...]) -> str:
    """The message of an error answer in plain text (a 503 "Slow Down"), or "" for a web
    page or a JSON document without a message. Masked before it is shortened."""
    content_type = response.headers.get("content-type", "").lower()
    plain = content_type.startswith("text/plain") or (
        not content_type and not body.lstrip().startswith(b"<")
    )
    if not plain:
        return ""
    text = mask_secrets(_clean_text(body[:2000].decode("utf-8", "replace")), *secrets)
    return text.strip()[:500]


def _should_retry(headers: httpx.Headers) -> bool | None:
    """The provider's ``x-should-retry`` header: True, False, or None when absent or odd."""
    return {"true": True, "false": False}.get(headers.get("x-should-retry", "").strip().lower())


@dataclass
class _Attempt:
    answer: Answer | None = None
    error: ProviderError | None = None
    unsent: bool = False  # the request never reached the provider
    status: int | None = None


class ProviderClient:
    """Calls one endpoint. `transport` gives it a private client (tests); else the shared one.

    `deadline` is the most seconds one `request` takes in all, retries and waits included
    (`DEFAULT_DEADLINE`; pages use the TABLERO_PROVIDER_DEADLINE setting, through
    `connections.services.client_for`). `extra_headers` go with every request (per request
    too, as `request(extra_headers=)`); they never replace the key or organization headers.
    Tests use them for Prism's `Prefer`.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
        timeout: httpx.Timeout | None = None,
        deadline: float = DEFAULT_DEADLINE,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        if not deadline > 0:
            raise ValueError("A deadline is a positive number of seconds.")
        self.endpoint = endpoint
        self.extra_headers = dict(extra_headers or {})
        self.max_retries = max(0, max_retries)
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.deadline = float(deadline)
        self._sleep = sleep
        self._http = (
            httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
            if transport is not None
            else None
        )
        self.last_request_id: str | None = None
        self.last_rate_limit: RateLimit | None = None
        self.attempts = 0

    @property
    def _secrets(self) -> tuple[str, ...]:
        """What is masked in every string the provider sends back."""
        return (self.endpoint.api_key, *self.endpoint.other_secrets)

    def _request_id(self, headers: httpx.Headers) -> str | None:
        """The answer's x-request-id when it is a plain, short id; else None (it is logged
        and shown, so a header that could carry anything is not kept)."""
        return safe_request_id(headers.get("x-request-id"), *self._secrets)

    def _scrubbed(self, error: ProviderError) -> ProviderError:
        """`error` with every field that came from the provider checked once more (errors
        raised below the answer's interpretation read headers directly)."""
        error.message = mask_secrets(error.message, *self._secrets)
        error.code = safe_identifier(error.code, *self._secrets)
        error.error_type = _shaped(error.error_type, _ERROR_TYPE, *self._secrets)
        error.param = _shaped(error.param, _PARAM, *self._secrets)
        error.request_id = safe_request_id(error.request_id, *self._secrets)
        error.args = (error.message or error.kind.value,)
        return error

    def __repr__(self) -> str:
        return f"ProviderClient({self.endpoint!r})"

    # -- the one entry point ------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        beta: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send one request (and up to `max_retries` more), all within `deadline` seconds.
        Raises ProviderError on failure: TIMEOUT when the deadline passed first."""
        method = method.upper()
        url = self._url(path)
        headers = self._headers(beta=beta, extra_headers=extra_headers)
        query = self._params(params)
        deadline = time.monotonic() + self.deadline
        attempt = 0
        while True:
            attempt += 1
            self.attempts = attempt
            started = time.monotonic()
            outcome = self._attempt(
                method, url, headers=headers, params=query, json=json, deadline=deadline
            )
            self._log(method, url, outcome, attempt, time.monotonic() - started)
            if outcome.answer is not None:
                return outcome.answer
            error = outcome.error
            assert error is not None
            if error.kind == ErrorKind.TIMEOUT and time.monotonic() >= deadline - 0.05:
                error = self._too_slow(error, attempt)
            if attempt > self.max_retries or not self._may_retry(error, method, outcome.unsent):
                raise error
            delay = self._delay(attempt, error)
            # A wait the provider asks for (or the backoff) that would leave no time for the
            # next attempt ends the call now; the error keeps `retry_after` for the page.
            if delay is None or time.monotonic() + delay + MIN_ATTEMPT_SECONDS > deadline:
                raise error
            self._sleep(delay)

    # -- typed calls ---------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """The models this key may use (GET /models), each an object with a string id."""
        answer = self.request("GET", "/models")
        data = answer.data.get("data") if isinstance(answer.data, dict) else None
        if not isinstance(data, list) or not all(_is_model(item) for item in data):
            raise self._bad_shape(answer, "a list of models")
        return data

    def retrieve_model(self, model_id: str) -> dict[str, Any]:
        """One model (GET /models/{id}); ProviderError MODEL_NOT_FOUND when it does not exist."""
        try:
            segment = path_segment(model_id)
        except ValueError:
            raise ProviderError(ErrorKind.MODEL_NOT_FOUND, "No model id was given.") from None
        answer = self.request("GET", f"/models/{segment}")
        if not _is_model(answer.data):
            raise self._bad_shape(answer, "a model")
        return answer.data

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        if not path.startswith("/") or any(char in path for char in "?#\\"):
            raise ValueError("A path starts with '/' and has no query, fragment or backslash.")
        if any(segment in (".", "..") for segment in path.split("/")):
            raise ValueError("A path has no dot segments.")
        return validate_base_url(self.endpoint.base_url, resolve=False) + path

    def _headers(
        self, *, beta: str | None, extra_headers: Mapping[str, str] | None
    ) -> dict[str, str]:
        key = self.endpoint.api_key or ""
        if not _PRINTABLE_ASCII.match(key):
            raise ProviderError(
                ErrorKind.INVALID_KEY,
                "The key is empty or contains spaces or characters a key never has.",
            )
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            "User-Agent": USER_AGENT,
        }
        for name, value in {**self.extra_headers, **(extra_headers or {})}.items():
            if name.lower() not in _FIXED_HEADERS:
                headers[name] = value
        if self.endpoint.provider == "azure":
            headers["api-key"] = key
        else:
            headers["Authorization"] = f"Bearer {key}"
            for name, value in (
                ("OpenAI-Organization", self.endpoint.organization.strip()),
                ("OpenAI-Project", self.endpoint.project.strip()),
            ):
                if not value:
                    continue
                if not _PRINTABLE_ASCII.match(value):
                    # A header carries ASCII only: an accent or a pasted space would crash
                    # the request rather than reach the provider.
                    raise ProviderError(
                        ErrorKind.BAD_REQUEST,
                        f"The {name} header would contain spaces or characters an ID never "
                        "has. Correct the organization or project ID of this connection.",
                    )
                headers[name] = value
        if beta:
            headers["OpenAI-Beta"] = beta
        return headers

    def _params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        query = dict(params or {})
        if self.endpoint.provider == "azure" and self.endpoint.api_version:
            query["api-version"] = self.endpoint.api_version
        return query

    def _attempt(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: dict[str, Any],
        json: Any,
        deadline: float,
    ) -> _Attempt:
        """One attempt, over by `deadline` (a `time.monotonic()` value) whatever happens."""
        http = self._http or shared_http_client()
        now = time.monotonic()
        if now >= deadline:
            return _Attempt(error=ProviderError(ErrorKind.TIMEOUT), unsent=True)
        answer_by = min(deadline, now + MAX_ANSWER_SECONDS)
        try:
            request = http.build_request(
                method,
                url,
                headers=headers,
                params=params or None,
                json=json,
                timeout=_bounded_timeout(self.timeout, deadline - now),
            )
        except (*_UNSENDABLE, ValueError) as exc:
            # ValueError: a body with NaN or a lone surrogate, which JSON cannot carry.
            return _Attempt(error=self._unsendable(exc), unsent=True)
        token = _CALL_DEADLINE.set(deadline)
        try:
            response = http.send(request, stream=True, follow_redirects=False)
            try:
                body = _read_limited(response, deadline=answer_by)
            finally:
                response.close()
            return self._interpret(response, body)
        except ProviderError as error:
            unsent = error.kind == ErrorKind.URL_REFUSED
            return _Attempt(error=self._scrubbed(error), unsent=unsent)
        except _UNSENDABLE as exc:
            return _Attempt(error=self._unsendable(exc), unsent=True)
        except httpx.TimeoutException as exc:
            unsent = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            return _Attempt(error=self._transport_error(ErrorKind.TIMEOUT, exc), unsent=unsent)
        except httpx.DecodingError as exc:
            return _Attempt(error=self._transport_error(ErrorKind.BAD_RESPONSE, exc))
        except httpx.ConnectError as exc:
            return _Attempt(error=self._transport_error(ErrorKind.UNREACHABLE, exc), unsent=True)
        except _DROPPED as exc:
            return _Attempt(error=self._transport_error(ErrorKind.CONNECTION_DROPPED, exc))
        except httpx.HTTPError as exc:
            return _Attempt(error=self._transport_error(ErrorKind.UNREACHABLE, exc))
        finally:
            _CALL_DEADLINE.reset(token)

    def _interpret(self, response: httpx.Response, body: bytes) -> _Attempt:
        status = response.status_code
        request_id = self._request_id(response.headers)
        self.last_request_id = request_id
        self.last_rate_limit = RateLimit.from_headers(response.headers)
        if 200 <= status < 300:
            try:
                data = _load_json(body, self._secrets) if body.strip() else None
            except (ValueError, RecursionError) as exc:
                if isinstance(exc, _UnusableJSON):
                    message = str(exc)
                else:
                    # Masked, then shortened: a key cut in two could hide from the mask.
                    content_type = mask_secrets(
                        response.headers.get("content-type", "none"), *self._secrets
                    )[:100]
                    message = f"The answer is not JSON (content type {content_type!r})."
                error = ProviderError(
                    ErrorKind.BAD_RESPONSE, message, status=status, request_id=request_id
                )
                return _Attempt(error=error, status=status)
            answer = Answer(status, data, request_id, self.last_rate_limit)
            return _Attempt(answer=answer, status=status)
        if 300 <= status < 400:
            error = ProviderError(
                ErrorKind.BAD_RESPONSE,
                f"The provider answered with a redirect ({status}); Tablero follows none. "
                "Check the base URL.",
                status=status,
                request_id=request_id,
            )
            return _Attempt(error=error, status=status)
        message, code, error_type, param = _error_fields(body, self._secrets)
        if not message:
            message = _plain_text(response, body, self._secrets)
        kind = classify(status, code, error_type, message)
        error = ProviderError(
            kind,
            message,
            status=status,
            code=code,
            error_type=error_type,
            param=param,
            request_id=request_id,
            retry_after=_parse_retry_after(response.headers),
            should_retry=_should_retry(response.headers),
        )
        return _Attempt(error=error, status=status)

    def _transport_error(self, kind: ErrorKind, exc: Exception) -> ProviderError:
        detail = (
            mask_secrets(_clean_text(str(exc)[:4000]), *self._secrets)[:500] or type(exc).__name__
        )
        message = f"{type(exc).__name__}: {detail}"
        return ProviderError(kind, message)

    def _too_slow(self, error: ProviderError, attempts: int) -> ProviderError:
        """The error for a call whose deadline passed before a whole answer arrived."""
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        return ProviderError(
            ErrorKind.TIMEOUT,
            f"No complete answer within {self.deadline:g} seconds ({tries}); Tablero stopped "
            "waiting.",
            status=error.status,
            request_id=error.request_id,
        )

    def _unsendable(self, exc: Exception) -> ProviderError:
        """A request that could not be built or written out: nothing reached the provider."""
        detail = (
            mask_secrets(_clean_text(str(exc)[:4000]), *self._secrets)[:200] or type(exc).__name__
        )
        return ProviderError(
            ErrorKind.BAD_REQUEST,
            f"Tablero could not send this request ({type(exc).__name__}: {detail}).",
        )

    def _bad_shape(self, answer: Answer, expected: str) -> ProviderError:
        return ProviderError(
            ErrorKind.BAD_RESPONSE,
            f"The answer is JSON but not {expected} as the API describes it.",
            status=answer.status,
            request_id=answer.request_id,
        )

    @staticmethod
    def _may_retry(error: ProviderError, method: str, unsent: bool) -> bool:
        """Whether another attempt may help and cannot run the request twice. A POST is only
        sent again when the provider certainly did not act on it: it refused (rate limit,
        overloaded) or never received it (no connection); never after a 5xx or a timeout
        waiting for the answer, when it may have created a run or an assistant already.
        The provider's ``x-should-retry`` overrides this both ways, except that billing
        errors are never sent again."""
        if error.should_retry is False or error.kind in _NEVER_RETRIED:
            return False
        if error.should_retry:
            return True
        if error.kind in _REFUSED_ANSWERS:
            return True
        if error.kind in _UNCERTAIN_FAILURES:
            return unsent or method in _IDEMPOTENT
        return False

    @staticmethod
    def _delay(attempt: int, error: ProviderError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if error.retry_after is not None:
            if error.retry_after > MAX_RETRY_WAIT:
                return None
            return min(MAX_RETRY_WAIT, error.retry_after * random.uniform(1.0, 1.1))  # noqa: S311
        ceiling = min(MAX_RETRY_WAIT, BACKOFF_BASE * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311

    def _log(self, method: str, url: str, outcome: _Attempt, attempt: int, seconds: float) -> None:
        error = outcome.error
        if outcome.status is not None:
            result = str(outcome.status)
        else:
            result = error.kind.value if error is not None else "?"
        if error is not None and outcome.status is not None:
            result = f"{result} {error.kind.value}"
        request_id = outcome.answer.request_id if outcome.answer else None
        if error is not None:
            request_id = error.request_id
        logger.info(
            "provider %s %s -> %s request_id=%s attempt=%d %.0fms",
            method,
            _log_path(url),
            result,
            request_id or "-",
            attempt,
            seconds * 1000,
        )


def _log_path(url: str) -> str:
    """The URL's path for the log, shortened: a URL httpx refuses still gets its line."""
    try:
        path = httpx.URL(url).path
    except httpx.InvalidURL:
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    return path if len(path) <= 200 else f"{path[:200]}…"


def _is_model(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("id"), str) and bool(item["id"])


def _read_limited(response: httpx.Response, *, deadline: float) -> bytes:
    """The answer's body, decoded, refused once it passes `MAX_BODY_BYTES`.

    httpx's own decoding inflates each chunk read from the network at once: 64 KB of gzip can
    become 64 MB before any size is known. Here the raw bytes are read and inflated at most
    `_DECODE_PIECE` bytes at a time, so a compression bomb stops after the limit and one
    piece. The raw bytes have a limit too (data sent after the end of a gzip stream).
    """

    def refuse_larger() -> ProviderError:
        return ProviderError(
            ErrorKind.BAD_RESPONSE,
            f"The answer is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB.",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )

    if response.is_stream_consumed:
        # Built in memory and decoded by httpx already (an `httpx.MockTransport` answer in
        # tests); an answer from the network always comes as a stream.
        if len(response.content) > MAX_BODY_BYTES:
            raise refuse_larger()
        return response.content

    layers = _content_decoders(response)
    chunks: list[bytes] = []
    raw_size = size = 0

    def raw_chunks() -> Iterator[bytes]:
        nonlocal raw_size
        for chunk in response.iter_raw():
            if time.monotonic() > deadline:
                raise ProviderError(
                    ErrorKind.TIMEOUT,
                    "The answer did not arrive in time.",
                    status=response.status_code,
                    request_id=response.headers.get("x-request-id"),
                )
            raw_size += len(chunk)
            # Compressed data is at most a little larger than what it holds: twice the limit
            # is only reached with data after the end of the compressed stream.
            if raw_size > 2 * MAX_BODY_BYTES:
                raise refuse_larger()
            yield chunk

    pieces: Iterator[bytes] = raw_chunks()
    for layer in layers:
        pieces = layer.decode(pieces)
    for piece in pieces:
        size += len(piece)
        if size > MAX_BODY_BYTES:
            raise refuse_larger()
        chunks.append(piece)
    return b"".join(chunks)


# The most a decoder hands on at once (a multiple of what the network gives per read).
_DECODE_PIECE = 64 * 1024
# What Tablero asks for and reads with a limit (`_Inflater`).
ACCEPT_ENCODING = "gzip, deflate"
# Codings a server may use though Tablero never asks for them; it reads none of them.
_UNREAD_CODINGS = frozenset({"br", "zstd", "compress", "x-compress"})


class _Inflater:
    """One gzip or deflate layer of an answer, inflated in pieces of `_DECODE_PIECE` bytes.

    Like httpx: "deflate" is zlib-wrapped, or raw when the first bytes say so; anything after
    the end of the compressed stream is ignored.
    """

    def __init__(self, coding: str) -> None:
        gzip = coding in ("gzip", "x-gzip")
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._may_be_raw = not gzip

    def decode(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            yield from self._inflate(chunk)
        try:
            rest = self._zlib.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(str(exc)) from exc
        if rest:
            yield rest

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while not self._zlib.eof:
            try:
                piece = self._zlib.decompress(data, _DECODE_PIECE)
            except zlib.error as exc:
                if not self._may_be_raw:
                    raise httpx.DecodingError(str(exc)) from exc
                self._may_be_raw = False
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._may_be_raw = False
            data = self._zlib.unconsumed_tail
            if piece:
                yield piece
            # A full piece may leave more output inside zlib even when all input is taken.
            if not data and len(piece) < _DECODE_PIECE:
                return


def _content_decoders(response: httpx.Response) -> list[_Inflater]:
    """The decoders for the answer's Content-Encoding, innermost coding last.

    Unknown values (servers send "utf-8" there) are passed over, as httpx does; a compression
    Tablero did not ask for is refused rather than read without a limit.
    """
    codings = [
        value.strip().lower()
        for value in response.headers.get_list("content-encoding", split_commas=True)
    ]
    layers = []
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip", "deflate"):
            layers.append(_Inflater(coding))
        elif coding in _UNREAD_CODINGS:
            raise ProviderError(
                ErrorKind.BAD_RESPONSE,
                f"The answer is compressed with {coding!r}, which Tablero did not ask for "
                "and does not read.",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            )
    return layers
