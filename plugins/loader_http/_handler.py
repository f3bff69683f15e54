"""HTTP/HTTPS through one httpx client per loader.

Phases come from httpx's ``trace`` extension (httpcore's connection events),
plus name resolution reported on its own before connecting (httpcore hides
it inside ``connect_tcp``).  Redirects are followed here, not by httpx, so
each one is reported and checked against policy; httpx's ``next_request``
builds the next request, which drops ``Authorization`` when the origin changes
and re-applies cookies from the jar by domain, so neither leaks to another host.

A plain GET takes the direct lane (``_direct.py``): the same request head, straight
to the fast transport, past httpx's client layer; a response that needs httpx (a
redirect, ``Set-Cookie``, a non-ASCII header) is handed over as an ``httpx.Response``.

Hostile servers: a ``Content-Encoding`` is undone by ``_decoding`` on both lanes (httpx's
raw bytes, never its decoders), in bounded pieces, at most four codings, a truncated
stream an error.  ``RESPONSE_RECEIVED`` carries status, reason and ``http_version``
(``HTTP/1.0``, ``HTTP/1.1``, ``HTTP/2``); a proxy's ``CONNECT`` is reported with the
message ``CONNECT target via proxy:port``.  With ``Loader(deny_private=True)`` the
address each new connection reached is checked (``check_peer``) when TCP is up, before
TLS or the request: through the ``connection.connect_tcp.complete`` trace, which both
transports report before any byte is sent.  A proxy's own address is not checked (it is
the user's setting; the proxy resolves and reaches the origin, unseen).  A reason phrase
reaches error messages through ``printable``; ``Result.reason`` keeps it as sent.  A
``416`` whose ``Content-Range`` is ``bytes */N`` with ``N`` the resume offset completes
the resume (the file is whole): an empty body, status 416 (the server's word, kept);
a 416 that states no size (lighttpd's) is checked with a ``HEAD``.  An ``If-Range``
among the request's headers goes out with the ``Range``.  HTTP/2 contexts built here
offer ``h2`` first in ALPN (:class:`H2FirstContext`).

Requests with a body (``Request.content``) or another method than GET go through
httpx's client, never the direct lane: the body is handed to httpx as an
``AsyncByteStream`` read chunk by chunk (``Content-Length`` when its length is
known, else chunked), and each chunk, once sent, is reported as a ``PROGRESS``
event with ``message="sending"`` and the body's ``bytes_done``/``bytes_total``,
before the response's own ``PROGRESS`` events (which have no message).  Redirects
are httpx's: 301/302/303 after a POST become a GET without the body; 307 and 308
send the body again, which fails with a ``RedirectError`` when it cannot be read
twice (an async iterator, a pipe).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import ssl
import sys
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from loader import (
    ConnectError,
    ConnectTimeout,
    HTTPNotFound,
    HTTPStatusError,
    IdleTimeout,
    InvalidURL,
    LoaderError,
    NetworkError,
    Phase,
    PolicyDenied,
    ProtocolError,
    ProtocolHandler,
    RecordedStream,
    RedirectError,
    Request,
    Response,
    UnsupportedScheme,
    redact_url,
)
from loader._display import printable
from loader._net import check_peer, resolve_host, resolved_already
from loader._protocol import Channel

if TYPE_CHECKING:
    from loader import PluginContext, Recorder, Recording

from ._decoding import Decoder, DecodingError
from ._direct import DirectLane, default_headers, header_dict, sets_cookie
from ._lazy_httpx import httpx
from ._transport import ANSWERED, Exchange, FastTransport, NotHandled, nothing

__all__ = ["HttpHandler"]

_TRACE_PHASES = {
    "connection.connect_tcp.started": Phase.CONNECTING_TO_SERVER,
    "connection.connect_tcp.complete": Phase.CONNECTED_TO_SERVER,
    "http11.send_request_headers.started": Phase.SENDING_REQUEST,
    "http11.send_request_body.complete": Phase.REQUEST_SENT,
    "http11.receive_response_headers.started": Phase.RECEIVING_RESPONSE,
    "http11.receive_response_headers.complete": Phase.RESPONSE_RECEIVED,
    "http2.send_request_headers.started": Phase.SENDING_REQUEST,
    "http2.send_request_body.complete": Phase.REQUEST_SENT,
    "http2.receive_response_headers.started": Phase.RECEIVING_RESPONSE,
    "http2.receive_response_headers.complete": Phase.RESPONSE_RECEIVED,
    "connection.close.started": Phase.CLOSING_CONNECTION,
    "connection.close.complete": Phase.CONNECTION_CLOSED,
}

_REDIRECTS = (301, 302, 303, 307, 308)
_VERSIONS = {b"HTTP/1.1": "HTTP/1.1", b"HTTP/1.0": "HTTP/1.0"}


def _version_name(version: bytes | str) -> str:
    """``"HTTP/1.1"``, ``"HTTP/1.0"`` or ``"HTTP/2"`` from a status line's or httpx's spelling."""
    if isinstance(version, str):
        return version
    return _VERSIONS.get(version) or version.decode("ascii", errors="replace")


class _HeaderLines(Sequence[tuple[str, str]]):
    """Header lines for ``Event.headers``, decoded on first read: most events have no reader."""

    __slots__ = ("_raw", "_lines")

    def __init__(self, raw: bytes | Iterable[tuple[bytes, bytes]]) -> None:
        self._raw = raw  # a request head as written, or (name, value) byte pairs
        self._lines: tuple[tuple[str, str], ...] | None = None

    def _decoded(self) -> tuple[tuple[str, str], ...]:
        if self._lines is None:
            raw = self._raw
            if isinstance(raw, bytes):  # request line, header lines, blank line
                raw = [tuple(line.split(b":", 1)) for line in raw.split(b"\r\n")[1:] if b":" in line]
            self._lines = tuple((n.decode("latin-1"), v.decode("latin-1").strip()) for n, v in raw)
        return self._lines

    def __len__(self) -> int:
        return len(self._decoded())

    def __getitem__(self, index: Any) -> Any:
        return self._decoded()[index]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._decoded())


def _lane_allowed() -> bool:
    return os.environ.get("LOADER_HTTP_DIRECT", "1") != "0"


def _httpcore_chosen() -> bool:
    """``LOADER_HTTP_TRANSPORT=httpcore``: httpx's standard transport for everything."""
    return os.environ.get("LOADER_HTTP_TRANSPORT", "fast") == "httpcore"


