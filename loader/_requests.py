"""One request's life, from ``HANDLE_CREATED`` to its one terminal event.

How one request flows (``Requests.fetch_in``)::

    HANDLE_CREATED ─▶ finish at once? (data: URL, already fetched) ─▶ REQUEST_COMPLETE(synchronous)
                  └▶ loader_allow ─▶ handler for scheme ─▶ Scheduler.attempts:
                        Scheduler.slot (global + per-host)
                        loader_prepare_request hooks
                        handler.open(request, channel)  (plugin emits its phases)
                        stream body ─▶ sink, PROGRESS per chunk
                        transient error & attempts left ─▶ RETRY, backoff, again
                  ─▶ REQUEST_COMPLETE | FAILED | CANCELLED   (always exactly one, always last)

Every request runs in one cancel scope carrying the total deadline, which the
caller (or a callback, through ``Event.cancel``) can also cancel.  Sinks
are aborted on any failure, so a file never appears half-written.  A :class:`Transfer`
is also the :class:`~loader.Channel` its handler sees.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio

from ._context import PluginContext
from ._control import CallControl, Control
from ._dispatch import Delivery
from ._errors import (
    DeadlineExceeded,
    HTTPStatusError,
    InvalidURL,
    LoaderError,
    PluginError,
    RequestCancelled,
    UnsupportedScheme,
)
from ._events import Event, Phase
from ._host import PluginHost
from ._models import Limits, Origin, Request, Result, Retries, Timeouts
from ._protocol import ProgressStream, ProtocolHandler
from ._saving import CallerSink, ExistsPolicy, FileSink, MemorySink
from ._scheduler import Scheduler, host_key
from ._urls import canonical_url, plain_origin, redact_url

__all__ = ["Call", "Destination", "InFlight", "Requests", "Transfer"]

Sink = MemorySink | FileSink | CallerSink
Destination = None | str | Path | Callable[[bytes], Awaitable[None] | None]

#: Bodies up to this size are kept by the loader so a second request for the
#: same URL completes synchronously from memory; the memory is bounded by entries
#: and bytes, least recently used first out (a crawl meets millions of URLs).
CACHE_ENTRY_MAX = 1 << 20
CACHE_BYTES = 64 << 20
CACHE_ENTRIES = 10_000
#: Each phase's name, for ``Result.timings`` (an enum member's ``name`` is a property, ~0.3 us a read).
_PHASE_NAMES = {phase: phase.name for phase in Phase}


def plain_get(method: str, content: Any) -> bool:
    """A GET without a body: what any handler serves, and what may be answered from memory."""
    return method == "GET" and content is None


class DocumentSink(MemorySink):
    """Keeps a document for discovery in memory, failing it once it passes ``Limits.max_page``."""

    over_cap = "document larger than the page cap of {cap} (--max-page-size, Limits.max_page); not kept"


class InFlight:
    """A request on the network that others may wait for: its ``anyio.Event`` is made
    only when one does (nearly never on a page; an Event costs a few microseconds)."""

    __slots__ = ("event", "finished")

    def __init__(self) -> None:
        self.event: anyio.Event | None = None
        self.finished = False

    async def wait(self) -> None:
        if self.finished:
            return
        if self.event is None:
            self.event = anyio.Event()
        await self.event.wait()

    def set(self) -> None:
        self.finished = True
        if self.event is not None:
            self.event.set()


class Call:
    """State shared by every request one public call starts (its callback, context, cancel)."""

    def __init__(self, delivery: Delivery, context: Any) -> None:
        self.delivery = delivery
        self.context = context
        self.control = CallControl()


class Transfer:
    """One request's lifecycle; also the :class:`~loader.Channel` its handler sees."""

    def __init__(
        self,
        requests: Requests,
        call: Call,
        url: str,
        *,
        parent_id: int | None,
        kind: str | None,
        purpose: str,
    ) -> None:
        self._requests = requests
        self.call = call
        #: The URL as requested (may carry credentials: only the handler sees it).
        self.request_url = url
        #: The URL as reported in events, results and errors (password redacted).
        self.url = redact_url(url)
        self.request_id = next(requests.ids)
        self.parent_id = parent_id
        self.kind = kind
        self.purpose = purpose
        self.attempt = 1
        self.timeouts = requests.timeouts
        self.context = requests.context
        self.control = Control(call.control)
        self.t0 = time.monotonic()
        #: When each phase was first reached, by its name (``Result.timings``).
        self.timings: dict[str, float] = {}
        self.synchronous = False
        self.final_url = url
        self.redirects = 0
        self.bytes_done: int | None = None
        #: The URL's key for reuse and sharing (``Requests.url_key``); ``None`` when neither applies.
        self.key: str | None = None
        #: ``Loader.fetch(as_is=True)``: one attempt, the answer as it came (see there).
        self.as_is = False
        delivery = call.delivery
        #: No observer and no callback: no event of this request is built (see unheard).
        self._deaf = not delivery.listening
        self._wanted = delivery.phases

    def unheard(self, phase: Phase) -> bool:
        """Note the time ``phase`` was first reached; True when no one would see its event.

        The core's own phases ask this first and skip :meth:`emit`'s coroutine when it
        says so (a request's few events, when nobody listens, cost their time stamps only).
        """
        timings, name = self.timings, _PHASE_NAMES[phase]
        if name not in timings:  # per chunk otherwise: only the first PROGRESS counts
            timings[name] = time.monotonic() - self.t0
        if self._deaf:
            return True  # nobody to tell: skip building the event
        wanted = self._wanted
        return wanted is not None and phase not in wanted  # no observer asked for it, no callback

    async def emit(self, phase: Phase, **data: Any) -> None:
        """Report a phase of this request (the Channel API)."""
        if phase is Phase.PROGRESS:  # an operation's REQUEST_COMPLETE reports the last count
            self.bytes_done = data.get("bytes_done")
        if self.unheard(phase):
            return
        delivery = self.call.delivery
        event = Event(
            request_id=self.request_id,
            parent_id=self.parent_id,
            url=self.url,
            phase=phase,
            time=time.time(),
            context=self.call.context,
            attempt=self.attempt,
            kind=self.kind,
            synchronous=self.synchronous,
            _control=self.control,
            **data,
        )
        if delivery.inline:
            delivery.deliver_now(event)
        else:
            await delivery.deliver(event)

    def progress(
        self, stream: AsyncIterator[bytes], *, total: int | None = None, start: int = 0
    ) -> ProgressStream:
        """Report a caller-read body's chunks as ``PROGRESS`` (the Channel API)."""
        return ProgressStream(stream, self, total=total, start=start)

    async def redirect(self, new_url: str) -> None:
        """Report a redirect and check the target against policy hooks (the Channel API)."""
        self.redirects += 1
        await self.emit(Phase.REDIRECT, new_url=redact_url(new_url))
        self._requests.host.check_allowed(new_url, "redirect")
        self.final_url = redact_url(new_url)

    def result(self, ok: bool, **fields: Any) -> Result:
        return Result(
            request_id=self.request_id,
            url=self.url,
            final_url=redact_url(fields.pop("final_url", self.final_url)),
            ok=ok,
            attempts=self.attempt,
            elapsed=time.monotonic() - self.t0,
            timings=dict(self.timings),
            kind=self.kind,
            parent_id=self.parent_id,
            context=self.call.context,
            **fields,
        )


