"""Request bodies: what ``Loader.fetch(content=…)`` accepts, read in bounded chunks.

A body is never read whole: bytes are handed out in slices, a file or a path is
read ``CHUNK`` bytes at a time in a worker thread, an async iterator is passed on
as it yields.  Whether a body can be sent a second time (a retry, a 307 or 308
redirect) is known up front: bytes, a path and a seekable file can, an async
iterator or a pipe cannot.  The shell's ``-d``, ``--data-binary`` and ``-T``
options (curl's spelling) are turned into a method, a body and headers here too.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = [
    "CHUNK",
    "IDEMPOTENT_METHODS",
    "RequestContent",
    "add_body_options",
    "body_arguments",
    "check_method",
    "request_body",
]

#: Bytes read from a file (or sliced from bytes) per piece sent.
CHUNK = 64 * 1024

#: RFC 9110 §9.2.2: repeating one of these has the same effect as sending it once.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def check_method(method: str) -> str:
    """``method`` if it is an HTTP token (RFC 9110 §9.1), else ``ValueError``.

    Checked because a method goes into the request line as it is: a space or a
    line break in it would write a different request.
    """
    if not isinstance(method, str) or not _TOKEN.fullmatch(method):
        raise ValueError(f"invalid request method {method!r}: it must be a token such as POST")
    return method


class RequestContent:
    """A request body: bytes, a binary file, a path or an async iterator of bytes.

    ``length`` is the number of bytes it will send (``None``: unknown, so HTTP
    sends it chunked); ``replayable`` says whether :meth:`chunks` may be called
    more than once.  A path is opened each time it is sent; a seekable file is
    sent from the position it had when it was given.  Either sends the ``length``
    bytes it had then (the ``Content-Length`` announced), and fails if it has
    fewer by the time they are read.
    """

    __slots__ = ("source", "length", "replayable", "_start", "_used")

    def __init__(self, source: Any, length: int | None, replayable: bool, start: int = 0) -> None:
        self.source = source
        self.length = length
        self.replayable = replayable
        self._start = start
        self._used = False

    def __repr__(self) -> str:
        kind = type(self.source).__name__
        return f"<RequestContent {kind} length={self.length} replayable={self.replayable}>"

    @classmethod
    def of(cls, content: Any) -> RequestContent:
        """Wrap what a caller gave as ``content`` (a ``RequestContent`` is kept as it is)."""
        if isinstance(content, RequestContent):
            return content
        if isinstance(content, (bytes, bytearray, memoryview)):
            data = bytes(content)
            return cls(data, len(data), True)
        if isinstance(content, str):
            raise TypeError("content must be bytes, not str: encode the text first")
        if isinstance(content, os.PathLike):
            path = Path(content)
            return cls(path, path.stat().st_size, True)
        if isinstance(content, io.TextIOBase):
            raise TypeError("content must be a file opened in binary mode ('rb'), not text mode")
        if callable(getattr(content, "read", None)):
            return cls._of_file(content)
        if isinstance(content, AsyncIterable):
            return cls(content, None, False)
        raise TypeError(
            f"content must be bytes, a binary file, a path or an async iterator of bytes, "
            f"not {type(content).__name__}"
        )

    @classmethod
    def _of_file(cls, file: IO[bytes]) -> RequestContent:
        try:
            seekable = file.seekable()
        except (AttributeError, OSError, ValueError):
            seekable = False
        if not seekable:  # a pipe, a socket, stdin: read once, length unknown
            return cls(file, None, False)
        start = file.tell()
        end = file.seek(0, os.SEEK_END)
        file.seek(start)
        return cls(file, max(0, end - start), True, start)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes, from its beginning, in pieces of at most ``CHUNK`` bytes.

        A body that is not ``replayable`` raises ``RuntimeError`` the second time.
        """
        if self._used and not self.replayable:
            raise RuntimeError("this request body was already sent and cannot be read again")
        self._used = True
        source = self.source
        if isinstance(source, bytes):
            view = memoryview(source)
            for at in range(0, len(source), CHUNK):
                yield bytes(view[at : at + CHUNK])
        elif isinstance(source, Path):
            with open(source, "rb") as file:
                async for piece in _read(file, self.length, source):
                    yield piece
        elif isinstance(source, AsyncIterable):
            async for piece in source:
                if not isinstance(piece, (bytes, bytearray, memoryview)):
                    raise TypeError(f"a request body's iterator yielded {type(piece).__name__}, not bytes")
                if piece:
                    yield bytes(piece)
        else:
            if self.replayable:
                source.seek(self._start)
            async for piece in _read(source, self.length, getattr(source, "name", "the file")):
                yield piece


    async def chunks_for(self, url: str) -> AsyncIterator[bytes]:
        """:meth:`chunks` for a handler: a failure to read them is a ``LoaderError`` naming ``url``."""
        from ._errors import LoaderError

        chunks = self.chunks()
        while True:
            try:
                piece = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except (OSError, RuntimeError, TypeError) as exc:
                raise LoaderError(f"cannot read the request body: {exc}", url=url) from exc
            yield piece


async def _read(file: IO[bytes], size: int | None, name: object) -> AsyncIterator[bytes]:
    """``size`` bytes of ``file`` (``None``: to its end) in ``CHUNK`` pieces, each read in a thread.

    A file that ends early fails: the ``Content-Length`` already sent promised more,
    and a server would wait for it until it timed out.
    """
    import anyio.to_thread

    left = size
    while left is None or left > 0:
        want = CHUNK if left is None else min(CHUNK, left)
        piece = await anyio.to_thread.run_sync(file.read, want)
        if not piece:
            if left:
                raise OSError(f"{name} ended {left} bytes early while it was being sent (it shrank?)")
            return
        if left is not None:
            left -= len(piece)
        yield piece


