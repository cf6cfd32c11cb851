"""The one error type for everything that goes wrong talking to a provider, and `classify`,
which names the kind of a failed answer.

The clients (`provider.client`, `provider.aclient`) raise `ProviderError` for every failure;
an application turns its `kind` into words for its users (Tablero: `connections.explanations`).
Nothing here ever holds a key.
"""

import re
from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID_KEY = "invalid_key"  # 401: wrong or revoked key
    NO_ORGANIZATION = "no_organization"  # 401: the key's account belongs to no organization
    WRONG_ORGANIZATION = "wrong_organization"  # 401: the organization ID is not the key's
    IP_NOT_ALLOWED = "ip_not_allowed"  # 401/403: this server's address is not on the allowlist
    PROXY_MISCONFIGURED = "proxy_misconfigured"  # a proxy's own setup fails ("No connected db")
    PERMISSION_DENIED = "permission_denied"  # 403: region unsupported, project lacks access
    MODEL_NOT_FOUND = "model_not_found"  # 404 model_not_found
    NOT_FOUND = "not_found"  # any other 404 (or 410)
    BAD_REQUEST = "bad_request"  # any other 4xx: the request itself was refused
    RATE_LIMITED = "rate_limited"  # 429 rate_limit_exceeded: retry after Retry-After
    QUOTA_EXHAUSTED = "quota_exhausted"  # 429 insufficient_quota & friends: never retried
    OVERLOADED = "overloaded"  # 503 server_is_overloaded / "Slow Down", 529, 429 "overloaded"
    SERVER_ERROR = "server_error"  # 500 and other 5xx
    TIMEOUT = "timeout"  # no (complete) answer before the call's deadline
    UNREACHABLE = "unreachable"  # DNS, refused connection, TLS failure
    CONNECTION_DROPPED = "connection_dropped"  # connected, then closed or reset mid-answer
    BAD_RESPONSE = "bad_response"  # not JSON, or not the shape the spec gives
    URL_REFUSED = "url_refused"  # the base URL is not allowed (SSRF guard)
    KEY_UNREADABLE = "key_unreadable"  # the stored key does not decrypt: enter it again
    # well-formed pages that contradict each other (a page cursor sent twice, endless pages)
    INCONSISTENT_ANSWER = "inconsistent_answer"


# Kinds that another attempt may cure. Everything else is permanent until someone acts.
TRANSIENT_KINDS = frozenset(
    {
        ErrorKind.RATE_LIMITED,
        ErrorKind.OVERLOADED,
        ErrorKind.SERVER_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.UNREACHABLE,
        ErrorKind.CONNECTION_DROPPED,
    }
)


class ProviderError(Exception):
    """A failed call to the provider, classified.

    `message` is the provider's own message with anything that looks like a key masked;
    it is shown to admins only, next to the catalogue's explanation. `retry_after` is the wait
    the provider asked for (seconds), `should_retry` its ``x-should-retry`` header (None when
    it sent none).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str = "",
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message or kind.value)
        self.kind = ErrorKind(kind)
        self.message = message
        self.status = status
        self.code = code
        self.error_type = error_type
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.should_retry = should_retry

    @property
    def permanent(self) -> bool:
        return self.kind not in TRANSIENT_KINDS

    def __repr__(self) -> str:
        return (
            f"ProviderError(kind={self.kind.value!r}, status={self.status!r}, "
            f"code={self.code!r}, request_id={self.request_id!r})"
        )


_QUOTA_CODES = frozenset(
    {"insufficient_quota", "credit_balance_exhausted", "billing_hard_limit_reached"}
)
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
