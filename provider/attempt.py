"""One attempt of a call, as both clients see it: the answer read into an `Answer` or a
classified `ProviderError`, with every string from the provider masked, and one log line.

The log gets one line per attempt (method, path without query, status, request id, attempt,
duration), never a key, a header or a body.
"""

from __future__ import annotations

import http
import logging
import urllib.parse
from dataclasses import dataclass

import httpx

from provider.answer import Answer, RateLimit
from provider.errors import ErrorKind, ProviderError, classify
from provider.jsonread import UnusableJSON, clean_text, error_fields, load_json, plain_text
from provider.policy import parse_retry_after, should_retry
from provider.secrets import (
    mask_secrets,
    safe_error_type,
    safe_identifier,
    safe_param,
    safe_request_id,
)

__all__ = ["FAILURES", "UNSENDABLE", "Attempt", "failed", "interpret", "log", "unsendable"]

# One logger for both clients: their lines read the same.
logger = logging.getLogger("provider.client")

# Transport failures after the connection was made: the server closed or reset it, or broke
# the protocol, before the whole answer arrived.
_DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.CloseError)
# Errors raised while a request is built or written out, before the provider sees any of it:
# a URL too long or malformed, a scheme httpx does not speak, a header or body that cannot be
# encoded. Another attempt would fail the same way.
UNSENDABLE = (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError)
# What an attempt may raise that `failed` turns into its outcome.
FAILURES = (ProviderError, httpx.HTTPError, *UNSENDABLE)


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


@dataclass
class Attempt:
    answer: Answer | None = None
    error: ProviderError | None = None
    unsent: bool = False  # the request never reached the provider
    status: int | None = None
    # What the answer's headers said, when an answer came (`status` is not None).
    request_id: str | None = None
    rate_limit: RateLimit | None = None


def interpret(response: httpx.Response, body: bytes, secrets: tuple[str, ...]) -> Attempt:
    """The outcome of an answer whose whole body was read."""
    status = response.status_code
    # The answer's x-request-id when it is a plain, short id; else None (it is logged and
    # shown, so a header that could carry anything is not kept).
    request_id = safe_request_id(response.headers.get("x-request-id"), *secrets)
    rate_limit = RateLimit.from_headers(response.headers)
    seen = {"status": status, "request_id": request_id, "rate_limit": rate_limit}
    if 200 <= status < 300:
        try:
            data = load_json(body, secrets) if body.strip() else None
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, UnusableJSON):
                message = str(exc)
            else:
                # Masked, then shortened: a key cut in two could hide from the mask.
                content_type = mask_secrets(response.headers.get("content-type", "none"), *secrets)[
                    :100
                ]
                message = f"The answer is not JSON (content type {content_type!r})."
            error = ProviderError(
                ErrorKind.BAD_RESPONSE, message, status=status, request_id=request_id
            )
            return Attempt(error=error, **seen)
        answer = Answer(status, data, request_id, rate_limit)
        return Attempt(answer=answer, **seen)
    if 300 <= status < 400:
        error = ProviderError(
            ErrorKind.BAD_RESPONSE,
            f"The provider answered with a redirect ({status}); Tablero follows none. "
            "Check the base URL.",
            status=status,
            request_id=request_id,
        )
        return Attempt(error=error, **seen)
    message, code, error_type, param = error_fields(body, secrets)
    if not message:
        message = plain_text(response, body, secrets)
    kind = classify(status, code, error_type, message)
    error = ProviderError(
        kind,
        message,
        status=status,
        code=code,
        error_type=error_type,
        param=param,
        request_id=request_id,
        retry_after=parse_retry_after(response.headers),
        should_retry=should_retry(response.headers),
    )
    return Attempt(error=error, **seen)


def failed(exc: BaseException, secrets: tuple[str, ...]) -> Attempt:
    """The outcome of an attempt that raised one of `FAILURES`."""
    if isinstance(exc, ProviderError):
        unsent = exc.kind == ErrorKind.URL_REFUSED
        return Attempt(error=_scrubbed(exc, secrets), unsent=unsent)
    if isinstance(exc, UNSENDABLE):
        return Attempt(error=unsendable(exc, secrets), unsent=True)
    if isinstance(exc, httpx.TimeoutException):
        unsent = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
        return Attempt(error=_transport_error(ErrorKind.TIMEOUT, exc, secrets), unsent=unsent)
    if isinstance(exc, httpx.DecodingError):
        return Attempt(error=_transport_error(ErrorKind.BAD_RESPONSE, exc, secrets))
    if isinstance(exc, httpx.ConnectError):
        return Attempt(error=_transport_error(ErrorKind.UNREACHABLE, exc, secrets), unsent=True)
    if isinstance(exc, _DROPPED):
        return Attempt(error=_transport_error(ErrorKind.CONNECTION_DROPPED, exc, secrets))
    return Attempt(error=_transport_error(ErrorKind.UNREACHABLE, exc, secrets))


def _scrubbed(error: ProviderError, secrets: tuple[str, ...]) -> ProviderError:
    """`error` with every field that came from the provider checked once more (errors raised
    below the answer's interpretation read headers directly)."""
    error.message = mask_secrets(error.message, *secrets)
    error.code = safe_identifier(error.code, *secrets)
    error.error_type = safe_error_type(error.error_type, *secrets)
    error.param = safe_param(error.param, *secrets)
    error.request_id = safe_request_id(error.request_id, *secrets)
    error.args = (error.message or error.kind.value,)
    return error


def _transport_error(
    kind: ErrorKind, exc: BaseException, secrets: tuple[str, ...]
) -> ProviderError:
    detail = mask_secrets(clean_text(str(exc)[:4000]), *secrets)[:500] or type(exc).__name__
    message = f"{type(exc).__name__}: {detail}"
    return ProviderError(kind, message)


def unsendable(exc: BaseException, secrets: tuple[str, ...]) -> ProviderError:
    """A request that could not be built or written out: nothing reached the provider."""
    detail = mask_secrets(clean_text(str(exc)[:4000]), *secrets)[:200] or type(exc).__name__
    return ProviderError(
        ErrorKind.BAD_REQUEST,
        f"Tablero could not send this request ({type(exc).__name__}: {detail}).",
    )


def log(method: str, url: str, outcome: Attempt, attempt: int, seconds: float) -> None:
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
