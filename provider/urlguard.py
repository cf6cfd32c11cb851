"""The SSRF guard: which base URLs a connection may point at, checked twice.

`validate_base_url` runs when an admin saves a connection: https only, no credentials in the
URL, no odd number forms, and no host that is (or resolves to) a loopback, private,
link-local, shared (CGNAT), unique-local, multicast, reserved or otherwise non-public
address. Hosts the operator lists in a `URLGuard`'s `allowed_hosts` (exact names or
addresses, each optionally with ``:port`` to allow that port only) are trusted: they may use
http and private addresses, which is how a local OpenAI-compatible server or the test fake is
reached.

A check at save time is not enough: DNS may answer differently a minute later (rebinding).
So `GuardedBackend`, the network backend of the client's connection pool, resolves the host
itself at every new connection, refuses if any address is forbidden, and connects to the
address it checked; TLS still verifies the certificate against the host name. The client never
follows redirects.

`resolve_host` is the only resolver both use; tests swap it. A refusal (`URLRefused`) names
its `Refusal`; the guard's `wording` (an application's translations) turns it into the reason
shown to the person who typed the URL, English by default.

`AsyncGuardedBackend` is the same guard for an `httpx.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import httpcore
import httpx

from provider.errors import ErrorKind, ProviderError

__all__ = [
    "REFUSALS",
    "AsyncGuardedBackend",
    "AsyncGuardedTransport",
    "GuardedBackend",
    "GuardedTransport",
    "Refusal",
    "URLGuard",
    "URLRefused",
    "is_forbidden_address",
    "resolve_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that mean "this machine" or "this site" whatever DNS says (RFC 6761, RFC 6762,
# RFC 8375, and the cloud metadata conventions).
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# A label made only of digits or 0x-hex: the host is an IPv4 address in some number form.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Not public whatever `ipaddress` of this Python version says (its tables have changed
# between patch releases): "this network", shared (CGNAT), IETF protocol assignments,
# benchmarking, reserved and broadcast.
_ALWAYS_FORBIDDEN = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "240.0.0.0/4",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
    )
)
_SCHEMES = ("http", "https")


class Refusal(StrEnum):
    """Why a base URL is refused (`REFUSALS` words each in English; "%(host)s" is the host)."""

    EMPTY = "empty"
    BAD_CHARACTERS = "bad_characters"
    NOT_HTTPS = "not_https"
    INVALID = "invalid"
    CREDENTIALS = "credentials"
    NO_HOST = "no_host"
    BAD_PORT = "bad_port"
    QUERY = "query"
    LOCAL_NAME = "local_name"
    NUMERIC_HOST = "numeric_host"
    NO_ADDRESS = "no_address"
    PRIVATE_ADDRESS = "private_address"
    UNIX_SOCKET = "unix_socket"


REFUSALS: dict[Refusal, str] = {
    Refusal.EMPTY: "Enter the provider's base URL.",
    Refusal.BAD_CHARACTERS: "The URL contains spaces, backslashes or control characters.",
    Refusal.NOT_HTTPS: "The URL must start with https://.",
    Refusal.INVALID: "This is not a valid URL.",
    Refusal.CREDENTIALS: "The URL must not contain a user name or password.",
    Refusal.NO_HOST: "The URL has no host name.",
    Refusal.BAD_PORT: "The port must be between 1 and 65535.",
    Refusal.QUERY: "A base URL has no query string or fragment (no ? or #).",
    Refusal.LOCAL_NAME: "%(host)s is a local name, not a public host.",
    Refusal.NUMERIC_HOST: "Write an IP address as four decimal numbers, or use a host name.",
    Refusal.NO_ADDRESS: "The host name %(host)s has no address.",
    Refusal.PRIVATE_ADDRESS: (
        "%(host)s leads to a private, local or reserved network address; "
        "Tablero only calls public addresses unless an operator allows the host."
    ),
    Refusal.UNIX_SOCKET: "Tablero does not connect to local sockets.",
}


def english(refusal: Refusal, host: str) -> str:
    """The default wording of a refusal."""
    return REFUSALS[refusal] % {"host": host}


class URLRefused(ProviderError):
    """A base URL Tablero will not call. `.refusal` says why; `.reason` says it in words for
    the person who typed it (what the guard's `wording` made of it: a lazy translation in a
    web application, so it is worded when shown, not when raised)."""

    def __init__(self, refusal: Refusal, host: str = "", *, reason: typing.Any = None) -> None:
        self.refusal = refusal
        self.host = host
        self.reason = reason if reason is not None else english(refusal, host)
        super().__init__(ErrorKind.URL_REFUSED, str(self.reason))


@dataclass(frozen=True)
class URLGuard:
    """The operator's choices for the guard: `allowed_hosts` ("llm.lan", "llm.lan:11434",
    "[::1]:8000" or a bare IPv6 address; without a port, any port of that host), and
    `wording(refusal, host)`, which words a refusal for people (English by default).
    Frozen and hashable: the clients keep one connection pool per guard."""

    allowed_hosts: tuple[str, ...] = ()
    wording: Callable[[Refusal, str], typing.Any] = english

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))

    def refuse(self, refusal: Refusal, host: str = "") -> URLRefused:
        return URLRefused(refusal, host, reason=self.wording(refusal, host))

    def host_is_allowed(self, host: str, port: int | None = None) -> bool:
        """Whether the operator listed `host` (on `port`) in `allowed_hosts`.

        An entry with a port allows that port only, so allowing a local model server does not
        open the other services of the same machine; `port=None` matches entries without one.
        """
        wanted = _normalise_host(host)
        if not wanted:
            return False
        for entry in self.allowed_hosts:
            entry_host, entry_port = _allowed_entry(entry)
            if entry_host == wanted and (entry_port is None or entry_port == port):
                return True
        return False

    def validate_base_url(self, url: str, *, resolve: bool = True) -> str:
        """The normalised base URL (no trailing slash), or URLRefused saying why not.

        With `resolve` (the default) the host's current addresses are checked too. A name
        that does not resolve now is accepted: it cannot lead anywhere yet, the connect-time
        check applies when it does, and the connection test then reports it unreachable.
        """
        parsed, host, allowed = _static_checks(url, self)
        if resolve and not allowed and _literal_address(host) is None:
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            try:
                addresses = resolve_host(host, port)
            except (OSError, UnicodeError):
                addresses = None
            if addresses is not None:
                _check_addresses(host, addresses, self)
        return str(parsed).rstrip("/")

    def vetted_addresses(self, host: str, port: int, addresses: list[str]) -> list[str]:
        """`addresses` of `host`, refused (URLRefused) if any is forbidden and the host is not
        allowed on `port`."""
        if not self.host_is_allowed(host, port):
            _check_addresses(host, addresses, self)
        return addresses


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests replace this function)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _resolved(host: str, port: int) -> list[str]:
    """`resolve_host`, with a failure to resolve as httpcore's connect error."""
    try:
        return resolve_host(host, port)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"Could not resolve {host}: {exc}") from None


