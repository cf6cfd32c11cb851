"""The sync client: the only code that speaks HTTP to a provider from a page or a command.

One pooled ``httpx.Client`` per process and URL guard (`provider.pool`), whose connections go
through the SSRF guard's network backend; explicit timeouts, and one deadline per call that
every attempt, wait and byte of the answer keeps; no redirects; at most a few retries, and only
where another attempt can help and cannot run something twice (`provider.policy`); every
failure raised as a classified `ProviderError` with the provider's message, keys masked. It
knows nothing of any database or web request: callers hand it an `Endpoint` with the
decrypted key (and the `URLGuard` their operator configured) and store what it returns.

Everything the provider sends back is untrusted (a provider or a proxy may echo the key
anywhere): the connection's keys are masked in every string of every answer
(`provider.secrets`, `provider.jsonread`); an error's code, type and param and the
x-request-id are kept only when they have the shape of one and hide nothing, and a
rate-limit header only when it is a count or a duration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from provider import attempt as attempts
from provider import body, policy
from provider.answer import Answer
from provider.base import ClientBase
from provider.endpoint import Endpoint, request_headers, request_params, request_url
from provider.errors import ErrorKind, ProviderError
from provider.models import model_path, parse_model, parse_model_list
from provider.pool import CALL_DEADLINE, shared_http_client
from provider.urlguard import URLGuard

__all__ = ["ProviderClient"]


class ProviderClient(ClientBase):
    """Calls one endpoint. `transport` gives it a private client (tests); else the shared one
    for its `guard` (the base URLs and addresses it may call; by default public https only).

    `deadline` is the most seconds one `request` takes in all, retries and waits included
    (`policy.DEFAULT_DEADLINE`). `extra_headers` go with every request (per request too, as
    `request(extra_headers=)`); they never replace the key or organization headers. Tests use
    them for Prism's `Prefer`.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        guard: URLGuard | None = None,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
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
        self._http = (
            httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
            if transport is not None
            else None
        )

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
        url = request_url(self.endpoint, path, guard=self.guard)
        headers = request_headers(
            self.endpoint, beta=beta, extra_headers={**self.extra_headers, **(extra_headers or {})}
        )
        query = request_params(self.endpoint, params)
        plan = policy.CallPlan(method, seconds=self.deadline, max_retries=self.max_retries)
        while True:
            self.attempts = plan.next_attempt()
            started = time.monotonic()
            outcome = self._attempt(
                method, url, headers=headers, params=query, json=json, deadline=plan.deadline
            )
            attempts.log(method, url, outcome, plan.attempt, time.monotonic() - started)
            if outcome.status is not None:
                self.last_request_id = outcome.request_id
                self.last_rate_limit = outcome.rate_limit
            if outcome.answer is not None:
                return outcome.answer
            assert outcome.error is not None
            self._sleep(plan.after_failure(outcome.error, unsent=outcome.unsent))

    # -- typed calls ---------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """The models this key may use (GET /models), each an object with a string id."""
        return parse_model_list(self.request("GET", "/models"))

    def retrieve_model(self, model_id: str) -> dict[str, Any]:
        """One model (GET /models/{id}); ProviderError MODEL_NOT_FOUND when it does not exist."""
        return parse_model(self.request("GET", model_path(model_id)))

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _attempt(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: dict[str, Any],
        json: Any,
        deadline: float,
    ) -> attempts.Attempt:
        """One attempt, over by `deadline` (a `time.monotonic()` value) whatever happens."""
        http = self._http or shared_http_client(self.guard)
        secrets = self.endpoint.secrets
        now = time.monotonic()
        if now >= deadline:
            return attempts.Attempt(error=ProviderError(ErrorKind.TIMEOUT), unsent=True)
        answer_by = min(deadline, now + body.MAX_ANSWER_SECONDS)
        try:
            request = http.build_request(
                method,
                url,
                headers=headers,
                params=params or None,
                json=json,
                timeout=policy.bounded_timeout(self.timeout, deadline - now),
            )
        except (*attempts.UNSENDABLE, ValueError) as exc:
            # ValueError: a body with NaN or a lone surrogate, which JSON cannot carry.
            return attempts.Attempt(error=attempts.unsendable(exc, secrets), unsent=True)
        token = CALL_DEADLINE.set(deadline)
        try:
            response = http.send(request, stream=True, follow_redirects=False)
            try:
                content = body.read_limited(response, deadline=answer_by)
            finally:
                response.close()
            return attempts.interpret(response, content, secrets)
        except attempts.FAILURES as exc:
            return attempts.failed(exc, secrets)
        finally:
            CALL_DEADLINE.reset(token)