def _h2_available() -> bool:
    # Looked up, not imported: httpcore imports h2 itself if HTTP/2 is used.
    return importlib.util.find_spec("h2") is not None


def _reason(exc: BaseException) -> str:
    """The most telling message in an exception's chain (httpx's own is often empty)."""
    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 8:
        if isinstance(current, BaseExceptionGroup):
            current = current.exceptions[0]
            continue
        text = str(current).strip()
        if text and text not in seen:
            seen.append(text)
        current = current.__cause__ or current.__context__
    if not seen:
        return type(exc).__name__
    # The deepest cause names the real problem (refused, certificate, reset …).
    generic = ("all connection attempts failed", "all attempts to connect")
    if len(seen) > 1 and seen[0].lower().startswith(generic):
        return seen[-1]
    return seen[0]


def map_error(exc: httpx.HTTPError, url: str) -> LoaderError:
    """Translate an httpx error into the loader hierarchy (with the URL and the cause)."""
    reason = printable(_reason(exc))  # server text may reach it (a status line, a proxy's reason)
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return ConnectTimeout(f"connecting timed out: {reason}", url=url)
    if isinstance(exc, httpx.TimeoutException):
        return IdleTimeout(f"no data for too long: {reason}", url=url)
    if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
        # The transport's own text already says "cannot connect to HOST:PORT: why".
        text = reason if reason.lower().startswith("cannot connect") else f"cannot connect: {reason}"
        error = ConnectError(text, url=url)
        if "CERTIFICATE" in reason.upper() or "SSL" in reason.upper():
            error.transient = False  # a bad certificate will not get better by retrying
        return error
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UnsupportedScheme(reason, url=url)
    if isinstance(exc, httpx.RemoteProtocolError):
        return NetworkError(f"connection broke: {reason}", url=url)
    if isinstance(exc, httpx.NetworkError):
        return NetworkError(f"network error: {reason}", url=url)
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError(f"cannot decode the body: {reason}", url=url)
    return ProtocolError(reason, url=url)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # an HTTP date here is rare: not loaded for every start

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


#: Redirect and error bodies up to this size are read so their connection can be reused.
_DRAIN_MAX = 64 * 1024


async def _drain(body: AsyncIterable[bytes], headers: Any) -> None:
    """Read a small unwanted body to its end (keeps the connection), or give up on it.

    ``body`` is a response's raw bytes (either lane); the caller closes the response.
    """
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) <= _DRAIN_MAX:
        try:
            async for _ in body:
                pass
        except httpx.HTTPError:
            pass  # the connection is dropped; the status is what matters


def _is_encoded(headers: Any) -> bool:
    """Whether the body has a ``Content-Encoding`` to undo (then :class:`_DecodedBody` does it)."""
    return headers.get("content-encoding", "identity").lower() not in ("", "identity")


class _RawBody:
    """A direct response's bytes, its httpx errors raised as the loader's.

    A plain iterator, not an async generator (the loop's hooks track each of those).
    """

    __slots__ = ("_chunks", "_url")

    def __init__(self, body: AsyncIterable[bytes], url: str) -> None:
        self._chunks = body.__aiter__()
        self._url = url

    def __aiter__(self) -> _RawBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            raise  # the end: not a reason to look httpx up (and import it)
        except httpx.HTTPError as exc:
            raise map_error(exc, self._url) from exc


