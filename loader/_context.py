"""What a protocol plugin may know of the loader that runs it: one typed, public object.

A handler is built by ``loader_protocol(scheme, context)`` and sees the same object again
as ``channel.context`` on every request; it never gets the :class:`~loader.Loader`
itself, so a plugin depends on these fields alone, not on how the loader is built.
"""

from __future__ import annotations

import abc
import functools
import os
import ssl
import time
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass, field

from ._models import Limits, Retries, Timeouts

__all__ = [
    "PluginContext", "RecordedStream", "Recorder", "Recording", "ResolvedNames", "make_ssl_context",
]

#: How long a resolved name is trusted before the next request resolves (and reports) it again.
RESOLVE_TTL = 60.0


def make_ssl_context(verify: bool | str | os.PathLike[str] | ssl.SSLContext = True) -> ssl.SSLContext:
    """A client TLS context from a ``verify`` setting.

    ``True``: the system's trust store; ``False``: no verification (``--insecure``);
    a path: that CA bundle; an ``ssl.SSLContext``: itself.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, (str, os.PathLike)):
        return ssl.create_default_context(cafile=os.fspath(verify))
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ResolvedNames:
    """The names a loader resolved lately (per host and port), each trusted for ``ttl`` seconds.

    Lets each name be resolved, and its ``RESOLVING_NAME``/``NAME_RESOLVED`` reported,
    once per loader rather than once per request (see :func:`loader.resolve_host`).
    Bounded: past ``most`` names, the oldest are forgotten.
    """

    def __init__(self, ttl: float = RESOLVE_TTL, most: int = 4096) -> None:
        self.ttl = ttl
        self.most = most
        self._until: dict[tuple[str, int], float] = {}

    def fresh(self, host: str, port: int) -> bool:
        """Whether ``host:port`` was resolved less than ``ttl`` seconds ago."""
        return self._until.get((host.lower(), port), 0.0) > time.monotonic()

    def note(self, host: str, port: int) -> None:
        """Remember that ``host:port`` has just been resolved."""
        until = self._until
        until.pop((host.lower(), port), None)  # re-inserted last: the dict stays in age order
        until[(host.lower(), port)] = time.monotonic() + self.ttl
        while len(until) > self.most:
            del until[next(iter(until))]


class Recording(abc.ABC):
    """One exchange being recorded as received (see :class:`Recorder`); a plugin fills it in.

    An HTTP exchange: :meth:`request` (the head as sent), :meth:`response` (the status
    line's parts and the header lines as received), the body's bytes as they came (before
    any ``Content-Encoding`` is undone) through :meth:`write`, then :meth:`close`.  A
    resource (an FTP file, a Gopher item) has only the body.  ``close`` is idempotent,
    the first call counts, so a handler may call it again in a ``finally``.
    """

    #: The address the connection reached (``WARC-IP-Address``), when known.
    peer: str | None = None

    def request(self, head: bytes) -> None:  # noqa: B027 - optional for resource records
        """The request line and header lines as sent, ending with the blank line."""

    def response(  # noqa: B027 - optional for resource records
        self, version: bytes, status: int, reason: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> None:
        """The response's status line parts and header lines (names' case and repeats kept)."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Body bytes, in order, as they came."""

    @abc.abstractmethod
    def close(self, truncated: str | None = None) -> None:
        """The body is over: whole (``truncated=None``) or cut short (``"disconnect"``,
        ``"length"``, ``"unspecified"``: the WARC-Truncated reasons)."""


class Recorder(abc.ABC):
    """Where plugins hand exchanges as received (``PluginContext.recorder``; WARC output).

    ``None`` on the context unless the loader records, so a plugin pays nothing then.
    """

    @abc.abstractmethod
    def begin(self, url: str, *, resource: bool = False, content_type: str | None = None) -> Recording:
        """A new recording for ``url``: an HTTP exchange, or a ``resource`` (FTP, Gopher)."""


class RecordedStream:
    """A body stream whose chunks also go to a :class:`Recording`, closed when it ends.

    Ended: the recording is whole; an error from the stream: ``"disconnect"``; closed
    before its end (the reader stopped): ``"unspecified"``.
    """

    __slots__ = ("_chunks", "_recording", "_source")

    def __init__(self, stream: AsyncIterable[bytes], recording: Recording) -> None:
        self._source = stream
        self._chunks = stream.__aiter__()
        self._recording = recording

    def __aiter__(self) -> RecordedStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._recording.close()
            raise
        except BaseException:
            self._recording.close("disconnect")
            raise
        self._recording.write(chunk)
        return chunk

    async def aclose(self) -> None:
        """Close the recording (cut short, unless the body ended) and the wrapped stream."""
        self._recording.close("unspecified")
        for source in (self._chunks, self._source):
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
                return


@dataclass(frozen=True, kw_only=True)
class PluginContext:
    """The loader's settings a protocol handler applies, and the state its requests share.

    ``verify`` is ``True`` (system trust store), ``False`` (no verification), a CA bundle
    path or an ``ssl.SSLContext``; :attr:`ssl_context` is the context it asks for, built
    once.  ``headers`` are the loader's own (already merged into each ``Request``; a handler
    reads them only to build a client ahead).  ``proxy`` (``http://host:port``) replaces
    the environment's proxy settings; ``local_address`` binds new connections (``"0.0.0.0"``:
    IPv4 only, ``"::"``: IPv6 only); ``deny_private`` refuses every connection that reaches a
    loopback, link-local, private or unique-local address (:func:`loader.check_peer`).
    ``resolved`` is the loader's memory of resolved names (:func:`loader.resolve_host`).
    ``recorder`` takes the exchanges as received (WARC output); ``None`` unless on.
    """

    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    retries: Retries = field(default_factory=Retries)
    headers: Mapping[str, str] = field(default_factory=dict)
    verify: bool | str | ssl.SSLContext = True
    http2: bool | None = None
    max_redirects: int = 10
    proxy: str | None = None
    local_address: str | None = None
    deny_private: bool = False
    resolved: ResolvedNames = field(default_factory=ResolvedNames, compare=False, repr=False)
    recorder: Recorder | None = field(default=None, compare=False, repr=False)

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS client context ``verify`` asks for, built on first use (FTPS, gophers …)."""
        return make_ssl_context(self.verify)
