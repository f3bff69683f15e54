"""Text items (type ``0``): undo RFC 1436's dot-stuffing, without any I/O.

RFC 1436 sends a text file as lines ending with a line holding a single
``.``; a line of the file that starts with ``.`` is sent with one more ``.``
in front.  :class:`TextDecoder` reverses that on a stream of chunks: it drops
the terminator line (and anything after it) and one leading ``.`` of a line
starting with ``..``.  Other bytes pass through untouched, including line ends
(many servers send bare LF, and neither stuff nor terminate; that is fine).
"""

from __future__ import annotations

__all__ = ["TextDecoder", "decode_text"]


class TextDecoder:
    """Incremental dot-stuffing decoder: :meth:`feed` chunks, then :meth:`close`."""

    def __init__(self) -> None:
        self.done = False
        self._pending = b""  # a line start beginning with "." that is not decided yet
        self._line_start = True

    def feed(self, data: bytes) -> bytes:
        """Decode a chunk; return the bytes that are certain so far."""
        if self.done or not data:
            return b""
        buf = self._pending + data if self._pending else data
        self._pending = b""
        out: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end:
            if self._line_start and buf[pos] == 0x2E:  # "."
                newline = buf.find(b"\n", pos)
                if newline == -1:
                    rest = buf[pos:]
                    if rest in (b".", b".\r"):
                        self._pending = rest  # maybe the terminator: wait for more
                    else:
                        out.append(rest[1:] if rest.startswith(b"..") else rest)
                        self._line_start = False
                    break
                line = buf[pos : newline + 1]
                if line in (b".\n", b".\r\n"):
                    self.done = True
                    break
                out.append(line[1:] if line.startswith(b"..") else line)
                pos = newline + 1
                continue
            # Jump to the next line that starts with "."; nothing before it changes.
            dot = buf.find(b"\n.", pos)
            if dot == -1:
                out.append(buf[pos:])
                self._line_start = buf.endswith(b"\n")
                break
            out.append(buf[pos : dot + 1])
            pos = dot + 1
            self._line_start = True
        return b"".join(out)

    def close(self) -> bytes:
        """End of stream: a pending lone ``.`` is a terminator without its line end."""
        self.done = True
        self._pending = b""
        return b""


def decode_text(data: bytes) -> bytes:
    """Decode a complete type-0 body."""
    decoder = TextDecoder()
    return decoder.feed(data) + decoder.close()
