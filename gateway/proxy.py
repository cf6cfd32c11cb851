"""The pass-through at `/v1/`: a program calls a team's connection with a Tablero token.

It is a plain ASGI application that `config.asgi` hands every request under `/v1/`, ahead of
Django's request handling: an API call needs none of the pages' middleware (sessions, CSRF,
messages, locale, CSP, axes), which under ASGI would each cost a thread hop, nor Django's
request object, which reads the whole body before the view runs. Here the token is checked
before the body is read, the body is read only up to the size limit, and the answer is passed
to the client chunk by chunk as the provider sends it.

A request goes through, in order:

1. The raw path (before any decoding): plain segments under `/v1/` only (`scopes.
   clean_segments`), so no `..`, `%2e%2e`, `//host` or backslash can leave the base URL.
2. The host (ALLOWED_HOSTS, as Django checks it), then the token: `Authorization: Bearer
   tbl_…` (`grants.cached`, then `grants.load` in a thread on a miss). Failed tokens count
   per address in the shared cache; past `GUESS_LIMIT` in `GUESS_WINDOW` seconds the address
   gets 429 with Retry-After.
3. The endpoint family (`scopes.family_of`) against the token's scopes; the size limit
   (`TABLERO_GATEWAY_MAX_BODY_MB`); the model (`model` of a JSON body or a multipart field,
   the id of `GET /v1/models/{id}`) against the token's models; the token's and its member's
   limits (`gateway.limits`: a reservation, settled from the answer's usage when it ends); the
   fair share of the provider's own rate limit (`gateway.fairshare`: 429 for a token that has
   had its share while the connection's limit is nearly used; the answers' x-ratelimit-*
   headers feed it).
4. Forwarded with the same method, path, query, body and content type to the connection's
   base URL, through one pool of SSRF-guarded keep-alive connections per process and event
   loop (`gateway.upstream`: a lean HTTP/1.1 client; httpx cost more than the whole budget),
   with the connection's key, organization and project. Of the caller's headers only
   `_FORWARDED_HEADERS` go along: never its token, cookies, address or X-Forwarded-*. Never
   retried (the SDKs retry); the SDK's timeouts (600 s to read).
5. The answer: its status, body, and the headers of `_ANSWER_HEADERS` / `_ANSWER_PREFIXES`.
   A streamed answer (server-sent events, audio) goes out chunk by chunk. A client that goes
   away cancels the upstream request. An error answer is read (it is small) and the
   connection's key masked in it, should the provider echo it; otherwise untouched.
6. The call is handed to `gateway.recorder` (in memory; written by a background thread),
   with the tokens of the answer's `usage` block, found in the last 64 KiB of the answer
   (the last event of a stream) without holding the answer.

Tablero's own refusals have the provider's error shape and statuses, so each SDK raises the
right exception, and their message starts with "Tablero refused this request". They are in
English, like the provider's: programs, not people, read them first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.http.request import split_domain_port, validate_host

from connections.guard import url_guard
from gateway import fairshare, grants, limits, recorder, upstream
from gateway.grants import Grant
from gateway.scopes import clean_segments, family_of
from lib import dbwork
from provider.endpoint import request_headers
from provider.errors import ProviderError
from provider.secrets import mask_text
from provider.urlguard import URLGuard

__all__ = ["REFUSED", "Gateway"]

logger = logging.getLogger(__name__)

Scope_ = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PREFIX = b"/v1/"
REFUSED = "Tablero refused this request: "
# Failed tokens from one address before it must wait (per window, across processes).
GUESS_LIMIT = 20
GUESS_WINDOW = 60
# What the recorder reads the usage block from: the end of the answer.
USAGE_TAIL = 64 * 1024
# Error answers and model lists are read whole, up to this; larger ones pass untouched.
READ_WHOLE = 1024 * 1024

# The caller's headers that go upstream; everything else stays (its token, cookies, address,
# X-Forwarded-*, Host, hop-by-hop headers, OpenAI-Organization/Project, Accept-Encoding).
_FORWARDED_HEADERS = frozenset(
    {b"content-type", b"accept", b"openai-beta", b"idempotency-key", b"x-client-request-id"}
)
# The provider's headers that come back.
_ANSWER_HEADERS = frozenset(
    {b"content-type", b"content-disposition", b"retry-after", b"x-request-id", b"retry-after-ms"}
)
_ANSWER_PREFIXES = (b"x-ratelimit-", b"openai-")
_QUERY_FORBIDDEN = re.compile(rb"[\x00-\x20\x7f#]")

# Paths that create with a model, which some default when none is named: a token limited to
# some models must name one.
_NAMES_A_MODEL = frozenset(
    {
        "chat/completions",
        "completions",
        "responses",
        "embeddings",
        "moderations",
        "images/generations",
        "images/edits",
        "images/variations",
        "audio/speech",
        "audio/transcriptions",
        "audio/translations",
    }
)
_BOUNDARY = re.compile(rb'boundary="?([^";,]+)"?', re.IGNORECASE)
_FIELD_NAME = re.compile(rb'name="([^"]*)"', re.IGNORECASE)
_USAGE = b'"usage":'
_JSON = json.JSONDecoder()


# -- Tablero's refusals, in the provider's shape ---------------------------------------------


def _error_body(message: str, error_type: str, code: str | None, param: str | None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    ).encode()


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
    content_type: bytes = b"application/json",
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(
    send: Send,
    status: int,
    message: str,
    *,
    code: str | None,
    error_type: str = "invalid_request_error",
    param: str | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await _answer(send, status, _error_body(REFUSED + message, error_type, code, param), headers)


INVALID_TOKEN = (
    "the gateway token is missing, unknown, expired or revoked. Create one on the team's "
    "API tokens page in Tablero."
)


# -- reading the request ---------------------------------------------------------------------


def _relative_path(raw_path: bytes) -> str | None:
    """The path below /v1/ as sent (before any decoding), or None if it could leave it."""
    if not raw_path.startswith(PREFIX):
        return None
    rest = raw_path[len(PREFIX) :]
    if b"%" in rest or b"\\" in rest or b"//" in rest:
        return None
    try:
        text = rest.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if clean_segments(text) is not None else None


def _multipart_field(body: bytes, content_type: bytes, name: bytes) -> str:
    """The value of the form field `name` (not a file) in a multipart body, or ""."""
    found = _BOUNDARY.search(content_type)
    if found is None:
        return ""
    delimiter = b"--" + found.group(1)
    position = body.find(delimiter)
    while position != -1:
        start = position + len(delimiter)
        if body[start : start + 2] == b"--":
            return ""
        headers_end = body.find(b"\r\n\r\n", start)
        if headers_end == -1:
            return ""
        headers = body[start:headers_end]
        following = body.find(delimiter, headers_end)
        field = _FIELD_NAME.search(headers)
        if field is not None and field.group(1) == name and b"filename=" not in headers.lower():
            end = following if following != -1 else len(body)
            value = body[headers_end + 4 : end]
            if value.endswith(b"\r\n"):
                value = value[:-2]
            return value.decode("utf-8", "replace")[:200]
        position = following
    return ""


def _model_of(method: str, path: str, content_type: bytes, body: bytes) -> str:
    if path.startswith("models/"):
        return path[len("models/") :]
    if method != "POST" or not body:
        return ""
    if content_type.startswith(b"application/json"):
        try:
            data = json.loads(body)
        except ValueError:
            return ""
        model = data.get("model") if isinstance(data, dict) else None
        return model if isinstance(model, str) else ""
    if content_type.startswith(b"multipart/form-data"):
        return _multipart_field(body, content_type, b"model")
    return ""


_hosts_seen: dict[tuple[str, tuple[str, ...], bool], bool] = {}


def _allowed_host(host: str) -> bool:
    """Django's host check (ALLOWED_HOSTS), remembered per host name and setting."""
    key = (host, tuple(settings.ALLOWED_HOSTS), settings.DEBUG)
    known = _hosts_seen.get(key)
    if known is None:
        allowed = list(key[1])
        if key[2] and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        domain, _port = split_domain_port(host)
        known = bool(domain) and validate_host(domain, allowed)
        if len(_hosts_seen) > 1000:
            _hosts_seen.clear()
        _hosts_seen[key] = known
    return known


