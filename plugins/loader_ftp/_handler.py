"""The ``ftp``/``ftps`` protocol handler and its pool of control connections.

One :class:`FtpHandler` exists per :class:`~loader.Loader` (made by the
``loader_protocol`` hook).  It keeps idle, logged-in control connections per
``(scheme, host, port, user)``; concurrent requests to one server each take
their own control connection, so data connections run in parallel up to the
loader's per-host limit, and a finished transfer hands its connection to the
next request without a new login.

What a request gets:

* a file: ``TYPE I`` (``TYPE A`` for ``;type=a``, with CRLF made LF),
  ``SIZE`` for :attr:`Response.length`, ``REST`` when the core resumes
  (:attr:`Request.offset`), then ``RETR`` over an ``EPSV``/``PASV`` data
  connection.  An HTML file is served as ``text/html`` with
  ``document="html"``, so the core treats it as a page.  The response's
  status is the preliminary reply (150) while the body streams and the final
  one (226) once it has ended, which is what the core reports.
* a directory (path ending in ``/``, ``;type=d``, or a file name the server
  says is a directory, reported as a redirect to the ``/`` URL): the listing
  as an ``ftp-listing`` document, one JSON object per entry and line (see
  :func:`~loader_ftp._listing.dump_listing`).
* a ``PUT`` with a body (``Request.content``; ``loader get -T FILE ftp://…``):
  the body streamed with ``STOR`` as ``loader ftp put`` does, each chunk sent
  reported as ``PROGRESS`` with ``message="sending"``; the response is empty,
  with the final reply (226).  Any other method is refused.
"""

from __future__ import annotations

import mimetypes
import os
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio

from loader import (
    Channel,
    LoaderError,
    NetworkError,
    NotFound,
    PermissionDenied,
    Phase,
    PluginContext,
    ProtocolHandler,
    Request,
    Response,
    make_ssl_context,
    record_resource,
)

from ._connection import ControlConnection, DataTransfer, connect
from ._listing import LISTING_CONTENT_TYPE, dump_listing
from ._url import ANONYMOUS, FtpURL, netrc_login

__all__ = ["FtpHandler", "content_type_for"]

PoolKey = tuple[str, str, int, str, str]

_DOCUMENTS = {"text/html": "html", "application/xhtml+xml": "html", "text/css": "css"}


def content_type_for(name: str) -> str | None:
    """The content type a file name's extension suggests (``index.html`` → ``text/html``)."""
    lowered = name.lower()
    if lowered.endswith((".html", ".htm", ".shtml")):
        return "text/html"
    guessed, _ = mimetypes.guess_type(lowered, strict=False)
    return guessed


