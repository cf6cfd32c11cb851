"""What a successful call returns: the status, the JSON data, the request id and the rate
limits the provider announced.

Headers are untrusted too: a rate-limit header is kept only when it is a count or a duration
(`header_int`, `header_text`), since it is shown to every role.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

__all__ = ["Answer", "RateLimit", "duration_seconds", "header_int", "header_text"]

# A count in a rate-limit header: ASCII digits only (str.isdigit() also takes "²", which int()
# refuses), and few enough that int() and a JSON column take them.
_HEADER_COUNT = re.compile(r"^[0-9]{1,18}$")
# A rate-limit reset as the provider writes it: a duration ("6m0s", "12ms", "1s", "20.5s") or
# a number of seconds. Nothing else a header says is kept: it is shown to every role.
_HEADER_DURATION = re.compile(
    r"^(?:[0-9]{1,9}(?:\.[0-9]{1,6})?(?:ms|us|µs|ns|[hmsd]))+$|^[0-9]{1,9}(?:\.[0-9]{1,6})?$"
)
_HEADER_TEXT_LIMIT = 32
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|us|µs|ns|[hmsd])")
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
_UNIT_SECONDS["µs"] = _UNIT_SECONDS["us"]
_UNIT_SECONDS["ns"] = 1e-9


def header_text(value: str | None) -> str | None:
    """A rate-limit reset, kept only when it is a duration or a number."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > _HEADER_TEXT_LIMIT or not _HEADER_DURATION.match(value):
        return None
    return value


def duration_seconds(value: str | None) -> float | None:
    """A rate-limit reset in seconds ("6m0s" → 360.0, "12ms" → 0.012, "20" → 20.0), or None
    when `header_text` would not keep it."""
    text = header_text(value)
    if text is None:
        return None
    if text[-1].isdigit():  # a bare number of seconds
        return float(text)
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text))


def header_int(value: str | None) -> int | None:
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
            limit_requests=header_int(get("limit-requests")),
            remaining_requests=header_int(get("remaining-requests")),
            reset_requests=header_text(get("reset-requests")),
            limit_tokens=header_int(get("limit-tokens")),
            remaining_tokens=header_int(get("remaining-tokens")),
            reset_tokens=header_text(get("reset-tokens")),
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


class Requester(Protocol):
    """What the answer parsers (costs, run-API detection, the run backends) need of a client:
    `provider.client.ProviderClient` is one, and a test's stand-in can be."""

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        beta: str | None = None,
    ) -> Answer: ...
