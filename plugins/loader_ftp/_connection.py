"""One FTP control connection on anyio streams, and its data connections.

This is where bytes meet the network; the protocol itself (reply parsing,
command building, listing formats) lives in the I/O-free modules beside it.

A :class:`ControlConnection` is bound to one request's channel at a time
(:meth:`ControlConnection.bind`), so every control reply is reported as a
``CTL_RESPONSE_RECEIVED`` event of the request that caused it, also when the
connection came from the pool.  Failures leave as :mod:`loader` errors naming
the (password-free) URL and the server's reply.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any

import anyio
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from loader import (
    ConnectError,
    ConnectTimeout,
    IdleTimeout,
    LoaderError,
    LoginFailed,
    NetworkError,
    NotFound,
    PermissionDenied,
    Phase,
    ProtocolError,
    ResponseError,
    Timeouts,
    open_connection,
)

from ._commands import (
    build_command,
    parse_epsv,
    parse_features,
    parse_pasv,
    parse_pwd,
    parse_size,
    show_command,
)
from ._listing import Entry, LineSplitter, parse_list_line, parse_mlsd_line, parse_nlst_line
from ._reply import Reply, ReplyParser
from ._text import CRLFDecoder
from ._tls import TLSDataStream
from ._url import FtpURL

__all__ = ["ControlConnection", "DataTransfer", "connect", "reply_error"]

#: Largest listing body (bytes) read before giving up; it streams, only entries are kept.
MAX_LISTING = 32 * 1024 * 1024
#: Most entries one listing may have: what bounds its memory (big mirrors' directories
#: have tens of thousands).
MAX_LISTING_ENTRIES = 100_000
CHUNK = 65536
#: Longest wait for the server's TLS close_notify after an upload (seconds).
_CLOSE_WAIT = 5.0

_RECEIVE_ERRORS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
    ssl.SSLError,
)
_PERMISSION_WORDS = (
    "permission",
    "denied",
    "privilege",
    "not allowed",
    "forbidden",
    "not authorized",
    "read-only",
    "access",
)
# Replies that mean "this server does not do that command": try another way.
NOT_IMPLEMENTED = frozenset({500, 501, 502, 504})


def reply_error(reply: Reply, command: str, url: str | None) -> LoaderError:
    """The :mod:`loader` error for a failure reply to ``command`` (as shown by ``show_command``)."""
    code = reply.code
    message = f"{command} failed: {reply}"
    text = reply.text.lower()
    if code == 421:
        return NetworkError(f"server closing the connection: {reply}", url=url)
    if code in (425,):
        return ConnectError(f"server could not open the data connection: {reply}", url=url)
    if code == 426:
        return NetworkError(f"transfer aborted by the server: {reply}", url=url)
    if code in (530, 532):
        return LoginFailed(message, url=url, status=code)
    if code in (550, 450, 553):
        if code == 553 or any(word in text for word in _PERMISSION_WORDS):
            return PermissionDenied(message, url=url, status=code)
        return NotFound(message, url=url, status=code)
    return ResponseError(message, url=url, status=code)


class ControlConnection:
    """A logged-in control connection.  Create it with :func:`connect`."""

    def __init__(
        self,
        stream: ByteStream,
        *,
        target: FtpURL,
        peer: str,
        user: str,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.stream: ByteStream = stream
        self.target = target
        #: The IP address the control connection reached: data connections go
        #: there, whatever a PASV reply says.
        self.peer = peer
        self.user = user
        self.ssl_context = ssl_context
        self.channel: Any = None
        self.url: str = target.redacted
        self.timeouts = Timeouts()
        self.broken = False
        self.busy = False  # a transfer is under way
        self.epsv = True
        self.features: dict[str, str] | None = None
        self.mlsd = True
        self.list_ok = True
        self.current_type: str | None = None
        self.home: str | None = None
        self.protected_data = False  # PROT P in force
        self.idle_since = 0.0
        self.pool_key: Any = None
        #: The final reply of the last completed transfer (226 …).
        self.last_final: Reply | None = None
        self._parser = ReplyParser()

    # -- binding to a request ------------------------------------------------

    def bind(self, channel: Any, url: str | None = None) -> None:
        """Report this connection's events to ``channel`` (or to nobody when ``None``)
        and name ``url`` in errors."""
        self.channel = channel
        if url is not None:
            self.url = url
        timeouts = getattr(channel, "timeouts", None)
        self.timeouts = timeouts if isinstance(timeouts, Timeouts) else Timeouts()

    async def emit(self, phase: Phase, **data: Any) -> None:
        """Report a phase to the bound channel, if any."""
        if self.channel is not None:
            await self.channel.emit(phase, **data)

    @property
    def reusable(self) -> bool:
        """True when the connection can go back to the pool."""
        return not (self.broken or self.busy or self._parser.pending)

    # -- low-level I/O -------------------------------------------------------

    async def receive(self, stream: ByteStream, *, what: str = "control") -> bytes:
        """Receive bytes within the idle timeout; raises ``anyio.EndOfStream`` at EOF."""
        idle = self.timeouts.idle
        try:
            with anyio.fail_after(idle):
                return await stream.receive(CHUNK)
        except TimeoutError as exc:
            if what == "control":
                self.broken = True
            raise IdleTimeout(
                f"no data on the {what} connection for {idle:g} s", url=self.url
            ) from exc
        except anyio.EndOfStream:
            raise
        except _RECEIVE_ERRORS as exc:
            if what == "control":
                self.broken = True
            raise NetworkError(f"{what} connection broke: {_why(exc)}", url=self.url) from exc

    async def send_raw(self, data: bytes) -> None:
        """Send bytes on the control connection."""
        try:
            with anyio.fail_after(self.timeouts.idle):
                await self.stream.send(data)
        except TimeoutError as exc:
            self.broken = True
            raise IdleTimeout("sending on the control connection timed out", url=self.url) from exc
        except _RECEIVE_ERRORS as exc:
            self.broken = True
            raise NetworkError(f"control connection broke: {_why(exc)}", url=self.url) from exc

    async def read_reply(self) -> Reply:
        """The next control reply, reported as ``CTL_RESPONSE_RECEIVED``."""
        try:
            while (reply := self._parser.next_reply()) is None:
                try:
                    data = await self.receive(self.stream)
                except anyio.EndOfStream as exc:
                    self.broken = True
                    raise NetworkError(
                        "the server closed the control connection", url=self.url
                    ) from exc
                self._parser.feed(data)
        except ProtocolError as exc:
            self.broken = True
            if exc.url is None:
                raise ProtocolError(exc.message, url=self.url) from exc
            raise
        await self.emit(Phase.CTL_RESPONSE_RECEIVED, status=reply.code, message=reply.display)
        if reply.code == 421:
            self.broken = True
        return reply

    async def send_command(self, verb: str, arg: str | None = None) -> None:
        """Send one command, between ``SENDING_REQUEST`` and ``REQUEST_SENT``."""
        line = build_command(verb, arg, url=self.url)  # refuses CR/LF before anything is sent
        shown = show_command(verb, arg)
        await self.emit(Phase.SENDING_REQUEST, message=shown)
        await self.send_raw(line)
        await self.emit(Phase.REQUEST_SENT, message=shown)

    async def command(self, verb: str, arg: str | None = None) -> Reply:
        """Send a command and return its first reply."""
        await self.send_command(verb, arg)
        return await self.read_reply()

    async def expect(
        self, verb: str, arg: str | None = None, *, ok: tuple[int, ...] = (2,)
    ) -> Reply:
        """Send a command; raise the mapped error unless the reply's first digit is in ``ok``."""
        reply = await self.command(verb, arg)
        if reply.kind not in ok:
            raise reply_error(reply, show_command(verb, arg), self.url)
        return reply

    # -- session state -------------------------------------------------------

    async def set_type(self, kind: str) -> None:
        """``TYPE A`` or ``TYPE I``, sent only when it changes."""
        kind = kind.upper()
        if self.current_type != kind:
            await self.expect("TYPE", kind)
            self.current_type = kind

    async def pwd(self) -> str:
        """The server's current directory (``PWD``)."""
        return parse_pwd(await self.expect("PWD"))

    async def home_directory(self) -> str:
        """The login directory, asked once and remembered."""
        if self.home is None:
            self.home = await self.pwd()
        return self.home

    async def size(self, path: str) -> int | None:
        """``SIZE path`` (RFC 3659), or ``None`` when the server does not say."""
        reply = await self.command("SIZE", path)
        return parse_size(reply) if reply.ok else None

    async def feat(self) -> dict[str, str]:
        """The server's features (``FEAT``), asked once per connection."""
        if self.features is None:
            reply = await self.command("FEAT")
            self.features = parse_features(reply)
            if "MLST" not in self.features:
                self.mlsd = False
        return self.features

    # -- data connections ----------------------------------------------------

    async def open_data(self) -> ByteStream:
        """Open a passive data connection: ``EPSV``, or ``PASV`` when EPSV is refused.

        The address in a PASV reply is never used: the data connection goes
        to the control connection's peer (what curl and ftplib do since
        PASV replies were abused to make clients connect elsewhere).
        """
        port: int | None = None
        if self.epsv:
            reply = await self.command("EPSV")
            if reply.code == 229:
                port = parse_epsv(reply)
            elif reply.code in NOT_IMPLEMENTED or reply.code == 522:
                self.epsv = False
            else:
                raise reply_error(reply, "EPSV", self.url)
        if port is None:
            reply = await self.command("PASV")
            if reply.code != 227:
                raise reply_error(reply, "PASV", self.url)
            host, port = parse_pasv(reply)
            if host != self.peer:
                await self.emit(
                    Phase.INTERMEDIATE_RESPONSE,
                    status=227,
                    message=f"ignoring PASV address {host}; using the control peer {self.peer}",
                )
        try:
            with anyio.fail_after(self.timeouts.connect):
                data: ByteStream = await anyio.connect_tcp(self.peer, port)
        except TimeoutError as exc:
            raise ConnectTimeout(
                f"data connection to {self.peer}:{port} timed out", url=self.url
            ) from exc
        except OSError as exc:
            raise ConnectError(
                f"data connection to {self.peer}:{port} failed: {_why(exc)}", url=self.url
            ) from exc
        return data

    async def secure_data(self, data: ByteStream) -> ByteStream:
        """TLS on a data connection under ``PROT P``, resuming the control connection's session.

        Called after the transfer command's preliminary reply, not on connect:
        proftpd and pure-ftpd start TLS on the data connection only once the
        command has arrived.  The session is read now rather than after AUTH
        TLS because with TLS 1.3 it arrives in a ticket after the handshake,
        processed only when the control connection was read from.
        """
        if not (self.protected_data and self.ssl_context is not None):
            return data
        ssl_object = self.stream.extra(TLSAttribute.ssl_object, None)
        session = getattr(ssl_object, "session", None)
        try:
            with anyio.fail_after(self.timeouts.connect):
                return await TLSDataStream.wrap(
                    data, context=self.ssl_context, hostname=self.target.host, session=session
                )
        except TimeoutError as exc:
            self.broken = True
            await anyio.aclose_forcefully(data)
            raise ConnectTimeout(
                "TLS handshake on the data connection timed out", url=self.url
            ) from exc
        except (ssl.SSLError, anyio.EndOfStream, *_RECEIVE_ERRORS) as exc:
            self.broken = True
            await anyio.aclose_forcefully(data)
            raise _tls_error("TLS on the data connection failed", exc, self.url) from exc

    async def start_transfer(self, verb: str, arg: str | None, data: ByteStream) -> Reply:
        """Send a transfer command (RETR, STOR, LIST …) over an open data connection.

        Returns the preliminary reply (1xx, or a 2xx from servers that skip
        it); on a failure reply the data connection is closed and the mapped
        error raised.
        """
        try:
            await self.send_command(verb, arg)
            await self.emit(Phase.RECEIVING_RESPONSE)
            reply = await self.read_reply()
        except BaseException:
            await anyio.aclose_forcefully(data)
            raise
        if reply.kind not in (1, 2):
            await anyio.aclose_forcefully(data)
            raise reply_error(reply, show_command(verb, arg), self.url)
        await self.emit(Phase.RESPONSE_RECEIVED, status=reply.code, message=reply.display)
        return reply

    async def retrieve(
        self, verb: str, arg: str | None, *, expected: int | None = None, ascii: bool = False
    ) -> DataTransfer:
        """Open a data connection and start ``verb arg``; read the body from the result."""
        data = await self.open_data()
        reply = await self.start_transfer(verb, arg, data)
        self.busy = True
        data = await self.secure_data(data)
        return DataTransfer(self, data, reply, expected=expected, ascii=ascii)

    async def start_download(
        self, path: str, *, offset: int = 0, binary: bool = True
    ) -> tuple[DataTransfer | None, int, int | None]:
        """Start ``RETR path`` from byte ``offset`` (``REST``) in binary or ASCII mode.

        Returns the transfer (``None`` when ``offset`` already equals the
        size: nothing is missing), the offset the server honoured (0 when it
        cannot resume, or when the local copy is larger than the file), and the
        number of bytes to expect (from ``SIZE``; ``None`` in ASCII mode or
        when the server does not say).
        """
        await self.set_type("I" if binary else "A")
        size = await self.size(path) if binary else None
        honoured = 0
        if offset > 0 and binary and (size is None or offset <= size):
            if offset == size:
                return None, offset, 0
            reply = await self.command("REST", str(offset))
            if reply.code == 350:
                honoured = offset
            elif reply.code not in NOT_IMPLEMENTED:
                raise reply_error(reply, f"REST {offset}", self.url)
        expected = size - honoured if size is not None else None
        transfer = await self.retrieve("RETR", path, expected=expected, ascii=not binary)
        return transfer, honoured, expected

    async def read_entries(
        self,
        verb: str,
        arg: str | None,
        parse_line: Callable[[str], Entry | None],
        *,
        limit: int = MAX_LISTING,
    ) -> list[Entry]:
        """Run a listing command and parse its body line by line as it streams.

        Only the current partial line is held (at most ``MAX_LISTING_LINE``
        bytes, see :class:`~loader_ftp._listing.LineSplitter`); a body past
        ``limit`` bytes or ``MAX_LISTING_ENTRIES`` entries is refused, so an
        endless listing ends with an error.
        """
        transfer = await self.retrieve(verb, arg)
        splitter = LineSplitter()
        entries: list[Entry] = []
        total = 0
        try:
            async for chunk in transfer.chunks():
                total += len(chunk)
                if total > limit:
                    raise ProtocolError(f"{verb} reply larger than {limit} bytes", url=self.url)
                try:
                    lines = splitter.feed(chunk)
                except ProtocolError as exc:
                    raise ProtocolError(f"{verb}: {exc.message}", url=self.url) from exc
                entries.extend(e for e in map(parse_line, lines) if e is not None)
                if len(entries) > MAX_LISTING_ENTRIES:
                    raise ProtocolError(
                        f"{verb} reply has more than {MAX_LISTING_ENTRIES} entries", url=self.url
                    )
            entries.extend(e for e in map(parse_line, splitter.flush()) if e is not None)
        finally:
            await transfer.aclose()
        return entries

    async def listing(self, path: str) -> list[Entry]:
        """The entries of directory ``path`` (``""``: the current one).

        ``MLSD`` when FEAT offers MLST, else (or when MLSD is refused)
        ``LIST`` parsed as Unix or DOS lines, else ``NLST``.
        """
        arg = path or None
        await self.set_type("A")
        await self.feat()
        if self.mlsd:
            try:
                return await self.read_entries("MLSD", arg, parse_mlsd_line)
            except LoaderError as exc:
                if getattr(exc, "status", None) not in NOT_IMPLEMENTED:
                    raise
                self.mlsd = False
        if self.list_ok:
            try:
                return await self.read_entries("LIST", arg, parse_list_line)
            except LoaderError as exc:
                if getattr(exc, "status", None) not in NOT_IMPLEMENTED:
                    raise
                self.list_ok = False
        return await self.read_entries("NLST", arg, parse_nlst_line)

    async def store(
        self,
        verb: str,
        arg: str,
        source: AsyncIterator[bytes],
        *,
        progress: Callable[[int], Awaitable[None]] | None = None,
    ) -> int:
        """Upload with ``STOR``/``APPE``: send every chunk of ``source``, return the byte count.

        ``progress`` is awaited with the running total after every chunk.
        """
        data = await self.open_data()
        await self.start_transfer(verb, arg, data)
        self.busy = True
        data = await self.secure_data(data)
        sent = 0
        try:
            async for chunk in source:
                if not chunk:
                    continue
                try:
                    with anyio.fail_after(self.timeouts.idle):
                        await data.send(chunk)
                except TimeoutError as exc:
                    raise IdleTimeout(
                        "sending on the data connection timed out", url=self.url
                    ) from exc
                except _RECEIVE_ERRORS as exc:
                    raise NetworkError(f"data connection broke: {_why(exc)}", url=self.url) from exc
                sent += len(chunk)
                if progress is not None:
                    await progress(sent)
            await _close_upload(data, self.timeouts.idle)
        except BaseException:
            self.broken = True  # the server still waits for data: only closing ends it
            await anyio.aclose_forcefully(data)
            raise
        final = self.last_final = await self.read_reply()
        self.busy = False
        if not final.ok:
            raise reply_error(final, show_command(verb, arg), self.url)
        return sent

    # -- closing -------------------------------------------------------------

    async def quit(self) -> None:
        """Say ``QUIT`` (briefly) and close, reporting CLOSING_CONNECTION / CONNECTION_CLOSED."""
        await self.emit(Phase.CLOSING_CONNECTION)
        if not self.broken and not self.busy:
            with anyio.move_on_after(1), suppress(LoaderError, *_RECEIVE_ERRORS):
                await self.send_raw(build_command("QUIT"))
                await self.read_reply()
        await anyio.aclose_forcefully(self.stream)
        self.broken = True
        await self.emit(Phase.CONNECTION_CLOSED)

    async def abort(self) -> None:
        """Close at once, as when a transfer was abandoned mid-way."""
        self.broken = True
        await self.emit(Phase.CLOSING_CONNECTION)
        await anyio.aclose_forcefully(self.stream)
        await self.emit(Phase.CONNECTION_CLOSED)


