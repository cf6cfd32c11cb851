"""The error catalogue: what each kind of provider failure means and what to do next.

Used wherever a provider error is shown (`{% explain_error error %}` from
`connections_tags`). Titles and sentences are translatable; `help_url` points at the
provider's own article where one exists.
"""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from connections.errors import TRANSIENT_KINDS, ErrorKind

ERROR_CODES_GUIDE = "https://platform.openai.com/docs/guides/error-codes"
HELP_401 = "https://help.openai.com/en/articles/6891767-error-code-401-invalid-authentication"
HELP_RATE_LIMIT = (
    "https://help.openai.com/en/articles/6891829-error-code-429-rate-limit-reached-for-requests"
)
HELP_QUOTA = (
    "https://help.openai.com/en/articles/6891831-error-code-429-you-exceeded-your-current-quota"
    "-please-check-your-plan-and-billing-details"
)
HELP_OVERLOADED = (
    "https://help.openai.com/en/articles/6891834-error-code-429-the-engine-is-currently"
    "-overloaded-please-try-again-later"
)


@dataclass(frozen=True)
class Explanation:
    kind: ErrorKind
    title: str | Promise
    cause: str | Promise
    next_step: str | Promise
    help_url: str
    severity: str  # "danger" (someone must act) or "warn" (may pass on its own)


_CATALOGUE: dict[ErrorKind, tuple[Promise, Promise, Promise, str]] = {
    ErrorKind.INVALID_KEY: (
        _("Invalid authentication (401)"),
        _(
            "The provider rejected the API key: it is mistyped, it was revoked, or the "
            "account it belongs to is not a member of the organization given."
        ),
        _(
            "Create a new secret key on the provider's API keys page and replace the key of "
            "this connection. If an organization ID is set, check that it is the right one."
        ),
        HELP_401,
    ),
    ErrorKind.PERMISSION_DENIED: (
        _("Access denied (403)"),
        _(
            "The key is valid but may not do this: the country or region is not supported, "
            "or the key's project has no access to this model or endpoint."
        ),
        _(
            "Check the project's permissions and allowed models on the provider's dashboard, "
            "or use a key from a project that has access."
        ),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.MODEL_NOT_FOUND: (
        _("The model does not exist (404)"),
        _("The provider does not know this model, or this key's organization has no access to it."),
        _(
            "Pick a model from this connection's model list. If you need this model, check "
            "that your organization has been given access to it."
        ),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.NOT_FOUND: (
        _("Not found (404)"),
        _(
            "The provider has no such object: it was deleted, or the base URL does not point "
            "at an OpenAI-compatible API (it usually ends in /v1)."
        ),
        _(
            "Check the connection's base URL. If the object was removed on the provider, "
            "remove it here too."
        ),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.BAD_REQUEST: (
        _("Request refused"),
        _("The provider refused the request as invalid."),
        _("Read the provider's message, check the model and the settings used, then try again."),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.RATE_LIMITED: (
        _("Rate limit reached (429)"),
        _(
            "Too many requests or tokens were sent in a short time for this key's "
            "organization or project."
        ),
        _(
            "Wait a moment and try again. If it keeps happening, send less traffic through "
            "this connection or ask the provider for higher limits."
        ),
        HELP_RATE_LIMIT,
    ),
    ErrorKind.QUOTA_EXHAUSTED: (
        _("You exceeded your current quota (429)"),
        _(
            "The provider says: “You exceeded your current quota, please check your plan and "
            "billing details.” The account has no credit left or reached its spending limit."
        ),
        _(
            "Add credit or raise the spending limit in the billing settings on "
            "platform.openai.com, then test the connection again."
        ),
        HELP_QUOTA,
    ),
    ErrorKind.OVERLOADED: (
        _("The engine is currently overloaded"),
        _(
            "The provider has too many requests from everyone right now. This is on the "
            "provider's side, not a problem with your key."
        ),
        _("Try again later. Tablero retries such failures a few times on its own."),
        HELP_OVERLOADED,
    ),
    ErrorKind.SERVER_ERROR: (
        _("The provider had an error (5xx)"),
        _("The provider failed while handling the request."),
        _(
            "Try again in a moment. If it persists, check the provider's status page and "
            "give their support the request ID."
        ),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.TIMEOUT: (
        _("No answer in time"),
        _("The provider did not answer within the time limit."),
        _(
            "Try again. If it keeps happening, the provider may be slow or the network path "
            "to it may be blocked."
        ),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.UNREACHABLE: (
        _("Provider unreachable"),
        _(
            "Tablero could not connect: the host name does not resolve, the connection was "
            "refused, or the secure connection failed."
        ),
        _("Check the base URL and that this server can reach it, then test the connection again."),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.BAD_RESPONSE: (
        _("Unexpected answer from the provider"),
        _(
            "The server answered, but not with what an OpenAI-compatible API sends. The base "
            "URL may point at a web page or a proxy."
        ),
        _("Check the base URL (it usually ends in /v1), then test the connection again."),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.URL_REFUSED: (
        _("Base URL not allowed"),
        _(
            "For safety Tablero only connects to public https addresses. This URL uses plain "
            "http, carries a user name or password, or points at a private or local address."
        ),
        _(
            "Use the provider's public https:// address. An operator can allow a local server "
            "with the TABLERO_ALLOWED_UPSTREAM_HOSTS setting."
        ),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.KEY_UNREADABLE: (
        _("The stored key can't be read"),
        _(
            "The stored key can't be decrypted with the current encryption keys: they were "
            "changed or one was removed."
        ),
        _(
            "Enter the key again with “Replace key”. An operator can list every affected "
            "connection with the check_secrets command."
        ),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.INCONSISTENT_ANSWER: (
        _("Inconsistent answer from the provider"),
        _(
            "The provider's answer contradicted itself: it sent the same page again, or kept "
            "announcing more pages than the request can have. The figures would be counted "
            "twice or incomplete, so Tablero shows none. The base URL is not the cause."
        ),
        _("Try again later. If it keeps happening, report it to the provider with the request ID."),
        ERROR_CODES_GUIDE,
    ),
}


def explain(kind: ErrorKind | str) -> Explanation:
    """The catalogue entry for `kind`. Unknown kinds raise ValueError."""
    kind = ErrorKind(kind)
    title, cause, next_step, help_url = _CATALOGUE[kind]
    severity = "warn" if kind in TRANSIENT_KINDS else "danger"
    return Explanation(kind, title, cause, next_step, help_url, severity)