class _DecodedBody:
    """A body with its ``Content-Encoding`` undone in bounded pieces (see ``_decoding``).

    Both lanes read the raw bytes (httpx's through ``aiter_raw``, so its own decoders,
    which inflate each read whole, never run) and decode them here.
    """

    __slots__ = ("_raw", "_decoder", "_pending", "_ended", "_url")

    def __init__(self, raw: AsyncIterable[bytes], decoder: Decoder, url: str) -> None:
        self._raw = raw.__aiter__()
        self._decoder = decoder
        self._pending: Iterator[bytes] = iter(())
        self._ended = False
        self._url = url

    def __aiter__(self) -> _DecodedBody:
        return self

    async def __anext__(self) -> bytes:
        while True:
            try:
                piece = next(self._pending, None)
            except DecodingError as exc:
                raise ProtocolError(f"cannot decode the body: {exc}", url=self._url) from exc
            if piece is not None:
                return piece
            if self._ended:
                raise StopAsyncIteration
            try:
                data = await self._raw.__anext__()
            except StopAsyncIteration:
                self._ended = True
                self._pending = self._decoder.finish()
                continue
            self._pending = self._decoder.feed(data)


def _decoder(headers: Any, url: str) -> Decoder:
    try:
        return Decoder(headers.get("content-encoding", ""))
    except DecodingError as exc:
        raise ProtocolError(f"cannot decode the body: {exc}", url=url) from exc


_EXCHANGE_PHASES = frozenset({
    Phase.SENDING_REQUEST, Phase.REQUEST_SENT, Phase.RECEIVING_RESPONSE, Phase.RESPONSE_RECEIVED,
})


def _tunnel_message(sent: Any) -> str | None:
    """``CONNECT target via proxy:port`` for httpcore's CONNECT request, None for any other."""
    if getattr(sent, "method", None) != b"CONNECT":
        return None
    where = sent.url  # httpcore's URL: the proxy's host and port, the tunnel's target
    target = where.target.decode("ascii", "replace")
    return f"CONNECT {target} via {where.host.decode('ascii', 'replace')}:{where.port}"


async def _tunnel_phase(channel: Channel, phase: Phase, message: str, info: dict[str, Any]) -> None:
    """A phase of a proxy's ``CONNECT``: reported with ``message`` so it is not taken for the resource's own."""
    value = info.get("return_value")
    if phase is Phase.RESPONSE_RECEIVED and isinstance(value, tuple) and len(value) == 4:
        await channel.emit(
            phase, status=value[1], reason=value[2].decode("ascii", errors="ignore"),
            http_version=_version_name(value[0]), message=message,
        )
    else:
        await channel.emit(phase, message=message)


def _status_error(status: int, reason: str, headers: Any, url: str) -> HTTPStatusError:
    # 404 and 410 are also a NotFound, so code catching NotFound misses no protocol.
    kind = HTTPNotFound if status in (404, 410) else HTTPStatusError
    return kind(
        f"HTTP {status} {printable(reason)}".rstrip(), url=url, status=status,
        retry_after=_retry_after(headers.get("retry-after")),
    )


def _stated_size(status: int, headers: Any, request: Request) -> int | None:
    """The full size a resume's ``416`` states (``Content-Range: bytes */N``), else None.

    ``-1`` when the 416 states none (lighttpd 1.4's): the size must be asked for.
    """
    if status != 416 or not request.offset:
        return None
    crange = headers.get("content-range", "").strip()
    if not crange:
        return -1
    unit, _, size = crange.partition(" ")
    if unit.lower() == "bytes" and size.startswith("*/") and size[2:].isdigit():
        return int(size[2:])
    return None


def _recording(
    recorder: Recorder, url: str, head: bytes, answer: tuple[bytes, int, bytes, Any], network: Any
) -> Recording:
    """A recording of one exchange (WARC): the request head as sent, the response's as received."""
    recording = recorder.begin(url)
    recording.request(head)
    recording.response(*answer)
    peer = network.get_extra_info("server_addr") if network is not None else None
    if peer:
        recording.peer = str(peer[0])
    return recording


def _record_httpx(recorder: Recorder, response: httpx.Response) -> Recording:
    """:func:`_recording` of a response httpx's client returned (any lane under it, HTTP/2 too)."""
    extensions = response.extensions
    version = extensions.get("http_version", b"HTTP/1.1")
    sent = response.request
    head = b"%s %s %s\r\n%s\r\n" % (
        sent.method.encode("ascii"), sent.url.raw_path, b"HTTP/2" if version == b"HTTP/2" else b"HTTP/1.1",
        b"".join(b"%s: %s\r\n" % line for line in sent.headers.raw),
    )
    answer = (version, response.status_code, extensions.get("reason_phrase", b""), response.headers.raw)
    return _recording(recorder, str(response.url), head, answer, extensions.get("network_stream"))


