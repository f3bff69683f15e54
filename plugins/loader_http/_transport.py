"""A lean HTTP/1.1 keep-alive transport under httpx: asyncio's own connections, anyio's on trio.

httpx stays the interface (redirect targets, auth, cookies, decoding, proxies
through its mounts); only the connection pool underneath is replaced, because
httpcore's pool costs far more per request than the protocol does (
its bookkeeping grows with the pool, h11 adds ~50 µs a request).  What this
transport does not do it hands to ``fallback`` (httpx's standard transport):
HTTPS when HTTP/2 is on (ALPN and h2 are httpcore's), any scheme but
http/https, and a TLS peer that insists on h2.

How a request flows::

    handle_async_request ─▶ idle connection for (scheme, host, port)?  (LIFO, not
        │                    expired, socket not readable = not closed by the peer)
        │                    else connect (trace: connection.connect_tcp.*)
        ▼
    write head + body  ─▶ _http11.ResponseParser fed what the socket delivers:
        head (1xx skipped), framing per RFC 9112 §6.3 (no body | Content-Length |
        chunked | until close), body pieces, end
        ▼
    httpx.Response whose stream yields the body; when the body was read to its
    end and both sides allow it, the connection goes back to the pool, else it
    is closed.  A reused connection that fails before any byte of the response
    arrives (the peer closed it while idle) is retried once on a new one, for
    requests whose body can be sent again.

On asyncio a connection is opened by the loop's public ``create_connection``
with this module's own protocol (``_Wire``), TLS added by ``loop.start_tls``:
that skips anyio's per-read cancel scope and poller changes.  On trio anyio's
streams carry it (``anyio.connect_tcp``, ``TLSStream``).

The trace extension gets the same event names as httpcore's, so the handler's
phase mapping works for both transports.  Errors are httpx's own exception
types, chained to their cause (the parser's :class:`~._http11.BadResponse` becomes
``RemoteProtocolError``).  Memory per connection is bounded: a head is at most
``_http11.MAX_HEAD`` bytes and the body is streamed in the socket's chunks.
"""

from __future__ import annotations

import asyncio
import functools
import os
import select
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple

import anyio
from anyio.abc import ByteStream, SocketAttribute

from loader._net import is_ip
from loader._upload import IDEMPOTENT_METHODS

from ._http11 import END, NEED_DATA, BadHeader, BadResponse, Head, ResponseParser, header_block
from ._lazy_httpx import httpx

__all__ = ["ANSWERED", "Exchange", "FastTransport", "NotHandled", "as_httpx_response", "nothing"]

READ_SIZE = 256 * 1024
_HAPPY_EYEBALLS_DELAY = 0.25  # as anyio.connect_tcp races a name's addresses

#: httpcore's ``trace`` extension: called at each step of an exchange, its awaitable awaited.
#: The HTTP handler's own may return ``None`` for a step it has nothing to do for (nothing
#: is awaited then: a request's few steps cost no awaitable when nobody listens).
Trace = Callable[[str, dict[str, Any]], Awaitable[None] | None]


async def _trace(trace: Trace, name: str, info: dict[str, Any]) -> None:
    """One step of ``trace`` (the per-request steps of :meth:`FastTransport._exchange_on` inline it)."""
    step = trace(name, info)
    if step is not None:
        await step


class _Stale(Exception):
    """A reused connection died before the response began: safe to send again."""


def _why(exc: BaseException) -> str:
    """The most telling cause: anyio wraps the OSError (or a group of them, one per address)."""
    current: BaseException | None = exc
    for _ in range(8):
        if isinstance(current, BaseExceptionGroup):
            current = current.exceptions[-1]
        elif isinstance(current, ssl.SSLError):  # an OSError too, but its errno says nothing
            return f"TLS error: {current.reason or current}"
        elif isinstance(current, OSError) and (current.errno or current.strerror):
            # asyncio words a refusal "Connect call failed (…)": the errno says what happened
            return os.strerror(current.errno) if current.errno else str(current.strerror)
        elif current is not None and current.__cause__ is not None:
            current = current.__cause__
        else:
            break
    text = str(exc)
    if text:
        return text
    return "connection closed" if isinstance(exc, anyio.BrokenResourceError) else type(exc).__name__


class NotHandled(Exception):
    """The request belongs to the fallback transport (raised by :meth:`FastTransport.exchange`)."""


