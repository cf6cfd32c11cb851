"""The SSRF guard (`provider.urlguard`) as this site configures it: the hosts its operator
allows (``settings.TABLERO_ALLOWED_UPSTREAM_HOSTS``, exact names or addresses, each optionally
with ``:port`` to allow that port only) and the reasons of a refusal in the user's language.
"""

from django.conf import settings
from django.utils.functional import Promise, lazy
from django.utils.translation import gettext_lazy as _

from provider.urlguard import Refusal, URLGuard

REFUSALS = {
    Refusal.EMPTY: _("Enter the provider's base URL."),
    Refusal.BAD_CHARACTERS: _("The URL contains spaces, backslashes or control characters."),
    Refusal.NOT_HTTPS: _("The URL must start with https://."),
    Refusal.INVALID: _("This is not a valid URL."),
    Refusal.CREDENTIALS: _("The URL must not contain a user name or password."),
    Refusal.NO_HOST: _("The URL has no host name."),
    Refusal.BAD_PORT: _("The port must be between 1 and 65535."),
    Refusal.QUERY: _("A base URL has no query string or fragment (no ? or #)."),
    Refusal.LOCAL_NAME: _("%(host)s is a local name, not a public host."),
    Refusal.NUMERIC_HOST: _("Write an IP address as four decimal numbers, or use a host name."),
    Refusal.NO_ADDRESS: _("The host name %(host)s has no address."),
    Refusal.PRIVATE_ADDRESS: _(
        "%(host)s leads to a private, local or reserved network address; "
        "Tablero only calls public addresses unless an operator allows the host."
    ),
    Refusal.UNIX_SOCKET: _("Tablero does not connect to local sockets."),
}


def refusal_reason(refusal: Refusal, host: str) -> Promise:
    """Why a URL is refused, still lazy: translated when shown, not when raised."""
    message = REFUSALS[refusal]
    if "%(host)s" not in str(REFUSALS[refusal]):
        return message
    return lazy(lambda: str(message) % {"host": host}, str)()


def url_guard() -> URLGuard:
    """The guard for every base URL a connection is saved with and every call it makes."""
    allowed = getattr(settings, "TABLERO_ALLOWED_UPSTREAM_HOSTS", None) or ()
    return URLGuard(allowed_hosts=tuple(allowed), wording=refusal_reason)
