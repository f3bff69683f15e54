"""ASCII-mode (``TYPE A``) line endings, without I/O."""

from __future__ import annotations

__all__ = ["CRLFDecoder"]


class CRLFDecoder:
    """Turn the CRLF line ends of an ASCII-mode transfer into LF, chunk by chunk.

    A CR at the end of one chunk is held back until the next chunk shows
    whether an LF follows; :meth:`flush` releases it at the end.
    """

    def __init__(self) -> None:
        self._held_cr = False

    def decode(self, chunk: bytes) -> bytes:
        """The chunk with CRLF pairs (including one split across chunks) made LF."""
        if self._held_cr:
            chunk = b"\r" + chunk
            self._held_cr = False
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
            self._held_cr = True
        return chunk.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        """Whatever is still held back (a lone final CR)."""
        held, self._held_cr = self._held_cr, False
        return b"\r" if held else b""
