"""Where and as whom to call: an `Endpoint` (a connection's settings with its decrypted key),
and the URL, headers and query of each request made to it.

OpenAI and compatible servers take ``Authorization: Bearer <key>`` with the optional
``OpenAI-Organization`` and ``OpenAI-Project``; Azure OpenAI takes ``api-key`` and an
``api-version`` query parameter.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provider.body import ACCEPT_ENCODING
from provider.errors import ErrorKind, ProviderError
from provider.urlguard import URLGuard

__all__ = ["USER_AGENT", "Endpoint", "request_headers", "request_params", "request_url"]

USER_AGENT = "Tablero/0.1"
_AUTH_HEADERS = frozenset({"authorization", "api-key", "openai-organization", "openai-project"})
_PRINTABLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
# Headers no caller's `extra_headers` replace: the key's, and the codings Tablero can read.
_FIXED_HEADERS = _AUTH_HEADERS | {"accept-encoding"}


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to call: a connection's settings with its decrypted key."""

    base_url: str
    api_key: str = field(repr=False)
    provider: str = "openai"  # "openai" | "azure" | "compatible"
    organization: str = ""
    project: str = ""
    api_version: str = ""  # azure
    # Other secrets of the same connection (its admin key, or its API key when `api_key` is
    # the admin key): masked too in whatever the provider sends back.
    other_secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What is masked in every string the provider sends back."""
        return (self.api_key, *self.other_secrets)


def path_segment(value: str) -> str:
    """`value` quoted for use as one segment of a path (ids the provider gave us)."""
    if value in ("", ".", ".."):
        raise ValueError("An empty or dot path segment.")
    return urllib.parse.quote(value, safe=":@")


def request_url(endpoint: Endpoint, path: str, *, guard: URLGuard) -> str:
    """The URL of `path` (which starts with "/") under the endpoint's base URL."""
    if not path.startswith("/") or any(char in path for char in "?#\\"):
        raise ValueError("A path starts with '/' and has no query, fragment or backslash.")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ValueError("A path has no dot segments.")
    return guard.validate_base_url(endpoint.base_url, resolve=False) + path


def request_headers(
    endpoint: Endpoint, *, beta: str | None, extra_headers: Mapping[str, str]
) -> dict[str, str]:
    """The headers of a request: the key's, and `extra_headers` that replace none of them."""
    key = endpoint.api_key or ""
    if not _PRINTABLE_ASCII.match(key):
        raise ProviderError(
            ErrorKind.INVALID_KEY,
            "The key is empty or contains spaces or characters a key never has.",
        )
    headers = {
        "Accept": "application/json",
        "Accept-Encoding": ACCEPT_ENCODING,
        "User-Agent": USER_AGENT,
    }
    for name, value in extra_headers.items():
        if name.lower() not in _FIXED_HEADERS:
            headers[name] = value
    if endpoint.provider == "azure":
        headers["api-key"] = key
    else:
        headers["Authorization"] = f"Bearer {key}"
        for name, value in (
            ("OpenAI-Organization", endpoint.organization.strip()),
            ("OpenAI-Project", endpoint.project.strip()),
        ):
            if not value:
                continue
            if not _PRINTABLE_ASCII.match(value):
                # A header carries ASCII only: an accent or a pasted space would crash
                # the request rather than reach the provider.
                raise ProviderError(
                    ErrorKind.BAD_REQUEST,
                    f"The {name} header would contain spaces or characters an ID never "
                    "has. Correct the organization or project ID of this connection.",
                )
            headers[name] = value
    if beta:
        headers["OpenAI-Beta"] = beta
    return headers


def request_params(endpoint: Endpoint, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The query of a request (Azure's api-version added)."""
    query = dict(params or {})
    if endpoint.provider == "azure" and endpoint.api_version:
        query["api-version"] = endpoint.api_version
    return query
