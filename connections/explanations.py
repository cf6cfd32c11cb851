"""The error catalogue: what each kind of provider failure means and what to do next.

Used wherever a provider error is shown (`{% explain_error error %}` from
`connections_tags`). Titles and sentences are translatable; `help_url` points at the
provider's own article where one exists, and `operator_doc` names the section of Tablero's
README instead when only the people running Tablero can fix it (the provider's pages know
nothing of Tablero's encryption keys or allowed hosts). When the provider asked for a wait
(`Retry-After`) longer than Tablero keeps a page waiting, the next step says how long.
"""

import math
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from lib.severity import Severity
from provider.errors import TRANSIENT_KINDS, ErrorKind, ProviderError

ERROR_CODES_GUIDE = "https://platform.openai.com/docs/guides/error-codes"
# Sections of Tablero's README (the operator's documentation), by their heading: not
# translated, as the README is written in English and the reader looks for that heading.
README_KEY_ROTATION = "Rotating the encryption keys"
README_CONFIGURATION = "Configuration"
# Kinds only the operator can settle: they point at the README, not at the provider.
OPERATOR_DOCS = {
    ErrorKind.KEY_UNREADABLE: README_KEY_ROTATION,
    ErrorKind.URL_REFUSED: README_CONFIGURATION,
}
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
HELP_LITELLM_KEYS = "https://docs.litellm.ai/docs/proxy/virtual_keys"


# Kinds whose fix is the connection's (its key, organization, credit, URL): only an admin can
# act, so a viewer or member is told whom to ask instead of what to change.
ADMIN_FIXES = frozenset(
    {
        ErrorKind.INVALID_KEY,
        ErrorKind.NO_ORGANIZATION,
        ErrorKind.WRONG_ORGANIZATION,
        ErrorKind.IP_NOT_ALLOWED,
        ErrorKind.PROXY_MISCONFIGURED,
        ErrorKind.PERMISSION_DENIED,
        ErrorKind.QUOTA_EXHAUSTED,
        ErrorKind.URL_REFUSED,
        ErrorKind.KEY_UNREADABLE,
    }
)


def needs_admin(kind: ErrorKind | str) -> bool:
    return kind in ADMIN_FIXES


@dataclass(frozen=True)
class Explanation:
    kind: ErrorKind
    title: str | Promise
    cause: str | Promise
    next_step: str | Promise
    help_url: str  # "" when the provider's pages do not cover it (see operator_doc)
    severity: Severity  # DANGER (someone must act) or WARN (may pass on its own)
    operator_doc: str | Promise = ""  # a section of Tablero's README, for the operator


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
    ErrorKind.NO_ORGANIZATION: (
        _("The key's account belongs to no organization (401)"),
        _(
            "The provider says: “You must be a member of an organization to use the API.” "
            "The key is not the problem: the account it was made with has left its "
            "organization or was removed from it."
        ),
        _(
            "Ask an owner of the organization on the provider's platform to invite that "
            "account again, or create a key with an account that is a member, and replace "
            "the key of this connection."
        ),
        HELP_401,
    ),
    ErrorKind.WRONG_ORGANIZATION: (
        _("Wrong organization ID (401)"),
        _(
            "The organization ID set on this connection does not exist, or the key does not "
            "belong to that organization."
        ),
        _(
            "Edit the connection and correct the organization ID (it starts with “org-” and "
            "is shown in the provider's organization settings), or leave it empty to use the "
            "key's default organization."
        ),
        HELP_401,
    ),
    ErrorKind.IP_NOT_ALLOWED: (
        _("This server's IP address is not allowed"),
        _(
            "The provider only accepts this key from listed IP addresses, and the address "
            "Tablero's server calls from is not on the list. The key itself is valid."
        ),
        _(
            "Ask an owner of the organization to add this server's outgoing IP address to "
            "the allowed IP addresses in the provider's security settings, or to lift the "
            "restriction for this project."
        ),
        ERROR_CODES_GUIDE,
    ),
    ErrorKind.PROXY_MISCONFIGURED: (
        _("The proxy in front of the provider is misconfigured"),
        _(
            "The base URL points at a proxy (such as LiteLLM) that refused the request "
            "because of its own setup, not because of the key: for example it has no "
            "database connected, and without one it accepts only its master key."
        ),
        _(
            "Ask whoever runs the proxy to connect its database (so that its keys work) or "
            "to give you a key it accepts, then test the connection again."
        ),
        HELP_LITELLM_KEYS,
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
        _("The provider is overloaded"),
        _(
            "The provider (or this model) has too many requests from everyone right now. "
            "This is on the provider's side, not a problem with your key or your settings."
        ),
        _(
            "Try again later, in a few minutes. Tablero already retried a few times, as "
            "long as the page could wait."
        ),
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
        _("The provider is slow"),
        _(
            "The provider did not answer in time. Tablero stops waiting after a few seconds, "
            "retries included, so that a page never hangs on a slow provider."
        ),
        _(
            "Try again in a moment. If it keeps happening, the provider is overloaded or the "
            "network path to it is blocked: check its status page and the base URL."
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
    ErrorKind.CONNECTION_DROPPED: (
        _("The connection was dropped"),
        _(
            "Tablero reached the provider, but the connection was closed or reset before the "
            "whole answer arrived: the provider, a proxy or a firewall on the way cut it."
        ),
        _(
            "Try again. If it keeps happening, check the provider's status page and any "
            "proxy or firewall between this server and the provider."
        ),
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
        "",
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
        "",
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


def describe_wait(seconds: float) -> str:
    """A wait in words, rounded up: "45 seconds", "2 minutes", "3 hours"."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 60:
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    hours = math.ceil(minutes / 60)
    return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}


def explain(kind: ErrorKind | str, *, retry_after: float | None = None) -> Explanation:
    """The catalogue entry for `kind`. Unknown kinds raise ValueError.

    `retry_after` (seconds, from the provider's Retry-After) adds the wait to the next step
    of a failure that may pass on its own.
    """
    kind = ErrorKind(kind)
    title, cause, next_step, help_url = _CATALOGUE[kind]
    severity = Severity.WARN if kind in TRANSIENT_KINDS else Severity.DANGER
    if retry_after and retry_after > 0 and kind in TRANSIENT_KINDS:
        next_step = format_lazy(
            "{} {}",
            format_lazy(_("The provider asks to wait {} before trying again."), _Wait(retry_after)),
            next_step,
        )
    return Explanation(
        kind, title, cause, next_step, help_url, severity, OPERATOR_DOCS.get(kind, "")
    )


def problem(error: ProviderError) -> str:
    """A one-line summary for a message: the title, and the wait the provider asked for."""
    entry = explain(error.kind)
    if error.retry_after and error.retry_after > 0 and error.kind in TRANSIENT_KINDS:
        return gettext("%(title)s; the provider asks to wait %(wait)s") % {
            "title": entry.title,
            "wait": describe_wait(error.retry_after),
        }
    return str(entry.title)


class _Wait:
    """`describe_wait` in the language active when the text is rendered."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __str__(self) -> str:
        return describe_wait(self.seconds)
