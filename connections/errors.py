"""The one error type for everything that goes wrong talking to a provider.

`connections.client` raises `ProviderError` for every failure; the error catalogue
(`connections.explanations`) turns its `kind` into a title, cause and next step in the user's
language. Nothing here ever holds a key.
"""

from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID_KEY = "invalid_key"  # 401: wrong, revoked, or not a member of the organization
    PERMISSION_DENIED = "permission_denied"  # 403: region unsupported, project lacks access
    MODEL_NOT_FOUND = "model_not_found"  # 404 model_not_found
    NOT_FOUND = "not_found"  # any other 404 (or 410)
    BAD_REQUEST = "bad_request"  # any other 4xx: the request itself was refused
    RATE_LIMITED = "rate_limited"  # 429 rate_limit_exceeded: retry after Retry-After
    QUOTA_EXHAUSTED = "quota_exhausted"  # 429 insufficient_quota & friends: never retried
    OVERLOADED = "overloaded"  # 503 server_is_overloaded, old 429 "engine ... overloaded"
    SERVER_ERROR = "server_error"  # 500 and other 5xx
    TIMEOUT = "timeout"  # no answer in time
    UNREACHABLE = "unreachable"  # DNS, refused connection, TLS failure
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
    }
)


class ProviderError(Exception):
    """A failed call to the provider, classified.

    `message` is the provider's own message with anything that looks like a key masked;
    it is shown to admins only, next to the catalogue's explanation.
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

    @property
    def permanent(self) -> bool:
        return self.kind not in TRANSIENT_KINDS

    def __repr__(self) -> str:
        return (
            f"ProviderError(kind={self.kind.value!r}, status={self.status!r}, "
            f"code={self.code!r}, request_id={self.request_id!r})"
        )