def _recorded(body: Any, recording: Recording | None) -> Any:
    """``body`` (raw bytes as received), its chunks also going to ``recording`` when there is one."""
    return body if recording is None else RecordedStream(body, recording)


def _make_response(
    final_url: str, status: int, reason: str, headers: dict[str, str], http_version: str,
    stream: AsyncIterator[bytes], request: Request, raw: Any = (),
) -> Response:
    """The loader's response for either lane (``headers`` as httpx's ``items()`` gives them)."""
    if status == 416:  # only a resume past the end gets here (HttpHandler._already_complete)
        return Response(
            url=final_url, stream=nothing(), status=status, reason=reason, headers=headers,
            content_type=headers.get("content-type"), length=0, offset=request.offset,
            http_version=http_version, extra={"http_version": http_version}, raw_headers=_HeaderLines(raw),
        )
    length: int | None = None
    raw_length = headers.get("content-length")
    if raw_length and raw_length.isdigit() and not _is_encoded(headers):
        length = int(raw_length)
    offset = 0
    if request.offset and status == 206:
        crange = headers.get("content-range", "")
        try:
            offset = int(crange.split()[1].split("-")[0])
        except (IndexError, ValueError):
            offset = 0
    return Response(
        url=final_url,
        stream=stream,
        status=status,
        reason=reason,
        headers=headers,
        content_type=headers.get("content-type"),
        length=length,
        offset=offset,
        http_version=http_version,
        extra={"http_version": http_version},
        raw_headers=_HeaderLines(raw),
    )


@functools.cache
def _sending_type() -> type:
    """httpx's stream type around a request body (defined once httpx is loaded)."""

    class SendingStream(httpx.AsyncByteStream):  # type: ignore[misc, name-defined]
        """A request body read in chunks, each reported as ``PROGRESS`` "sending" once sent.

        The transport asks for the next chunk only after it has written the previous
        one, so the count after each ``yield`` is what has gone out.
        """

        def __init__(self, content: Any, channel: Channel, url: str) -> None:
            self.content = content
            self.channel = channel
            self.url = url

        async def __aiter__(self) -> AsyncIterator[bytes]:
            done = 0
            total = self.content.length
            async for piece in self.content.chunks_for(self.url):
                yield piece
                done += len(piece)
                await self.channel.emit(Phase.PROGRESS, bytes_done=done, bytes_total=total, message="sending")

    return SendingStream


def _with_body(request: Request, headers: dict[str, str], channel: Channel, url: str) -> dict[str, Any]:
    """``build_request``'s ``content`` for a request with a body, its framing set in ``headers``."""
    content = request.content
    if content is None:
        return {}
    for name in [name for name in headers if name.lower() in ("content-length", "transfer-encoding")]:
        del headers[name]  # the body's own length frames it; a stale one would break the connection
    if content.length is not None:
        headers["Content-Length"] = str(content.length)  # else httpx sends it chunked
    return {"content": _sending_type()(content, channel, url)}


class H2FirstContext(ssl.SSLContext):
    """A client TLS context that offers ``h2`` first in ALPN, whatever order it is given.

    httpcore sets ``["http/1.1", "h2"]`` on the context for every connection, and a
    server that honours the client's order (lighttpd) then never picks HTTP/2.
    """

    __slots__ = ()

    def set_alpn_protocols(self, alpn_protocols: Iterable[str]) -> None:
        """Set the protocols offered, ``h2`` moved to the front."""
        protocols = list(alpn_protocols)
        if "h2" in protocols:
            protocols.remove("h2")
            protocols.insert(0, "h2")
        super().set_alpn_protocols(protocols)


def _offer_h2_first(context: ssl.SSLContext) -> None:
    """Make a context built here (httpx's or the loader's, never the caller's own) offer h2 first.

    Its class is swapped rather than the context rebuilt, so every setting httpx or
    the loader made (CA bundle, ``SSL_CERT_FILE``, key log) stays exactly as it is.
    """
    if type(context) is ssl.SSLContext:
        context.__class__ = H2FirstContext


def _proxies_in_environment() -> bool:
    """Whether a proxy may be configured (then httpx's routing decides for each request).

    Read the way ``urllib.request.getproxies`` (httpx's reader) reads a Linux or BSD
    environment: any non-empty ``*_proxy`` variable, in either case, but ``no_proxy``.
    On macOS and Windows the system's own settings count too: always yes there.
    """
    if sys.platform in ("darwin", "win32"):
        return True
    return any(value and name.lower().endswith("_proxy") and name.lower() != "no_proxy"
               for name, value in os.environ.items())