class FtpHandler(ProtocolHandler):
    """Fetches ``ftp://`` and ``ftps://`` URLs; owns the loader's FTP connection pool.

    ``max_idle`` idle connections are kept per server and user, each for at
    most ``idle_ttl`` seconds (servers drop idle clients after a few minutes).
    ``netrc_file`` overrides ``$NETRC`` / ``~/.netrc``.  ``ssl_context``
    overrides the context built from the loader's ``verify`` option
    (``verify`` may also be a CA bundle path or an ``ssl.SSLContext``).
    """

    schemes = ("ftp", "ftps")
    #: A PUT's body is stored (``STOR``); other methods are refused with a clear error.
    sends_bodies = True

    def __init__(
        self,
        context: PluginContext | None = None,
        *,
        max_idle: int = 4,
        idle_ttl: float = 60.0,
        netrc_file: str | os.PathLike[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.context = context
        self.max_idle = max_idle
        self.idle_ttl = idle_ttl
        self.netrc_file = netrc_file
        self._ssl_context = ssl_context
        self._idle: dict[PoolKey, list[ControlConnection]] = {}
        self._closed = False

    # -- credentials and TLS ---------------------------------------------------

    def login_for(self, target: FtpURL) -> tuple[str, str]:
        """``(user, password)`` for a URL: its own, else ``~/.netrc``, else anonymous."""
        if target.password is not None:
            return target.user or ANONYMOUS[0], target.password
        found = netrc_login(target.host, target.user, self.netrc_file)
        if found is not None:
            return found
        if target.user is None:
            return ANONYMOUS
        return target.user, ""

    def ssl_context_for(self, channel: Any) -> ssl.SSLContext:
        """The TLS context for ``ftps``: the loader's (from its ``verify``) unless one was given."""
        if self._ssl_context is not None:
            return self._ssl_context
        context = getattr(channel, "context", None) or self.context
        return context.ssl_context if context is not None else make_ssl_context(True)

    # -- the pool --------------------------------------------------------------

    def _key(self, target: FtpURL, login: tuple[str, str]) -> PoolKey:
        return (target.scheme, target.host.lower(), target.port, login[0], login[1])

    async def acquire(self, target: FtpURL, channel: Any) -> tuple[ControlConnection, bool]:
        """A logged-in connection for ``target`` bound to ``channel``, and whether it was reused."""
        login = self.login_for(target)
        key = self._key(target, login)
        idle = self._idle.get(key, [])
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if now - conn.idle_since <= self.idle_ttl and not conn.broken:
                conn.bind(channel, target.redacted)
                return conn, True
            conn.bind(None)
            await conn.abort()
        context = self.ssl_context_for(channel) if target.scheme == "ftps" else None
        conn = await connect(
            target, user=login[0], password=login[1], channel=channel, ssl_context=context
        )
        conn.pool_key = key
        return conn, False

    async def release(self, conn: ControlConnection) -> None:
        """Give a connection back: to the pool when it is clean, else close it."""
        if not conn.reusable:
            await conn.abort()  # the request's own failure: its events say so
            return
        idle = self._idle.setdefault(conn.pool_key, [])
        if self._closed or len(idle) >= self.max_idle:
            # Closing a clean connection is the pool's business, not the request's:
            # its QUIT and 221 are reported to nobody, so a request's events end
            # with what happened to it.
            conn.bind(None)
            await conn.quit()
            return
        conn.bind(None)
        conn.idle_since = time.monotonic()
        idle.append(conn)

    @asynccontextmanager
    async def lease(self, target: FtpURL, channel: Any) -> AsyncIterator[ControlConnection]:
        """A connection for the duration of a block; back to the pool (or closed) after it."""
        conn, _ = await self.acquire(target, channel)
        try:
            yield conn
        finally:
            with anyio.CancelScope(shield=True):
                await self.release(conn)

    async def aclose(self) -> None:
        """QUIT every idle connection (briefly, in parallel)."""
        self._closed = True
        pools, self._idle = self._idle, {}
        async with anyio.create_task_group() as tg:
            for conns in pools.values():
                for conn in conns:
                    conn.bind(None)
                    tg.start_soon(conn.quit)

    # -- requests --------------------------------------------------------------

    @asynccontextmanager
    async def open(self, request: Request, channel: Channel) -> AsyncIterator[Response]:
        """Fetch a file or a listing, or store a PUT's body; see the module docstring."""
        target = FtpURL.parse(request.url)
        if request.method != "GET" or request.content is not None:
            yield await self._store(target, request, channel)
            return
        retried = False
        while True:
            conn, reused = await self.acquire(target, channel)
            try:
                response, transfer = await self._start(conn, target, request, channel)
            except NetworkError:
                with anyio.CancelScope(shield=True):
                    await self.release(conn)
                if reused and not retried:
                    # An idle connection the server dropped meanwhile: once more, afresh.
                    retried = True
                    continue
                raise
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.release(conn)
                raise
            break
        recording = record_resource(channel, response)
        stream = response.stream
        try:
            yield response
        finally:
            if recording is not None:
                recording.close("unspecified")  # nothing if the body ended
            with anyio.CancelScope(shield=True):
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    with suppress(Exception):
                        await aclose()
                if transfer is not None:
                    await transfer.aclose()
                await self.release(conn)

    async def _store(self, target: FtpURL, request: Request, channel: Channel) -> Response:
        """A PUT: its body uploaded with ``STOR``; an empty response carrying the final reply."""
        url = target.redacted
        content = request.content
        if request.method != "PUT" or content is None:
            what = "a body" if request.method == "PUT" else f"{request.method!r}"
            raise LoaderError(f"FTP can only store a body with PUT (got {what})", url=url)
        if target.directory or not target.path:
            raise LoaderError("an upload needs a file name in the URL, not a directory", url=url)
        total = content.length

        async def progress(done: int) -> None:
            await channel.emit(Phase.PROGRESS, bytes_done=done, bytes_total=total, message="sending")

        async with self.lease(target, channel) as conn:
            await conn.set_type("A" if target.type == "a" else "I")
            await conn.store("STOR", target.path, content.chunks_for(url), progress=progress)
            final = conn.last_final
        return Response(
            url=request.url, stream=_once(b""), status=final.code if final else None,
            reason=final.display if final else None, length=0,
        )

    async def _start(
        self, conn: ControlConnection, target: FtpURL, request: Request, channel: Channel
    ) -> tuple[Response, DataTransfer | None]:
        if target.directory:
            return await self._listing(conn, target, request.url), None
        binary = target.type != "a"
        try:
            transfer, offset, expected = await conn.start_download(
                target.path, offset=request.offset, binary=binary
            )
        except (NotFound, PermissionDenied):
            if target.type is None and target.path and await _is_directory(conn, target.path):
                new_url = _directory_url(request.url)
                await channel.redirect(new_url)
                return await self._listing(conn, target, new_url), None
            raise
        if transfer is None:  # the partial copy is already whole
            return self._response(request.url, target, _once(b""), size=0, offset=offset), None
        response = self._response(
            request.url,
            target,
            _once(b""),
            size=expected,
            offset=offset,
            status=transfer.reply.code,
            reason=transfer.reply.display,
        )
        response.stream = _body(transfer, response)
        return response, transfer

    def _response(
        self,
        url: str,
        target: FtpURL,
        stream: AsyncIterator[bytes],
        *,
        size: int | None,
        offset: int,
        status: int | None = None,
        reason: str | None = None,
    ) -> Response:
        name = target.path.rsplit("/", 1)[-1]
        content_type = content_type_for(name)
        if content_type is None and target.type == "a":
            content_type = "text/plain"
        return Response(
            url=url,
            stream=stream,
            status=status,
            reason=reason,
            content_type=content_type,
            length=size,
            offset=offset,
            document=_DOCUMENTS.get(content_type or ""),
        )

    async def _listing(self, conn: ControlConnection, target: FtpURL, url: str) -> Response:
        entries = await conn.listing(target.path)
        body = dump_listing(entries)
        final = conn.last_final
        return Response(
            url=url,
            stream=_once(body),
            status=final.code if final else None,
            reason=final.display if final else None,
            content_type=LISTING_CONTENT_TYPE,
            length=len(body),
            document="ftp-listing",
            extra={"entries": entries},
        )


async def _is_directory(conn: ControlConnection, path: str) -> bool:
    """True when ``CWD path`` works (and the connection is back in its login directory)."""
    try:
        home = await conn.home_directory()
    except LoaderError:
        return False
    reply = await conn.command("CWD", path)
    if not reply.ok:
        return False
    await conn.expect("CWD", home)
    return True


def _directory_url(url: str) -> str:
    """The same URL with a trailing slash."""
    return url if url.endswith("/") else url + "/"


async def _body(transfer: DataTransfer, response: Response) -> AsyncIterator[bytes]:
    """The transfer's chunks; once they end, the response carries the final reply (226),
    which the core reports, instead of the preliminary 150."""
    async for chunk in transfer.chunks():
        yield chunk
    if transfer.final is not None:
        response.status = transfer.final.code
        response.reason = transfer.final.display


async def _once(body: bytes) -> AsyncIterator[bytes]:
    if body:
        yield body

