"""What the sync and the async client share: the endpoint, the URL guard, the retry budget,
the timeouts, the deadline, extra headers, and what the last call learnt."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from provider import policy
from provider.answer import RateLimit
from provider.endpoint import Endpoint
from provider.urlguard import URLGuard


class ClientBase:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        guard: URLGuard | None,
        max_retries: int,
        timeout: httpx.Timeout | None,
        deadline: float,
        extra_headers: Mapping[str, str] | None,
    ) -> None:
        if not deadline > 0:
            raise ValueError("A deadline is a positive number of seconds.")
        self.endpoint = endpoint
        self.guard = guard or URLGuard()
        self.extra_headers = dict(extra_headers or {})
        self.max_retries = max(0, max_retries)
        self.timeout = timeout or policy.DEFAULT_TIMEOUT
        self.deadline = float(deadline)
        self.last_request_id: str | None = None
        self.last_rate_limit: RateLimit | None = None
        self.attempts = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r})"