# -- the shell's options ----------------------------------------------------------------


def add_body_options(parser: argparse.ArgumentParser) -> None:
    """``loader get``'s request options, as curl spells them."""
    g = parser.add_argument_group(
        "request options (HTTP; -T also FTP)",
        "With any of these the response goes to stdout unless -o names a file.",
    )
    g.add_argument("-X", "--request", dest="method", metavar="METHOD",
                   help="request method (default GET; POST with -d, PUT with -T)")
    g.add_argument("-d", "--data", dest="body_parts", action="append", type=_data, metavar="DATA",
                   help="send DATA as a form body (POST, application/x-www-form-urlencoded); "
                        "@FILE reads it from FILE without its line breaks; repeated: joined with '&'")
    g.add_argument("--data-binary", dest="body_parts", action="append", type=_data_binary, metavar="DATA",
                   help="send DATA as it is; @FILE streams the file unchanged")
    g.add_argument("-T", "--upload-file", dest="upload", metavar="FILE",
                   help="send FILE (PUT), streamed with its Content-Length; '-' reads stdin")
    g.add_argument("--retry-all", action="store_true",
                   help="also retry requests that are not idempotent (POST, PATCH): they may run twice")


class _Part:
    """One ``-d``/``--data-binary`` value: text, or a file to read (``@FILE``)."""

    __slots__ = ("text", "path", "binary")

    def __init__(self, text: str | None, path: str | None, binary: bool) -> None:
        self.text = text
        self.path = path
        self.binary = binary

    def read(self) -> bytes:
        if self.path is None:
            return (self.text or "").encode()
        data = sys.stdin.buffer.read() if self.path == "-" else Path(self.path).read_bytes()
        return data if self.binary else data.replace(b"\r", b"").replace(b"\n", b"")


def _data(text: str) -> _Part:
    return _Part(None, text[1:], False) if text.startswith("@") else _Part(text, None, False)


_data.__name__ = "data"  # argparse names the type in its error messages


def _data_binary(text: str) -> _Part:
    return _Part(None, text[1:], True) if text.startswith("@") else _Part(text, None, True)


_data_binary.__name__ = "data"


class BodyUsageError(ValueError):
    """The request options contradict each other or name a file that cannot be read."""


def body_arguments(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """``Loader.fetch`` keywords (``method``, ``content``, ``headers``) from ``loader get``'s options.

    Raises :class:`BodyUsageError` with a message for the user when they cannot be sent.
    """
    parts: Sequence[_Part] = getattr(args, "body_parts", None) or ()
    upload: str | None = getattr(args, "upload", None)
    method: str | None = getattr(args, "method", None)
    if not parts and upload is None and method is None:
        return {}
    if parts and upload is not None:
        raise BodyUsageError("-T/--upload-file cannot be combined with -d/--data-binary")
    scheme = url.partition(":")[0].lower()
    ftp_put = scheme in ("ftp", "ftps") and upload is not None and method in (None, "PUT")
    if scheme not in ("http", "https") and not ftp_put:
        raise BodyUsageError(f"-X, -d and -T need an http:// or https:// URL (-T alone: also ftp://), not {scheme}:")
    try:
        if method is not None:
            check_method(method)
    except ValueError as exc:
        raise BodyUsageError(str(exc)) from None
    given = {name.lower() for name, _ in getattr(args, "header", ())}
    headers: dict[str, str] = {}
    content: Any = None
    try:
        if upload is not None:
            content = sys.stdin.buffer if upload == "-" else Path(upload)
            if isinstance(content, Path) and not content.is_file():
                raise BodyUsageError(f"cannot upload {upload}: not a readable file")
            content = RequestContent.of(content)
            default = "PUT"
        else:
            if len(parts) == 1 and parts[0].binary and parts[0].path not in (None, "-"):
                content = RequestContent.of(Path(parts[0].path))  # streamed, never read whole
            else:
                content = b"&".join(part.read() for part in parts)
            if "content-type" not in given:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            default = "POST"
    except OSError as exc:
        raise BodyUsageError(f"cannot read {exc.filename or 'the data'}: {exc.strerror or exc}") from None
    found: dict[str, Any] = {"method": method or ("GET" if content is None else default)}
    if content is not None:
        found["content"] = content
    if headers:
        found["headers"] = headers
    return found


def request_body(args: argparse.Namespace) -> dict[str, Any] | None:
    """``loader get``'s ``fetch`` keywords for its request options; ``None`` after a usage error.

    The error is one line ``error: URL: cause`` on the command's stderr.  With a
    request option and no ``-o``, the response goes to stdout (``args.output`` is
    set to ``-``), as curl's does: the name a download would take from the URL is
    often the very file being uploaded.
    """
    url = args.url
    try:
        found = body_arguments(args, url)
        if found and getattr(args, "resume", False):
            raise BodyUsageError("-c/--continue resumes a download: it cannot be combined with -X, -d or -T")
    except BodyUsageError as exc:
        from ._display import printable, shown_url

        args._stderr.write(f"error: {shown_url(url)}: {printable(str(exc))}\n")
        return None
    if found and getattr(args, "output", None) is None:
        args.output = "-"
    return found