class _Tracing:
    """One request's trace callbacks (``trace`` for the direct lane, ``httpx_trace`` for
    httpx's) and what they read: the request's URL for messages, the direct lane's head,
    whether httpx's lane goes through a proxy, a proxy's CONNECT being traced."""

    __slots__ = ("channel", "deny", "head", "proxied", "tunnel", "unheard", "url")

    def __init__(self, channel: Channel, url: str) -> None:
        self.channel = channel
        #: The request's URL for messages (password redacted).
        self.url = url
        self.deny = channel.context.deny_private
        #: Whether httpx's lane sends the current request through a proxy (whose
        #: address is the user's own setting: not checked against deny_private).
        self.proxied = False
        #: The message of a proxy's CONNECT while its request and response are traced.
        self.tunnel: str | None = None
        #: The direct lane's request head as written (its trace names no request).
        self.head = b""
        #: The core's channel says which phases nobody would see (their time is noted):
        #: their events, and the arguments for them, are not made.
        self.unheard: Callable[[Phase], bool] | None = getattr(channel, "unheard", None)

    def trace(self, name: str, info: dict[str, Any]) -> Awaitable[None] | None:
        # Not a coroutine function: it hands back channel.emit's own awaitable (one
        # coroutine a phase, not two) to the direct lane's transport, which awaits it,
        # or None when there is nothing to await (a name it does not report, a phase
        # nobody hears).  httpx's lane gets httpx_trace: httpcore insists on a
        # coroutine function.
        phase = _TRACE_PHASES.get(name)
        if phase is None:
            return None
        unheard, channel = self.unheard, self.channel
        if unheard is not None and phase is not Phase.CONNECTED_TO_SERVER and unheard(phase):
            return None
        if phase is Phase.RESPONSE_RECEIVED:
            value = info.get("return_value")
            if isinstance(value, tuple) and len(value) == 4:  # HTTP/1.x: version, status, reason, headers
                version, status, reason, _ = value
                return channel.emit(
                    phase, status=status, reason=reason.decode("ascii", errors="ignore"),
                    http_version=_version_name(version), headers=_HeaderLines(value[3]),
                )
        elif phase is Phase.REQUEST_SENT:
            sent = info.get("request")
            return channel.emit(phase, headers=_HeaderLines(
                self.head if sent is None else getattr(sent.headers, "raw", sent.headers)))
        elif phase is Phase.CONNECTED_TO_SERVER:
            stream = info.get("return_value")
            peer = stream.get_extra_info("server_addr") if stream is not None else None
            if self.deny and not self.proxied:
                # The address reached, before a byte is sent on it (TLS's included).
                if not peer:
                    raise PolicyDenied("cannot tell which address the connection reached", url=self.url)
                check_peer(channel, str(peer[0]), url=self.url)
            if unheard is not None and unheard(phase):
                return None
            if peer:
                return channel.emit(phase, message=f"{peer[0]}:{peer[1]}")
        return channel.emit(phase)

    async def httpx_trace(self, name: str, info: dict[str, Any]) -> None:
        phase = _TRACE_PHASES.get(name)
        if phase is None:
            return
        channel = self.channel
        sent = info.get("request")  # only a step's start names it
        if sent is not None:
            self.tunnel = _tunnel_message(sent)
        tunnel = self.tunnel
        if tunnel is not None and phase in _EXCHANGE_PHASES:
            await _tunnel_phase(channel, phase, tunnel, info)
            if phase is Phase.RESPONSE_RECEIVED:
                self.tunnel = None
            return
        if phase is Phase.RESPONSE_RECEIVED and name.startswith("http2."):
            status = info.get("return_value", (None,))[0]
            reason = httpx.codes.get_reason_phrase(status) if isinstance(status, int) else None
            await channel.emit(phase, status=status, reason=reason, http_version="HTTP/2",
                               headers=_HeaderLines(info.get("return_value", (None, []))[1]))
            return
        try:
            step = self.trace(name, info)
            if step is not None:
                await step
        except PolicyDenied:
            stream = info.get("return_value")  # httpcore's stream: not ours to leak
            if stream is not None and hasattr(stream, "aclose"):
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
            raise