async def _close_upload(data: ByteStream, timeout: float | None) -> None:
    """End an upload: on TLS, say close_notify so the server knows the file is whole.

    Servers answer with their own close_notify (or just close); one that does
    neither is not waited for long, since the final reply tells the outcome anyway.
    """
    if isinstance(data, TLSDataStream):
        wait = min(timeout or _CLOSE_WAIT, _CLOSE_WAIT)
        with anyio.move_on_after(wait), suppress(*_RECEIVE_ERRORS, anyio.EndOfStream):
            await data.unwrap()
    await anyio.aclose_forcefully(data)


class DataTransfer:
    """A download under way: iterate :meth:`chunks`, then :meth:`aclose`.

    The final control reply is read when the data connection ends (kept as
    :attr:`final`); a failure reply, a connection that broke, or fewer bytes
    than ``SIZE`` announced raise from :meth:`chunks`, so a truncated body is
    never taken for a whole one.  More bytes than announced raise as soon as
    they arrive: the data connection is not read any further.
    """

    def __init__(
        self,
        conn: ControlConnection,
        data: ByteStream,
        reply: Reply,
        *,
        expected: int | None,
        ascii: bool,
    ) -> None:
        self.conn = conn
        self.data = data
        self.reply = reply
        self.expected = expected
        self.received = 0
        self.done = False
        #: The reply that completed the transfer (226 …), once the body has ended.
        self.final: Reply | None = None
        self._decoder = CRLFDecoder() if ascii else None

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The body, chunk by chunk; raises a :mod:`loader` error if it ends badly."""
        conn = self.conn
        while True:
            try:
                chunk = await conn.receive(self.data, what="data")
            except anyio.EndOfStream:
                break
            self.received += len(chunk)
            if self.expected is not None and self.received > self.expected:
                # SIZE is trusted both ways: a body that grows past it is not the file
                # that was announced (or the server is feeding us without end).
                conn.broken = True
                await anyio.aclose_forcefully(self.data)
                raise ProtocolError(
                    f"the server sent more than the {self.expected} bytes SIZE announced",
                    url=conn.url,
                )
            if self._decoder is not None:
                chunk = self._decoder.decode(chunk)
            if chunk:
                yield chunk
        if self._decoder is not None and (tail := self._decoder.flush()):
            yield tail
        await anyio.aclose_forcefully(self.data)
        if self.reply.kind == 1:
            final = conn.last_final = await conn.read_reply()
            if not final.ok:
                conn.busy = False
                raise reply_error(final, "transfer", conn.url)
            self.final = final
        else:
            self.final = self.reply
        if self.expected is not None and self.received < self.expected:
            conn.broken = True
            raise NetworkError(
                f"transfer ended after {self.received} of {self.expected} bytes", url=conn.url
            )
        conn.busy = False
        self.done = True

    async def aclose(self) -> None:
        """Close the data connection; an unfinished transfer makes the control connection unusable."""
        await anyio.aclose_forcefully(self.data)
        if not self.done:
            self.conn.broken = True


async def connect(
    target: FtpURL,
    *,
    user: str,
    password: str,
    channel: Any,
    ssl_context: ssl.SSLContext | None,
) -> ControlConnection:
    """Resolve, connect, read the greeting, secure (``ftps``) and log in.

    Reports RESOLVING_NAME / NAME_RESOLVED (for a host name),
    CONNECTING_TO_SERVER / CONNECTED_TO_SERVER, and every reply.
    """
    url = target.redacted
    # AUTH TLS comes later, on the control connection: connect in the clear.
    stream = await open_connection(channel, target.host, target.port, url=url)
    peer = str(stream.extra(SocketAttribute.remote_address)[0])
    conn = ControlConnection(stream, target=target, peer=peer, user=user, ssl_context=ssl_context)
    conn.bind(channel, url)
    try:
        await _greet_and_login(conn, user=user, password=password)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await conn.abort()
        raise
    return conn


async def _greet_and_login(conn: ControlConnection, *, user: str, password: str) -> None:
    reply = await conn.read_reply()
    while reply.code == 120:  # "service ready in nnn minutes"
        reply = await conn.read_reply()
    if reply.code != 220:
        raise reply_error(reply, "connect", conn.url)
    if conn.target.scheme == "ftps":
        await _start_tls(conn)
    reply = await conn.command("USER", user)
    if reply.code == 331:
        reply = await conn.command("PASS", password)
    if reply.code == 332:
        raise LoginFailed(
            f"login as {user!r} needs an account (ACCT): {reply}", url=conn.url, status=332
        )
    if reply.kind != 2:
        if reply.code in (421,):
            raise reply_error(reply, "login", conn.url)
        raise LoginFailed(f"login as {user!r} refused: {reply}", url=conn.url, status=reply.code)
    if conn.target.scheme == "ftps":
        await conn.expect("PBSZ", "0")
        await conn.expect("PROT", "P")
        conn.protected_data = True


async def _start_tls(conn: ControlConnection) -> None:
    reply = await conn.command("AUTH", "TLS")
    if reply.code != 234:
        raise ResponseError(
            f"the server does not offer explicit FTPS (AUTH TLS): {reply}",
            url=conn.url,
            status=reply.code,
        )
    assert conn.ssl_context is not None
    try:
        with anyio.fail_after(conn.timeouts.connect):
            conn.stream = await TLSStream.wrap(
                conn.stream,
                hostname=conn.target.host,
                ssl_context=conn.ssl_context,
                standard_compatible=False,
            )
    except TimeoutError as exc:
        raise ConnectTimeout("TLS handshake timed out", url=conn.url) from exc
    except (ssl.SSLError, *_RECEIVE_ERRORS) as exc:
        raise _tls_error("TLS handshake failed", exc, conn.url) from exc
    except anyio.EndOfStream as exc:
        raise ConnectError(
            "the server closed the connection during the TLS handshake", url=conn.url
        ) from exc


def _tls_error(what: str, exc: BaseException, url: str) -> ConnectError:
    """A failed TLS handshake as a ``ConnectError``, final when TLS itself failed: a
    rejected certificate or a refused handshake fails the same way when retried (as
    over HTTP); a connection that broke meanwhile may be retried."""
    error = ConnectError(f"{what}: {_why(exc)}", url=url)
    if isinstance(exc, ssl.SSLError):
        error.transient = False
    return error


def _why(exc: BaseException) -> str:
    """A short reason for a low-level error (anyio's wrappers often carry none themselves)."""
    while not str(exc) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        text = f"certificate verification failed: {exc.verify_message or text}"
    return text
