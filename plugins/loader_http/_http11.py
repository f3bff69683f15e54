"""HTTP/1.1 on the wire without I/O: request heads out, response events in.

:class:`ResponseParser` is fed the bytes a connection delivers, in pieces of
any size, and hands out what they mean: a :class:`Head` (status line and
headers; interim 1xx heads too), pieces of the body (``bytes``), then
:data:`END`; :data:`NEED_DATA` when it cannot go on without more bytes.  It
never reads or writes a socket, so ``tests/test_http_parse.py`` feeds it
recorded responses byte by byte and at every split point.  Malformed input
raises :class:`BadResponse`, which the transport turns into httpx's
``RemoteProtocolError``.

Why our own and not h11 or httptools (figures in ``docs/architecture.md``):
behind this same interface h11 made a small request cost ~80 µs more CPU
in-process (scenario d: +60 %), far past the 10 % the loader allows itself;
httptools (llhttp) parses a head faster, but its response parser cannot be
told that a response answers a HEAD (llhttp's "skip the body" return is not
reachable through its callbacks), and it refuses bare-LF line ends and folded
headers that this parser, like h11, accepts.

What is accepted (RFC 9112, as a user agent may read it):

* heads end with a blank line, CRLF or bare LF; at most :data:`MAX_HEAD`
  bytes and :data:`MAX_HEADERS` lines; an obsolete folded line joins the
  value before it with one space (§5.2);
* a header name is a token; no CR (but the line's last), LF or NUL anywhere;
* body framing per §6.3: none for HEAD, 1xx, 204 and 304; ``chunked`` as the
  last transfer coding (anywhere else, or twice, is refused); a
  ``Content-Length`` whose values all agree; otherwise until the peer closes;
* chunk sizes are 1-16 hex digits (``0x5``, ``-1`` and ``+5`` are refused),
  extensions are skipped, trailers are read (and dropped) up to :data:`MAX_HEAD`
  bytes, each shaped like a header line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

__all__ = [
    "END", "MAX_HEAD", "MAX_HEADERS", "NEED_DATA", "BadHeader", "BadResponse", "Event", "Head",
    "ResponseParser", "framing", "head_end", "header_block", "parse_head",
]

#: Largest response head (status line and header lines with their line ends, not the empty
#: line), and largest chunk-size line or trailer block.
MAX_HEAD = 64 * 1024
#: Most header lines accepted in a head.
MAX_HEADERS = 256
_NO_BODY_STATUS = frozenset({204, 304})
_BAD_HEADER_CHARS = (b"\r", b"\n", b"\0")
#: RFC 9110 §5.6.2 ``tchar``: what a header name is made of.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HEX = b"0123456789abcdefABCDEF"


class BadResponse(ValueError):
    """The peer's bytes are not a well-formed HTTP/1.x response (the message says where)."""


class BadHeader(ValueError):
    """A request header line with a character HTTP/1.1 cannot carry (CR, LF, NUL)."""


class Head(NamedTuple):
    """A response's status line and header lines (raw, in order)."""

    version: bytes  # b"HTTP/1.1"
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: :meth:`ResponseParser.next_event`: feed more bytes (or the end of the stream) first.
NEED_DATA = _Marker("NEED_DATA")
#: :meth:`ResponseParser.next_event`: the response is complete.
END = _Marker("END")

Event = Head | bytes | _Marker


def head_end(buffer: bytes, start: int = 0) -> tuple[int, int]:
    """Where the head ends in ``buffer``: (end of head, start of body), or (-1, -1).

    The head ends at its first empty line: a line end (LF, or CRLF) followed by
    CRLF or a bare LF.  ``start`` skips what an earlier call already scanned (less
    the bytes an end can straddle), so a head arriving a byte at a time is not
    rescanned.  The end returned is that of the last header line, without its LF.
    """
    crlf = buffer.find(b"\n\r\n", start)
    # A bare-LF end counts only if it starts before the CRLF one: with the head found,
    # the body that came with it (up to a read's size) is not scanned again.
    lf = buffer.find(b"\n\n", start, crlf + 1 if crlf >= 0 else len(buffer))
    if lf >= 0:
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 3
    return -1, -1


