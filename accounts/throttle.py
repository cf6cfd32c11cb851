"""How sign-in attempts are throttled: django-axes, told which browsers are known.

Axes counts failed sign-ins for the account from all addresses together (and for its
(account, address) pair): after AXES_FAILURE_LIMIT of them in AXES_COOLOFF_TIME, signing in to
the account is paused, the right password included. The pause ends AXES_COOLOFF_TIME after the
last failed attempt; attempts during it start it again, so it lasts as long as the guessing.

A browser that has signed in to the account before (or reset its password from the emailed
link) carries a signed "known device" cookie: a random id for the browser and a keyed digest
per account, never the address. Axes leaves such a browser alone (AXES_WHITELIST_CALLABLE), so
a stranger's guesses never pause the owner there; its own failures are counted in the cache,
per browser and account, and after AXES_FAILURE_LIMIT of them it is treated like any other
browser until AXES_COOLOFF_TIME has passed without one.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import salted_hmac

from accounts.forms import axes_username

KNOWN_DEVICE_COOKIE = "tablero_known_device"
KNOWN_DEVICE_SALT = "accounts.throttle.known_device"
KNOWN_DEVICE_MAX_AGE = timedelta(days=365)
# Accounts one browser is remembered for (people who share a computer, or test accounts).
KNOWN_DEVICE_ACCOUNTS = 5
PAIR = ["username", "ip_address"]


def _account_tag(username: str) -> str:
    return salted_hmac(KNOWN_DEVICE_SALT, username.strip().lower()).hexdigest()[:32]


def _read_cookie(request: HttpRequest) -> tuple[str, list[str]]:
    """(the browser's id, the tags of the accounts it knows); ("", []) without a valid one."""
    value = request.get_signed_cookie(
        KNOWN_DEVICE_COOKIE, default="", salt=KNOWN_DEVICE_SALT, max_age=KNOWN_DEVICE_MAX_AGE
    )
    device, *tags = value.split() or [""]
    return device, tags[:KNOWN_DEVICE_ACCOUNTS]


def _failures_key(request, credentials: dict | None = None) -> str | None:
    """The cache key of this known browser's failures for the account being signed in to;
    None when the browser is not known to it."""
    if not isinstance(request, HttpRequest):
        return None
    username = axes_username(request, credentials)
    if not username:
        return None
    device, tags = _read_cookie(request)
    tag = _account_tag(username)
    return f"accounts:known_device_failures:{device}:{tag}" if device and tag in tags else None


def remember_device(request: HttpRequest, response: HttpResponse, username: str) -> None:
    """Mark this browser as known for `username` (it proved the password or the email)."""
    key = _failures_key(request, {"username": username})
    if key is not None:
        cache.delete(key)
    device, tags = _read_cookie(request)
    tag = _account_tag(username)
    tags = [tag] + [known for known in tags if known != tag]
    response.set_signed_cookie(
        KNOWN_DEVICE_COOKIE,
        " ".join([device or secrets.token_urlsafe(16), *tags[:KNOWN_DEVICE_ACCOUNTS]]),
        salt=KNOWN_DEVICE_SALT,
        max_age=int(KNOWN_DEVICE_MAX_AGE.total_seconds()),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def is_trusted_device(request, credentials: dict | None = None) -> bool:
    """AXES_WHITELIST_CALLABLE: a browser known to the account, below its own failure limit."""
    key = _failures_key(request, credentials)
    return key is not None and (cache.get(key) or 0) < settings.AXES_FAILURE_LIMIT


def count_known_device_failure(sender, credentials=None, request=None, **kwargs) -> None:
    """Django's user_login_failed: count a known browser's failure (axes does not)."""
    key = _failures_key(request, credentials)
    if key is None:
        return
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    if not cache.add(key, 1, seconds):
        try:
            cache.incr(key)
        except ValueError:  # expired in between
            cache.add(key, 1, seconds)
    cache.touch(key, seconds)  # the window restarts with each failure


def lockout_parameters(request, credentials: dict | None = None) -> list:
    """AXES_LOCKOUT_PARAMETERS: the account from every address, and the (account, address)
    pair. For a trusted browser (never paused) the pair only, so that its sign-in clears no
    more than its own address's failures."""
    if is_trusted_device(request, credentials):
        return [PAIR]
    return [PAIR, "username"]