def _normalise_host(host: str) -> str:
    return host.strip().lower().rstrip(".").strip("[]")


# "name", "name:port", "[v6]" or "[v6]:port"; a bare IPv6 address matches nothing here.
_ENTRY_WITH_PORT = re.compile(
    r"^(?:\[(?P<v6>[^\]]+)\]|(?P<name>[^:\[\]]+))(?::(?P<port>[0-9]{1,5}))?$"
)


def _allowed_entry(entry: str) -> tuple[str, int | None]:
    """An allowed-hosts entry as (host, port): "llm.lan", "llm.lan:11434", "[::1]:8000" or
    a bare IPv6 address. Without a port, the host may be reached on any port."""
    entry = entry.strip()
    match = _ENTRY_WITH_PORT.match(entry)
    if match is None:  # a bare IPv6 address ("::1"), or something that matches nothing
        return _normalise_host(entry), None
    port = int(match["port"]) if match["port"] else None
    return _normalise_host(match["v6"] or match["name"]), port


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_forbidden_address(address: str | IPAddress) -> bool:
    """True for every address that is not a plain public unicast address."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None or ip.scope_id:
            return True
        embedded = _embedded_ipv4(ip)
        if embedded is not None and is_forbidden_address(embedded):
            return True
    forbidden = (
        any(ip in network for network in _ALWAYS_FORBIDDEN)
        or not ip.is_global
        or ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )
    return forbidden or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _check_addresses(host: str, addresses: Iterable[str], guard: URLGuard) -> list[str]:
    checked = list(addresses)
    if not checked:
        raise guard.refuse(Refusal.NO_ADDRESS, host)
    for address in checked:
        if is_forbidden_address(address):
            raise guard.refuse(Refusal.PRIVATE_ADDRESS, host)
    return checked


def _static_checks(url: str, guard: URLGuard) -> tuple[httpx.URL, str, bool]:
    if not isinstance(url, str) or not url.strip():
        raise guard.refuse(Refusal.EMPTY)
    url = url.strip()
    if any(ord(char) < 33 or ord(char) == 127 or char == "\\" for char in url):
        raise guard.refuse(Refusal.BAD_CHARACTERS)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in _SCHEMES or not url[len(scheme) :].startswith("://"):
        raise guard.refuse(Refusal.NOT_HTTPS)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise guard.refuse(Refusal.INVALID) from None
    if parsed.userinfo:
        raise guard.refuse(Refusal.CREDENTIALS)
    host = _normalise_host(parsed.raw_host.decode("ascii", errors="replace"))
    if not host:
        raise guard.refuse(Refusal.NO_HOST)
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise guard.refuse(Refusal.BAD_PORT)
    if parsed.query or parsed.fragment or "?" in url or "#" in url:
        raise guard.refuse(Refusal.QUERY)
    allowed = guard.host_is_allowed(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    if parsed.scheme != "https" and not allowed:
        raise guard.refuse(Refusal.NOT_HTTPS)
    if allowed:
        return parsed, host, True
    if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
        raise guard.refuse(Refusal.LOCAL_NAME, host)
    literal = _literal_address(host)
    if literal is None and all(_NUMERIC_LABEL.match(label) for label in host.split(".")):
        raise guard.refuse(Refusal.NUMERIC_HOST)
    if literal is not None:
        _check_addresses(host, [str(literal)], guard)
    return parsed, host, False


class GuardedBackend(httpcore.SyncBackend):
    """httpcore network backend that vets every address before it connects.

    It resolves the host with `resolve_host`, refuses (URLRefused) when any address is
    forbidden and the host is not allowed, and then connects to the vetted address itself, so
    a second DNS answer cannot send the connection elsewhere. TLS server name and the Host
    header still carry the host name.
    """

    def __init__(self, guard: URLGuard | None = None) -> None:
        self.guard = guard or URLGuard()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        name = _normalise_host(host)
        addresses = self.guard.vetted_addresses(name, port, _resolved(name, port))
        last_error: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"{name} has no address.")

    def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> typing.NoReturn:
        raise self.guard.refuse(Refusal.UNIX_SOCKET)


class GuardedTransport(httpx.HTTPTransport):
    """httpx transport whose connection pool connects through `GuardedBackend` only.

    httpx takes no network backend argument, so the pool it builds is replaced by an
    equivalent one that has ours. Proxies from the environment are never used: a proxy would
    make the address check meaningless. `network_backend` may be a `GuardedBackend` subclass
    (the client's adds its call deadline to every socket operation).
    """

    def __init__(
        self,
        *,
        guard: URLGuard | None = None,
        limits: httpx.Limits | None = None,
        network_backend: GuardedBackend | None = None,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(trust_env=False, limits=limits)
        self.network_backend = network_backend or GuardedBackend(guard)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=self.network_backend,
        )


class AsyncGuardedBackend(httpcore.AnyIOBackend):
    """`GuardedBackend` for an `httpx.AsyncClient`: the same checks, the name resolved in a
    worker thread so the event loop does not wait on DNS."""

    def __init__(self, guard: URLGuard | None = None) -> None:
        self.guard = guard or URLGuard()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        name = _normalise_host(host)
        resolved = await asyncio.to_thread(_resolved, name, port)
        addresses = self.guard.vetted_addresses(name, port, resolved)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await super().connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"{name} has no address.")

    async def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> typing.NoReturn:
        raise self.guard.refuse(Refusal.UNIX_SOCKET)


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    """`GuardedTransport` for an `httpx.AsyncClient`."""

    def __init__(
        self, *, guard: URLGuard | None = None, limits: httpx.Limits | None = None
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(trust_env=False, limits=limits)
        self.network_backend = AsyncGuardedBackend(guard)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=self.network_backend,
        )
