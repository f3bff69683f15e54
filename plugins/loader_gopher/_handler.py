"""The gopher protocol handler: RFC 1436 on anyio streams (asyncio and trio).

One request is one connection: resolve, connect (TLS for ``gophers://``),
send ``selector[TAB search]CRLF``, read until the server closes.  The handler
emits the phases in between (the core emits the lifecycle around them)::

    RESOLVING_NAME, NAME_RESOLVED          (host names only, not IP literals)
    CONNECTING_TO_SERVER, CONNECTED_TO_SERVER
    SENDING_REQUEST, REQUEST_SENT
    RECEIVING_RESPONSE, RESPONSE_RECEIVED  (when the first bytes, or the end, arrive)
    … the core reads the body and emits PROGRESS …
    CLOSING_CONNECTION, CONNECTION_CLOSED

Gopher has no status line, so failures are recognised from the body: a short
reply made only of error (``3``) items is a :class:`~loader.NotFound` naming
the selector, whatever item type was asked for.
"""

from __future__ import annotations

import mimetypes
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import anyio.abc

from loader import (
    Channel,
    IdleTimeout,
    InvalidURL,
    NetworkError,
    NotFound,
    Phase,
    PluginContext,
    ProtocolError,
    ProtocolHandler,
    Request,
    Response,
    SizeLimitExceeded,
    make_ssl_context,
    open_connection,
    record_resource,
)
from loader._display import printable

from ._menu import MenuEnd, menu_limit, parse_menu
from ._schemes import SCHEMES
from ._text import TextDecoder
from ._urls import parse_url

__all__ = ["GopherHandler", "content_type_for"]

#: Bytes asked of the socket per read.
CHUNK = 64 * 1024
# A reply that starts with "3" is read up to this size to see whether it is
# nothing but an error item (such replies are one short line).
_ERROR_SNIFF = 4096
# Types that name a session or a query protocol rather than a document.
_SESSIONS = {"2": "a CSO phone-book query", "8": "a telnet session", "T": "a tn3270 session"}

_FIXED_TYPES = {
    "1": "text/x-gopher-menu",
    "7": "text/x-gopher-menu",
    "g": "image/gif",
    "p": "image/png",
    "P": "application/pdf",
    "4": "application/mac-binhex40",
    "6": "text/x-uuencode",
    "c": "text/calendar",
    "x": "text/xml",
}
# Types whose exact format the selector's extension tells best, with the
# family it must belong to.
_GUESSED_FAMILY = {"I": "image/", "s": "audio/", ";": "video/"}


def content_type_for(item_type: str, selector: str) -> tuple[str, str | None]:
    """The content type and discovery document type (``"gopher-menu"``, ``"html"``
    or ``None``) for an item of ``item_type`` at ``selector``.

    ``h`` items are HTML unless the selector's extension says otherwise (an
    image a gopher-served page refers to by a relative URL inherits the page's
    ``h``); type ``0`` with an ``.html`` selector is HTML too.
    """
    if item_type in ("1", "7"):
        return "text/x-gopher-menu", "gopher-menu"
    fixed = _FIXED_TYPES.get(item_type)
    if fixed is not None:
        return fixed, None
    guess = mimetypes.guess_type("x" + selector.split("?", 1)[0], strict=False)[0]
    if item_type == "h":
        if guess is None or guess in ("text/html", "application/xhtml+xml", "text/plain"):
            return "text/html", "html"
        return guess, None
    if item_type == "0":
        if guess == "text/html":
            return "text/html", "html"
        return "text/plain", None
    family = _GUESSED_FAMILY.get(item_type)
    if family is not None:
        return (guess if guess and guess.startswith(family) else "application/octet-stream"), None
    if item_type == "M":
        return "message/rfc822", None
    return guess or "application/octet-stream", None


def _error_item(body: bytes) -> tuple[str, str] | None:
    """``(display, selector)`` when ``body`` is nothing but error items (and info lines)."""
    if not body.startswith(b"3") or b"\t" not in body.split(b"\n", 1)[0]:
        return None
    try:
        items = parse_menu(body)
    except ProtocolError:
        return None  # a line too long for a menu: not an error reply
    if not items or any(item.type not in "3i" for item in items):
        return None
    first = next(item for item in items if item.is_error)
    return first.display.strip(), first.selector