class _How(NamedTuple):
    """What :meth:`FastTransport.exchange` needs of a request, its head already written out."""

    method: str
    head: bytes  # request line and headers, ending with the blank line
    chunked: bool  # the body goes out in chunks
    close: bool  # the request asks to close the connection afterwards
    stream: Any  # the body: None, an httpx.ByteStream, or any (async) iterable of bytes
    timeouts: dict[str, float | None]  # httpx's "timeout" extension: connect, read, write
    sni: str | None  # the TLS server name, when not the host
    trace: Trace | None  # httpcore-style trace callback
    request: httpx.Request | None  # handed to trace callbacks


#: A response as :meth:`FastTransport.exchange` gives it: HTTP version (b"HTTP/1.1"),
#: status, reason phrase, header lines (raw, in order) and the body.
Exchange = tuple[bytes, int, bytes, list[tuple[bytes, bytes]], "_Body"]

#: A request extension: an :data:`Exchange` already received for this request (by the
#: direct lane), which :meth:`FastTransport.handle_async_request` hands back once
#: instead of sending, so httpx's client does the rest (cookies, the next request).
ANSWERED = "loader.answered"


def as_httpx_response(answer: Exchange, request: httpx.Request | None = None) -> httpx.Response:
    """What :meth:`FastTransport.exchange` returned, as httpx's response (for ``request``)."""
    version, status, reason, headers, body = answer
    return httpx.Response(
        status, headers=headers, stream=_httpx_stream_type()(body), request=request,
        extensions={"http_version": version, "reason_phrase": reason, "network_stream": body.connection},
    )


@functools.cache
def _httpx_stream_type() -> type:
    """httpx's stream type around a :class:`_Body` (defined once httpx is loaded)."""

    class HttpxBody(httpx.AsyncByteStream):  # type: ignore[misc, name-defined]
        def __init__(self, body: _Body) -> None:
            self.body = body

        def __aiter__(self) -> AsyncIterator[bytes]:
            return self.body.__aiter__()

        async def aclose(self) -> None:
            await self.body.aclose()

    return HttpxBody


class _Connection:
    """One TCP (or TLS) connection."""

    __slots__ = ("stream", "origin", "idle_since", "sock", "reused")

    def __init__(self, stream: ByteStream | None, origin: tuple[str, str, int], sock: Any = None) -> None:
        self.stream = stream  # type: ignore[assignment]  # None: the loop's own (_LoopConnection)
        self.origin = origin
        self.idle_since = 0.0
        self.sock = sock if stream is None else stream.extra(SocketAttribute.raw_socket, None)
        self.reused = False

    def get_extra_info(self, name: str) -> Any:
        """What httpcore's network stream answers, for trace consumers."""
        if name == "server_addr":
            return self.stream.extra(SocketAttribute.remote_address, None)
        if name == "client_addr":
            return self.stream.extra(SocketAttribute.local_address, None)
        if name == "ssl_object":
            return self.stream.extra(anyio.streams.tls.TLSAttribute.ssl_object, None)
        if name == "socket":
            return self.sock
        return None

    def read_ahead(self) -> int:
        """Bytes the event loop has read from the socket that this side has not taken yet.

        Not known behind anyio's streams (trio's own receive reads only when asked)."""
        return 0

    def looks_alive(self) -> bool:
        """An idle connection is dead (or out of step) if its socket has anything to read."""
        if self.sock is None:
            return True  # nothing to look at: trust it, a stale one is retried
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    async def receive(self, timeout: float | None) -> bytes:
        """Some bytes from the peer (``b""`` at end of stream)."""
        try:
            if timeout is None:
                return await self.stream.receive(READ_SIZE)
            with anyio.fail_after(timeout):
                return await self.stream.receive(READ_SIZE)
        except anyio.EndOfStream:
            return b""
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"no data for {timeout:g} s") from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:  # SSLError too
            raise httpx.ReadError(_why(exc)) from exc

    async def send(self, data: bytes, timeout: float | None) -> None:
        try:
            if timeout is None:
                await self.stream.send(data)
            else:
                with anyio.fail_after(timeout):
                    await self.stream.send(data)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(f"could not send for {timeout:g} s") from exc
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:  # SSLError too
            raise httpx.WriteError(_why(exc)) from exc

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.stream.aclose()
            except (OSError, anyio.BrokenResourceError, ssl.SSLError):
                pass


#: A wait's timer sets this as the waiter's result (a result, not an exception: never "unretrieved").
_TIMED_OUT = object()


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)


