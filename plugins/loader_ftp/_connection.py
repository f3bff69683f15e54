"""One FTP control connection on anyio streams, and its data connections.

This is where bytes meet the network, and only that: every decision of the
session (what to send next, what a reply means, EPSV or PASV, MLSD, LIST or
NLST, TYPE, REST, PROT, whether the connection can be reused) is
:class:`~loader_ftp._state.FtpState`'s, which never does I/O.  Replies are
parsed by :mod:`~loader_ftp._reply`, listings by :mod:`~loader_ftp._listing`.

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
    NetworkError,
    Phase,
    ProtocolError,
    Timeouts,
    open_connection,
)

from ._commands import parse_pwd, parse_size
from ._listing import Entry, LineSplitter, parse_list_line, parse_mlsd_line, parse_nlst_line
from ._reply import Reply
from ._state import Command, FtpState, Step, reply_error
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
_PARSERS: dict[str, Callable[[str], Entry | None]] = {
    "MLSD": parse_mlsd_line,
    "LIST": parse_list_line,
    "NLST": parse_nlst_line,
}


class ControlConnection:
    """A logged-in control connection.  Create it with :func:`connect`.

    The session's state (:attr:`state`) makes the decisions; this class moves
    the bytes, enforces timeouts and reports events.
    """

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
        self.state = FtpState(secure=target.scheme == "ftps", url=target.redacted)
        self.channel: Any = None
        self.timeouts = Timeouts()
        self.idle_since = 0.0
        self.pool_key: Any = None

    # -- binding to a request ------------------------------------------------

    def bind(self, channel: Any, url: str | None = None) -> None:
        """Report this connection's events to ``channel`` (or to nobody when ``None``)
        and name ``url`` in errors."""
        self.channel = channel
        if url is not None:
            self.state.url = url
        timeouts = getattr(channel, "timeouts", None)
        self.timeouts = timeouts if isinstance(timeouts, Timeouts) else Timeouts()

    @property
    def url(self) -> str | None:
        """The (password-free) URL named in errors."""
        return self.state.url

    @property
    def broken(self) -> bool:
        """True when the connection cannot be used any more."""
        return self.state.broken

    @property
    def reusable(self) -> bool:
        """True when the connection can go back to the pool."""
        return self.state.reusable

    @property
    def last_final(self) -> Reply | None:
        """The final reply of the last completed transfer (226 …)."""
        return self.state.last_final

    async def emit(self, phase: Phase, **data: Any) -> None:
        """Report a phase to the bound channel, if any."""
        if self.channel is not None:
            await self.channel.emit(phase, **data)

    # -- low-level I/O -------------------------------------------------------

    async def receive(self, stream: ByteStream, *, what: str = "control") -> bytes:
        """Receive bytes within the idle timeout; raises ``anyio.EndOfStream`` at EOF."""
        idle = self.timeouts.idle
        try:
            with anyio.fail_after(idle):
                return await stream.receive(CHUNK)
        except TimeoutError as exc:
            if what == "control":
                self.state.connection_lost()
            raise IdleTimeout(
                f"no data on the {what} connection for {idle:g} s", url=self.url
            ) from exc
        except anyio.EndOfStream:
            raise
        except _RECEIVE_ERRORS as exc:
            if what == "control":
                self.state.connection_lost()
            raise NetworkError(f"{what} connection broke: {_why(exc)}", url=self.url) from exc

    async def send_raw(self, data: bytes) -> None:
        """Send bytes on the control connection."""
        try:
            with anyio.fail_after(self.timeouts.idle):
                await self.stream.send(data)
        except TimeoutError as exc:
            self.state.connection_lost()
            raise IdleTimeout("sending on the control connection timed out", url=self.url) from exc
        except _RECEIVE_ERRORS as exc:
            self.state.connection_lost()
            raise NetworkError(f"control connection broke: {_why(exc)}", url=self.url) from exc

    async def read_reply(self) -> Reply:
        """The next control reply, reported as ``CTL_RESPONSE_RECEIVED``."""
        try:
            while (reply := self.state.next_reply()) is None:
                try:
                    data = await self.receive(self.stream)
                except anyio.EndOfStream:
                    data = b""
                self.state.receive_data(data)
        except anyio.get_cancelled_exc_class():
            # The reply will still come, and would answer the next command: not reusable.
            self.state.abandon()
            raise
        await self.emit(Phase.CTL_RESPONSE_RECEIVED, status=reply.code, message=reply.display)
        return reply

    async def send_command(self, verb: str, arg: str | None = None) -> None:
        """Send one command, between ``SENDING_REQUEST`` and ``REQUEST_SENT``."""
        line = self.state.send(verb, arg)  # refuses CR/LF before anything is sent
        shown = Command(verb, arg).shown
        await self.emit(Phase.SENDING_REQUEST, message=shown)
        try:
            await self.send_raw(line)
        except anyio.get_cancelled_exc_class():
            self.state.abandon()  # part of the command may have gone out
            raise
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
            raise reply_error(reply, Command(verb, arg).shown, self.url)
        return reply

    async def run(self, command: Command | None) -> None:
        """Send ``command`` (when the state asked for one) and require a 2xx reply."""
        if command is not None:
            await self.expect(command.verb, command.arg)

    # -- session state -------------------------------------------------------

    async def set_type(self, kind: str) -> None:
        """``TYPE A`` or ``TYPE I``, sent only when it changes."""
        await self.run(self.state.type_command(kind))

    async def pwd(self) -> str:
        """The server's current directory (``PWD``)."""
        return parse_pwd(await self.expect("PWD"))

    async def home_directory(self) -> str:
        """The login directory, asked once and remembered."""
        if self.state.home is None:
            self.state.home = await self.pwd()
        return self.state.home

    async def size(self, path: str) -> int | None:
        """``SIZE path`` (RFC 3659), or ``None`` when the server does not say."""
        reply = await self.command("SIZE", path)
        return parse_size(reply) if reply.ok else None

    async def feat(self) -> dict[str, str]:
        """The server's features (``FEAT``), asked once per connection."""
        if (feat := self.state.feat_command()) is not None:
            await self.command(feat.verb)
        return self.state.features or {}

    # -- data connections ----------------------------------------------------

    async def open_data(self) -> ByteStream:
        """Open a passive data connection: ``EPSV``, or ``PASV`` when EPSV is refused.

        The address in a PASV reply is never used: the data connection goes
        to the control connection's peer (what curl and ftplib do since
        PASV replies were abused to make clients connect elsewhere).
        """
        passive = None
        while passive is None:
            reply = await self.command(self.state.passive_command().verb)
            passive = self.state.passive_reply(reply)
        port = passive.port
        if passive.announced is not None and passive.announced != self.peer:
            await self.emit(
                Phase.INTERMEDIATE_RESPONSE,
                status=227,
                message=f"ignoring PASV address {passive.announced}; using the control peer {self.peer}",
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
        if not (self.state.protected_data and self.ssl_context is not None):
            return data
        ssl_object = self.stream.extra(TLSAttribute.ssl_object, None)
        session = getattr(ssl_object, "session", None)
        try:
            with anyio.fail_after(self.timeouts.connect):
                return await TLSDataStream.wrap(
                    data, context=self.ssl_context, hostname=self.target.host, session=session
                )
        except TimeoutError as exc:
            self.state.connection_lost()
            await anyio.aclose_forcefully(data)
            raise ConnectTimeout(
                "TLS handshake on the data connection timed out", url=self.url
            ) from exc
        except (ssl.SSLError, anyio.EndOfStream, *_RECEIVE_ERRORS) as exc:
            self.state.connection_lost()
            await anyio.aclose_forcefully(data)
            raise _tls_error("TLS on the data connection failed", exc, self.url) from exc

    async def start_transfer(
        self, verb: str, arg: str | None, data: ByteStream, *, expected: int | None = None
    ) -> Reply:
        """Send a transfer command (RETR, STOR, LIST …) over an open data connection.

        Returns the preliminary reply (1xx, or a 2xx from servers that skip
        it); on a failure reply the data connection is closed and the mapped
        error raised.  ``expected`` is the body size ``SIZE`` announced.
        """
        try:
            await self.send_command(verb, arg)
            await self.emit(Phase.RECEIVING_RESPONSE)
            reply = await self.read_reply()
            self.state.transfer_started(reply, expected)
        except BaseException:
            await anyio.aclose_forcefully(data)
            raise
        await self.emit(Phase.RESPONSE_RECEIVED, status=reply.code, message=reply.display)
        return reply

    async def retrieve(
        self, verb: str, arg: str | None, *, expected: int | None = None, ascii: bool = False
    ) -> DataTransfer:
        """Open a data connection and start ``verb arg``; read the body from the result."""
        data = await self.open_data()
        reply = await self.start_transfer(verb, arg, data, expected=expected)
        data = await self.secure_data(data)
        return DataTransfer(self, data, reply, ascii=ascii)

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
        resume = self.state.resume(offset, size, binary=binary)
        if resume is Step.WHOLE:
            return None, offset, 0
        if isinstance(resume, Command):
            reply = await self.command(resume.verb, resume.arg)
            honoured = self.state.resume_reply(reply, offset)
        expected = size - honoured if size is not None else None
        transfer = await self.retrieve("RETR", path, expected=expected, ascii=not binary)
        return transfer, honoured, expected

    async def read_entries(
        self,
        command: Command,
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
        verb = command.verb
        transfer = await self.retrieve(verb, command.arg)
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
        await self.set_type("A")
        await self.feat()
        while True:
            command = self.state.listing_command(path)
            try:
                return await self.read_entries(command, _PARSERS[command.verb])
            except LoaderError:
                if self.state.listing_command(path) == command:
                    raise  # not a refusal of this listing command: no other way to try

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
            self.state.abandon()  # the server still waits for data: only closing ends it
            await anyio.aclose_forcefully(data)
            raise
        if self.state.final_expected:
            await self.read_reply()
        self.state.transfer_finished(Command(verb, arg).shown)
        return sent

    # -- closing -------------------------------------------------------------

    async def quit(self) -> None:
        """Say ``QUIT`` (briefly) and close, reporting CLOSING_CONNECTION / CONNECTION_CLOSED."""
        await self.emit(Phase.CLOSING_CONNECTION)
        if not self.state.broken and not self.state.busy:
            with anyio.move_on_after(1), suppress(LoaderError, *_RECEIVE_ERRORS):
                await self.send_raw(self.state.send("QUIT"))
                await self.read_reply()
        await anyio.aclose_forcefully(self.stream)
        self.state.connection_lost()
        await self.emit(Phase.CONNECTION_CLOSED)

    async def abort(self) -> None:
        """Close at once, as when a transfer was abandoned mid-way."""
        self.state.connection_lost()
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
        self, conn: ControlConnection, data: ByteStream, reply: Reply, *, ascii: bool
    ) -> None:
        self.conn = conn
        self.data = data
        self.reply = reply
        self.done = False
        #: The reply that completed the transfer (226 …), once the body has ended.
        self.final: Reply | None = None
        self._decoder = CRLFDecoder() if ascii else None

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The body, chunk by chunk; raises a :mod:`loader` error if it ends badly."""
        conn = self.conn
        state = conn.state
        while True:
            try:
                chunk = await conn.receive(self.data, what="data")
            except anyio.EndOfStream:
                break
            try:
                state.body_received(len(chunk))
            except ProtocolError:
                await anyio.aclose_forcefully(self.data)
                raise
            if self._decoder is not None:
                chunk = self._decoder.decode(chunk)
            if chunk:
                yield chunk
        if self._decoder is not None and (tail := self._decoder.flush()):
            yield tail
        await anyio.aclose_forcefully(self.data)
        if state.final_expected:
            await conn.read_reply()
        self.final = state.transfer_finished("transfer")
        self.done = True

    async def aclose(self) -> None:
        """Close the data connection; an unfinished transfer makes the control connection unusable."""
        await anyio.aclose_forcefully(self.data)
        if not self.done:
            self.conn.state.abandon()


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
    """Drive the state's login conversation: read, send, or start TLS as it says."""
    login = conn.state.login(user, password)
    step: Command | Step | None = Step.READ
    while step is not None:
        reply: Reply | None
        if step is Step.READ:
            reply = await conn.read_reply()
        elif step is Step.START_TLS:
            await _start_tls(conn)
            reply = None
        else:
            assert isinstance(step, Command)
            reply = await conn.command(step.verb, step.arg)
        step = login.step(reply)


async def _start_tls(conn: ControlConnection) -> None:
    if conn.ssl_context is None:
        raise ConnectError("ftps needs a TLS context", url=conn.url)
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


def _tls_error(what: str, exc: BaseException, url: str | None) -> ConnectError:
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