def _plain_error(body: bytes) -> str | None:
    """The message of a menu request answered with a plain-text error, else ``None``.

    gophernicus answers a menu selector it cannot find (unless it ends in ``/``)
    with text, ``Error: File or directory not found!`` and a footer, not an
    error item.  A short reply that starts with ``Error`` and has not a single
    TAB, so not one item, is that; taken as a menu it would be a "successful"
    menu of info lines.
    """
    if not _starts_like_plain_error(body) or b"\t" in body:
        return None
    return body.split(b"\n", 1)[0].strip().decode("utf-8", "replace")


def _starts_like_plain_error(data: bytes) -> bool:
    return data[:5].lower() == b"error"


class _Body:
    """The response stream: chunks from the socket, with idle timeout and error mapping;
    a text item's dot-stuffing undone, a menu ended at its ``.`` line and held to
    the size cap (``limit``).

    A plain async iterator rather than an async generator, so that it needs
    no finalisation when the reader stops early.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        url: str,
        first: bytes,
        eof: bool,
        idle: float | None,
        text: bool,
        menu: bool = False,
        limit: int | None = None,
    ) -> None:
        self._stream = stream
        self._url = url
        self._pending = first
        self._eof = eof
        self._idle = idle
        self._decoder = TextDecoder() if text else None
        self._menu_end = MenuEnd() if menu else None
        self._limit = limit
        self._size = 0

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._pending:
                data, self._pending = self._pending, b""
            elif self._eof:
                raise StopAsyncIteration
            else:
                data = await _receive(self._stream, self._idle, self._url)
                if not data:
                    self._eof = True
                    continue
            if self._menu_end is not None:
                data = self._menu_end.feed(data)
                if self._menu_end.done:
                    # Past the "." line nothing belongs to the menu; do not wait for the close.
                    self._eof = True
                if not data:
                    continue
            if self._limit is not None:
                self._size += len(data)
                if self._size > self._limit:
                    self._eof = True
                    raise SizeLimitExceeded(
                        f"menu larger than {self._limit} bytes, the cap on a Gopher menu "
                        "(Limits.max_body / Limits.max_page)",
                        url=self._url,
                    )
            if self._decoder is None:
                return data
            data = self._decoder.feed(data)
            if self._decoder.done:
                # The terminator line ends the document; whatever follows is not part of it.
                self._eof = True
            if data:
                return data


async def _receive(stream: anyio.abc.ByteStream, idle: float | None, url: str) -> bytes:
    """The next chunk, or ``b""`` at the end of the stream."""
    try:
        with anyio.fail_after(idle):
            return await stream.receive(CHUNK)
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        return b""
    except TimeoutError as exc:
        raise IdleTimeout(f"no data for {idle:g} seconds", url=url) from exc
    except (anyio.BrokenResourceError, OSError, ssl.SSLError) as exc:
        raise NetworkError(f"connection broke while receiving: {exc}", url=url) from exc


class GopherHandler(ProtocolHandler):
    """Fetches ``gopher://`` and ``gophers://`` URLs.

    TLS verification follows ``request.options["verify"]`` when set, else the
    loader's ``verify`` attribute (``True`` by default); either may be a bool,
    a CA bundle path or an :class:`ssl.SSLContext`.
    """

    schemes = SCHEMES

    def __init__(self, context: PluginContext | None = None) -> None:
        self._context = context

    def _context_for(self, request: Request, channel: Channel) -> ssl.SSLContext:
        verify = request.options.get("verify")
        if verify is not None:
            return make_ssl_context(verify)
        return (self._context or channel.context).ssl_context

    @asynccontextmanager
    async def open(self, request: Request, channel: Channel) -> AsyncIterator[Response]:
        """Connect, send the selector and yield the response once its first bytes arrive."""
        target = parse_url(request.url)
        url = request.url
        if target.type in _SESSIONS:
            raise InvalidURL(
                f"item type {target.type!r} names {_SESSIONS[target.type]}, not a document", url=url
            )
        if target.type in ("i", "3"):
            raise InvalidURL(f"item type {target.type!r} names nothing to fetch", url=url)
        context = self._context_for(request, channel) if target.secure else None
        settings = self._context or channel.context
        async with AsyncExitStack() as stack:
            # Gopher servers end a document by closing the connection, often without a
            # TLS close_notify: that is the end of the body, not an attack.
            stream = await open_connection(
                channel, target.host, target.port, url=url, ssl_context=context,
                tls_standard_compatible=False,
            )
            stack.push_async_callback(_close, stream, channel)
            # A selector may come from a menu, so it is server text on a progress line.
            await channel.emit(Phase.SENDING_REQUEST, message=printable(target.selector))
            line = target.request_line()
            try:
                with anyio.fail_after(channel.timeouts.idle):
                    await stream.send(line)
            except TimeoutError as exc:
                raise IdleTimeout("the server would not take the request", url=url) from exc
            except (
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                OSError,
                ssl.SSLError,
            ) as exc:
                raise NetworkError(f"connection broke while sending: {exc}", url=url) from exc
            await channel.emit(Phase.REQUEST_SENT, message=f"{len(line)} bytes")
            await channel.emit(Phase.RECEIVING_RESPONSE)
            menu = target.type in ("1", "7")
            first, eof = await _first_bytes(stream, channel.timeouts.idle, url, menu=menu)
            if menu and not first and eof:
                raise NetworkError(
                    "the server closed the connection without sending a menu", url=url
                )
            # An error reply ends with the close or, from a server that lingers, its "." line.
            failure = _error_item(first) if eof or _ends_menu(first) else None
            plain = _plain_error(first) if eof and menu else None
            if plain is not None:
                raise NotFound(
                    f"{printable(plain)} (the server's text answer to selector {target.selector!r})",
                    url=url,
                )
            if failure is not None:
                display, _selector = failure
                # The error item's text is the server's: nothing in it may drive a
                # terminal (repr already escapes the selector's).
                raise NotFound(
                    f"{printable(display) or 'error'} "
                    f"(server error item for selector {target.selector!r})",
                    url=url,
                )
            content_type, document = content_type_for(target.type, target.selector)
            await channel.emit(Phase.RESPONSE_RECEIVED, message=f"item type {target.type!r}")
            response = Response(
                url=url,
                stream=_Body(
                    stream,
                    url=url,
                    first=first,
                    eof=eof,
                    idle=channel.timeouts.idle,
                    text=target.type == "0",
                    menu=menu,
                    # Whoever reads it (a page, the menu API, `loader get`), an
                    # endless menu stops here instead of growing the process.
                    limit=menu_limit(settings.limits) if menu else None,
                ),
                content_type=content_type,
                document=document,
                extra={"gopher_type": target.type},
            )
            recording = record_resource(channel, response)
            if recording is not None:
                stack.callback(recording.close, "unspecified")  # nothing if the body ended
            yield response


async def _first_bytes(
    stream: anyio.abc.ByteStream, idle: float | None, url: str, *, menu: bool = False
) -> tuple[bytes, bool]:
    """The first chunk, read further when it may be a lone error item (or, for a
    ``menu``, a plain-text error); and whether the end came."""
    data = await _receive(stream, idle, url)
    if not data:
        return b"", True
    if not (data.startswith(b"3") or menu and _starts_like_plain_error(data)):
        return data, False
    chunks = [data]
    size = len(data)
    while size <= _ERROR_SNIFF and not _ends_menu(b"".join(chunks)):
        more = await _receive(stream, idle, url)
        if not more:
            return b"".join(chunks), True
        chunks.append(more)
        size += len(more)
    return b"".join(chunks), False


def _ends_menu(data: bytes) -> bool:
    """Whether ``data`` holds a menu's ``.`` line (the server may not close after it)."""
    end = MenuEnd()
    end.feed(data)
    return end.done


async def _close(stream: anyio.abc.ByteStream, channel: Channel) -> None:
    # Shielded: the connection is released even when the request was cancelled.
    with anyio.CancelScope(shield=True):
        await channel.emit(Phase.CLOSING_CONNECTION)
        try:
            await stream.aclose()
        except (OSError, ssl.SSLError, anyio.BrokenResourceError):
            pass  # the peer is gone already; nothing left to release
        await channel.emit(Phase.CONNECTION_CLOSED)
