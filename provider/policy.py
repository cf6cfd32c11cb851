"""One call's policy, shared by the sync and the async client: explicit timeouts, one
deadline that every attempt, wait and byte of the answer keeps, and at most a few retries,
only where another attempt can help and cannot run something twice.

`CallPlan` is the loop's brain: each client runs an attempt, and on a failure asks the plan
how long to wait before the next one (or gets the error to raise). The provider's
``Retry-After`` (``retry-after-ms`` too) and ``x-should-retry`` headers are read here.
"""

from __future__ import annotations

import email.utils
import random
import time
from datetime import UTC, datetime

import httpx

from provider.errors import ErrorKind, ProviderError

__all__ = [
    "BACKOFF_BASE",
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "MAX_RETRY_WAIT",
    "MIN_ATTEMPT_SECONDS",
    "CallPlan",
    "bounded_timeout",
    "delay",
    "may_retry",
    "parse_retry_after",
    "should_retry",
]

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
# A call gives up after this many seconds in all: every attempt, every wait between them, every
# byte of the answer. Tablero's pages pass its TABLERO_PROVIDER_DEADLINE setting; work done off
# the request path may pass a longer one.
DEFAULT_DEADLINE = 10.0
# No retry starts with less than this left before the deadline: it could not finish.
MIN_ATTEMPT_SECONDS = 0.5
# No single wait between attempts is longer than this; a Retry-After above it ends the call.
MAX_RETRY_WAIT = 8.0
BACKOFF_BASE = 0.5

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


def may_retry(error: ProviderError, method: str, unsent: bool) -> bool:
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


def delay(attempt: int, error: ProviderError) -> float | None:
    """Seconds to wait before the next attempt, or None to give up now."""
    if error.retry_after is not None:
        if error.retry_after > MAX_RETRY_WAIT:
            return None
        return min(MAX_RETRY_WAIT, error.retry_after * random.uniform(1.0, 1.1))  # noqa: S311
    ceiling = min(MAX_RETRY_WAIT, BACKOFF_BASE * 2 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311


def parse_retry_after(headers: httpx.Headers) -> float | None:
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


def should_retry(headers: httpx.Headers) -> bool | None:
    """The provider's ``x-should-retry`` header: True, False, or None when absent or odd."""
    return {"true": True, "false": False}.get(headers.get("x-should-retry", "").strip().lower())


def bounded_timeout(timeout: httpx.Timeout, seconds: float) -> httpx.Timeout:
    """`timeout` with no phase longer than `seconds`."""

    def cut(value: float | None) -> float:
        return seconds if value is None else min(value, seconds)

    return httpx.Timeout(
        connect=cut(timeout.connect),
        read=cut(timeout.read),
        write=cut(timeout.write),
        pool=cut(timeout.pool),
    )


class CallPlan:
    """One call of `method`: its deadline (`seconds` from now) and its attempts.

    After each failed attempt the client asks `after_failure` for the wait before the next one;
    it raises the error instead when the call is over: no retries left, a failure another
    attempt cannot cure or might run twice, or no time left for another attempt.
    """

    def __init__(self, method: str, *, seconds: float, max_retries: int) -> None:
        self.method = method
        self.seconds = seconds
        self.max_retries = max_retries
        self.deadline = time.monotonic() + seconds
        self.attempt = 0

    def next_attempt(self) -> int:
        self.attempt += 1
        return self.attempt

    def after_failure(self, error: ProviderError, *, unsent: bool) -> float:
        """Seconds to wait before the next attempt; raises the error that ends the call."""
        if error.kind == ErrorKind.TIMEOUT and time.monotonic() >= self.deadline - 0.05:
            error = self.too_slow(error)
        if self.attempt > self.max_retries or not may_retry(error, self.method, unsent):
            raise error
        wait = delay(self.attempt, error)
        # A wait the provider asks for (or the backoff) that would leave no time for the
        # next attempt ends the call now; the error keeps `retry_after` for the page.
        if wait is None or time.monotonic() + wait + MIN_ATTEMPT_SECONDS > self.deadline:
            raise error
        return wait

    def too_slow(self, error: ProviderError) -> ProviderError:
        """The error for a call whose deadline passed before a whole answer arrived."""
        tries = "1 attempt" if self.attempt == 1 else f"{self.attempt} attempts"
        return ProviderError(
            ErrorKind.TIMEOUT,
            f"No complete answer within {self.seconds:g} seconds ({tries}); Tablero stopped "
            "waiting.",
            status=error.status,
            request_id=error.request_id,
        )
