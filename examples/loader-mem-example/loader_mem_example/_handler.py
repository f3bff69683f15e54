"""The ``mem:`` protocol handler: what ``loader_protocol`` returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from loader import Channel, InvalidURL, NotFound, Phase, ProtocolHandler, Request, Response

#: Path -> (body, content type, document type for discovery or None).  A constant:
#: a plugin keeps its state on the handler, which each Loader owns.
FILES: dict[str, tuple[bytes, str, str | None]] = {
    "hello.txt": (b"hello from memory\n", "text/plain", None),
    "big.bin": (bytes(range(256)) * 1024, "application/octet-stream", None),
    "index.mem": (b"# a mem-index: one file per line\nlogo.png\nchime.wav\nhello.txt\n",
                  "text/x-mem-index", "mem-index"),
    "logo.png": (b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png", None),
    "chime.wav": (b"RIFF\x24\x00\x00\x00WAVE" + bytes(32), "audio/wav", None),
}

#: Bytes per chunk of the body stream: the core reports PROGRESS after each one.
CHUNK = 16 * 1024


class MemHandler(ProtocolHandler):
    """Serves :data:`FILES` for ``mem://example/<path>`` URLs."""

    schemes = ("mem",)

    @asynccontextmanager
    async def open(self, request: Request, channel: Channel) -> AsyncIterator[Response]:
        """Yield the file's :class:`~loader.Response`; the core reads its stream."""
        parts = urlsplit(request.url)
        if parts.netloc != "example":
            raise InvalidURL("the mem: scheme has one host, 'example'", url=request.url)
        await channel.emit(Phase.SENDING_REQUEST)
        entry = FILES.get(parts.path.lstrip("/"))
        await channel.emit(Phase.REQUEST_SENT)
        if entry is None:
            raise NotFound(url=request.url)  # "mem://example/x: not found"
        body, content_type, document = entry
        # Resume: honour Request.offset and say so in Response.offset; a handler
        # that cannot resume leaves offset at 0 and the core starts the file over.
        offset = request.offset if 0 < request.offset <= len(body) else 0
        await channel.emit(Phase.RESPONSE_RECEIVED, message=f"{len(body)} bytes in memory")
        yield Response(
            url=request.url,
            stream=_chunks(body, offset),
            content_type=content_type,
            length=len(body) - offset,  # bytes still to come: the progress bar's total
            offset=offset,
            document=document,  # "mem-index": discovery asks loader_extract for requisites
        )

    async def aclose(self) -> None:
        """Nothing to release: no connections, no pools."""


async def _chunks(body: bytes, offset: int) -> AsyncIterator[bytes]:
    """The body stream: an async iterator of bytes, read once, by the core."""
    for start in range(offset, len(body), CHUNK):
        yield body[start:start + CHUNK]
