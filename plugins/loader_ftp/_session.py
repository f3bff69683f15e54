"""The library API: WinINet's FTP functions as operations of an open session.

WinINet lists these FTP functions as usable asynchronously: create and remove
a directory, delete, rename, find files, get, put and open a file, get and set
the current directory.  :class:`FtpSession` offers each as a coroutine over
one logged-in control connection (WinINet's ``InternetConnect`` handle).
Every call is one operation of the :class:`~loader.Loader`: its own request
id, its phases reported to ``callback`` with ``context`` (the session's, or
the ones given to that call), from ``HANDLE_CREATED`` to ``REQUEST_COMPLETE``
or ``FAILED``.  Failures raise :mod:`loader` errors (``NotFound``,
``PermissionDenied`` …) naming the URL and the server's reply.

::

    async with Loader() as ld:
        async with FtpSession(ld, "ftp://alice:secret@host/", context="job-7") as ftp:
            await ftp.mkdir("incoming")
            await ftp.put("report.pdf", "incoming/report.pdf")
            for entry in await ftp.list("incoming"):
                print(entry.name, entry.size)
            await ftp.get("incoming/report.pdf", "copy.pdf")

Paths are server paths (not URL-encoded): relative to the current directory,
or absolute.  One session runs one operation at a time (FTP allows one
transfer per control connection); open several sessions, or fetch URLs with
the loader, for parallel transfers.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any, cast

import anyio
import anyio.to_thread

from loader import LoaderError, NetworkError, Phase
from loader._saving import FileSink

from ._commands import check_argument, parse_pwd
from ._connection import CHUNK, ControlConnection, DataTransfer
from ._handler import FtpHandler
from ._listing import Entry
from ._url import FtpURL

__all__ = ["FtpFile", "FtpSession", "Source"]

#: What :meth:`FtpSession.put` uploads: a local path, an open binary file, or chunks.
Source = str | os.PathLike[str] | IO[bytes] | AsyncIterable[bytes] | Iterable[bytes]

_UNSET: Any = object()


class FtpFile:
    """A remote file being read (:meth:`FtpSession.open`): ``async for chunk in file``.

    ``size`` is the number of bytes to expect (``None`` if the server did not
    say); ``offset`` is where the body starts.  Every chunk is reported as a
    ``PROGRESS`` event of the open operation.
    """

    def __init__(
        self, transfer: DataTransfer | None, channel: Any, *, size: int | None, offset: int
    ) -> None:
        total = None if size is None else size + offset
        self._chunks = (
            channel.progress(transfer.chunks(), total=total, start=offset) if transfer is not None else None
        )
        self.size = size
        self.offset = offset

    @property
    def bytes_read(self) -> int:
        """Bytes read so far (after ``offset``)."""
        return 0 if self._chunks is None else self._chunks.bytes_done - self.offset

    def __aiter__(self) -> FtpFile:
        return self

    async def __anext__(self) -> bytes:
        if self._chunks is None:
            raise StopAsyncIteration
        chunk: bytes = await self._chunks.__anext__()
        return chunk

    async def read(self) -> bytes:
        """The rest of the file (mind the size: prefer ``async for``)."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        """Stop reading (the session's ``open`` block does it on exit)."""
        if self._chunks is not None:
            await self._chunks.aclose()


class FtpSession:
    """A logged-in FTP session on ``url``'s server; use as ``async with``.

    ``loader`` is an entered :class:`~loader.Loader`: the session borrows a
    control connection from its FTP handler's pool (and returns it on close,
    when it is still in its login directory).  ``callback``, ``context`` and
    ``callback_mode`` are the defaults for every operation; each method
    accepts its own ``callback=`` and ``context=``.
    """

    def __init__(
        self,
        loader: Any,
        url: str,
        *,
        callback: Any = None,
        context: Any = None,
        callback_mode: str = "short",
    ) -> None:
        self.loader = loader
        self.target = FtpURL.parse(url)
        self.callback = callback
        self.context = context
        self.callback_mode = callback_mode
        handler = loader.handler(self.target.scheme)
        if not isinstance(handler, FtpHandler):
            raise TypeError(f"the {self.target.scheme!r} handler is not loader_ftp's FtpHandler")
        self._handler: FtpHandler = handler
        self._conn: ControlConnection | None = None
        self._lock = anyio.Lock()
        self._cwd: str | None = None  # set once the session changed directory

    def __repr__(self) -> str:
        return f"FtpSession({self.target.redacted!r})"

    async def __aenter__(self) -> FtpSession:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- plumbing ----------------------------------------------------------------

    def url_for(self, path: str | None, *, directory: bool = False) -> str:
        """The password-free URL of a server path, as events report it."""
        if path is None:
            return self.target.url_for(self._cwd or "", directory=True)
        if self._cwd is not None and not path.startswith("/"):
            path = posixpath.join(self._cwd, path)
        return self.target.url_for(path, directory=directory)

    @asynccontextmanager
    async def _operation(
        self, path: str | None, *, callback: Any, context: Any, directory: bool = False
    ) -> AsyncIterator[tuple[ControlConnection, Any]]:
        if path is not None:
            check_argument(path, url=self.url_for(None))
        url = self.url_for(path, directory=directory)
        async with self._lock:
            async with self.loader.operation(
                url,
                callback=self.callback if callback is _UNSET else callback,
                context=self.context if context is _UNSET else context,
                callback_mode=self.callback_mode,
            ) as channel:
                conn = await self._connection(channel, url)
                try:
                    yield conn, channel
                finally:
                    if conn.broken:
                        self._conn = None
                        with anyio.CancelScope(shield=True):
                            await conn.abort()
                    conn.bind(None)

    async def _connection(self, channel: Any, url: str) -> ControlConnection:
        conn = self._conn
        if conn is not None and not conn.broken:
            conn.bind(channel, url)
            return conn
        for _ in range(2):
            conn, reused = await self._handler.acquire(self.target, channel)
            conn.bind(channel, url)
            if not reused:
                break
            try:
                await conn.expect("NOOP")  # a pooled connection may have been dropped meanwhile
                break
            except NetworkError:
                await conn.abort()
        assert conn is not None
        self._conn = conn
        if self.target.path and self._cwd is None and self.target.directory:
            # ftp://host/pub/ opens the session in /pub, as a browser would show it.
            await conn.expect("CWD", self.target.path)
            self._cwd = await conn.pwd()
        return conn

    # -- session -----------------------------------------------------------------

    async def connect(self, *, callback: Any = _UNSET, context: Any = _UNSET) -> None:
        """Connect and log in (WinINet's ``InternetConnect``); ``async with`` calls it."""
        async with self._operation(None, callback=callback, context=context):
            pass

    async def aclose(self) -> None:
        """End the session: its connection goes back to the pool if it is still in the
        login directory, else it is closed."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with anyio.CancelScope(shield=True):
            if self._cwd is not None:
                await conn.quit()
            else:
                await self._handler.release(conn)

    # -- directories ---------------------------------------------------------------

    async def pwd(self, *, callback: Any = _UNSET, context: Any = _UNSET) -> str:
        """The current directory (``FtpGetCurrentDirectory``)."""
        async with self._operation(None, callback=callback, context=context) as (conn, _):
            return await conn.pwd()

    async def cwd(self, path: str, *, callback: Any = _UNSET, context: Any = _UNSET) -> str:
        """Change the current directory (``FtpSetCurrentDirectory``); returns the new one."""
        async with self._operation(path, callback=callback, context=context, directory=True) as (
            conn,
            _,
        ):
            await conn.expect("CWD", path)
            self._cwd = await conn.pwd()
            return self._cwd

    async def mkdir(self, path: str, *, callback: Any = _UNSET, context: Any = _UNSET) -> str:
        """Create a directory (``FtpCreateDirectory``); returns the name the server reports."""
        async with self._operation(path, callback=callback, context=context, directory=True) as (
            conn,
            _,
        ):
            reply = await conn.expect("MKD", path)
            try:
                return parse_pwd(reply)
            except LoaderError:
                return path

    async def rmdir(self, path: str, *, callback: Any = _UNSET, context: Any = _UNSET) -> None:
        """Remove an empty directory (``FtpRemoveDirectory``)."""
        async with self._operation(path, callback=callback, context=context, directory=True) as (
            conn,
            _,
        ):
            await conn.expect("RMD", path)

    # -- files ---------------------------------------------------------------------

    async def delete(self, path: str, *, callback: Any = _UNSET, context: Any = _UNSET) -> None:
        """Delete a file (``FtpDeleteFile``)."""
        async with self._operation(path, callback=callback, context=context) as (conn, _):
            await conn.expect("DELE", path)

    async def rename(
        self, old: str, new: str, *, callback: Any = _UNSET, context: Any = _UNSET
    ) -> None:
        """Rename or move a file or directory (``FtpRenameFile``)."""
        check_argument(new, url=self.url_for(None))
        async with self._operation(old, callback=callback, context=context) as (conn, _):
            await conn.expect("RNFR", old, ok=(3,))
            await conn.expect("RNTO", new)

    async def size(self, path: str, *, callback: Any = _UNSET, context: Any = _UNSET) -> int | None:
        """A file's size in bytes (``FtpGetFileSize``), or ``None`` if the server does not say."""
        async with self._operation(path, callback=callback, context=context) as (conn, _):
            await conn.set_type("I")
            return await conn.size(path)

    async def list(
        self,
        path: str = "",
        *,
        pattern: str | None = None,
        callback: Any = _UNSET,
        context: Any = _UNSET,
    ) -> list[Entry]:
        """The entries of a directory (``FtpFindFirstFile`` / ``InternetFindNextFile``).

        ``pattern`` (or a wildcard in the last part of ``path``, as in
        ``"pub/*.png"``) keeps the names that match it (``fnmatch`` rules).
        """
        head, _, last = path.rpartition("/")
        if pattern is None and any(ch in last for ch in "*?["):
            path, pattern = (head or ("/" if path.startswith("/") else "")), last
        async with self._operation(path, callback=callback, context=context, directory=True) as (
            conn,
            _,
        ):
            entries = await conn.listing(path)
        if pattern is not None:
            entries = [e for e in entries if fnmatch.fnmatchcase(e.name, pattern)]
        return entries

    @asynccontextmanager
    async def open(
        self,
        path: str,
        *,
        offset: int = 0,
        binary: bool = True,
        callback: Any = _UNSET,
        context: Any = _UNSET,
    ) -> AsyncIterator[FtpFile]:
        """Read a remote file as a stream (``FtpOpenFile`` + ``InternetReadFile``).

        ``async with ftp.open("a.bin") as f: async for chunk in f: …``.  The
        operation completes when the block ends; leaving it before the end of
        the file abandons the transfer (and the control connection with it).
        """
        async with self._operation(path, callback=callback, context=context) as (conn, channel):
            transfer, honoured, expected = await conn.start_download(
                path, offset=offset, binary=binary
            )
            remote = FtpFile(transfer, channel, size=expected, offset=honoured)
            try:
                yield remote
            finally:
                if transfer is not None:
                    with anyio.CancelScope(shield=True):
                        await remote.aclose()
                        await transfer.aclose()

    async def get(
        self,
        path: str,
        local: str | os.PathLike[str],
        *,
        resume: bool = False,
        binary: bool = True,
        callback: Any = _UNSET,
        context: Any = _UNSET,
    ) -> int:
        """Download a file to ``local`` (``FtpGetFile``); returns the bytes received.

        The file is written under a temporary name and renamed when it is
        complete, so a failed download never leaves a file under ``local``.
        ``resume=True`` continues a partial ``local`` file with ``REST`` (it
        stays where it is and grows; if the server cannot resume, it is
        replaced as a whole).
        """
        target = Path(local)
        partial = target.stat().st_size if resume and target.is_file() else 0
        async with self.open(
            path, offset=partial, binary=binary, callback=callback, context=context
        ) as remote:
            if remote.offset:
                await _append(target, remote)
            else:
                await _write_atomically(target, remote, self.url_for(path))
        return remote.bytes_read

    async def put(
        self,
        source: Source,
        path: str,
        *,
        append: bool = False,
        binary: bool = True,
        callback: Any = _UNSET,
        context: Any = _UNSET,
    ) -> int:
        """Upload ``source`` to ``path`` (``FtpPutFile``); returns the bytes sent.

        ``source`` is a local path, an open binary file, or an (async)
        iterable of byte chunks: it is streamed, never read whole.  ``append``
        uses ``APPE`` instead of ``STOR``.
        """
        total = _size_of(source)
        async with self._operation(path, callback=callback, context=context) as (conn, channel):

            async def progress(done: int) -> None:
                await channel.emit(Phase.PROGRESS, bytes_done=done, bytes_total=total)

            await conn.set_type("I" if binary else "A")
            async with _chunks_of(source) as chunks:
                return await conn.store(
                    "APPE" if append else "STOR", path, chunks, progress=progress
                )


def _size_of(source: Source) -> int | None:
    if isinstance(source, (str, os.PathLike)):
        try:
            return os.stat(source).st_size
        except OSError:
            return None
    return None


@asynccontextmanager
async def _chunks_of(source: Source) -> AsyncIterator[AsyncIterator[bytes]]:
    """``source`` as an async iterator of chunks, reading files ``CHUNK`` bytes at a time."""
    if isinstance(source, (str, os.PathLike)):
        try:
            handle = await anyio.open_file(source, "rb")
        except OSError as exc:
            raise LoaderError(f"cannot read {os.fspath(source)!r}: {exc}") from exc
        async with handle:

            async def from_path() -> AsyncIterator[bytes]:
                while chunk := await handle.read(CHUNK):
                    yield chunk

            yield from_path()
        return
    if isinstance(source, AsyncIterable):
        yield aiter(source)
        return
    if hasattr(source, "read"):
        file = cast("IO[bytes]", source)

        async def from_file() -> AsyncIterator[bytes]:
            # A blocking read of a local file runs in a worker thread, a chunk at a time.
            while chunk := await anyio.to_thread.run_sync(file.read, CHUNK):
                yield chunk

        yield from_file()
        return
    chunks: Iterable[bytes] = source

    async def from_iterable() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield bytes(chunk)

    yield from_iterable()


async def _write_atomically(target: Path, remote: FtpFile, url: str) -> None:
    # The core's sink: temporary name, rename when whole, nothing left behind on failure.
    sink = FileSink(url, target)
    sink.start(0)
    try:
        async for chunk in remote:
            await sink.write(chunk)
    except BaseException:
        sink.abort()
        raise
    sink.commit()


async def _append(target: Path, remote: FtpFile) -> None:
    async with await anyio.open_file(target, "ab") as out:
        async for chunk in remote:
            await out.write(chunk)
