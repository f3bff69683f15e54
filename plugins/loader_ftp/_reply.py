"""FTP control replies, without I/O: bytes in, :class:`Reply` objects out.

RFC 959 section 4.2: a reply is ``ddd text`` on one line, or a multi-line
reply that opens with ``ddd-text`` and runs until a line that starts with the
same three digits followed by a space.  Lines in between may hold anything
(many servers prefix them with ``ddd-`` too, some with a space, some with
nothing).  Lines end in CRLF; a bare LF is accepted because real servers send
it.

:class:`ReplyParser` accepts bytes in chunks of any size (one byte at a time
works) and yields every complete reply; anything that is not a reply (a NUL
byte anywhere, a line past :data:`MAX_LINE`) raises :class:`~loader.ProtocolError`
instead of being guessed at.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from loader import ProtocolError

__all__ = ["Reply", "ReplyParser", "decode_text"]

#: Longest reply line we accept (bytes); RFC 959 sets none, servers stay far below.
MAX_LINE = 8192
#: Most lines one multi-line reply may have (a FEAT or HELP reply has a few dozen).
MAX_LINES = 4096


def decode_text(raw: bytes) -> str:
    """Decode protocol text as UTF-8, keeping undecodable bytes (RFC 2640 asks for UTF-8).

    ``surrogateescape`` keeps a Latin-1 file name from an old server intact, so
    it can be sent back byte for byte in a later command.
    """
    return raw.decode("utf-8", errors="surrogateescape")


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete control reply: a three-digit code and its text lines.

    ``lines`` holds the text of every line without the code prefix of the
    first and last line (a one-line reply has one line).
    """

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """All lines joined by newlines."""
        return "\n".join(self.lines)

    @property
    def display(self) -> str:
        """The text made safe to print (undecodable bytes replaced)."""
        return self.text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")

    @property
    def kind(self) -> int:
        """The first digit: 1 preliminary, 2 complete, 3 intermediate, 4 transient, 5 permanent."""
        return self.code // 100

    @property
    def ok(self) -> bool:
        """True for a positive completion (2xx)."""
        return self.kind == 2

    def __str__(self) -> str:
        return f"{self.code} {self.display}"


class ReplyParser:
    """Incremental reply parser: :meth:`feed` bytes, then take replies from :meth:`next_reply`."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._code: int | None = None  # code of the multi-line reply in progress
        self._lines: list[str] = []
        self._replies: deque[Reply] = deque()

    @property
    def pending(self) -> bool:
        """True while bytes of an unfinished reply are buffered."""
        return bool(self._buffer) or self._code is not None

    @property
    def has_replies(self) -> bool:
        """True while a complete reply waits to be taken with :meth:`next_reply`."""
        return bool(self._replies)

    def feed(self, data: bytes) -> None:
        """Add received bytes; complete replies become available from :meth:`next_reply`."""
        self._buffer += data
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise ProtocolError(f"reply line longer than {MAX_LINE} bytes")
                if b"\0" in self._buffer:  # known bad before its line ends
                    raise ProtocolError(f"NUL byte in a reply: {_show(bytes(self._buffer))}")
                return
            if end > MAX_LINE:
                raise ProtocolError(f"reply line longer than {MAX_LINE} bytes")
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if line.endswith(b"\r"):
                line = line[:-1]
            self._line(line)

    def next_reply(self) -> Reply | None:
        """The oldest complete reply not yet taken, or ``None``."""
        return self._replies.popleft() if self._replies else None

    def _line(self, line: bytes) -> None:
        if b"\0" in line:
            # RFC 959 replies are text; a NUL would cut the line short for a C reader
            # and can hide what follows it from a person reading a log.
            raise ProtocolError(f"NUL byte in a reply: {_show(line)}")
        if self._code is None:
            code, sep = _code_of(line)
            if code is None:
                raise ProtocolError(f"not an FTP reply: {_show(line)}")
            text = decode_text(line[4:])
            if sep == b"-":
                self._code = code
                self._lines = [text]
            else:
                self._replies.append(Reply(code, (text,)))
            return
        code, sep = _code_of(line)
        if code == self._code and sep != b"-":
            self._lines.append(decode_text(line[4:]))
            self._replies.append(Reply(code, tuple(self._lines)))
            self._code = None
            self._lines = []
            return
        if len(self._lines) >= MAX_LINES:
            raise ProtocolError(f"multi-line reply longer than {MAX_LINES} lines")
        if code == self._code:  # "ddd-more text": drop the repeated prefix
            line = line[4:]
        self._lines.append(decode_text(line))


def _code_of(line: bytes) -> tuple[int | None, bytes]:
    """The reply code and separator (``b" "``, ``b"-"`` or ``b""``) a line starts with."""
    head = line[:3]
    if len(head) != 3 or not head.isdigit() or head[:1] not in b"12345":
        return None, b""
    sep = line[3:4]
    if sep not in (b" ", b"-", b""):
        return None, b""
    return int(head), sep


def _show(line: bytes) -> str:
    text = line[:80].decode("utf-8", "replace")
    return repr(text) + ("…" if len(line) > 80 else "")