def _wake(waiter: asyncio.Future[Any] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class _Wire(asyncio.Protocol):
    """The asyncio protocol of a plain TCP connection, in place of anyio's.

    anyio opens the connection (its name resolution, happy eyeballs, errors) and
    still closes it; in between, bytes flow through here.  anyio's stream costs,
    per read, a cancel scope for the timeout and two changes to the poller (it
    resumes reading, then pauses again); here reading stays on, a read that
    finds bytes waiting costs nothing, and a wait costs one future and one timer.
    The loop stops reading once ``READ_SIZE`` bytes wait unread, so memory per
    connection stays bounded however fast the peer sends.
    """

    def __init__(self, transport: asyncio.Transport, chunks: deque[bytes], eof: bool, error: BaseException | None) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.chunks = chunks
        self.buffered = sum(map(len, chunks))
        self.eof = eof
        self.error = error
        self.paused = True  # anyio leaves a connection's reading paused
        self.reader: asyncio.Future[Any] | None = None
        self.writer: asyncio.Future[Any] | None = None  # set while the transport's buffer is full

    @classmethod
    def fresh(cls) -> _Wire:
        """A protocol for ``loop.create_connection`` (its transport arrives in ``connection_made``)."""
        return cls(None, deque(), False, None)  # type: ignore[arg-type]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.paused = False  # a new transport reads from the start

    # -- the event loop's side ---------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if type(data) is not bytes:  # the proactor loop (Windows) may hand over a bytearray
            data = bytes(data)
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= READ_SIZE and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        _wake(self.reader)

    def eof_received(self) -> None:
        self.eof = True
        _wake(self.reader)  # returning None lets the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = self.error or exc
        _wake(self.reader)
        _wake(self.writer)

    def pause_writing(self) -> None:
        self.writer = self.loop.create_future()

    def resume_writing(self) -> None:
        writer, self.writer = self.writer, None
        _wake(writer)

    # -- the connection's side -------------------------------------------------------

    async def _wait(self, waiter: asyncio.Future[Any], timeout: float | None) -> bool:
        """Await ``waiter`` for at most ``timeout`` seconds; False when the time ran out."""
        if timeout is None:
            return await waiter is not _TIMED_OUT
        timer = self.loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter is not _TIMED_OUT
        finally:
            timer.cancel()

    async def receive(self, timeout: float | None) -> bytes:
        if not self.chunks and not self.eof:
            self.reader = self.loop.create_future()
            try:
                if not await self._wait(self.reader, timeout):
                    raise httpx.ReadTimeout(f"no data for {timeout:g} s")
            finally:
                self.reader = None
        chunks = self.chunks
        if not chunks:
            if self.error is not None:
                raise httpx.ReadError(_why(self.error)) from self.error
            return b""
        data = chunks.popleft() if len(chunks) == 1 else b"".join([chunks.popleft() for _ in range(len(chunks))])
        self.buffered = 0
        if self.paused and not self.eof:
            self.paused = False
            self.transport.resume_reading()
        return data

    async def send(self, data: bytes, timeout: float | None) -> None:
        if self.transport.is_closing():
            if self.error is not None:
                raise httpx.WriteError(_why(self.error)) from self.error
            raise httpx.WriteError("connection closed")
        self.transport.write(data)
        if self.writer is not None and not await self._wait(self.writer, timeout):
            raise httpx.WriteTimeout(f"could not send for {timeout:g} s")
        if self.error is not None:
            raise httpx.WriteError(_why(self.error)) from self.error


class _WireConnection(_Connection):
    """A plain TCP connection on asyncio: reads and writes go through its :class:`_Wire`."""

    __slots__ = ("wire",)

    def __init__(self, stream: ByteStream | None, origin: tuple[str, str, int], wire: _Wire, sock: Any = None) -> None:
        super().__init__(stream, origin, sock)
        self.wire = wire

    def read_ahead(self) -> int:
        return self.wire.buffered

    def looks_alive(self) -> bool:
        # The protocol hears of a close (or stray bytes) at the loop's every poll:
        # no need to ask the socket again.
        wire = self.wire
        return not wire.chunks and not wire.eof and not wire.transport.is_closing()

    async def receive(self, timeout: float | None) -> bytes:
        return await self.wire.receive(timeout)

    async def send(self, data: bytes, timeout: float | None) -> None:
        await self.wire.send(data, timeout)


class _LoopConnection(_WireConnection):
    """A TCP (or TLS) connection opened by the asyncio loop itself.

    ``anyio.connect_tcp`` costs ~170 µs a connection (a task group and an event
    for happy eyeballs, a stream object) against ~35 µs for
    ``loop.create_connection``, which also resolves a host name and races its
    addresses (``happy_eyeballs_delay``) as anyio would; the loop's ``OSError``
    says the same as anyio's cause.
    """

    __slots__ = ()

    def __init__(self, transport: asyncio.Transport, wire: _Wire, origin: tuple[str, str, int]) -> None:
        super().__init__(None, origin, wire, transport.get_extra_info("socket"))

    def get_extra_info(self, name: str) -> Any:
        if name == "server_addr":
            return self.wire.transport.get_extra_info("peername")
        if name == "client_addr":
            return self.wire.transport.get_extra_info("sockname")
        if name == "ssl_object":
            return self.wire.transport.get_extra_info("ssl_object")
        if name == "socket":
            return self.sock
        return None

    async def aclose(self) -> None:
        transport = self.wire.transport
        if not transport.is_closing():
            transport.close()


def _asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop, or None on another event loop (trio)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _request_head(request: httpx.Request) -> tuple[bytes, bool, bool]:
    """The request's head, and whether its body is chunked and it asks to close the connection."""
    try:
        headers, chunked, close = header_block(request.headers.raw)
    except BadHeader as exc:
        raise httpx.LocalProtocolError(str(exc)) from None
    line = b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path or b"/")
    return line + headers, chunked, close


