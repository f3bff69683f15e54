"""Undoing ``Content-Encoding`` in bounded pieces: bytes in, bytes out, no I/O.

A server picks the codings and the body, so both are hostile input.  httpx's
decoders hand each network read whole to zlib (a 256 KiB read of a gzip bomb
inflates to ~256 MiB at once), decode any number of stacked codings, and accept a
truncated stream.  :class:`Decoder` instead

* gives its output in pieces of at most ``chunk`` bytes (zlib's ``max_length``,
  the rest kept in ``unconsumed_tail``), so memory per response stays bounded
  whatever the ratio;
* undoes at most :data:`MAX_CODINGS` stacked codings (``identity`` not counted);
* decodes every member of a multi-member gzip body (zero padding between and
  after members is allowed, as :mod:`gzip` allows it), and rejects other bytes
  after the end of a stream;
* raises :class:`DecodingError` when the body ends inside a stream (truncated);
* raises :class:`DecodingError` once the output passes ``ratio`` times the input,
  after the first ``free`` bytes (one deflate layer cannot pass ~1032:1; stacked
  layers, brotli and zstd can reach millions).

Codings: ``gzip``/``x-gzip``, ``deflate`` (zlib-wrapped, or raw as some servers
send it), ``identity``, and ``br`` when the ``brotli`` package offers a bounded
decompressor (``output_buffer_limit``, brotli 1.2).  An unknown coding is an
error: bytes still encoded are not the resource.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = ["MAX_CODINGS", "Decoder", "DecodingError", "accept_encoding", "codings"]

#: Most stacked codings decoded (servers use one; a few proxies add a second).
MAX_CODINGS = 4
#: Largest piece of output handed on at once.
CHUNK = 256 * 1024
#: Output allowed before the ratio is checked, and the ratio allowed after it.
FREE = 32 * 1024 * 1024
RATIO = 1100


class DecodingError(ValueError):
    """The body cannot be decoded (corrupt, truncated, unsupported or too expansive)."""


def codings(header: str) -> list[str]:
    """The codings a ``Content-Encoding`` value names, in the order to undo them.

    Lowercased, ``identity`` dropped; raises :class:`DecodingError` for more than
    :data:`MAX_CODINGS` (counted before anything is built, however long the header).
    """
    found: list[str] = []
    for token in header.split(","):
        name = token.strip().lower()
        if name in ("", "identity"):
            continue
        if len(found) == MAX_CODINGS:
            raise DecodingError(f"more than {MAX_CODINGS} stacked content codings")
        found.append(name)
    found.reverse()
    return found


class _Zlib:
    """One gzip (every member) or deflate stream."""

    def __init__(self, name: str, chunk: int) -> None:
        self.name = name
        self._chunk = chunk
        self._gzip = name in ("gzip", "x-gzip")
        # deflate: zlib-wrapped or raw is decided by its first two bytes.
        self._inflater: Any = zlib.decompressobj(31) if self._gzip else None
        self._head = b""
        self._started = False  # any byte fed (an empty body is no stream at all)
        self._between = False  # gzip: a member has ended, the next has not begun

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._started = self._started or bool(data)
        while data:
            if self._inflater is None:
                self._head += data
                if len(self._head) < 2:
                    return
                data, self._head = self._head, b""
                wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
                self._inflater = zlib.decompressobj(15 if wrapped else -15)
            if self._between:
                data = data.lstrip(b"\0")  # zero padding, as the gzip module allows
                if not data:
                    return
                self._inflater = zlib.decompressobj(31)
                self._between = False
            inflater = self._inflater
            if inflater.eof:
                if data.strip(b"\0"):
                    raise DecodingError(f"{self.name}: data after the end of the stream")
                return
            tail = data
            while True:
                try:
                    out = inflater.decompress(tail, self._chunk)
                except zlib.error as exc:
                    raise DecodingError(f"{self.name}: {exc}") from None
                if out:
                    yield out
                tail = inflater.unconsumed_tail
                # A full piece may leave output inside zlib with no input left: ask again.
                if inflater.eof or (not tail and len(out) < self._chunk):
                    break
            if not inflater.eof:
                return
            data = inflater.unused_data
            if self._gzip:
                self._between = True  # what follows must be another member (or zeros)

    def finish(self) -> Iterator[bytes]:
        if not self._started or self._between:
            return
        inflater = self._inflater
        if inflater is None:
            raise DecodingError(f"{self.name}: the stream is truncated")
        while not inflater.eof:
            try:
                out = inflater.decompress(b"", self._chunk)
            except zlib.error as exc:
                raise DecodingError(f"{self.name}: {exc}") from None
            if not out:
                raise DecodingError(f"{self.name}: the stream is truncated")
            yield out


class _Brotli:
    """A brotli stream, through a decompressor that bounds each call's output."""

    def __init__(self, name: str, chunk: int, module: Any) -> None:
        self.name = name
        self._chunk = chunk
        self._brotli = module
        self._decompressor = module.Decompressor()
        self._started = False

    def _drain(self, data: bytes) -> Iterator[bytes]:
        decompressor = self._decompressor
        try:
            out = decompressor.process(data, output_buffer_limit=self._chunk)
            while True:
                if out:
                    yield out
                if decompressor.is_finished() or decompressor.can_accept_more_data():
                    return
                out = decompressor.process(b"", output_buffer_limit=self._chunk)
        except self._brotli.error as exc:
            raise DecodingError(f"{self.name}: {exc}") from None

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._started = self._started or bool(data)
        if self._decompressor.is_finished():
            raise DecodingError(f"{self.name}: data after the end of the stream")
        yield from self._drain(data)

    def finish(self) -> Iterator[bytes]:
        if self._started and not self._decompressor.is_finished():
            raise DecodingError(f"{self.name}: the stream is truncated")
        yield from ()


