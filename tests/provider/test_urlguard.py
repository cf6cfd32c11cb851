"""The SSRF guard: hostile base URLs are refused and never connected to.

DNS is never asked: `urlguard.resolve_host` is replaced by a table (unknown names do not
resolve), and every socket connect is recorded.
"""

import asyncio
import socket

import httpcore
import pytest

from fakeprovider import KEY_OK
from provider import urlguard
from provider.aclient import AsyncProviderClient
from provider.client import ProviderClient
from provider.endpoint import Endpoint
from provider.errors import ErrorKind, ProviderError
from provider.urlguard import (
    REFUSALS,
    AsyncGuardedBackend,
    GuardedBackend,
    GuardedTransport,
    Refusal,
    URLGuard,
    URLRefused,
    is_forbidden_address,
)
from tests.provider.helpers import LOOPBACK

REAL_RESOLVE_HOST = urlguard.resolve_host
PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:4700::6810:84e5"

DNS = {
    "api.openai.com": [PUBLIC_V4, PUBLIC_V6],
    "api.example.com": [PUBLIC_V4],
    "xn--bcher-kva.example": [PUBLIC_V4],
    "evil.example": ["127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "mixed.example": [PUBLIC_V4, "10.0.0.1"],
    "v6private.example": ["fd00::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "192.168.0.1.nip.io": ["192.168.0.1"],
    "cgnat.example": ["100.64.12.1"],
    "llm.lan": ["192.168.1.5"],
}

HOSTILE = [
    "http://api.openai.com/v1",  # plain http
    "HTTP://api.example.com/v1",
    "https://user:pass@api.openai.com/v1",  # credentials
    "https://user@api.openai.com/v1",
    "https://api.openai.com@127.0.0.1/v1",
    "https://127.0.0.1:443@api.openai.com/v1",
    "https://127.0.0.1/v1",  # loopback
    "https://127.0.0.1./v1",  # trailing dot
    "https://127.0.0.2:8443/v1",
    "https://localhost/v1",
    "https://LOCALHOST./v1",
    "https://foo.localhost/v1",
    "https://0.0.0.0/v1",  # unspecified
    "https://0/v1",
    "https://[::1]/v1",
    "https://[::]/v1",
    "https://10.0.0.1/v1",  # private
    "https://10.255.255.254:8443/v1",
    "https://172.16.0.1/v1",
    "https://172.31.255.254/v1",
    "https://192.168.1.1/v1",
    "https://169.254.169.254/latest/meta-data/",  # link-local, cloud metadata
    "https://100.64.0.1/v1",  # CGNAT
    "https://[fc00::1]/v1",  # unique local
    "https://[fd00:ec2::254]/v1",
    "https://[fe80::1]/v1",  # link-local
    "https://[fe80::1%25eth0]/v1",
    "https://[::ffff:127.0.0.1]/v1",  # IPv4-mapped
    "https://[::ffff:169.254.169.254]/v1",
    "https://[::ffff:7f00:1]/v1",
    "https://[::ffff:10.0.0.1]/v1",
    "https://[2002:7f00:1::]/v1",  # 6to4 around loopback
    "https://[64:ff9b::a9fe:a9fe]/v1",  # NAT64 around metadata
    "https://2130706433/v1",  # 127.0.0.1 as one decimal number
    "https://0x7f.0.0.1/v1",  # hex
    "https://0x7f000001/v1",
    "https://017700000001/v1",  # octal
    "https://0177.0.0.1/v1",
    "https://127.1/v1",  # short form
    "https://224.0.0.1/v1",  # multicast
    "https://[ff02::1]/v1",
    "https://255.255.255.255/v1",  # broadcast
    "https://198.18.0.1/v1",  # benchmarking
    "https://192.0.2.1/v1",  # documentation
    "https://240.0.0.1/v1",  # reserved
    "https://evil.example/v1",  # names that resolve to forbidden addresses
    "https://metadata.example/v1",
    "https://mixed.example/v1",
    "https://v6private.example/v1",
    "https://mapped.example/v1",
    "https://192.168.0.1.nip.io/v1",
    "https://cgnat.example/v1",
    "https://metadata.google.internal/computeMetadata/v1",  # local names
    "https://printer.local/v1",
    "https://router.home.arpa/v1",
    "https://ⓛocalhost/v1",  # IDN tricks
    "https://ｌｏｃａｌｈｏｓｔ/v1",
    "file:///etc/passwd",  # other schemes
    "ftp://api.openai.com/v1",
    "gopher://127.0.0.1:6379/_INFO",
    "javascript:alert(1)",
    "data:text/plain,hello",
    "//api.openai.com/v1",
    "https:/api.openai.com/v1",
    "https:///v1",  # no host
    "https://",
    "",
    "   ",
    "https://api.openai.com:0/v1",  # bad ports
    "https://api.openai.com:99999/v1",
    "https://api.openai.com/v1?api_key=x",  # query, fragment
    "https://api.openai.com/v1#top",
    "https://api.openai.com\\@127.0.0.1/v1",  # backslash
    "https://api.openai.com /v1",  # whitespace, control characters
    "https://api.openai.com/v1\r\nX-Injected: 1",
]


class ConnectRecorder:
    """Every TCP connect attempted while installed; each one is refused."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def create_connection(self, address, *args, **kwargs):
        self.calls.append(address)
        raise ConnectionRefusedError("recorded, not connected")

    def connect(self, sock, address):
        self.calls.append(address)
        raise ConnectionRefusedError("recorded, not connected")


def validate_base_url(url: str, *, resolve: bool = True, allowed: tuple[str, ...] = ()) -> str:
    return URLGuard(allowed_hosts=allowed).validate_base_url(url, resolve=resolve)


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    """Name resolution from the DNS table; nothing is allowed unless a test says so."""
    table = dict(DNS)

    def resolve(host, port):
        if host in table:
            return list(table[host])
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        except OSError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return [host]

    monkeypatch.setattr(urlguard, "resolve_host", resolve)
    return table


@pytest.fixture
def connects(monkeypatch):
    recorder = ConnectRecorder()
    monkeypatch.setattr(socket, "create_connection", recorder.create_connection)
    monkeypatch.setattr(socket.socket, "connect", recorder.connect)
    return recorder


def test_there_are_enough_hostile_urls():
    assert len(HOSTILE) >= 40
    assert len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_url_refused(url):
    with pytest.raises(URLRefused) as caught:
        validate_base_url(url)
    error = caught.value
    assert error.kind == ErrorKind.URL_REFUSED
    assert isinstance(error, ProviderError) and error.permanent
    assert error.refusal in REFUSALS
    assert error.reason == REFUSALS[error.refusal] % {"host": error.host}
    assert error.message == error.reason


def test_a_guard_words_its_refusals_as_told():
    def wording(refusal: Refusal, host: str) -> str:
        return f"{refusal.value} {host}"

    with pytest.raises(URLRefused) as caught:
        URLGuard(wording=wording).validate_base_url("https://printer.local/v1")
    assert caught.value.reason == caught.value.message == "local_name printer.local"


def test_no_hostile_url_is_ever_connected_to(connects):
    """The real pooled client, every hostile URL: refused, and not one connect attempted."""
    for url in HOSTILE:
        with pytest.raises(ProviderError) as caught:
            ProviderClient(Endpoint(url, KEY_OK), sleep=lambda _: None).list_models()
        assert caught.value.kind == ErrorKind.URL_REFUSED, url
    assert connects.calls == []


def test_the_recorder_sees_connects(connects, fake_upstream):
    """Positive control for the test above: an allowed call does reach the socket layer."""
    client = ProviderClient(
        Endpoint(fake_upstream.base_url, KEY_OK),
        guard=LOOPBACK,
        transport=GuardedTransport(guard=LOOPBACK),
        max_retries=0,
    )
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    assert caught.value.kind == ErrorKind.UNREACHABLE
    assert connects.calls == [("127.0.0.1", fake_upstream.port)]


def test_dns_rebinding_is_caught_at_connect_time(dns, connects):
    dns["rebind.example"] = [PUBLIC_V4]
    url = validate_base_url("https://rebind.example/v1/")
    assert url == "https://rebind.example/v1"
    dns["rebind.example"] = ["169.254.169.254"]  # the next answer points inside
    client = ProviderClient(Endpoint(url, KEY_OK), sleep=lambda _: None)
    with pytest.raises(URLRefused):
        client.list_models()
    assert client.attempts == 1  # refused for good, not retried
    assert connects.calls == []


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "https://API.OpenAI.com/v1/",
        "https://api.example.com:8443/openai/v1",
        "https://bücher.example/v1",
        f"https://{PUBLIC_V4}/v1",
        f"https://[{PUBLIC_V6}]/v1",
        "https://not-resolvable-yet.example/v1",
    ],
)
def test_public_urls_accepted(url):
    normalised = validate_base_url(url)
    assert normalised.startswith("https://")
    assert not normalised.endswith("/")


def test_normalised_form():
    assert validate_base_url("  https://API.OpenAI.com/v1/  ") == "https://api.openai.com/v1"
    assert validate_base_url("https://bücher.example/v1") == "https://xn--bcher-kva.example/v1"


def test_without_resolve_only_static_checks(dns):
    dns["later.example"] = ["10.0.0.1"]
    assert validate_base_url("https://later.example/v1", resolve=False)
    with pytest.raises(URLRefused):
        validate_base_url("https://later.example/v1")
    with pytest.raises(URLRefused):
        validate_base_url("https://127.0.0.1/v1", resolve=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://127.0.0.1.:8080/v1",
        "http://llm.lan:11434/v1",
        "https://llm.lan/v1",
        "http://[::1]:8000/v1",
    ],
)
def test_allowed_hosts_may_use_http_and_private_addresses(url):
    allowed = ("127.0.0.1", "LLM.lan", "::1")
    assert validate_base_url(url, allowed=allowed) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2/v1",  # only the exact host listed
        "http://sub.llm.lan/v1",
        "http://user:pw@127.0.0.1/v1",  # credentials are never allowed
        "ftp://127.0.0.1/v1",
        "http://127.0.0.1/v1?x=1",
    ],
)
def test_allowed_hosts_are_exact_and_still_checked(url):
    with pytest.raises(URLRefused):
        validate_base_url(url, allowed=("127.0.0.1", "llm.lan"))


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("http://127.0.0.1:8080/v1", True),
        ("http://127.0.0.1:6379/v1", False),  # the same machine's other services stay shut
        ("http://127.0.0.1/v1", False),
        ("http://[::1]:8000/v1", True),
        ("http://[::1]:22/v1", False),
        ("https://llm.lan/v1", True),  # 443 listed
        ("https://llm.lan:8443/v1", False),
    ],
)
def test_allowed_host_entries_with_a_port_allow_that_port_only(url, accepted):
    allowed = ("127.0.0.1:8080", "[::1]:8000", "llm.lan:443")
    if accepted:
        assert validate_base_url(url, allowed=allowed) == url
    else:
        with pytest.raises(URLRefused):
            validate_base_url(url, allowed=allowed)


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        (PUBLIC_V4, False),
        (PUBLIC_V6, False),
        ("8.8.8.8", False),
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("100.127.255.255", True),
        ("169.254.0.1", True),
        ("192.0.0.8", True),
        ("224.0.0.251", True),
        ("239.255.255.250", True),
        ("0.0.0.0", True),
        ("::", True),
        ("::1", True),
        ("::ffff:8.8.8.8", True),  # every IPv4-mapped address
        ("2002:0808:0808::", False),  # 6to4 around a public address
        ("2002:0a00:0001::", True),
        ("64:ff9b::808:808", True),  # NAT64 is reserved space here
        ("2001:db8::1", True),
        ("ff05::2", True),
        ("fec0::1", True),  # deprecated site-local
        ("not an address", True),
    ],
)
def test_is_forbidden_address(address, forbidden):
    assert is_forbidden_address(address) is forbidden


class TestGuardedBackend:
    @pytest.fixture
    def opened(self, monkeypatch):
        calls = []

        def fake_connect(backend, host, port, timeout=None, **kwargs):
            calls.append((host, port))
            return "stream"

        monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", fake_connect)
        return calls

    def test_connects_to_the_vetted_address_not_the_name(self, opened):
        assert GuardedBackend().connect_tcp("api.example.com", 443, timeout=1) == "stream"
        assert opened == [(PUBLIC_V4, 443)]

    @pytest.mark.parametrize(
        "host", ["evil.example", "mixed.example", "127.0.0.1", "LOCALHOST", "[::1]"]
    )
    def test_refuses_forbidden_addresses(self, dns, opened, host):
        dns["localhost"] = ["127.0.0.1", "::1"]
        with pytest.raises(URLRefused):
            GuardedBackend().connect_tcp(host, 443)
        assert opened == []

    def test_allowed_host_connects_to_its_private_address(self, opened):
        GuardedBackend(URLGuard(allowed_hosts=("llm.lan",))).connect_tcp("llm.lan", 11434)
        assert opened == [("192.168.1.5", 11434)]

    def test_allowed_host_with_a_port_connects_to_that_port_only(self, opened):
        backend = GuardedBackend(URLGuard(allowed_hosts=("llm.lan:11434",)))
        with pytest.raises(URLRefused):
            backend.connect_tcp("llm.lan", 6379)
        assert opened == []
        backend.connect_tcp("llm.lan", 11434)
        assert opened == [("192.168.1.5", 11434)]

    def test_unresolvable_is_a_connect_error(self, opened):
        with pytest.raises(httpcore.ConnectError):
            GuardedBackend().connect_tcp("nowhere.example", 443)
        assert opened == []

    def test_tries_the_next_address(self, dns, monkeypatch):
        dns["two.example"] = [PUBLIC_V6, PUBLIC_V4]
        tried = []

        def connect(backend, host, port, timeout=None, **kwargs):
            tried.append(host)
            if host == PUBLIC_V6:
                raise httpcore.ConnectError("no route")
            return "stream"

        monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect)
        assert GuardedBackend().connect_tcp("two.example", 443) == "stream"
        assert tried == [PUBLIC_V6, PUBLIC_V4]

    def test_no_unix_sockets(self):
        with pytest.raises(URLRefused):
            GuardedBackend().connect_unix_socket("/var/run/docker.sock")


def test_allowed_host_name_is_kept_for_the_host_header(dns, fake_upstream):
    """Connects to the vetted address, while the request still names the host."""
    dns["fake.test"] = ["127.0.0.1"]
    client = ProviderClient(
        Endpoint(f"http://fake.test:{fake_upstream.port}/v1", KEY_OK),
        guard=URLGuard(allowed_hosts=("fake.test",)),
    )
    assert client.retrieve_model("gpt-4o")["id"] == "gpt-4o"
    assert fake_upstream.requests[0].headers["host"] == f"fake.test:{fake_upstream.port}"


def test_the_real_resolver_lists_each_address_once():
    assert REAL_RESOLVE_HOST("127.0.0.1", 80) == ["127.0.0.1"]
    assert REAL_RESOLVE_HOST("::1", 80) == ["::1"]


class TestAsyncGuardedBackend:
    """The async client's network backend keeps the same checks."""

    @pytest.fixture
    def opened(self, monkeypatch):
        calls = []

        async def fake_connect(backend, host, port, timeout=None, **kwargs):
            calls.append((host, port))
            return "stream"

        monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", fake_connect)
        return calls

    def test_connects_to_the_vetted_address_not_the_name(self, opened):
        connect = AsyncGuardedBackend().connect_tcp("api.example.com", 443, timeout=1)
        assert asyncio.run(connect) == "stream"
        assert opened == [(PUBLIC_V4, 443)]

    @pytest.mark.parametrize("host", ["evil.example", "mixed.example", "127.0.0.1"])
    def test_refuses_forbidden_addresses(self, opened, host):
        with pytest.raises(URLRefused):
            asyncio.run(AsyncGuardedBackend().connect_tcp(host, 443))
        assert opened == []

    def test_allowed_host_connects_to_its_private_address(self, opened):
        backend = AsyncGuardedBackend(URLGuard(allowed_hosts=("llm.lan:11434",)))
        with pytest.raises(URLRefused):
            asyncio.run(backend.connect_tcp("llm.lan", 6379))
        asyncio.run(backend.connect_tcp("llm.lan", 11434))
        assert opened == [("192.168.1.5", 11434)]

    def test_unresolvable_is_a_connect_error(self, opened):
        with pytest.raises(httpcore.ConnectError):
            asyncio.run(AsyncGuardedBackend().connect_tcp("nowhere.example", 443))

    def test_no_unix_sockets(self):
        with pytest.raises(URLRefused):
            asyncio.run(AsyncGuardedBackend().connect_unix_socket("/var/run/docker.sock"))


def test_the_async_client_never_connects_to_a_hostile_url(connects):
    async def attempt(url):
        async with AsyncProviderClient(Endpoint(url, KEY_OK), sleep=_no_wait) as client:
            await client.list_models()

    for url in HOSTILE[:20]:
        with pytest.raises(ProviderError) as caught:
            asyncio.run(attempt(url))
        assert caught.value.kind == ErrorKind.URL_REFUSED, url
    assert connects.calls == []


async def _no_wait(seconds: float) -> None:
    return None


def test_dns_rebinding_is_caught_at_connect_time_by_the_async_client_too(dns, connects):
    dns["rebind.example"] = ["169.254.169.254"]

    async def attempt():
        async with AsyncProviderClient(
            Endpoint("https://rebind.example/v1", KEY_OK), sleep=_no_wait
        ) as client:
            try:
                await client.list_models()
            finally:
                assert client.attempts == 1  # refused for good, not retried

    with pytest.raises(URLRefused):
        asyncio.run(attempt())
    assert connects.calls == []