class Requests:
    """Runs requests for one loader: its host (plugins), scheduler and settings."""

    def __init__(
        self,
        host: PluginHost,
        scheduler: Scheduler,
        context: PluginContext,
        *,
        reuse: bool = True,
    ) -> None:
        self.host = host
        self.scheduler = scheduler
        self.context = context
        self.limits: Limits = context.limits
        self.timeouts: Timeouts = context.timeouts
        self.retries: Retries = context.retries
        self.reuse = reuse
        self.ids = itertools.count(1)
        self.cache: collections.OrderedDict[str, Result] = collections.OrderedDict()
        self.cache_bytes = 0
        #: Requests on the network now, by URL key: a second request for one waits for it.
        self.inflight: dict[str, InFlight] = {}
        #: The loader's counters (``Loader.stats``), kept here with plain int adds.
        self.stats = scheduler.stats

    @property
    def shared(self) -> int:
        """Requests that waited for one in flight and completed with its result."""
        return self.stats.shared

    def make_sink(
        self,
        url: str,
        to: Destination,
        *,
        resume: bool,
        exists: ExistsPolicy,
        root: Path | None = None,
        checked: set[str] | None = None,
        document: bool = False,
    ) -> Sink:
        max_body = self.limits.max_body
        if to is None:
            if document:
                return DocumentSink(url, self.limits.max_page)
            return MemorySink(url, max_body)
        if isinstance(to, (str, Path)):
            return FileSink(
                url, to if isinstance(to, Path) else Path(to), root=root, exists=exists, max_body=max_body, resume=resume, checked=checked
            )
        if callable(to):
            return CallerSink(url, to, max_body)
        raise TypeError(f"unsupported destination {to!r}")

    async def fetch_in(
        self,
        call: Call,
        url: str,
        *,
        to: Destination = None,
        kind: str | None = None,
        resume: bool = False,
        exists: ExistsPolicy = "overwrite",
        headers: Mapping[str, str] | None = None,
        parent_id: int | None = None,
        purpose: str = "fetch",
        root: Path | None = None,
        checked: set[str] | None = None,
        document: bool = False,
        method: str = "GET",
        content: Any = None,
        given: tuple[bytes, dict[str, Any]] | None = None,
        as_is: bool = False,
    ) -> Result:
        """One request; ``document``: a page or stylesheet kept in memory under ``Limits.max_page``.

        ``given``: the body and result fields the caller already has (a page its crawler
        downloaded): the request completes with them at once, nothing is fetched.
        """
        transfer = Transfer(self, call, url, parent_id=parent_id, kind=kind, purpose=purpose)
        transfer.as_is = as_is
        try:
            sink = self.make_sink(
                transfer.url, to, resume=resume, exists=exists, root=root, checked=checked,
                document=document,
            )
        except Exception:
            transfer.control.done()
            raise
        try:
            if given is not None:
                return await self.finish_at_once(transfer, sink, given[0], Origin.GIVEN, given[1])
            return await self._run(transfer, sink, headers, method, content)
        finally:
            transfer.control.done()

    async def _run(
        self, t: Transfer, sink: Sink, headers: Mapping[str, str] | None, method: str = "GET", content: Any = None
    ) -> Result:
        # A request with a body or another method asks the server something new each time;
        # one as_is asks the network (another caller's copy may have been a redirect's end).
        if t.as_is or not plain_get(method, content):
            return await self._run_network(t, sink, headers, method, content)
        if self.reuse:
            t.key = self.url_key(t.request_url)
        at_once = self.at_once(t, sink)
        if at_once is not None:
            return await self.finish_at_once(t, sink, *at_once)
        key = t.key
        if key is None or key.startswith("data:"):
            return await self._run_network(t, sink, headers, method, content)
        running = self.inflight.get(key)
        if running is not None:
            # One request per URL: wait for the one in flight and share what it got.
            self.stats.shared += 1
            await running.wait()
            at_once = self.at_once(t, sink)
            if at_once is not None:
                return await self.finish_at_once(t, sink, *at_once)
            if key in self.inflight:  # the first failed and another took over: no third request
                await self.inflight[key].wait()
                at_once = self.at_once(t, sink)
                if at_once is not None:
                    return await self.finish_at_once(t, sink, *at_once)
            self.stats.shared -= 1  # nothing to share (it failed, or was too big to keep): ask again
        done = self.inflight[key] = InFlight()
        try:
            return await self._run_network(t, sink, headers, method, content)
        finally:
            del self.inflight[key]
            done.set()

    def url_key(self, url: str) -> str:
        """The key by which two requests are for the same resource (``loader_url_key``, else
        :func:`~loader._urls.canonical_url`)."""
        hook = self.host.pm.hook.loader_url_key
        if hook.get_hookimpls():
            key = hook(url=url)
            if isinstance(key, str):
                return key
        return canonical_url(url)

    async def _run_network(
        self, t: Transfer, sink: Sink, headers: Mapping[str, str] | None, method: str = "GET", content: Any = None
    ) -> Result:
        url = t.url
        if not t.unheard(Phase.HANDLE_CREATED):
            await t.emit(Phase.HANDLE_CREATED)
        deadline = (
            anyio.current_time() + self.timeouts.total if self.timeouts.total is not None else float("inf")
        )
        outcome: Result | None = None
        error: BaseException | None = None
        try:
            # One scope: the total deadline, and what Event.cancel() cancels (it sets
            # control.cancelled first, which tells the two apart).
            with anyio.CancelScope(deadline=deadline) as scope:
                t.control.scope = scope
                if t.control.cancelled:
                    scope.cancel()
                outcome = await self._attempts(t, sink, headers, method, content)
            if outcome is None:
                if t.control.cancelled:
                    error = RequestCancelled("cancelled", url=url)
                elif scope.cancelled_caught:
                    error = DeadlineExceeded(
                        f"total deadline of {self.timeouts.total:g}s exceeded", url=url
                    )
        except LoaderError as exc:
            error = exc
        finally:
            t.control.scope = None
            if outcome is None:
                sink.abort()
                if error is None:  # cancelled from outside: report, then let it propagate
                    with anyio.CancelScope(shield=True):
                        await t.emit(Phase.CANCELLED, error=RequestCancelled("cancelled", url=url))
        assert error is not None or outcome is not None
        if outcome is not None:
            return outcome
        phase = Phase.CANCELLED if isinstance(error, RequestCancelled) else Phase.FAILED
        if phase is Phase.FAILED:
            self.stats.failures += 1
            self.stats.host(host_key(t.request_url)).failures += 1
        await t.emit(phase, error=error)
        status = getattr(error, "status", None)
        return t.result(False, error=error, status=status)

    async def _attempts(
        self, t: Transfer, sink: Sink, headers: Mapping[str, str] | None, method: str = "GET", content: Any = None
    ) -> Result:
        url = t.request_url
        plain = plain_origin(url)
        try:
            scheme = plain[0] if plain is not None else urlsplit(url).scheme
        except ValueError as exc:
            raise InvalidURL(f"cannot parse URL: {exc}", url=t.url) from exc
        if not scheme:
            raise InvalidURL("not an absolute URL (no scheme)", url=t.url)
        self.host.check_allowed(url, t.purpose, plain)
        plugin, handler = self.host.handler_entry(scheme, t.url)
        request = Request(
            url=url, method=method, headers=dict(headers or {}), kind=t.kind, content=content,
            options={"as_is": True} if t.as_is else {},
        )
        repeatable = True
        if not plain_get(method, content):
            if not getattr(handler, "sends_bodies", False):  # a duck-typed handler: GET only
                what = "a request body" if content is not None else f"the {method} method"
                raise UnsupportedScheme(f"the {plugin!r} plugin cannot send {what} (GET only)", url=t.url)
            # The server may have acted on a POST that failed on its way back: only the
            # caller may say that doing it twice is fine.  A body read once cannot be resent.
            repeatable = request.replayable and (request.idempotent or self.retries.non_idempotent)

        try:  # the first attempt directly: most requests need no other
            return await self._attempt(t, plugin, handler, request, sink)
        except LoaderError as exc:
            failed = exc

        async def retry(exc: LoaderError, delay: float) -> None:
            self.stats.retries += 1
            await t.emit(Phase.RETRY, error=exc, message=f"retrying in {delay:.2f}s")

        async def attempt(number: int) -> Result:
            if number != t.attempt:
                t.attempt, t.final_url = number, t.url
            return await self._attempt(t, plugin, handler, request, sink)

        # as_is: one attempt; the caller (a crawler) retries as it sees fit.
        return await self.scheduler.attempts(
            attempt, first=t.attempt, repeatable=repeatable and not t.as_is, on_retry=retry, failed=failed
        )

    async def _attempt(
        self, t: Transfer, plugin: str, handler: ProtocolHandler, request: Request, sink: Sink
    ) -> Result:
        scheduler, stats = self.scheduler, self.stats
        key = host_key(request.url)
        host_stats = stats.host(key)
        async with scheduler.host_slot(key):
            stats.requests += 1
            host_stats.requests += 1
            request = self.host.prepare(request)
            resuming = sink if isinstance(sink, FileSink) and sink.resume else None
            offset = resuming.resume_offset() if resuming is not None else 0
            if offset:
                # If-Range with the partial's validator: a changed resource comes whole.
                request = dataclasses.replace(request, offset=offset).with_headers(**sink.resume_headers())
            try:
                async with handler.open(request, t) as response:
                    start = response.offset if offset and response.offset == offset else 0
                    sink.start(start)
                    if resuming is not None:  # the validator for the next run's If-Range
                        resuming.remember_response(response.headers)
                    done = start
                    total = None if response.length is None else response.length + start
                    if scheduler.held:  # answered: a host held after a 429/503 may be let go
                        scheduler.note_status(request.url, response.status)
                    rate = scheduler.rate
                    async for chunk in response.stream:
                        if chunk:
                            await sink.write(chunk)
                            size = len(chunk)
                            done += size
                            stats.bytes += size
                            host_stats.bytes += size
                            if rate is not None:
                                await rate.take(size)
                            if not t.unheard(Phase.PROGRESS):
                                await t.emit(Phase.PROGRESS, bytes_done=done, bytes_total=total)
                    stored = sink.commit()
            except LoaderError as exc:
                sink.abort()
                if isinstance(exc, HTTPStatusError):
                    scheduler.note_status(request.url, exc.status, exc.retry_after)
                raise
            except Exception as exc:
                sink.abort()
                raise PluginError(f"{type(exc).__name__}: {exc}", plugin=plugin, url=t.url) from exc
        result = t.result(
            True,
            final_url=response.url or t.final_url,
            status=response.status,
            content_type=response.content_type,
            size=done,
            path=stored if isinstance(stored, Path) else None,
            content=stored if isinstance(stored, bytes) else None,
            headers=dict(response.headers),
            document=response.document,
            http_version=response.http_version,
            reason=response.reason,
            raw_headers=response.raw_headers,
        )
        if not t.unheard(Phase.REQUEST_COMPLETE):
            await t.emit(Phase.REQUEST_COMPLETE, bytes_done=done, bytes_total=done, status=response.status)
        if plain_get(request.method, request.content):
            if t.key is not None:
                self.remember(t.key, result)
        return result

    # -- completing at once ------------------------------------------------------

    def remember(self, url: str, result: Result) -> None:
        """Keep a completed plain GET's result for :meth:`at_once` (least recently used goes first)."""
        if not self.reuse:
            return
        content = result.content
        if content is not None and len(content) > CACHE_ENTRY_MAX:
            result = dataclasses.replace(result, content=None)  # the saved file, if any, serves
            if result.path is None:
                return
        cache = self.cache
        old = cache.pop(url, None)
        if old is not None:
            self.cache_bytes -= len(old.content or b"")
        cache[url] = result
        self.cache_bytes += len(result.content or b"")
        while len(cache) > CACHE_ENTRIES or self.cache_bytes > CACHE_BYTES:
            _, dropped = cache.popitem(last=False)
            self.cache_bytes -= len(dropped.content or b"")

    def at_once(self, t: Transfer, sink: Sink) -> tuple[bytes | Path, Origin, dict[str, Any]] | None:
        """What a request can complete from without the network: body, origin, result fields."""
        if t.request_url.startswith("data:"):
            from .discovery.data_url import decode_data_url  # lazily: keeps `import loader` light

            try:
                body, content_type = decode_data_url(t.request_url)
            except LoaderError:
                return None  # fails through the normal path with a clear error
            return body, Origin.DATA, {"content_type": content_type}
        if isinstance(sink, FileSink) and sink.should_skip():
            return sink.path, Origin.CACHE, {}
        key = t.key
        if key is None:
            return None
        cached = self.cache.get(key)
        if cached is None:
            return None
        self.cache.move_to_end(key)
        fields = {
            "final_url": cached.final_url,
            "status": cached.status,
            "content_type": cached.content_type,
            "headers": dict(cached.headers),
            "document": cached.document,
            "http_version": cached.http_version,
            "reason": cached.reason,
        }
        if cached.content is not None:
            return cached.content, Origin.CACHE, fields
        if cached.path is not None and cached.path.is_file():
            return cached.path, Origin.CACHE, fields
        return None

    async def finish_at_once(
        self, t: Transfer, sink: Sink, body: bytes | Path, origin: Origin, fields: dict[str, Any]
    ) -> Result:
        """Complete without touching the network.

        Exactly two events: ``HANDLE_CREATED`` and ``REQUEST_COMPLETE``, both
        with ``synchronous=True`` (or ``FAILED`` if ``loader_allow`` denies it or
        writing the copy fails).
        """
        t.synchronous = True
        if origin is Origin.CACHE:
            self.stats.cache_hits += 1
        await t.emit(Phase.HANDLE_CREATED)
        stored: bytes | Path | None = None
        try:
            # loader_allow is asked before every request, one answered here included.
            self.host.check_allowed(t.request_url, t.purpose)
            if isinstance(sink, FileSink) and isinstance(body, Path) and body == sink.path:
                stored, size = body, body.stat().st_size  # already there
            else:
                sink.start(0)
                if isinstance(body, Path):
                    with open(body, "rb") as src:
                        while chunk := src.read(1 << 20):
                            await sink.write(chunk)
                else:
                    await sink.write(body)
                stored, size = sink.commit(), sink.size
        except LoaderError as exc:
            sink.abort()
            self.stats.failures += 1
            await t.emit(Phase.FAILED, error=exc)
            return t.result(False, error=exc)
        except OSError as exc:
            sink.abort()
            self.stats.failures += 1
            error = LoaderError(f"cannot reuse the earlier copy: {exc}", url=t.url)
            await t.emit(Phase.FAILED, error=error)
            return t.result(False, error=error)
        await t.emit(Phase.REQUEST_COMPLETE, bytes_done=size, bytes_total=size)
        return t.result(
            True,
            size=size,
            path=stored if isinstance(stored, Path) else None,
            content=stored if isinstance(stored, bytes) else None,
            origin=origin,
            **fields,
        )