async def nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


class _Body:
    """A response body read from its connection; gives the connection back when done.

    An async iterable of bytes with ``aclose``; httpx gets it wrapped in its own stream type
    (:func:`as_httpx_response`), so this module needs no httpx until a response does.
    """

    def __init__(
        self, transport: FastTransport, conn: _Connection, parser: ResponseParser,
        reusable: bool, timeout: float | None,
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        #: The connection it arrived on (httpx's ``network_stream`` extension).
        self.connection = conn
        self._parser = parser
        self._reusable = reusable
        self._timeout = timeout
        self._complete = parser.kind == "none"

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._conn is None or self._complete:
            return nothing()
        return _Pieces(self, self._conn)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if not (
            self._complete and self._reusable and not self._parser.buffer and self._transport._release(conn)
        ):
            await conn.aclose()


class _Pieces:
    """A body's pieces, as its parser hands them out, reading when it needs more.

    Not an async generator: the loop's hooks track each of those (a weak set entry
    and its removal), and the buffered case, a small body that came with its head,
    needs no await at all.
    """

    __slots__ = ("_body", "_conn", "_parser")

    def __init__(self, body: _Body, conn: _Connection) -> None:
        self._body = body
        self._conn = conn
        self._parser = body._parser

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        parser = self._parser
        while True:
            try:
                event = parser.next_event()
            except BadResponse as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event.__class__ is bytes:
                return event  # type: ignore[return-value]
            if event is END:
                self._body._complete = True
                raise StopAsyncIteration
            parser.feed(await self._conn.receive(self._body._timeout))


class FastTransport:
    """HTTP/1.1 with a keep-alive pool per origin; everything else goes to ``fallback``.

    ``ssl_context`` (or a function making it, called on the first HTTPS
    connection) verifies HTTPS peers; ``http2=True`` sends HTTPS to
    ``fallback`` (which negotiates HTTP/2).  At most ``max_idle`` idle
    connections are kept, each for ``keepalive_expiry`` seconds.  The loader
    bounds how many requests run at once, so the pool never queues.
    """

    def __init__(
        self,
        *,
        fallback: httpx.AsyncBaseTransport | None = None,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext] | None = None,
        http2: bool = False,
        max_idle: int = 128,
        keepalive_expiry: float = 5.0,
        local_address: str | None = None,
    ) -> None:
        self.fallback = fallback
        #: Bind new connections here (``"0.0.0.0"``: IPv4 only, ``"::"``: IPv6 only).
        self.local_address = local_address
        self._ssl_context = ssl_context
        self._http2 = http2
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._idle_count = 0
        #: Connections opened so far (tests and benchmarks read it).
        self.connections_opened = 0

    # -- pool ------------------------------------------------------------------------

    async def _checkout(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if now - conn.idle_since < self._expiry and conn.looks_alive():
                conn.reused = True
                return conn
            await conn.aclose()
        return None

    def _release(self, conn: _Connection) -> bool:
        """Keep a connection for the next request to its origin (False: the pool is full)."""
        if self._idle_count >= self._max_idle:
            return False
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)
        self._idle_count += 1
        return True

    async def __aenter__(self) -> FastTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        self._idle_count = 0
        for conns in idle.values():
            for conn in conns:
                await conn.aclose()
        if self.fallback is not None:
            await self.fallback.aclose()

    async def _connect(self, origin: tuple[str, str, int], how: _How) -> _Connection:
        scheme, host, port = origin
        timeout = how.timeouts.get("connect")
        trace = how.trace
        info: dict[str, Any] = {"host": host, "port": port, "local_address": None, "timeout": timeout}
        if trace is not None:
            await _trace(trace, "connection.connect_tcp.started", info)
        deadline = None if timeout is None else anyio.current_time() + timeout
        local = self.local_address
        if local and is_ip(host) and (":" in host) != (":" in local):
            # The socket call would only say "Invalid argument".
            only = "IPv6" if ":" in local else "IPv4"
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: not an {only} address ({only} only)")
        try:
            with anyio.fail_after(timeout):
                loop = _asyncio_loop()
                if loop is not None:
                    wire = _Wire.fresh()
                    options: dict[str, Any] = {"local_addr": (local, 0)} if local else {}
                    if not is_ip(host) and isinstance(loop, asyncio.BaseEventLoop):
                        options["happy_eyeballs_delay"] = _HAPPY_EYEBALLS_DELAY  # uvloop: one address after another
                    transport, _ = await loop.create_connection(lambda: wire, host, port, **options)
                    conn: _Connection = _LoopConnection(transport, wire, origin)
                else:
                    stream: ByteStream = await anyio.connect_tcp(host, port, local_host=self.local_address)
                    conn = _Connection(stream, origin)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except (OSError, anyio.BrokenResourceError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {_why(exc)}") from exc
        self.connections_opened += 1
        try:
            # Reported as soon as TCP is up, before TLS (as httpcore does): a trace that
            # refuses the address reached (deny_private) stops it before a byte is sent.
            if trace is not None:
                await _trace(trace, "connection.connect_tcp.complete", {**info, "return_value": conn})
            if scheme == "https":
                conn = await self._start_tls(conn, host, how, deadline)
        except BaseException:
            await conn.aclose()
            raise
        return conn

    async def _start_tls(self, conn: _Connection, host: str, how: _How, deadline: float | None) -> _Connection:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        elif callable(self._ssl_context):  # built on first use
            self._ssl_context = self._ssl_context()
        sni = how.sni or host
        if how.trace is not None:
            await _trace(how.trace, "connection.start_tls.started", {"server_hostname": sni})
        try:
            with anyio.fail_after(None if deadline is None else max(0.0, deadline - anyio.current_time())):
                if isinstance(conn, _LoopConnection):
                    wire = conn.wire
                    secure = await asyncio.get_running_loop().start_tls(
                        wire.transport, wire, self._ssl_context, server_hostname=sni
                    )
                    if secure is None:
                        raise ConnectionResetError("connection closed during the TLS handshake")
                    wire.transport = secure  # type: ignore[assignment]
                    wire.paused = False
                    return conn
                stream = await anyio.streams.tls.TLSStream.wrap(
                    conn.stream, hostname=sni, ssl_context=self._ssl_context, standard_compatible=False
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"TLS with {host}:{conn.origin[2]} timed out") from exc
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"SSL: {exc}") from exc
        except (OSError, anyio.BrokenResourceError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{conn.origin[2]}: {_why(exc)}") from exc
        return _Connection(stream, conn.origin)

    # -- requests --------------------------------------------------------------------

    def serves(self, scheme: str) -> bool:
        """Whether this transport (not ``fallback``) takes requests for ``scheme``."""
        return scheme == "http" or (scheme == "https" and not self._http2)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        extensions = request.extensions
        if ANSWERED in extensions:  # popped: a redirect's next request shares the dict
            return as_httpx_response(extensions.pop(ANSWERED))
        url = request.url
        scheme = url.scheme
        if not self.serves(scheme):
            return await self.fallback.handle_async_request(request)
        origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        head, chunked, close = _request_head(request)
        how = _How(
            request.method, head, chunked, close, request.stream, extensions.get("timeout", {}),
            extensions.get("sni_hostname"), extensions.get("trace"), request,
        )
        try:
            answer = await self.exchange(origin, how)
        except NotHandled:
            return await self.fallback.handle_async_request(request)
        return as_httpx_response(answer)

    async def exchange(self, origin: tuple[str, str, int], how: _How) -> Exchange:
        """One request on a pooled or new connection to ``origin``: the response's head and body.

        The request-level interface under :meth:`handle_async_request`, without
        httpx's request and response objects (the HTTP handler's direct lane uses
        it).  Raises :class:`NotHandled` when the request belongs to ``fallback``
        (a TLS peer that chose h2), and httpx's exceptions for every failure.
        """
        replayable = how.method in IDEMPOTENT_METHODS and (how.stream is None or isinstance(how.stream, httpx.ByteStream))
        conn = await self._checkout(origin)
        if conn is not None:
            try:
                return await self._exchange(conn, how)
            except _Stale as exc:
                if not replayable:
                    raise httpx.RemoteProtocolError(f"Server disconnected without sending a response ({exc})") from exc.__cause__
        conn = await self._connect(origin, how)
        ssl_object = conn.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            await conn.aclose()  # a shared context offered h2 and the peer took it
            raise NotHandled("the peer chose HTTP/2")
        return await self._exchange(conn, how)  # a new connection is never stale

    async def _exchange(self, conn: _Connection, how: _How) -> Exchange:
        try:
            return await self._exchange_on(conn, how)
        except BaseException:
            await conn.aclose()
            raise

    async def _exchange_on(self, conn: _Connection, how: _How) -> Exchange:
        write_timeout = how.timeouts.get("write")
        read_timeout = how.timeouts.get("read")
        trace = how.trace
        request = how.request
        chunked = how.chunked
        # One info for the steps that name only the request (a tracer is not to keep or change it).
        info = {"request": request}
        if trace is not None:
            step = trace("http11.send_request_headers.started", info)
            if step is not None:
                await step
        stream = how.stream
        try:
            if stream is None:
                await conn.send(how.head, write_timeout)
            elif isinstance(stream, httpx.ByteStream) and not chunked:
                body = b"".join([part for part in stream])  # type: ignore[union-attr]
                await conn.send(how.head + body, write_timeout)
            else:
                await conn.send(how.head, write_timeout)
                async for part in stream:  # type: ignore[union-attr]
                    if part:
                        await conn.send(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part, write_timeout)
                if chunked:
                    await conn.send(b"0\r\n\r\n", write_timeout)
        except httpx.WriteError as exc:
            # A server may answer before it has read the body (a 413, a 401) and close
            # (RFC 9112 §9.6): that answer, not the broken pipe, is what the caller needs.
            parser = ResponseParser(how.method)
            early = None if stream is None else await self._early_answer(conn, parser, read_timeout)
            if early is None:
                if conn.reused:
                    raise _Stale(str(exc)) from exc
                raise
            how = how._replace(close=True)
        else:
            early = None
            parser = ResponseParser(how.method)
            if trace is not None:
                step = trace("http11.send_request_body.complete", info)
                if step is not None:
                    await step
        if trace is not None:
            step = trace("http11.receive_response_headers.started", info)
            if step is not None:
                await step
        head = early or await self._read_head(conn, parser, read_timeout)
        if trace is not None:
            step = trace("http11.receive_response_headers.complete", {"request": request, "return_value": head})
            if step is not None:
                await step
        reusable = parser.reusable and not how.close
        return head.version, head.status, head.reason, head.headers, _Body(self, conn, parser, reusable, read_timeout)

    async def _early_answer(self, conn: _Connection, parser: ResponseParser, timeout: float | None) -> Head | None:
        """The head of a response that came while the body was still being sent, else None."""
        try:
            return await self._read_head(conn, parser, timeout)
        except (_Stale, httpx.HTTPError):
            return None

    async def _read_head(self, conn: _Connection, parser: ResponseParser, timeout: float | None) -> Head:
        """The final response's head (interim 1xx ones skipped), read through ``parser``."""
        while True:
            try:
                # A parser with no bytes yet needs some: not asked, it would only say so.
                event = parser.next_event() if parser.buffer or parser.eof else NEED_DATA
            except BadResponse as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is NEED_DATA:
                try:
                    data = await conn.receive(timeout)
                except httpx.ReadError as exc:
                    if conn.reused and not parser.buffer:
                        raise _Stale(str(exc)) from exc
                    raise
                if not data and conn.reused and not parser.buffer:
                    raise _Stale("closed while idle")
                parser.feed(data)
                continue
            conn.reused = False  # a response has begun: no silent resend from here
            if parser.kind:
                return event  # type: ignore[return-value]
            # 100 Continue, 103 Early Hints …: the real response follows