class _Opening:
    """``HttpHandler.open(request, channel)``: the direct lane's exchange when it can
    answer, else :meth:`HttpHandler._open_httpx` (entered and left through this).

    A plain class, not ``@asynccontextmanager``: that one's async generator (the loop's
    hooks track each), its Python ``__aenter__``/``__aexit__`` and the
    ``StopAsyncIteration`` that ends it cost ~12k instructions a request more.
    """

    __slots__ = ("_body", "_channel", "_handler", "_httpx", "_recording", "_request")

    def __init__(self, handler: HttpHandler, request: Request, channel: Channel) -> None:
        self._handler = handler
        self._request = request
        self._channel = channel
        self._body: Any = None  # the direct lane's body, closed on exit
        self._recording: Recording | None = None
        self._httpx: AbstractAsyncContextManager[Response] | None = None

    async def __aenter__(self) -> Response:
        handler, request, channel = self._handler, self._request, self._channel
        tracing = _Tracing(channel, redact_url(request.url))  # for messages: never show a password
        url = tracing.url
        headers = dict(request.headers)
        if request.offset:
            headers["Range"] = f"bytes={request.offset}-"
        recorder = channel.context.recorder
        response: httpx.Response | None = None
        # Loader.fetch(as_is=True): a 3xx or an error status is the answer (no redirect followed).
        as_is = bool(request.options.get("as_is"))
        direct = handler._lane()
        # A body goes through httpx's client: the lane writes heads only.
        plan = None if direct is None or request.content is not None else direct.plan(
            request.method, request.url, headers, tracing.trace
        )
        if plan is not None:
            origin, how = plan
            head = tracing.head = how.head
            if not resolved_already(channel, origin[1], origin[2]):
                await resolve_host(channel, origin[1], origin[2], url=url)
            try:
                answer = await direct.transport.exchange(origin, how)  # type: ignore[union-attr]
            except NotHandled:
                pass  # HTTP/2 after all: httpx's lane below
            except httpx.HTTPError as exc:
                raise map_error(exc, url) from exc
            else:
                version, status, reason_bytes, raw, body = answer
                found = header_dict(raw)
                if found is not None and not (
                    sets_cookie(found) or (status in _REDIRECTS and "location" in found and not as_is)
                ):
                    self._body = body
                    try:
                        recording = self._recording = None if recorder is None else _recording(
                            recorder, request.url, head, answer[:4], body.connection)
                        reason = reason_bytes.decode("ascii", errors="ignore")
                        if status >= 400 and not as_is:
                            await _drain(_recorded(body, recording), found)
                            if not await handler._already_complete(
                                status, found, request, headers, tracing.httpx_trace
                            ):
                                raise _status_error(status, reason, found, url)
                        stream: AsyncIterator[bytes] = _recorded(_RawBody(body, url), recording)
                        if _is_encoded(found):
                            stream = _DecodedBody(stream, _decoder(found, url), url)
                        return _make_response(
                            request.url, status, reason, found, _version_name(version), stream, request, raw
                        )
                    except BaseException:
                        await self._close_direct()
                        raise
                # httpx's part of the answer: its jar, its next request, its header decoding.
                response = await handler._hand_to_httpx(request, headers, tracing.httpx_trace, url, answer)
        self._httpx = handler._open_httpx(request, channel, tracing, headers, response)
        return await self._httpx.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._httpx is not None:
            return await self._httpx.__aexit__(exc_type, exc, tb)
        await self._close_direct()
        return None

    async def _close_direct(self) -> None:
        body, recording = self._body, self._recording
        self._body = self._recording = None
        try:
            if recording is not None:
                recording.close("unspecified")  # nothing if its body ended
        finally:
            if body is not None:
                await body.aclose()


