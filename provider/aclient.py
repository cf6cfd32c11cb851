"""The async twin of `provider.client.ProviderClient`, on an `httpx.AsyncClient`.

The same policy (`provider.policy.CallPlan`: deadline, retries, backoff, Retry-After,
x-should-retry), the same classification and masking (`provider.attempt`) and the same body
limits (`provider.body`); only the waiting is async. The deadline is kept by cancelling an
attempt when its time is up. `stream` hands a successful answer over unread, for a gateway
that passes it through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from provider import attempt as attempts
from provider import body, policy
from provider.answer import Answer
from provider.base import ClientBase
from provider.endpoint import Endpoint, request_headers, request_params, request_url
from provider.errors import ErrorKind, ProviderError
from provider.models import model_path, parse_model, parse_model_list
from provider.pool import guarded_async_client
from provider.urlguard import URLGuard

__all__ = ["AsyncProviderClient"]


class AsyncProviderClient(ClientBase):
    """Calls one endpoint, asynchronously. `http` is the caller's pooled client (one per event
    loop, from `provider.pool.guarded_async_client`); `transport` gives it a private one
    (tests); without either it makes its own guarded client, closed by `aclose`. The other
    arguments are `ProviderClient`'s."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        guard: URLGuard | None = None,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeout: httpx.Timeout | None = None,
        deadline: float = policy.DEFAULT_DEADLINE,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            endpoint,
            guard=guard,
            max_retries=max_retries,
            timeout=timeout,
            deadline=deadline,
            extra_headers=extra_headers,
        )
        self._sleep = sleep
        self._owned = http is None
        if http is None and transport is not None:
            http = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
        self._http = http or guarded_async_client(self.guard)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        beta: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """`ProviderClient.request`, awaited."""
        method = method.upper()
        request = self._prepare(method, path, json, params, beta, extra_headers)
        plan = policy.CallPlan(method, seconds=self.deadline, max_retries=self.max_retries)
        while True:
            self.attempts = plan.next_attempt()
            started = time.monotonic()
            outcome = await self._attempt(request, deadline=plan.deadline)
            attempts.log(method, request["url"], outcome, plan.attempt, time.monotonic() - started)
            if outcome.status is not None:
                self.last_request_id = outcome.request_id
                self.last_rate_limit = outcome.rate_limit
            if outcome.answer is not None:
                return outcome.answer
            assert outcome.error is not None
            await self._sleep(plan.after_failure(outcome.error, unsent=outcome.unsent))

    async def list_models(self) -> list[dict[str, Any]]:
        return parse_model_list(await self.request("GET", "/models"))

    async def retrieve_model(self, model_id: str) -> dict[str, Any]:
        return parse_model(await self.request("GET", model_path(model_id)))

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        beta: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """One attempt, never retried, whose successful answer is yielded unread (its headers
        arrived within the deadline; the body is the caller's to stream). A failed answer is
        read within the body limits and raised as a classified ProviderError."""
        method = method.upper()
        request = self._prepare(method, path, json, params, beta, extra_headers)
        secrets = self.endpoint.secrets
        deadline = time.monotonic() + self.deadline
        try:
            async with asyncio.timeout(self.deadline):
                response = await self._http.send(
                    self._build(request, deadline), stream=True, follow_redirects=False
                )
        except attempts.FAILURES as exc:
            raise attempts.failed(exc, secrets).error from None
        except TimeoutError:
            raise _no_answer() from None
        try:
            if not 200 <= response.status_code < 300:
                try:
                    outcome = await self._read(response, deadline)
                except attempts.FAILURES as exc:
                    outcome = attempts.failed(exc, secrets)
                assert outcome.error is not None
                raise outcome.error
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncProviderClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- internals -----------------------------------------------------------------------

    def _prepare(
        self,
        method: str,
        path: str,
        json: Any,
        params: Mapping[str, Any] | None,
        beta: str | None,
        extra_headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        return {
            "method": method,
            "url": request_url(self.endpoint, path, guard=self.guard),
            "headers": request_headers(
                self.endpoint,
                beta=beta,
                extra_headers={**self.extra_headers, **(extra_headers or {})},
            ),
            "params": request_params(self.endpoint, params) or None,
            "json": json,
        }

    def _build(self, request: dict[str, Any], deadline: float) -> httpx.Request:
        timeout = policy.bounded_timeout(self.timeout, deadline - time.monotonic())
        return self._http.build_request(**request, timeout=timeout)

    async def _attempt(self, request: dict[str, Any], *, deadline: float) -> attempts.Attempt:
        """One attempt, over by `deadline` (a `time.monotonic()` value) whatever happens."""
        secrets = self.endpoint.secrets
        now = time.monotonic()
        if now >= deadline:
            return attempts.Attempt(error=ProviderError(ErrorKind.TIMEOUT), unsent=True)
        answer_by = min(deadline, now + body.MAX_ANSWER_SECONDS)
        try:
            built = self._build(request, deadline)
        except (*attempts.UNSENDABLE, ValueError) as exc:
            # ValueError: a body with NaN or a lone surrogate, which JSON cannot carry.
            return attempts.Attempt(error=attempts.unsendable(exc, secrets), unsent=True)
        try:
            async with asyncio.timeout(answer_by - now):
                response = await self._http.send(built, stream=True, follow_redirects=False)
                return await self._read(response, answer_by)
        except attempts.FAILURES as exc:
            return attempts.failed(exc, secrets)
        except TimeoutError:
            return attempts.Attempt(error=_no_answer())

    async def _read(self, response: httpx.Response, answer_by: float) -> attempts.Attempt:
        try:
            content = await body.aread_limited(response, deadline=answer_by)
        finally:
            await response.aclose()
        return attempts.interpret(response, content, self.endpoint.secrets)


def _no_answer() -> ProviderError:
    return ProviderError(ErrorKind.TIMEOUT, "The answer did not arrive in time.")
