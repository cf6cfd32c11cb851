"""Which run API a server offers: the Assistants API, the Responses API, or neither.

A question about the server, asked with a client (`detect_run_api(client, previous=...)`);
the answer says which API to use and why (a `Reason`), and what the Assistants API answered.
The application stores it on the connection; the run backends read it from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from provider.answer import Requester
from provider.errors import ErrorKind, ProviderError

__all__ = [
    "ASSISTANTS",
    "ASSISTANTS_BETA",
    "RESPONSES",
    "Reason",
    "RunApiDetection",
    "detect_run_api",
    "says_not_offered",
]

ASSISTANTS_BETA = "assistants=v2"
# The two run APIs, by the names a connection stores.
ASSISTANTS = "assistants"
RESPONSES = "responses"


class Reason(StrEnum):
    """Why a detection ended as it did (the values a connection stores; Tablero words them
    in `connections.models.RunApiReason`)."""

    ASSISTANTS_ANSWERED = "assistants_answered"
    ASSISTANTS_NOT_OFFERED = "assistants_not_offered"
    ASSISTANTS_FAILED = "assistants_failed"
    RESPONSES_ASSUMED = "responses_assumed"
    NEITHER = "neither"
    PENDING = "pending"


# A response id that no server has: asking for it costs nothing and creates nothing. A server
# with the Responses API says it does not know that response; one without says it does not
# know the path.
RESPONSES_PROBE_ID = "resp_" + "0" * 48

# Words a server (or a proxy such as LiteLLM, which answers 500 or 400) uses to say that it
# does not offer an API at all, rather than that it failed this time.
_NOT_OFFERED = re.compile(
    r"not (?:yet )?(?:supported|implemented)|unsupported|does(?: not|n't) support"
    r"|no support for|unknown url|invalid url|unrecognized request url"
    r"|no such (?:route|endpoint|path)|custom_llm_provider'? must be set",
    re.IGNORECASE,
)
_ROUTE_MISSING = re.compile(
    r"invalid url|unknown url|unrecognized request url|no route|route not found"
    r"|no such (?:route|endpoint|path)",
    re.IGNORECASE,
)
_NO_SUCH_RESPONSE = re.compile(
    r"\bresponse\b.*\bnot found\b|\bno response\b|\bresponse_id\b", re.IGNORECASE
)
# Statuses that say the path is not served (401 and 403 after a check whose key worked: not
# to this key).
_ABSENT_STATUSES = frozenset({401, 403, 404, 405, 410, 501})
# Failures that say nothing about the API being there: another try may answer.
_UNCLEAR_KINDS = frozenset(
    {
        ErrorKind.TIMEOUT,
        ErrorKind.UNREACHABLE,
        ErrorKind.CONNECTION_DROPPED,
        ErrorKind.RATE_LIMITED,
        ErrorKind.OVERLOADED,
        ErrorKind.QUOTA_EXHAUSTED,
        ErrorKind.KEY_UNREADABLE,
    }
)


class ProbeOutcome(StrEnum):
    ANSWERED = "answered"  # the API is there
    ABSENT = "absent"  # the server does not offer it (to this key)
    UNCLEAR = "unclear"  # a failure that says neither (timeout, 429, a plain 500, ...)


@dataclass(frozen=True)
class ApiProbe:
    outcome: ProbeOutcome
    status: int | None = None  # the HTTP status of the answer, None without one


@dataclass(frozen=True)
class RunApiDetection:
    """What to note on a connection: the run API to use (None: keep the one noted before),
    why, and what the Assistants API answered (HTTP status or None)."""

    api: str | None
    reason: Reason
    status: int | None = None


def says_not_offered(error: ProviderError) -> bool:
    """Whether a failed call means the server does not offer the API at all: 404, 405, 410,
    501, or a 400 or 5xx whose message says the route or the provider is not supported."""
    if error.status in (404, 405, 410, 501):
        return True
    if error.status is None or not (error.status in (400, 422) or error.status >= 500):
        return False
    code = (error.code or "").lower()
    return (
        code in ("unknown_url", "not_implemented", "not_supported")
        or "unsupported" in code
        or bool(_NOT_OFFERED.search(error.message or ""))
    )


def _failure_outcome(error: ProviderError) -> ProbeOutcome:
    if error.kind in _UNCLEAR_KINDS:
        return ProbeOutcome.UNCLEAR
    if error.status in _ABSENT_STATUSES or says_not_offered(error):
        return ProbeOutcome.ABSENT
    if error.kind == ErrorKind.BAD_RESPONSE and error.status is not None:
        return ProbeOutcome.ABSENT  # a redirect, or a page that is not JSON: no API there
    return ProbeOutcome.UNCLEAR


def _probe_assistants(client: Requester) -> ApiProbe:
    try:
        answer = client.request("GET", "/assistants", params={"limit": 1}, beta=ASSISTANTS_BETA)
    except ProviderError as error:
        return ApiProbe(_failure_outcome(error), error.status)
    data = answer.data
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return ApiProbe(ProbeOutcome.ANSWERED, answer.status)
    # Something answers every path (a catch-all page): not the Assistants API.
    return ApiProbe(ProbeOutcome.ABSENT, answer.status)


def _probe_responses(client: Requester) -> ApiProbe:
    """GET /responses/{an id that does not exist}: the spec's read-only call, which creates
    (and costs) nothing. A server with the Responses API answers that it has no such response
    (404, or a 400 or 500 that says so, as LiteLLM may); one without does not know the path."""
    try:
        answer = client.request("GET", f"/responses/{RESPONSES_PROBE_ID}")
    except ProviderError as error:
        message = error.message or ""
        if (
            error.status is not None
            and error.status >= 400
            and not _ROUTE_MISSING.search(message)
            and (error.code or "").lower() != "unknown_url"
            and (RESPONSES_PROBE_ID in message or _NO_SUCH_RESPONSE.search(message))
        ):
            return ApiProbe(ProbeOutcome.ANSWERED, error.status)
        return ApiProbe(_failure_outcome(error), error.status)
    data = answer.data
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        return ApiProbe(ProbeOutcome.ANSWERED, answer.status)
    return ApiProbe(ProbeOutcome.ABSENT, answer.status)


def detect_run_api(client: Requester, *, previous: str = "") -> RunApiDetection:
    """Which run API the server offers, and why, asking as little as possible.

    The Assistants API first (`GET /assistants?limit=1`): where it answers it is used (remote
    assistants live there). Otherwise the Responses API is asked about a response that does
    not exist (see `_probe_responses`), and:

    - Assistants not offered (404, 405, 501, "not supported" ...), Responses answers:
      Responses. Responses unclear: Responses, assumed. Responses absent too: neither.
    - Assistants failed in a way that says nothing (timeout, 429, a plain 500): Responses when
      it answers, unless the connection already uses the Assistants API (`previous`), which a
      passing failure does not change; then, as when nothing is clear, the detection is
      pending and the previous one is kept (`api` None). Never a silent fall back to the
      Assistants API."""
    assistants = _probe_assistants(client)
    if assistants.outcome == ProbeOutcome.ANSWERED:
        return RunApiDetection(ASSISTANTS, Reason.ASSISTANTS_ANSWERED, None)
    responses = _probe_responses(client)
    status = assistants.status
    if assistants.outcome == ProbeOutcome.ABSENT:
        if responses.outcome == ProbeOutcome.ANSWERED:
            return RunApiDetection(RESPONSES, Reason.ASSISTANTS_NOT_OFFERED, status)
        if responses.outcome == ProbeOutcome.UNCLEAR:
            return RunApiDetection(RESPONSES, Reason.RESPONSES_ASSUMED, status)
        return RunApiDetection(None, Reason.NEITHER, status)
    if responses.outcome == ProbeOutcome.ANSWERED and previous != ASSISTANTS:
        return RunApiDetection(RESPONSES, Reason.ASSISTANTS_FAILED, status)
    return RunApiDetection(None, Reason.PENDING, status)
