"""Bounded bodies: an answer is read within a size limit and a time limit, and inflated in
pieces, so neither a huge answer, a compression bomb nor a trickle holds a worker.

httpx's own decoding inflates each chunk read from the network at once: 64 KB of gzip can
become 64 MB before any size is known. Here the raw bytes are read and inflated at most
`_DECODE_PIECE` bytes at a time, so a compression bomb stops after the limit and one piece.
The raw bytes have a limit too (data sent after the end of a gzip stream).

`BodyReader` takes the raw chunks as they come, so the sync client (`read_limited`) and the
async one (`aread_limited`) read with the same limits.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

import httpx

from provider.errors import ErrorKind, ProviderError

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_ANSWER_SECONDS",
    "MAX_BODY_BYTES",
    "BodyReader",
    "aread_limited",
    "content_decoders",
    "read_limited",
]

# A provider answer larger than this is not an answer Tablero expects.
MAX_BODY_BYTES = 16 * 1024 * 1024
# The read timeout bounds each wait for data, not the whole answer: a body that trickles in
# byte by byte would hold a worker for hours. No answer takes longer than this in all.
MAX_ANSWER_SECONDS = 60.0


class BodyReader:
    """One answer's body, fed raw chunk by raw chunk: decoded, refused once it passes
    `MAX_BODY_BYTES` (or twice that raw), and refused when a chunk comes after `deadline` (a
    `time.monotonic()` value)."""

    def __init__(self, response: httpx.Response, *, deadline: float) -> None:
        self._response = response
        self._deadline = deadline
        self._layers = content_decoders(response)
        self._chunks: list[bytes] = []
        self._raw_size = 0
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        if time.monotonic() > self._deadline:
            raise ProviderError(
                ErrorKind.TIMEOUT,
                "The answer did not arrive in time.",
                status=self._response.status_code,
                request_id=self._response.headers.get("x-request-id"),
            )
        self._raw_size += len(chunk)
        # Compressed data is at most a little larger than what it holds: twice the limit is
        # only reached with data after the end of the compressed stream.
        if self._raw_size > 2 * MAX_BODY_BYTES:
            raise refuse_larger(self._response)
        self._keep(self._decoded(chunk, 0))

    def finish(self) -> bytes:
        """The whole body, once the raw chunks have ended."""
        for index, layer in enumerate(self._layers):
            rest = layer.flush()
            if rest:
                self._keep(self._decoded(rest, index + 1))
        return b"".join(self._chunks)

    def _decoded(self, data: bytes, first_layer: int) -> Iterator[bytes]:
        pieces: Iterator[bytes] = iter((data,))
        for layer in self._layers[first_layer:]:
            pieces = layer.decode(pieces)
        return pieces

    def _keep(self, pieces: Iterator[bytes]) -> None:
        for piece in pieces:
            self._size += len(piece)
            if self._size > MAX_BODY_BYTES:
                raise refuse_larger(self._response)
            self._chunks.append(piece)


def refuse_larger(response: httpx.Response) -> ProviderError:
    return ProviderError(
        ErrorKind.BAD_RESPONSE,
        f"The answer is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB.",
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
    )


def _in_memory(response: httpx.Response) -> bytes | None:
    """The body of an answer built in memory and decoded by httpx already (an
    `httpx.MockTransport` answer in tests); None for one from the network, which always
    comes as a stream."""
    if not response.is_stream_consumed:
        return None
    if len(response.content) > MAX_BODY_BYTES:
        raise refuse_larger(response)
    return response.content


def read_limited(response: httpx.Response, *, deadline: float) -> bytes:
    """The answer's body, decoded, within the limits (`BodyReader`)."""
    body = _in_memory(response)
    if body is not None:
        return body
    reader = BodyReader(response, deadline=deadline)
    for chunk in response.iter_raw():
        reader.feed(chunk)
    return reader.finish()


async def aread_limited(response: httpx.Response, *, deadline: float) -> bytes:
    """`read_limited` for an answer of an `httpx.AsyncClient`."""
    body = _in_memory(response)
    if body is not None:
        return body
    reader = BodyReader(response, deadline=deadline)
    async for chunk in response.aiter_raw():
        reader.feed(chunk)
    return reader.finish()


# The most a decoder hands on at once (a multiple of what the network gives per read).
_DECODE_PIECE = 64 * 1024
# What Tablero asks for and reads with a limit (`_Inflater`).
ACCEPT_ENCODING = "gzip, deflate"
# Codings a server may use though Tablero never asks for them; it reads none of them.
_UNREAD_CODINGS = frozenset({"br", "zstd", "compress", "x-compress"})


class _Inflater:
    """One gzip or deflate layer of an answer, inflated in pieces of `_DECODE_PIECE` bytes.

    Like httpx: "deflate" is zlib-wrapped, or raw when the first bytes say so; anything after
    the end of the compressed stream is ignored.
    """

    def __init__(self, coding: str) -> None:
        gzip = coding in ("gzip", "x-gzip")
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._may_be_raw = not gzip

    def decode(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            yield from self._inflate(chunk)

    def flush(self) -> bytes:
        """What zlib still holds once the input has ended."""
        try:
            return self._zlib.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(str(exc)) from exc

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while not self._zlib.eof:
            try:
                piece = self._zlib.decompress(data, _DECODE_PIECE)
            except zlib.error as exc:
                if not self._may_be_raw:
                    raise httpx.DecodingError(str(exc)) from exc
                self._may_be_raw = False
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._may_be_raw = False
            data = self._zlib.unconsumed_tail
            if piece:
                yield piece
            # A full piece may leave more output inside zlib even when all input is taken.
            if not data and len(piece) < _DECODE_PIECE:
                return


def content_decoders(response: httpx.Response) -> list[_Inflater]:
    """The decoders for the answer's Content-Encoding, innermost coding last.

    Unknown values (servers send "utf-8" there) are passed over, as httpx does; a compression
    Tablero did not ask for is refused rather than read without a limit.
    """
    codings = [
        value.strip().lower()
        for value in response.headers.get_list("content-encoding", split_commas=True)
    ]
    layers = []
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip", "deflate"):
            layers.append(_Inflater(coding))
        elif coding in _UNREAD_CODINGS:
            raise ProviderError(
                ErrorKind.BAD_RESPONSE,
                f"The answer is compressed with {coding!r}, which Tablero did not ask for "
                "and does not read.",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            )
    return layers
