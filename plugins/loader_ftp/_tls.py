"""TLS on an FTPS data connection, resuming the control connection's session.

Servers that insist on session reuse (proftpd by default, vsftpd's
``require_ssl_reuse``, pure-ftpd) accept a data connection only when its TLS
handshake resumes the control connection's session: the proof that both come
from the same client.  anyio's ``TLSStream.wrap`` has no way to pass a session,
so this is a small TLS stream of our own over any anyio byte stream, built on
the standard library's public memory-BIO API (``SSLContext.wrap_bio(...,
session=)``).  It handshakes when asked to, which the caller does only after
the server's preliminary reply to RETR/LIST/STOR: several servers begin TLS on
the data connection only then, and a client that handshakes on connect waits
for a server that waits for the command.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSAttribute

__all__ = ["TLSDataStream"]

T = TypeVar("T")


class TLSDataStream(ByteStream):
    """A client TLS stream over ``transport``; build it with :meth:`wrap`.

    An end of the connection without TLS's close_notify counts as the end of
    the stream (FTP servers commonly just close the data connection; the
    transfer's final reply and ``SIZE`` tell whether the data is whole).
    """

    def __init__(
        self,
        transport: ByteStream,
        ssl_object: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        self.transport = transport
        self.ssl_object = ssl_object
        self._incoming = incoming
        self._outgoing = outgoing

    @classmethod
    async def wrap(
        cls,
        transport: ByteStream,
        *,
        context: ssl.SSLContext,
        hostname: str | None,
        session: ssl.SSLSession | None = None,
    ) -> TLSDataStream:
        """Handshake over ``transport`` as a client, offering ``session`` for resumption."""
        incoming = ssl.MemoryBIO()
        outgoing = ssl.MemoryBIO()
        ssl_object = context.wrap_bio(
            incoming, outgoing, server_side=False, server_hostname=hostname, session=session
        )
        stream = cls(transport, ssl_object, incoming, outgoing)
        await stream._run(ssl_object.do_handshake)
        return stream

    @property
    def session_reused(self) -> bool:
        """True when the handshake resumed the offered session."""
        return self.ssl_object.session_reused

    async def _flush(self) -> None:
        if self._outgoing.pending:
            await self.transport.send(self._outgoing.read())

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """Call an SSLObject method, moving bytes between it and the transport until it is done."""
        while True:
            try:
                result = func(*args)
            except ssl.SSLWantReadError:
                await self._flush()
                try:
                    data = await self.transport.receive()
                except anyio.EndOfStream:
                    self._incoming.write_eof()
                else:
                    self._incoming.write(data)
            except ssl.SSLWantWriteError:
                await self._flush()
            else:
                await self._flush()
                return result

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Up to ``max_bytes`` of plaintext; ``anyio.EndOfStream`` at the end."""
        try:
            data = await self._run(self.ssl_object.read, max_bytes)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError) as exc:
            raise anyio.EndOfStream from exc
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Send plaintext."""
        await self._run(self.ssl_object.write, item)

    async def send_eof(self) -> None:
        """TLS cannot half-close; use :meth:`unwrap` to say close_notify."""
        raise NotImplementedError("TLS does not support half-closing; use unwrap()")

    async def unwrap(self) -> None:
        """Say close_notify and wait for the server's (an upload is whole only then)."""
        try:
            await self._run(self.ssl_object.unwrap)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            pass

    async def aclose(self) -> None:
        """Close the transport (without waiting for the peer)."""
        await self.transport.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """The transport's attributes, plus ``TLSAttribute.ssl_object``."""
        return {
            **self.transport.extra_attributes,
            TLSAttribute.ssl_object: lambda: self.ssl_object,
        }