class HttpHandler(ProtocolHandler):
    """Serves ``http`` and ``https`` for one loader, with one pooled httpx client.

    The client is built when a request first needs it.  Until then plain GETs take
    the direct lane on the fast transport alone, so httpx is not even imported for a
    page whose responses never need it (no proxy in the environment, no redirect,
    cookie, encoding, error or TLS); once the client exists, the lane goes on over
    the same transport and connections, asking the client as before.
    """

    schemes = ("http", "https")
    #: Any method, and request bodies (``Request.content``), are sent.
    sends_bodies = True

    def __init__(self, context: PluginContext) -> None:
        self._context = context
        self._client: httpx.AsyncClient | None = None
        self._routes: Any = None  # the client's transport (_client.Routes)
        self._direct: DirectLane | None = None
        self._fast: FastTransport | None = None
        self._ssl: ssl.SSLContext | None = None
        #: Whether plain GETs may go out before the client is built (None: not asked yet).
        self._early: bool | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = client = self._make_client()
            transport = self._routes.default
            if _lane_allowed() and isinstance(transport, FastTransport):
                if self._direct is None or self._direct.transport is not transport:
                    self._direct = DirectLane(transport)
                self._direct.attach(client, self._routes.route)
            else:
                self._direct = None
        return self._client

    def _lane(self) -> DirectLane | None:
        """The direct lane: without a client while none is needed, else the client's."""
        if self._client is not None:
            return self._direct
        if self._early is None:
            self._early = (
                _lane_allowed() and not _proxies_in_environment() and not _httpcore_chosen()
                and not self._context.proxy
            )
        if not self._early:
            _ = self.client
            return self._direct
        if self._direct is None:
            self._direct = DirectLane(self._fast_transport(), timeouts=self._timeouts())
        return self._direct

    def _timeouts(self) -> dict[str, float | None]:
        """The loader's timeouts as httpx's ``timeout`` extension (``Timeout.as_dict()``) names them."""
        t = self._context.timeouts
        return {"connect": t.connect, "read": t.idle, "write": t.idle, "pool": None}

    def warm_up(self) -> None:
        """Build now what the first request would: the transport and the lane (or the client)."""
        self._lane()

    def _http2(self) -> bool:
        return self._context.http2 is not False and _h2_available()

    def _ssl_context(self) -> ssl.SSLContext:
        # Built on first use: loading the CA bundle costs ~20 ms a loader, wasted over plain HTTP.
        if self._ssl is None:
            verify = self._context.verify
            if isinstance(verify, bool):
                self._ssl = httpx.create_ssl_context(verify=verify)  # httpx's (certifi, SSL_CERT_FILE)
            else:
                self._ssl = self._context.ssl_context  # a CA path or the caller's own context
            if self._http2() and not isinstance(verify, ssl.SSLContext):
                _offer_h2_first(self._ssl)
        return self._ssl

    def _fast_transport(self) -> FastTransport:
        if self._fast is None:
            self._fast = FastTransport(
                ssl_context=self._ssl_context, http2=self._http2(), max_idle=self._context.limits.total,
                local_address=self._context.local_address,
            )
        return self._fast

    def _make_client(self) -> httpx.AsyncClient:
        from ._client import Client, Deferred, Routes

        http2 = self._http2()
        total = self._context.limits.total
        limits = httpx.Limits(max_connections=total, max_keepalive_connections=total)

        def standard(proxy: str | None = None) -> httpx.AsyncHTTPTransport:
            return httpx.AsyncHTTPTransport(
                verify=self._ssl_context(), http2=http2, trust_env=True, proxy=proxy, limits=limits,
                local_address=self._context.local_address,
            )

        if _httpcore_chosen():
            default: httpx.AsyncBaseTransport = standard()
        else:
            # Ours underneath httpx (the one the lane may have used already); httpcore
            # (imported only then) for proxies and HTTP/2.
            default = fast = self._fast_transport()
            fast.fallback = Deferred(standard)
        # The loader's own proxy replaces the environment's (as curl's --proxy does).
        self._routes = Routes(default, standard, self._context.proxy)
        # The headers are the lane's own (so both lanes write the same head); Accept-Encoding
        # offers only what _decoding undoes (httpx adds br and zstd when they are installed).
        return Client(
            transport=self._routes, follow_redirects=False, trust_env=True,
            timeout=httpx.Timeout(**self._timeouts()), headers=default_headers(),
        )

    async def aclose(self) -> None:
        client, fast, routes = self._client, self._fast, self._routes
        self._client = self._direct = self._fast = self._routes = None
        self._early = None
        if client is not None:
            await client.aclose()  # and its transports
        if fast is not None and (client is None or routes.default is not fast):
            await fast.aclose()

    def open(self, request: Request, channel: Channel) -> AbstractAsyncContextManager[Response]:
        return _Opening(self, request, channel)

    @asynccontextmanager
    async def _open_httpx(
        self, request: Request, channel: Channel, tracing: _Tracing, headers: dict[str, str],
        response: httpx.Response | None,
    ) -> AsyncIterator[Response]:
        """``open`` through httpx's client: ``response``, when the direct lane got one and
        handed it over, else a request built and sent here; redirects followed."""
        url = tracing.url
        httpx_trace = tracing.httpx_trace
        recorder = channel.context.recorder
        recording: Recording | None = None
        as_is = bool(request.options.get("as_is"))
        client = self.client
        if response is not None:
            http_request = response.request
        else:
            try:
                http_request = client.build_request(
                    request.method, request.url, headers=headers, extensions={"trace": httpx_trace},
                    **_with_body(request, headers, channel, url),
                )
            except (httpx.InvalidURL, ValueError) as exc:
                raise InvalidURL(printable(f"invalid URL: {exc}"), url=url) from exc
            if as_is and "cookie" not in client.headers and not any(k.lower() == "cookie" for k in headers):
                http_request.headers.pop("cookie", None)  # as_is: the caller keeps the cookies, not our jar
        seen = {str(http_request.url)}
        max_redirects = self._context.max_redirects
        carrying = request.content is not None  # whether the request now in flight has the body
        while True:
            if response is None:
                if tracing.deny:
                    tracing.proxied = self._routes.proxied(http_request.url)
                await self._resolve(http_request.url, channel, url)
                try:
                    response = await client.send(http_request, stream=True)
                except httpx.HTTPError as exc:
                    raise map_error(exc, url) from exc
            try:
                if recorder is not None:
                    recording = _record_httpx(recorder, response)
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location and not as_is:
                    previous, http_request = http_request, self._next(response, url, seen, max_redirects)
                    if http_request.method != previous.method:
                        carrying = False  # a 301/302/303 turned it into a GET: the body stays behind
                    elif carrying and not request.replayable:
                        raise RedirectError(
                            f"HTTP {response.status_code} asks to send the body again, "
                            "and a streamed body cannot be read twice", url=url,
                        )
                    await _drain(_recorded(response.aiter_raw(), recording), response.headers)
                    await response.aclose()
                    response = None
                    await channel.redirect(str(http_request.url))
                    http_request.extensions["trace"] = httpx_trace
                    continue
                if response.status_code >= 400 and not as_is:
                    await _drain(_recorded(response.aiter_raw(), recording), response.headers)
                    if not await self._already_complete(
                        response.status_code, response.headers, request, headers, httpx_trace
                    ):
                        raise _status_error(response.status_code, response.reason_phrase, response.headers, url)
                yield self._response(response, request, url, recording)
            finally:
                if recording is not None:
                    recording.close("unspecified")  # nothing if its body ended
                    recording = None
                if response is not None:
                    await response.aclose()
            return

    async def _already_complete(
        self, status: int, found: Any, request: Request, headers: dict[str, str], trace: Any
    ) -> bool:
        """A resume past the end: a ``416`` for a file that is whole already (``--continue`` twice).

        The 416's ``Content-Range: bytes */N`` must be the local size; a 416 that states no
        size (lighttpd's) is checked with a ``HEAD``: its identity ``Content-Length`` must
        be the local size.  Anything else stays an error.
        """
        size = _stated_size(status, found, request)
        if size is None or size >= 0:
            return size == request.offset

        async def connections_only(name: str, info: dict[str, Any]) -> None:
            # The HEAD is no exchange of the resource's own: only a new connection
            # is reported (and checked against deny_private).
            if _TRACE_PHASES.get(name) is Phase.CONNECTED_TO_SERVER:
                await trace(name, info)

        probe = {k: v for k, v in headers.items() if k.lower() not in ("range", "if-range")}
        try:
            answer = await self.client.head(request.url, headers=probe, extensions={"trace": connections_only})
        except httpx.HTTPError:
            return False
        length = answer.headers.get("content-length", "")
        return (
            answer.status_code == 200 and not _is_encoded(answer.headers)
            and length.isdigit() and int(length) == request.offset
        )

    async def _hand_to_httpx(
        self, request: Request, headers: dict[str, str], trace: Any, url: str, answer: Exchange
    ) -> httpx.Response:
        """A direct response as httpx's client returns it (cookies taken, next request built).

        The request goes through ``client.send`` with the answer in its extensions:
        the fast transport hands that answer back instead of sending again.
        """
        client = self.client
        body = answer[4]
        try:
            http_request = client.build_request(
                request.method, request.url, headers=headers, extensions={"trace": trace, ANSWERED: answer}
            )
            response = await client.send(http_request, stream=True)
        except httpx.HTTPError as exc:
            await body.aclose()
            raise map_error(exc, url) from exc
        except BaseException:
            await body.aclose()
            raise
        return response

    def _next(
        self, response: httpx.Response, url: str, seen: set[str], max_redirects: int
    ) -> httpx.Request:
        try:
            target = response.next_request
        except (httpx.HTTPError, ValueError) as exc:
            raise RedirectError(
                printable(f"bad redirect location {response.headers.get('location')!r}: {exc}"), url=url
            ) from exc
        if target is None:
            raise RedirectError("redirect without a usable Location", url=url)
        if target.url.scheme not in ("http", "https"):
            raise RedirectError(printable(f"refusing to follow a redirect to {target.url.scheme}: {target.url}"), url=url)
        if len(seen) > max_redirects:
            raise RedirectError(f"more than {max_redirects} redirects", url=url)
        key = str(target.url)
        if key in seen:
            raise RedirectError(printable(f"redirect loop back to {key}"), url=url)
        seen.add(key)
        return target

    async def _resolve(self, target: httpx.URL, channel: Channel, url: str) -> None:
        _ = self.client
        if self._routes.proxied(target):
            return  # the proxy resolves the name
        port = target.port or (443 if target.scheme == "https" else 80)
        await resolve_host(channel, target.host, port, url=url)

    def _response(
        self, response: httpx.Response, request: Request, url: str, recording: Recording | None = None
    ) -> Response:
        # One walk over httpx's headers (each Headers.get scans them all); repeated
        # lines are joined with ", " here just as Headers.get joins them.
        return _make_response(
            str(response.url), response.status_code, response.reason_phrase, dict(response.headers.items()),
            response.http_version, self._body(response, url, recording), request, response.headers.raw,
        )

    @staticmethod
    def _body(response: httpx.Response, url: str, recording: Recording | None = None) -> AsyncIterator[bytes]:
        """The body as it came (``aiter_raw``: httpx's decoders never run), decoded by ours."""
        raw = _recorded(HttpHandler._raw(response, url), recording)
        if _is_encoded(response.headers):
            return _DecodedBody(raw, _decoder(response.headers, url), url)
        return raw

    @staticmethod
    async def _raw(response: httpx.Response, url: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise map_error(exc, url) from exc