def parse_head(head: bytes) -> Head:
    """Status line and headers of a response head (without its blank line)."""
    text = head[:-1] if head[-1:] == b"\r" else head  # the last line's CR (its LF ended the head)
    if b"\0" in text:
        raise BadResponse("NUL in the response head")
    crs = text.count(b"\r")
    crlfs = text.count(b"\r\n")
    if crs == crlfs == text.count(b"\n"):  # every line ends in CRLF: the usual head
        lines = text.split(b"\r\n")
    elif crs == crlfs:  # some end in a bare LF, and no CR is out of place
        lines = [line[:-1] if line[-1:] == b"\r" else line for line in text.split(b"\n")]
    else:
        raise BadResponse(f"bare CR in the response head {text[:80]!r}")
    status_line = lines[0]
    parts = status_line.split(b" ", 2)
    version = parts[0]
    if len(parts) < 2 or len(version) != 8 or not version.startswith(b"HTTP/1.") or not version[7:].isdigit():
        raise BadResponse(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise BadResponse(f"bad status code in {status_line[:80]!r}")
    reason = parts[2].strip() if len(parts) > 2 else b""
    if len(lines) > MAX_HEADERS + 1:
        raise BadResponse(f"more than {MAX_HEADERS} header lines")
    # tuple.__new__ in C: NamedTuple's own __new__ is a Python function, called per response
    return tuple.__new__(Head, (version, int(code), reason, _header_lines(lines[1:])))


def _header_lines(lines: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
    """Header lines (without line ends, CR- and NUL-free) as (name, value) pairs."""
    headers: list[tuple[bytes, bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):  # obsolete line folding: part of the previous value
            if not headers:
                raise BadResponse("continuation line before any header")
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, _TCHAR):
            raise BadResponse(f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip(b" \t")))
    return headers


def framing(method: str, head: Head) -> tuple[str, int, bool]:
    """How the body is delimited (RFC 9112 §6.3): (kind, length, reusable).

    ``kind`` is "none", "length", "chunked" or "close"; ``reusable``: whether the
    connection may carry another request once this body has been read.
    """
    lengths: list[bytes] = []
    codings: list[bytes] = []
    tokens: set[bytes] = set()
    status = head.status
    for name, value in head.headers:
        lname = name.lower()
        if lname == b"content-length":
            if b"," in value:
                lengths.extend(v.strip() for v in value.split(b","))
            else:
                lengths.append(value)  # stripped already, as every value is
        elif lname == b"transfer-encoding":
            codings.extend(v.strip().lower() for v in value.split(b","))
        elif lname == b"connection":
            tokens.update(v.strip().lower() for v in value.split(b","))
    if head.version == b"HTTP/1.0":
        reusable = b"keep-alive" in tokens and b"close" not in tokens
    else:
        reusable = b"close" not in tokens
    reusable = reusable and status != 101  # after a 101 the connection speaks another protocol
    if method == "HEAD" or status < 200 or status in _NO_BODY_STATUS:
        return "none", 0, reusable
    if codings:
        if b"chunked" in codings[:-1]:
            raise BadResponse(f"chunked is not the last transfer coding, once: {b', '.join(codings)[:80]!r}")
        if codings[-1] == b"chunked":
            return "chunked", 0, reusable and not lengths
        return "close", 0, False
    if lengths:
        first = lengths[0]
        if not first.isdigit() or len(first) > 18 or lengths.count(first) != len(lengths):
            raise BadResponse(f"bad Content-Length {b', '.join(lengths)[:80]!r}")
        return "length", int(first), reusable
    return "close", 0, False


class ResponseParser:
    """One response, to a request with ``method``, read from the bytes it is fed.

    Call :meth:`feed` with what the connection delivered (``b""`` at its end) and
    ``next_event()`` until it says :data:`NEED_DATA`.  Events: a :class:`Head` per
    interim (1xx but 101) response and one for the final one, then the body in
    pieces (``bytes``, never empty, each no larger than what was fed), then
    :data:`END` (again on every later call).  After :data:`END`, :attr:`buffer` holds
    the bytes that came after the response.  Raises :class:`BadResponse`.

    The bytes fed are kept with an offset to the first one not handed out: a read
    full of small chunks is walked, not copied once per chunk.
    """

    __slots__ = (
        "method", "eof", "_state", "kind", "reusable", "length", "remaining",
        "_data", "_at", "_scanned", "_trailer",
    )

    #: What reads the next event: a plain function per state, not a bound method (a bound
    #: method kept on the instance is a reference cycle, and the read it holds would wait for
    #: the cycle collector).
    _state: Callable[[ResponseParser], Event]

    #: The body's length ("length") or the current chunk's size ("chunked"), once known.
    length: int
    #: Of which this many bytes are still to come.
    remaining: int

    def __init__(self, method: str) -> None:
        self.method = method
        #: The peer has closed its side.
        self.eof = False
        self._state = ResponseParser._head
        #: The final head's framing (see :func:`framing`), "" until it is read.
        self.kind = ""
        #: Whether the connection may carry another request after :data:`END`.
        self.reusable = False
        self._data = b""
        self._at = 0  # _data[_at:] is what has not been handed out
        self._scanned = 0  # how far the head scan got; length, remaining, _trailer: set when needed

    @property
    def buffer(self) -> bytes:
        """Bytes fed and not yet handed out."""
        return self._data[self._at :] if self._at else self._data

    def next_event(self) -> Event:
        """The next :class:`Head`, body piece, :data:`END` or :data:`NEED_DATA`."""
        return self._state(self)

    def feed(self, data: bytes) -> None:
        """Bytes received; ``b""``: the peer closed the connection."""
        if not data:
            self.eof = True
        elif self._at < len(self._data):
            self._data = self._data[self._at :] + data
            self._at = 0
        else:
            self._data = data
            self._at = 0

    # -- the head ---------------------------------------------------------------------

    def _head(self) -> Event:
        buffer = self.buffer
        end, body_start = head_end(buffer, self._scanned)
        if end < 0:
            if len(buffer) >= MAX_HEAD + 2:  # an end that comes now is past MAX_HEAD
                raise BadResponse(f"response head larger than {MAX_HEAD} bytes")
            if self.eof:
                raise BadResponse(
                    "Server disconnected without sending a response."
                    if not buffer else "server closed the connection inside the response head"
                )
            self._scanned = max(0, len(buffer) - 3)
            return NEED_DATA
        if end >= MAX_HEAD:  # the head's lines, their line ends included, are more than MAX_HEAD
            raise BadResponse(f"response head larger than {MAX_HEAD} bytes")
        head = parse_head(buffer[:end])
        self._data = buffer
        self._at = body_start
        self._scanned = 0
        if head.status < 200 and head.status != 101:
            return head  # 100 Continue, 103 Early Hints …: the real response follows
        kind, length, self.reusable = framing(self.method, head)
        self.kind = kind
        if kind == "length":
            self.length = self.remaining = length
            self._state = ResponseParser._by_length
        elif kind == "chunked":
            self._state = ResponseParser._chunk_size
        elif kind == "close":
            self._state = ResponseParser._until_close
        else:
            self._state = ResponseParser._end
        return head

    # -- bodies -----------------------------------------------------------------------

    def _end(self) -> Event:
        return END

    def _take(self, most: int) -> bytes:
        """At most ``most`` of the bytes not handed out (there are some)."""
        data, at = self._data, self._at
        end = at + most
        if end >= len(data):
            self._data, self._at = b"", 0
            return data[at:] if at else data
        self._at = end
        return data[at:end]

    def _by_length(self) -> Event:
        remaining = self.remaining
        if not remaining:
            self._state = ResponseParser._end
            return END
        if self._at >= len(self._data):
            if self.eof:
                raise BadResponse(
                    f"peer closed the connection with {remaining} of {self.length} body bytes missing"
                )
            return NEED_DATA
        data = self._take(remaining)
        self.remaining = remaining - len(data)
        return data

    def _until_close(self) -> Event:
        if self._at < len(self._data):
            return self._take(len(self._data))
        if self.eof:
            self._state = ResponseParser._end
            return END
        return NEED_DATA

    def _chunk_line(self) -> bytes | None:
        """The next line of chunk framing (without its line end), or None: need more."""
        data, at = self._data, self._at
        end = data.find(b"\n", at)
        if end < 0 or end - at > MAX_HEAD:
            if len(data) - at > MAX_HEAD:
                raise BadResponse("chunk header line too long")
            if self.eof:
                raise BadResponse("peer closed the connection inside a chunked body")
            return None
        self._at = end + 1
        line = data[at : end - 1] if end > at and data[end - 1] == 13 else data[at:end]  # 13: CR
        if b"\r" in line or b"\0" in line:
            raise BadResponse(f"malformed line {line[:80]!r}")
        return line

    def _chunk_size(self) -> Event:
        line = self._chunk_line()
        if line is None:
            return NEED_DATA
        size_text = line.partition(b";")[0].strip(b" \t")
        if not size_text or len(size_text) > 16 or size_text.translate(None, _HEX):
            raise BadResponse(f"bad chunk size {line[:40]!r}")
        size = int(size_text, 16)
        if not size:
            self._trailer = 0
            self._state = ResponseParser._trailers
            return self._trailers()
        self.length = self.remaining = size
        self._state = ResponseParser._chunk_data
        return self._chunk_data()

    def _chunk_data(self) -> Event:
        data, at = self._data, self._at
        if at >= len(data):
            if self.eof:
                raise BadResponse(
                    f"peer closed the connection with {self.remaining} of {self.length} chunk bytes missing"
                )
            return NEED_DATA
        end = at + self.remaining
        if end < len(data):
            if data[end : end + 2] == b"\r\n":  # the chunk's line end came with it
                self._at = end + 2
                self._state = ResponseParser._chunk_size
            else:
                self._at = end
                self._state = ResponseParser._chunk_end
            self.remaining = 0
            return data[at:end]
        piece = self._take(self.remaining)
        self.remaining -= len(piece)
        if not self.remaining:
            self._state = ResponseParser._chunk_end
        return piece

    def _chunk_end(self) -> Event:
        line = self._chunk_line()
        if line is None:
            return NEED_DATA
        if line:
            raise BadResponse("chunk not followed by CRLF")
        self._state = ResponseParser._chunk_size
        return self._chunk_size()

    def _trailers(self) -> Event:
        while True:
            before = self._at
            line = self._chunk_line()
            if line is None:
                return NEED_DATA
            self._trailer += self._at - before
            if self._trailer > MAX_HEAD:
                raise BadResponse(f"trailers larger than {MAX_HEAD} bytes")
            if not line:
                self._state = ResponseParser._end
                return END
            if line[:1] not in (b" ", b"\t"):  # a folded trailer line continues the one before
                _header_lines((line,))


def header_block(raw: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, bool, bool]:
    """Request header lines as sent (through the blank line), and whether they say the
    body is chunked and ask to close the connection; raises :class:`BadHeader`.

    One pass over the headers serves all three (httpx's ``Headers.get`` scans them each time).
    """
    parts: list[bytes] = []
    values: dict[bytes, list[bytes]] = {b"transfer-encoding": [], b"connection": []}
    for name, value in raw:
        for bad in _BAD_HEADER_CHARS:
            if bad in name or bad in value:
                raise BadHeader(f"illegal character in header {name[:40]!r}")
        parts += (name, b": ", value, b"\r\n")
        wanted = values.get(name.lower())
        if wanted is not None:
            wanted.append(value)
    parts.append(b"\r\n")
    # Several lines of one header read as one comma-separated value, as Headers.get gives it.
    chunked = b", ".join(values[b"transfer-encoding"]).lower() == b"chunked"
    close = b", ".join(values[b"connection"]).lower() == b"close"
    return b"".join(parts), chunked, close