# -- reading the answer ----------------------------------------------------------------------


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def usage_tokens(tail: bytes) -> tuple[int | None, int | None, int | None]:
    """(input, cached input, output) tokens of the last `usage` object in `tail`."""
    at = tail.rfind(_USAGE)
    while at != -1:
        start = at + len(_USAGE)
        try:
            usage, _end = _JSON.raw_decode(tail[start:].lstrip().decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            usage = None
        if isinstance(usage, dict):
            details = usage.get("input_tokens_details") or usage.get("prompt_tokens_details")
            cached = details.get("cached_tokens") if isinstance(details, dict) else None
            return (
                _count(usage.get("input_tokens", usage.get("prompt_tokens"))),
                _count(cached),
                _count(usage.get("output_tokens", usage.get("completion_tokens"))),
            )
        at = tail.rfind(_USAGE, 0, at)  # `"usage": null` in a chunk: look further back
    return None, None, None


def _answer_headers(response: upstream.Response, secret: bytes) -> list[tuple[bytes, bytes]]:
    kept = []
    for name, value in response.headers:
        if name in _ANSWER_HEADERS or name.startswith(_ANSWER_PREFIXES):
            if secret and secret in value:
                continue
            kept.append((name, value))
    return kept


def _masked(body: bytes, secret: str) -> bytes:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body.replace(secret.encode(), b"***") if secret else body
    return mask_text(text, (secret,), key_shapes=False).encode()


def _filtered_models(body: bytes, grant: Grant) -> bytes | None:
    try:
        data = json.loads(body)
        models = [
            model
            for model in data["data"]
            if isinstance(model, dict) and grant.allows_model(str(model.get("id", "")))
        ]
    except (ValueError, KeyError, TypeError):
        return None
    return json.dumps({**data, "data": models}).encode()


class _Disconnected(Exception):
    """The client went away."""


# -- the application -------------------------------------------------------------------------


class Gateway:
    """The ASGI application of `/v1/` (see the module's docstring)."""

    def __init__(self) -> None:
        self._pools: dict[tuple[int, URLGuard], upstream.Pool] = {}
        self._targets: dict[tuple[str, URLGuard], upstream.Target] = {}
        self._blocked: dict[str, float] = {}
        # Requests being answered (their calls not yet recorded): tests wait for none.
        self.in_flight = 0

    # -- the process's connection pools

    def _pool(self, guard: URLGuard) -> upstream.Pool:
        key = (id(asyncio.get_running_loop()), guard)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = upstream.Pool(guard)
        return pool

    def _target(self, base_url: str, guard: URLGuard) -> upstream.Target:
        key = (base_url, guard)
        found = self._targets.get(key)
        if found is None:
            found = upstream.Target.of(guard.validate_base_url(base_url, resolve=False))
            self._targets[key] = found
        return found

    def forget_local(self) -> None:
        """Forget the addresses this process blocks (tests; the shared counts stay)."""
        self._blocked.clear()

    async def aclose(self) -> None:
        loop = id(asyncio.get_running_loop())
        for key, pool in list(self._pools.items()):
            if key[0] == loop:
                del self._pools[key]
                pool.close()

    async def lifespan(self, scope: Scope_, receive: Receive, send: Send) -> None:
        """Start the recorder; at shutdown close the pools and write every call left."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                recorder.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await dbwork.to_thread(recorder.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- tokens and their guesses

    def _load(self, token: str, address: str) -> Grant | float | None:
        """`grants.load`, refused (seconds to wait) when the address has guessed too much."""
        key = f"tablero:gateway:guesses:{address}"
        try:
            if (cache.get(key) or 0) >= GUESS_LIMIT:
                return float(GUESS_WINDOW)
        except Exception as error:
            logger.warning("Gateway: the shared cache failed (%s).", type(error).__name__)
        grant = grants.load(token)
        if grant is None:
            self._failed(address)
        return grant

    def _failed(self, address: str) -> None:
        key = f"tablero:gateway:guesses:{address}"
        try:
            cache.add(key, 0, timeout=GUESS_WINDOW)
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=GUESS_WINDOW)
            count = 1
        except Exception as error:
            logger.warning("Gateway: the shared cache failed (%s).", type(error).__name__)
            return
        if count >= GUESS_LIMIT:
            self._blocked[address] = time.monotonic() + GUESS_WINDOW

    async def _grant(self, token: str, address: str) -> Grant | float | None:
        blocked = self._blocked.get(address)
        if blocked is not None:
            if blocked > time.monotonic():
                return blocked - time.monotonic()
            del self._blocked[address]
        found = grants.cached(token)
        if isinstance(found, Grant):
            return found
        if found is None:
            await dbwork.to_thread(self._failed, address)
            return None
        return await dbwork.to_thread(self._load, token, address)

    # -- one request

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.in_flight += 1
        try:
            await self._call(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _call(self, scope: Scope_, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = _relative_path(raw_path.partition(b"?")[0])

        authorization = host = b""
        content_type = b""
        content_length: int | None = None
        forwarded: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"host":
                host = value
            elif name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    content_length = -1
            elif name in _FORWARDED_HEADERS:
                if name == b"content-type":
                    content_type = value.lower()
                forwarded[name.decode("latin-1")] = value.decode("latin-1")

        if not _allowed_host(host.decode("latin-1")):
            await _refuse(send, 400, "this host name is not served here.", code="bad_host")
            return
        if path is None:
            await _refuse(
                send,
                400,
                "the path is not a plain path under /v1/ (no '..', percent-encoding, "
                "'//' or backslash).",
                code="invalid_path",
            )
            return

        address = (scope.get("client") or ("",))[0] or "unknown"
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        grant = await self._grant(token.strip(), address) if scheme.lower() == "bearer" else None
        if grant is None:
            await _refuse(send, 401, INVALID_TOKEN, code="invalid_api_key")
            return
        if isinstance(grant, float):
            await _refuse(
                send,
                429,
                "too many invalid gateway tokens from this address; try again later.",
                code="rate_limit_exceeded",
                error_type="requests",
                headers=[(b"retry-after", str(max(1, round(grant))).encode())],
            )
            return

        call = recorder.Call.begin(
            team_id=grant.team_id,
            token_id=grant.token_id,
            user_id=grant.user_id,
            connection_id=grant.connection_id,
            method=method,
            path=path,
            address=address if address != "unknown" else None,
        )
        try:
            await self._checked(
                scope, receive, send, grant, call, path, content_type, content_length, forwarded
            )
        except _Disconnected:
            call.status = 499
        finally:
            fairshare.settle(call)
            if call.status and call.family:
                call.latency_ms = round((time.perf_counter() - started) * 1000)
                recorder.record(call)

    async def _checked(
        self,
        scope: Scope_,
        receive: Receive,
        send: Send,
        grant: Grant,
        call: recorder.Call,
        path: str,
        content_type: bytes,
        content_length: int | None,
        forwarded: dict[str, str],
    ) -> None:
        method = call.method
        family = family_of(method, path)
        if family is None:
            await _refuse(
                send,
                404,
                f"the gateway does not forward {method} /v1/{path}.",
                code="unknown_url",
            )
            return
        call.family = family.value
        if family not in grant.scopes:
            call.status = 403
            await _refuse(
                send,
                403,
                f"this token's scopes do not include {family.value!r}.",
                code="scope_not_allowed",
            )
            return
        limit = settings.TABLERO_GATEWAY_MAX_BODY_MB * 1024 * 1024
        if content_length is not None and (content_length > limit or content_length < 0):
            call.status = 413
            await _refuse(send, 413, self._too_large(limit), code="request_too_large")
            return
        body = await self._body(receive, limit)
        if body is None:
            call.status = 413
            await _refuse(send, 413, self._too_large(limit), code="request_too_large")
            return
        call.model = _model_of(method, path, content_type, body)
        if grant.allowed_models:
            if call.model and not grant.allows_model(call.model):
                call.status = 403
                await _refuse(
                    send,
                    403,
                    f"this token may not use the model {call.model!r}.",
                    code="model_not_allowed",
                    param="model",
                )
                return
            if not call.model and method == "POST" and path in _NAMES_A_MODEL:
                call.status = 403
                await _refuse(
                    send,
                    403,
                    "this token may use some models only: name one in `model`.",
                    code="model_not_allowed",
                    param="model",
                )
                return
        ticket = None
        if grant.limits:  # Tablero's limits (gateway.limits): reserve now, settle at the end
            demand = limits.demand_of(method, path, content_type, body, call.model)
            ticket = await limits.acquire(grant.limits, demand, prices=grant.prices)
            if isinstance(ticket, limits.Refusal):
                call.status = 429
                call.refusal = ticket.refusal
                await _refuse(
                    send,
                    429,
                    ticket.message,
                    code=ticket.code,
                    error_type=ticket.error_type,
                    headers=ticket.headers(),
                )
                return
            if ticket is not None:
                send = limits.with_headers(send, ticket.headers)
        call.refused = False
        try:
            # The provider's own limit, shared among the tokens; checked after Tablero's limits
            # reserved, so a call held back here gives its reservation back (a 429 costs nothing).
            held = fairshare.check(call)
            if held is not None:
                await _refuse(
                    send,
                    429,
                    held.message,
                    code="rate_limit_exceeded",
                    error_type=held.error_type,
                    headers=held.headers,
                )
                return
            await self._forward_watched(scope, receive, send, grant, call, path, body, forwarded)
        finally:
            if ticket is not None:
                limits.settle_soon(ticket, call)

    @staticmethod
    def _too_large(limit: int) -> str:
        return f"the request body is larger than the gateway's limit ({limit // 1024 // 1024} MB)."

    @staticmethod
    async def _body(receive: Receive, limit: int) -> bytes | None:
        """The whole request body, or None past `limit`. Raises _Disconnected."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _forward_watched(
        self,
        scope: Scope_,
        receive: Receive,
        send: Send,
        grant: Grant,
        call: recorder.Call,
        path: str,
        body: bytes,
        forwarded: dict[str, str],
    ) -> None:
        """`_forward`, cancelled when the client goes away (and the upstream call with it)."""
        task = asyncio.current_task()
        assert task is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone = True
                    task.cancel()
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            await self._forward(scope, send, grant, call, path, body, forwarded)
        except asyncio.CancelledError:
            if not gone:
                raise
            task.uncancel()
            call.status = call.status or 499
        finally:
            watcher.cancel()

    async def _forward(
        self,
        scope: Scope_,
        send: Send,
        grant: Grant,
        call: recorder.Call,
        path: str,
        body: bytes,
        forwarded: dict[str, str],
    ) -> None:
        endpoint = grant.endpoint
        guard = url_guard()
        started = time.perf_counter()
        query: bytes = scope.get("query_string") or b""
        try:
            target = self._target(endpoint.base_url, guard)
            if endpoint.provider == "azure" and endpoint.api_version:
                extra = urlencode({"api-version": endpoint.api_version}).encode()
                query = query + b"&" + extra if query else extra
            if _QUERY_FORBIDDEN.search(query):
                raise ValueError("A query with spaces or control characters.")
            headers = [
                (
                    name.encode("latin-1"),
                    b"identity" if name == "Accept-Encoding" else value.encode("latin-1"),
                )
                for name, value in request_headers(
                    endpoint, beta=None, extra_headers=forwarded
                ).items()
            ]
        except (ProviderError, ValueError):
            call.status = 502
            call.refused = True
            await _refuse(
                send,
                502,
                "the connection's base URL or key cannot be used; an admin should check the "
                "connection in Tablero.",
                code="connection_unusable",
                error_type="server_error",
            )
            return
        target_path = f"{target.prefix}/{path}".encode("ascii")
        if query:
            target_path += b"?" + query
        try:
            response = await self._pool(guard).request(
                call.method, target, target_path, headers, body
            )
        except upstream.UpstreamTimeout:
            call.status = 504
            call.refused = True
            await _refuse(
                send,
                504,
                "the provider did not answer in time.",
                code="upstream_timeout",
                error_type="server_error",
            )
            return
        except (upstream.UpstreamError, ProviderError) as error:
            # The class only: a message may name the host or address.
            logger.warning("Gateway: the provider could not be reached (%s).", type(error).__name__)
            call.status = 502
            call.refused = True
            await _refuse(
                send,
                502,
                "the provider could not be reached.",
                code="upstream_unreachable",
                error_type="server_error",
            )
            return
        try:
            await self._relay(response, send, grant, call, path, started)
        finally:
            response.close()

    async def _relay(
        self,
        response: upstream.Response,
        send: Send,
        grant: Grant,
        call: recorder.Call,
        path: str,
        started: float,
    ) -> None:
        secret = grant.endpoint.api_key
        status = response.status
        call.status = status
        call.request_id = (response.header(b"x-request-id") or b"")[:200].decode("latin-1")
        headers = _answer_headers(response, secret.encode("latin-1", "replace"))
        fairshare.observe(call, response.headers)
        content_type = response.header(b"content-type") or b""
        length = response.header(b"content-length")
        small = length is not None and length.isdigit() and int(length) <= READ_WHOLE

        whole: bytes | None = None
        read: list[bytes] = []
        if (status >= 400 and (small or length is None)) or (
            path == "models" and grant.allowed_models and status == 200
        ):
            whole, read = await self._read_whole(response)
            if status < 400:
                filtered = _filtered_models(whole, grant) if whole is not None else None
                if filtered is None:
                    call.status = 502
                    call.refused = True
                    await _refuse(
                        send,
                        502,
                        "the provider's model list could not be read.",
                        code="bad_upstream_answer",
                        error_type="server_error",
                    )
                    return
                whole = filtered
            elif whole is not None:
                whole = _masked(whole, secret)
        if whole is not None:
            call.first_byte_ms = round((time.perf_counter() - started) * 1000)
            if 200 <= status < 300:
                call.input_tokens, call.cached_tokens, call.output_tokens = usage_tokens(
                    whole[-USAGE_TAIL:]
                )
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [*headers, (b"content-length", str(len(whole)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": whole})
            return

        encoding = response.header(b"content-encoding")
        if encoding is not None and encoding.lower() != b"identity":
            headers.append((b"content-encoding", encoding))  # asked for none, passed as it is
        if length is not None:
            headers.append((b"content-length", length))
        call.streamed = content_type.startswith(b"text/event-stream")
        read_usage = (
            200 <= status < 300
            and encoding in (None, b"identity")
            and (call.streamed or content_type.startswith(b"application/json"))
        )
        await send({"type": "http.response.start", "status": status, "headers": headers})
        tail = bytearray()
        for chunk in read:  # an error answer too large to read whole: what was read of it
            call.first_byte_ms = call.first_byte_ms or round((time.perf_counter() - started) * 1000)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        async for chunk in response.chunks():
            if call.first_byte_ms is None:
                call.first_byte_ms = round((time.perf_counter() - started) * 1000)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if read_usage:
                tail += chunk
                if len(tail) > 2 * USAGE_TAIL:
                    del tail[:-USAGE_TAIL]
        await send({"type": "http.response.body", "body": b""})
        if read_usage:
            call.input_tokens, call.cached_tokens, call.output_tokens = usage_tokens(bytes(tail))

    @staticmethod
    async def _read_whole(response: upstream.Response) -> tuple[bytes | None, list[bytes]]:
        """The whole answer, or None and what was read of it when it is larger than
        READ_WHOLE."""
        chunks = []
        size = 0
        async for chunk in response.chunks():
            size += len(chunk)
            chunks.append(chunk)
            if size > READ_WHOLE:
                return None, chunks
        return b"".join(chunks), []
