"""Compressed answers: the size limit applies to the decoded bytes while they are decoded, so
a small gzip or deflate body that inflates to gigabytes is refused after at most the limit
and one decoded piece, never inflated whole in memory."""

import gzip
import json
import tracemalloc
import zlib

import httpx
import pytest

from fakeprovider import KEY_OK
from provider import body as body_module
from provider.client import ProviderClient
from provider.endpoint import Endpoint
from provider.errors import ErrorKind, ProviderError

MB = 1024 * 1024
MODELS = {"object": "list", "data": [{"id": "gpt-4o", "object": "model", "owned_by": "system"}]}


class CountingStream(httpx.SyncByteStream):
    """A response body handed out chunk by chunk, counting what was taken."""

    def __init__(self, chunks) -> None:
        self._chunks = chunks
        self.taken = 0  # raw (compressed) bytes handed to the client
        self.closed = False

    def __iter__(self):
        for chunk in self._chunks:
            self.taken += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed = True


def endless_gzip(zeros: bytes):
    """A gzip stream that never ends: each chunk inflates to `zeros`."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    while True:
        yield compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)


def client_with(stream: CountingStream, encoding: str) -> ProviderClient:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": encoding}
        return httpx.Response(200, headers=headers, stream=stream)

    endpoint = Endpoint("https://api.openai.com/v1", KEY_OK)
    return ProviderClient(endpoint, transport=httpx.MockTransport(handler), max_retries=0)


def peak_bytes_while(call) -> tuple[int, ProviderError]:
    tracemalloc.start()
    try:
        with pytest.raises(ProviderError) as caught:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, caught.value


def test_a_gzip_bomb_in_one_chunk_is_refused_without_inflating_it(monkeypatch):
    monkeypatch.setattr(body_module, "MAX_BODY_BYTES", 1 * MB)
    bomb = gzip.compress(b"\0" * (64 * MB), compresslevel=9)  # about 64 KB
    stream = CountingStream([bomb])

    peak, error = peak_bytes_while(client_with(stream, "gzip").list_models)

    assert error.kind == ErrorKind.BAD_RESPONSE
    assert "larger than 1 MB" in error.message
    # The limit and one decoded piece, plus the bomb itself: far from its 64 MB.
    assert peak < 4 * MB
    assert stream.closed


def test_an_endless_gzip_stream_stops_at_the_limit(monkeypatch):
    monkeypatch.setattr(body_module, "MAX_BODY_BYTES", 1 * MB)
    zeros = b"\0" * (8 * MB)  # made before memory is measured
    stream = CountingStream(endless_gzip(zeros))

    peak, error = peak_bytes_while(client_with(stream, "gzip").list_models)

    assert error.kind == ErrorKind.BAD_RESPONSE
    assert peak < 4 * MB
    assert stream.taken < 64 * 1024  # one compressed chunk (8 KB or so) was enough
    assert stream.closed


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_a_deflate_bomb_is_refused(monkeypatch, wbits):
    monkeypatch.setattr(body_module, "MAX_BODY_BYTES", 1 * MB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    bomb = compressor.compress(b"\0" * (64 * MB)) + compressor.flush()

    peak, error = peak_bytes_while(client_with(CountingStream([bomb]), "deflate").list_models)

    assert error.kind == ErrorKind.BAD_RESPONSE
    assert peak < 4 * MB


def test_a_bomb_wrapped_twice_is_refused(monkeypatch):
    monkeypatch.setattr(body_module, "MAX_BODY_BYTES", 1 * MB)
    bomb = gzip.compress(gzip.compress(b"\0" * (64 * MB), compresslevel=9), compresslevel=9)

    peak, error = peak_bytes_while(client_with(CountingStream([bomb]), "gzip, gzip").list_models)

    assert error.kind == ErrorKind.BAD_RESPONSE
    assert peak < 4 * MB


def test_endless_data_after_the_end_of_the_gzip_stream_is_refused(monkeypatch):
    monkeypatch.setattr(body_module, "MAX_BODY_BYTES", 1 * MB)

    def after_the_end():
        yield gzip.compress(json.dumps(MODELS).encode())
        while True:
            yield b"\0" * 65536  # ignored by the decoder, but still read

    stream = CountingStream(after_the_end())
    with pytest.raises(ProviderError) as caught:
        client_with(stream, "gzip").list_models()

    assert caught.value.kind == ErrorKind.BAD_RESPONSE
    assert stream.taken <= 2 * MB + 65536 + 1024


def test_an_answer_just_under_the_limit_is_read(monkeypatch):
    body = json.dumps(MODELS).encode()
    monkeypatch.setattr(body_module, "MAX_BODY_BYTES", len(body))
    compressed = gzip.compress(body)
    # Cut into tiny chunks: a piece may end anywhere, even inside the gzip header.
    chunks = [compressed[i : i + 3] for i in range(0, len(compressed), 3)]

    models = client_with(CountingStream(chunks), "gzip").list_models()

    assert [model["id"] for model in models] == ["gpt-4o"]


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda body: zlib.compress(body, wbits=-zlib.MAX_WBITS)),
        ("gzip, deflate", lambda body: zlib.compress(gzip.compress(body))),
        ("identity", lambda body: body),
        ("", lambda body: body),
    ],
    ids=["gzip", "deflate", "raw-deflate", "gzip-then-deflate", "identity", "none"],
)
def test_compressed_answers_are_read(encoding, encode):
    body = encode(json.dumps(MODELS).encode())

    models = client_with(CountingStream([body]), encoding).list_models()

    assert [model["id"] for model in models] == ["gpt-4o"]


def test_a_broken_gzip_body_is_a_bad_response():
    with pytest.raises(ProviderError) as caught:
        client_with(CountingStream([b"\x1f\x8b\x08\x00garbage"]), "gzip").list_models()
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


def test_a_coding_tablero_did_not_ask_for_is_refused():
    stream = CountingStream([b"\x8b\x02\x80{}\x03"])
    with pytest.raises(ProviderError) as caught:
        client_with(stream, "br").list_models()
    assert caught.value.kind == ErrorKind.BAD_RESPONSE
    assert "br" in caught.value.message


def test_tablero_asks_only_for_what_it_can_decode_with_a_limit():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["accept-encoding"])
        return httpx.Response(200, json=MODELS)

    endpoint = Endpoint("https://api.openai.com/v1", KEY_OK)
    ProviderClient(endpoint, transport=httpx.MockTransport(handler)).list_models()

    assert seen == ["gzip, deflate"]
