"""The one seam protocol plugins implement.

Data flow for one request (the core owns the lifecycle, the plugin only the
middle)::

    Loader ──HANDLE_CREATED──▶ policy / prepare hooks
           ──▶ handler.open(request, channel)   (plugin: resolve, connect, send,
               │                                 receive headers; emits its phases
               │                                 through channel.emit)
               ▼
           Response(stream=…)  ──chunks──▶ core sink (memory / temp file / caller)
                                            core emits PROGRESS
           ──REQUEST_COMPLETE | FAILED | CANCELLED──▶

A handler is created once per :class:`~loader.Loader` and scheme (by the
``loader_protocol`` hook), so it may own connection pools; ``aclose`` is
called when the loader closes.  ``open`` is an async context manager: on exit
the handler releases the connection (back to its pool or closed).

Handlers raise :mod:`loader` errors (``NotFound``, ``ConnectError`` …) with the
URL set; anything else is reported as a ``PluginError`` naming the plugin.
Timeouts: the core enforces the total deadline; handlers apply
``channel.timeouts.connect`` and ``channel.timeouts.idle`` to their own I/O
(e.g. ``with anyio.fail_after(channel.timeouts.idle):`` around each read).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ._events import Phase

if TYPE_CHECKING:
    from ._context import PluginContext, Recording
    from ._models import Request, Timeouts

__all__ = ["Channel", "ProgressStream", "ProtocolHandler", "Response", "record_resource"]


@dataclass(kw_only=True)
class Response:
    """What a handler's ``open`` yields: metadata plus a body stream.

    ``length`` is the expected number of body bytes still to come (``None``
    when unknown); ``offset`` is where the body starts when the handler honoured
    ``Request.offset`` (resume).  ``document`` says whether the body is a
    document whose requisites discovery should look for (``"html"``, ``"css"``,
    ``"gopher-menu"``, ``"ftp-listing"`` …) or ``None``.  ``http_version``
    names the protocol version a response came over (``"HTTP/1.1"``, ``"HTTP/2"``),
    ``None`` for protocols without one.  A handler may update ``status`` and
    ``reason`` while the body streams (FTP's final ``226`` after the preliminary
    ``150``): the core reads them once the body has ended.  ``raw_headers`` are the
    header lines as received, in order (names' case and repeated lines kept, e.g.
    two ``Set-Cookie``), where ``headers`` joins repeats; empty for protocols without.
    """

    url: str
    stream: AsyncIterator[bytes]
    status: int | None = None
    reason: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    length: int | None = None
    offset: int = 0
    document: str | None = None
    http_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw_headers: Sequence[tuple[str, str]] = ()


class Channel(Protocol):
    """The core's side of a transfer, handed to ``ProtocolHandler.open``."""

    request_id: int
    timeouts: Timeouts
    attempt: int

    async def emit(self, phase: Phase, **data: Any) -> None:
        """Report a phase (``status=``, ``message=``, ``new_url=`` …) to callbacks and observers."""

    async def redirect(self, new_url: str) -> None:
        """Report a redirect and check the target against policy hooks.

        Raises ``PolicyDenied`` when a ``loader_allow`` hook refuses the target.
        """

    @property
    def context(self) -> PluginContext:
        """The loader's settings and shared state (the ``context`` ``loader_protocol`` got)."""

    def progress(
        self, stream: AsyncIterator[bytes], *, total: int | None = None, start: int = 0
    ) -> ProgressStream:
        """Wrap a body the caller reads itself so each chunk is reported as ``PROGRESS``.

        The core does this for bodies it reads (fetches); use it in library
        operations that hand a stream to the caller (an FTP file, a Gopher item).
        """


class ProgressStream:
    """A body stream that reports ``PROGRESS`` (from ``start``, towards ``total``) as it is read.

    A plain async iterator, not a generator: a reader that stops early leaves
    nothing to finalise.  ``bytes_done`` counts from ``start``.
    """

    def __init__(
        self, stream: AsyncIterator[bytes], channel: Channel, *, total: int | None = None, start: int = 0
    ) -> None:
        self._stream = stream
        self._channel = channel
        self.total = total
        self.bytes_done = start

    def __aiter__(self) -> ProgressStream:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._stream.__anext__()
        self.bytes_done += len(chunk)
        await self._channel.emit(Phase.PROGRESS, bytes_done=self.bytes_done, bytes_total=self.total)
        return chunk

    async def aclose(self) -> None:
        """Close the wrapped stream, if it can be closed."""
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


def record_resource(channel: Channel, response: Response) -> Recording | None:
    """Record ``response``'s body as a resource (WARC) when the loader records; else None.

    For protocols without a request and response head (FTP, Gopher): the body read from
    ``response.stream`` from now on goes to the recording too.  The handler closes the
    recording when it is done with the response (``close("unspecified")`` in its
    ``finally``: nothing happens when the body was read to its end).
    """
    recorder = channel.context.recorder
    if recorder is None:
        return None
    from ._context import RecordedStream

    recording = recorder.begin(response.url, resource=True, content_type=response.content_type)
    response.stream = RecordedStream(response.stream, recording)
    return recording


class ProtocolHandler(abc.ABC):
    """Fetches URLs of one or more schemes.  Subclass it in a plugin."""

    #: Schemes this handler serves, for listings and error messages.
    schemes: tuple[str, ...] = ()
    #: Whether ``open`` sends ``Request.content`` and honours ``Request.method``; the
    #: core refuses a request with a body or a method other than GET otherwise.
    sends_bodies: bool = False

    @abc.abstractmethod
    def open(self, request: Request, channel: Channel) -> AbstractAsyncContextManager[Response]:
        """Start the request and yield its :class:`Response` once the body can be read."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook for subclasses
        """Build now what the first request would build (a client, a TLS context …).

        Optional.  The shell calls it for the schemes of the URLs it was given before
        the first request starts, so that start-up work is not counted in a page's
        timings; a handler that builds nothing ahead leaves it as it is.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook for subclasses
        """Release pools and connections; called once when the loader closes."""