@functools.cache  # asked per br response: import and probe brotli once
def _bounded_brotli() -> Any:
    """The ``brotli`` module when its decompressor can bound its output, else None."""
    try:
        import brotli  # type: ignore[import-not-found,import-untyped]
    except ImportError:
        return None
    try:
        brotli.Decompressor().process(b"", output_buffer_limit=1)
    except TypeError:
        return None  # older than 1.2: each call inflates all it can
    except Exception:  # noqa: BLE001 - an empty input may be refused; the keyword was accepted
        pass
    return brotli


@functools.cache
def accept_encoding() -> str:
    """The ``Accept-Encoding`` to send: only codings :class:`Decoder` undoes here.

    httpx offers ``br`` and ``zstd`` whenever brotli or zstandard is installed, but
    neither offers a decoder that bounds its output per call (zstandard never; brotli
    from 1.2), so a server could pick a coding no bounded decoder can undo.
    """
    return "gzip, deflate, br" if _bounded_brotli() else "gzip, deflate"


class Decoder:
    """Undoes a response's ``Content-Encoding`` incrementally, in bounded pieces.

    ``feed`` each piece of the raw body and iterate what it gives before the next
    one; ``finish`` at the end (it raises when a stream was cut short).  Every
    piece given is at most ``chunk`` bytes.  Errors are :class:`DecodingError`.
    """

    def __init__(
        self, header: str, *, chunk: int = CHUNK, free: int = FREE, ratio: float = RATIO
    ) -> None:
        names = codings(header)
        layers: list[Any] = []
        for name in names:
            if name in ("gzip", "x-gzip", "deflate"):
                layers.append(_Zlib(name, chunk))
            elif name == "br" and (module := _bounded_brotli()) is not None:
                layers.append(_Brotli(name, chunk, module))
            else:
                raise DecodingError(f"unsupported content coding {name[:40]!r}")
        self._layers = layers
        self._free = free
        self._ratio = ratio
        self.bytes_in = 0
        self.bytes_out = 0

    def _through(self, level: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        """``pieces`` (the output of layer ``level - 1``) through the layers from ``level`` on."""
        if level == len(self._layers):
            for piece in pieces:
                self.bytes_out += len(piece)
                if self.bytes_out > self._free and self.bytes_out > self._ratio * self.bytes_in:
                    raise DecodingError(
                        f"the body expands more than {self._ratio:g} times"
                        f" ({self.bytes_in} bytes gave {self.bytes_out} so far)"
                    )
                yield piece
            return
        layer = self._layers[level]
        for piece in pieces:
            yield from self._through(level + 1, layer.feed(piece))

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces ``data`` (the next raw bytes) yields; iterate them all before feeding more."""
        self.bytes_in += len(data)
        if not data:
            return iter(())
        return self._through(0, iter((data,)))

    def finish(self) -> Iterator[bytes]:
        """What is left once the raw body has ended; raises if any stream was cut short."""
        for level, layer in enumerate(self._layers):
            yield from self._through(level + 1, layer.finish())
