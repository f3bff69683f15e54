"""The Loader: owns plugins, limits, handlers and the lifecycle of every request.

How one request flows (``_Transfer.run``)::

    HANDLE_CREATED ─▶ finish at once? (data: URL, already fetched) ─▶ REQUEST_COMPLETE(synchronous)
                  └▶ loader_allow ─▶ handler for scheme ─▶ attempt loop:
                        acquire global + per-host limiters
                        loader_prepare_request hooks
                        handler.open(request, channel)  (plugin emits its phases)
                        stream body ─▶ sink, PROGRESS per chunk
                        transient error & attempts left ─▶ RETRY, backoff, again
                  ─▶ REQUEST_COMPLETE | FAILED | CANCELLED   (always exactly one, always last)

Every request runs in one cancel scope carrying the total deadline, which the
caller (or a callback, through ``Event.cancel``) can also cancel.  Sinks
are aborted on any failure, so a file never appears half-written.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import logging
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import pluggy

from ._control import CallControl, Control
from ._dispatch import Callback, CallbackMode, Delivery
from ._errors import (
    DeadlineExceeded,
    HTTPStatusError,
    InvalidURL,
    LoaderError,
    PluginError,
    PolicyDenied,
    RequestCancelled,
    UnsupportedScheme,
)
from ._events import Event, Phase
from ._models import Limits, Origin, Request, Result, Retries, Timeouts
from ._plugins import answers_by_plugin, call_hook, make_plugin_manager
from ._protocol import ProgressStream, ProtocolHandler
from ._urls import plain_origin, redact_url

if TYPE_CHECKING:
    from ._page import PageResult
    from .discovery import Browser
from ._saving import CallerSink, ExistsPolicy, FileSink, MemorySink

__all__ = ["Loader"]

log = logging.getLogger("loader")

Sink = MemorySink | FileSink
Destination = None | str | Path | Callable[[bytes], Awaitable[None] | None]

#: Bodies up to this size are kept by the loader so a second request for the
#: same URL completes synchronously from memory.
_CACHE_ENTRY_MAX = 1 << 20
_CACHE_TOTAL_MAX = 64 << 20
#: Each phase's name, for ``Result.timings`` (an enum member's ``name`` is a property, ~0.3 us a read).
_PHASE_NAMES = {phase: phase.name for phase in Phase}


class _Slots:
    """A counting semaphore for the request limits (total, per host), fair (first come, first served).

    anyio's ``CapacityLimiter`` tracks each borrowing task and yields to the
    event loop twice per acquisition even when a token is free; this one takes a
    free token with no trip through the loop and no bookkeeping, which matters
    at thousands of requests a second.  Waiting is cancellable: a token handed to
    a waiter cancelled meanwhile is passed on.
    """

    __slots__ = ("free", "_waiters")

    def __init__(self, total: int) -> None:
        self.free = total
        self._waiters: collections.deque[anyio.Event] = collections.deque()

    async def __aenter__(self) -> None:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        granted = anyio.Event()
        self._waiters.append(granted)
        try:
            await granted.wait()
        except BaseException:
            if granted.is_set():
                self._release()  # the token came with the cancellation: pass it on
            else:
                self._waiters.remove(granted)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # the token goes straight to the next in line
        else:
            self.free += 1


def _plain_get(method: str, content: Any) -> bool:
    """A GET without a body: what any handler serves, and what may be answered from memory."""
    return method == "GET" and content is None


class _DocumentSink(MemorySink):
    """Keeps a document for discovery in memory, failing it once it passes ``Limits.max_page``."""

    over_cap = "document larger than the page cap of {cap} (--max-page-size, Limits.max_page); not kept"


class _Call:
    """State shared by every request one public call starts (its callback, context, cancel)."""

    def __init__(self, delivery: Delivery, context: Any) -> None:
        self.delivery = delivery
        self.context = context
        self.control = CallControl()


class _Transfer:
    """One request's lifecycle; also the :class:`~loader.Channel` its handler sees."""

    def __init__(
        self,
        loader: Loader,
        call: _Call,
        url: str,
        *,
        parent_id: int | None,
        kind: str | None,
        purpose: str,
    ) -> None:
        self._loader = loader
        self.call = call
        #: The URL as requested (may carry credentials: only the handler sees it).
        self.request_url = url
        #: The URL as reported in events, results and errors (password redacted).
        self.url = redact_url(url)
        self.request_id = next(loader._ids)
        self.parent_id = parent_id
        self.kind = kind
        self.purpose = purpose
        self.attempt = 1
        self.timeouts = loader.timeouts
        self.control = Control(call.control)
        self.t0 = time.monotonic()
        self.timings: dict[Phase, float] = {}  # first time each phase was reached
        self.synchronous = False
        self.final_url = url
        self.redirects = 0
        self.bytes_done: int | None = None

    @property
    def loader(self) -> Loader:
        return self._loader

    async def emit(self, phase: Phase, **data: Any) -> None:
        """Report a phase of this request (the Channel API)."""
        if phase not in self.timings:  # per chunk otherwise: only the first PROGRESS counts
            self.timings[phase] = time.monotonic() - self.t0
        if phase is Phase.PROGRESS:  # an operation's REQUEST_COMPLETE reports the last count
            self.bytes_done = data.get("bytes_done")
        delivery = self.call.delivery
        if not delivery.listening:
            return  # nobody to tell: skip building the event
        wanted = delivery.phases
        if wanted is not None and phase not in wanted:
            return  # no observer asked for this phase, and there is no callback
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
        self._loader._check_allowed(new_url, "redirect")
        self.final_url = redact_url(new_url)

    def result(self, ok: bool, **fields: Any) -> Result:
        return Result(
            request_id=self.request_id,
            url=self.url,
            final_url=redact_url(fields.pop("final_url", self.final_url)),
            ok=ok,
            attempts=self.attempt,
            elapsed=time.monotonic() - self.t0,
            timings={_PHASE_NAMES[phase]: at for phase, at in self.timings.items()},
            kind=self.kind,
            parent_id=self.parent_id,
            context=self.call.context,
            **fields,
        )


class Loader:
    """Fetches resources through protocol plugins, reporting status events.

    Use it as ``async with Loader(...) as loader:``.  Each loader owns its
    plugin manager, limiters, protocol handlers (and so their connection
    pools); two loaders in one process never share state.

    ``plugins`` adds plugin objects (or ``(name, plugin)`` pairs) to those
    found through the ``loader`` entry-point group; ``disable`` blocks plugins
    by name (so does ``LOADER_DISABLE_PLUGINS=name,name``).  ``headers`` are
    sent with every HTTP request; ``verify`` is ``True`` (system trust store), ``False``
    (no verification: ``--insecure``), a CA bundle path or an ``ssl.SSLContext``; ``max_redirects`` bounds redirect chains.  ``reuse`` lets a URL
    fetched once complete synchronously the next time.  ``http2`` offers
    HTTP/2 over TLS: ``None`` (default) when the ``h2`` package is installed.
    ``deny_private`` refuses every connection that reaches a loopback, link-local,
    private or unique-local address (for crawlers: see ``loader._policy``);
    requisites and redirects to another protocol's port (Redis, SMTP …) are refused
    unless the port is in ``allow_ports``.  ``proxy`` (``http://host:port``) sends
    every HTTP and HTTPS request through that proxy, whatever the environment says.
    ``local_address`` binds new HTTP connections to that address (``"0.0.0.0"``: IPv4
    only, ``"::"``: IPv6 only, as ``-4``/``-6`` ask).
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        timeouts: Timeouts | None = None,
        retries: Retries | None = None,
        headers: Mapping[str, str] | None = None,
        user_agent: str | None = None,
        verify: bool | str | ssl.SSLContext = True,
        max_redirects: int = 10,
        plugins: Iterable[Any] = (),
        disable: Iterable[str] = (),
        entry_points: bool = True,
        reuse: bool = True,
        http2: bool | None = None,
        deny_private: bool = False,
        allow_ports: Iterable[int] = (),
        proxy: str | None = None,
        local_address: str | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.timeouts = timeouts or Timeouts()
        self.retries = retries or Retries()
        self.headers = dict(headers or {})
        if user_agent:
            self.headers["User-Agent"] = user_agent
        self.verify = verify
        self.max_redirects = max_redirects
        self.reuse = reuse
        self.http2 = http2
        self.deny_private = deny_private
        self.allow_ports = frozenset(allow_ports)
        #: A proxy URL for every HTTP and HTTPS request, instead of the ``*_proxy`` environment.
        self.proxy = proxy
        #: Where HTTP connections are bound: ``"0.0.0.0"`` for IPv4 only, ``"::"`` for IPv6 only.
        self.local_address = local_address
        self.pm: pluggy.PluginManager = make_plugin_manager(
            plugins=plugins, disable=disable, entry_points=entry_points
        )
        self._ids = itertools.count(1)
        self._handlers: dict[str, tuple[str, ProtocolHandler]] = {}
        self._host_limiters: dict[str, _Slots] = {}
        self._cache: dict[str, Result] = {}
        self._cache_bytes = 0
        self._entered = False
        self._resolved: dict[tuple[str, int], tuple[float, str]] = {}

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> Loader:
        self._global = _Slots(self.limits.total)
        self._long_limiter = anyio.CapacityLimiter(self.limits.long_callbacks)
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every protocol handler (connection pools) this loader created."""
        handlers, self._handlers = self._handlers, {}
        with anyio.CancelScope(shield=True):
            for name, handler in handlers.values():
                try:
                    await handler.aclose()
                except Exception:
                    log.exception("plugin %r failed to close its handler", name)
        self._entered = False

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS client context ``verify`` asks for, built once per loader (FTPS, gophers …)."""
        from ._net import make_ssl_context

        return make_ssl_context(self.verify)

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """This loader's own pluggy manager (also ``pm``): add wrappers, monitors or tracing to it."""
        return self.pm

    def register(self, plugin: Any, name: str | None = None) -> None:
        """Register one more plugin object on this loader."""
        self.pm.register(plugin, name=name)

    # -- plugins -----------------------------------------------------------------

    def handler(self, scheme: str) -> ProtocolHandler:
        """This loader's handler for ``scheme`` (created on first use by ``loader_protocol``)."""
        return self._handler_entry(scheme, None)[1]

    def _handler_entry(self, scheme: str, url: str | None) -> tuple[str, ProtocolHandler]:
        scheme = scheme.lower()
        entry = self._handlers.get(scheme)
        if entry is None:
            handler = call_hook(self.pm, "loader_protocol", url, scheme=scheme, loader=self)
            if handler is None:
                known = ", ".join(sorted(self.schemes())) or "none"
                raise UnsupportedScheme(
                    f"no plugin handles the {scheme!r} scheme (installed: {known})", url=url
                )
            entry = (self._owner(scheme, handler), handler)
            self._handlers[scheme] = entry
        return entry

    def _owner(self, scheme: str, handler: ProtocolHandler) -> str:
        """The plugin a handler's errors are blamed on.

        ``loader_protocol`` stops at the first handler and pluggy does not say whose
        it is: the plugin declaring the scheme owns it; for an undeclared scheme, the
        plugin answering ``loader_protocol`` whose module is nearest the handler's.
        """
        owner = self.schemes().get(scheme)
        if owner is not None:
            return owner
        where = type(handler).__module__.split(".")
        best, score = "?", -1
        for impl in reversed(self.pm.hook.loader_protocol.get_hookimpls()):
            module = getattr(impl.plugin, "__name__", None) or type(impl.plugin).__module__
            common = len(os.path.commonprefix([where, str(module).split(".")]))
            if common > score:
                best, score = impl.plugin_name, common
        return best

    def schemes(self) -> dict[str, str]:
        """Every scheme an enabled plugin declares, mapped to the plugin's name."""
        found: dict[str, str] = {}
        for name, schemes in answers_by_plugin(self.pm, "loader_schemes"):
            for scheme in schemes or ():
                found.setdefault(scheme, name)
        return found

    def _check_allowed(self, url: str, purpose: str) -> None:
        if purpose in ("requisite", "redirect"):  # what a page or a server chose, not the user
            from ._policy import port_refusal

            refusal = port_refusal(url, self.allow_ports)
            if refusal is not None:
                raise PolicyDenied(refusal, url=redact_url(url))
        verdicts = call_hook(self.pm, "loader_allow", url, url=url, purpose=purpose)
        denials = [verdict for verdict in verdicts if verdict is False or isinstance(verdict, str)]
        if denials:
            # pluggy's answer names no plugin: only a denial asks again, plugin by
            # plugin, to say who refused (loader_allow is documented as side-effect free).
            for name, verdict in answers_by_plugin(self.pm, "loader_allow", url=url, purpose=purpose):
                if verdict is False or isinstance(verdict, str):
                    raise PolicyDenied(f"plugin {name!r} refused it: {verdict or 'denied'}", url=redact_url(url))
            reason = denials[0] or "denied"  # a wrapper's own verdict
            raise PolicyDenied(f"a plugin refused it: {reason}", url=redact_url(url))

    def _prepare(self, request: Request) -> Request:
        if self.headers:
            merged = {**self.headers, **request.headers}
            request = dataclasses.replace(request, headers=merged)
        changed = call_hook(self.pm, "loader_prepare_request", request.url, request=request)
        # Each implementation sees the same request; the last one called that answers wins.
        return changed[-1] if changed else request

    @staticmethod
    @functools.lru_cache(maxsize=4096)  # a page asks once to queue a URL, once to fetch it
    def _host_key(url: str) -> str:
        """What the per-host limit counts by: scheme, host and port."""
        plain = plain_origin(url)
        if plain is not None:
            return f"{plain[0]}://{plain[1]}:{plain[2] or ''}"
        try:
            parts = urlsplit(url)
            return f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}"
        except ValueError:
            return url  # a bad URL fails later, with its own error

    def _host_limiter(self, url: str) -> _Slots:
        key = self._host_key(url)
        limiter = self._host_limiters.get(key)
        if limiter is None:
            limiter = self._host_limiters[key] = _Slots(self.limits.per_host)
        return limiter

    # -- public API --------------------------------------------------------------

    async def fetch(
        self,
        url: str,
        *,
        to: Destination = None,
        callback: Callback | None = None,
        context: Any = None,
        callback_mode: CallbackMode = "short",
        kind: str | None = None,
        resume: bool = False,
        exists: ExistsPolicy = "overwrite",
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        content: Any = None,
    ) -> Result:
        """Fetch one resource and return its :class:`Result` (never raises for a failed fetch).

        ``to`` is ``None`` (keep the body in ``Result.content``), a path (written
        atomically), or a function called with each chunk (sync or async).
        ``callback`` receives every :class:`Event` of the request, each carrying
        ``context``.  ``resume`` continues a partial file at ``to`` where the
        protocol allows it (HTTP ranges, FTP REST).

        ``method`` (an HTTP token such as ``"POST"``) and ``content`` (the request
        body: bytes, a binary file, a path or an async iterator of bytes, streamed in
        chunks, never read whole) make a request with a body; while it is sent,
        ``PROGRESS`` events with ``message="sending"`` count its bytes.  Such a
        request is never answered from the loader's memory of earlier fetches, and
        is retried only as ``Retries`` allows (see ``Retries.non_idempotent``).
        Raises ``ValueError`` for a malformed method or with ``resume``, ``TypeError``
        for content of another type.
        """
        if not _plain_get(method, content):
            from ._upload import RequestContent, check_method

            check_method(method)
            if resume:
                raise ValueError("resume continues a download: it cannot send a body or another method than GET")
            content = None if content is None else RequestContent.of(content)
        async with self._call(callback, callback_mode, context) as call:
            return await self._fetch_in(
                call, url, to=to, kind=kind, resume=resume, exists=exists, headers=headers,
                method=method, content=content,
            )

    async def fetch_all(
        self,
        urls: Iterable[str],
        *,
        callback: Callback | None = None,
        context: Any = None,
        callback_mode: CallbackMode = "short",
        on_result: Callable[[Result], Awaitable[None] | None] | None = None,
    ) -> list[Result]:
        """Fetch many URLs to memory concurrently; results come back in the order of ``urls``.

        ``on_result`` is called with each result as soon as it completes (a
        crawler's streaming hook); failures are results too.
        """
        urls = list(urls)
        results: list[Result | None] = [None] * len(urls)
        async with self._call(callback, callback_mode, context) as call:
            async with anyio.create_task_group() as tg:
                for index, url in enumerate(urls):
                    tg.start_soon(self._fetch_into, call, url, results, index, on_result)
        return [r for r in results if r is not None]

    async def _fetch_into(
        self,
        call: _Call,
        url: str,
        results: list[Result | None],
        index: int,
        on_result: Callable[[Result], Awaitable[None] | None] | None,
    ) -> None:
        result = await self._fetch_in(call, url)
        results[index] = result
        if on_result is not None:
            outcome = on_result(result)
            if outcome is not None:
                await outcome

    async def fetch_page(
        self,
        url: str,
        *,
        output: str | Path | None = None,
        kinds: Iterable[str] | None = None,
        same_host: bool = False,
        convert_links: bool = False,
        exists: ExistsPolicy = "overwrite",
        callback: Callback | None = None,
        context: Any = None,
        callback_mode: CallbackMode = "short",
        on_result: Callable[[Result], Awaitable[None] | None] | None = None,
        list_only: bool = False,
        manifest: bool = True,
        resume: bool = False,
        browser: Browser | None = None,
    ) -> PageResult:
        """Fetch a page and, concurrently, every requisite of the chosen ``kinds``.

        ``kinds`` defaults to images and sounds (see ``loader.discovery.KINDS``).
        With ``output`` the page and its requisites are saved under safe names
        there (plus a manifest); without it bodies stay in memory.
        ``same_host`` skips requisites on other hosts; ``convert_links``
        rewrites the saved page to point at the local copies; ``list_only``
        discovers without fetching requisites.  ``callback`` sees the events of
        the page and of every resource (``Event.parent_id`` is the page's id);
        ``on_result`` gets each resource's result as it completes.  ``resume``
        continues each requisite's partial file where the protocol allows it
        (``loader fetch -c``).  The page and each stylesheet are read into memory
        for discovery, up to ``Limits.max_page`` bytes: a larger one fails.
        ``browser`` (a :class:`loader.discovery.Browser`: viewport, DPR,
        scripting, ``all_candidates``) is the device discovery imitates;
        the default is a 1280x800 desktop at DPR 1 with scripting on.
        """
        from ._page import fetch_page
        from .discovery import DEFAULT_KINDS

        chosen = DEFAULT_KINDS if kinds is None else frozenset(kinds)
        async with self._call(callback, callback_mode, context) as call:
            return await fetch_page(
                self, call, url, output=None if output is None else Path(output), kinds=chosen,
                same_host=same_host, convert_links=convert_links, exists=exists,
                on_result=on_result, list_only=list_only, manifest=manifest, resume=resume,
                browser=browser,
            )

    @asynccontextmanager
    async def operation(
        self,
        url: str,
        *,
        callback: Callback | None = None,
        context: Any = None,
        callback_mode: CallbackMode = "short",
        kind: str | None = None,
    ) -> AsyncIterator[_Transfer]:
        """A channel for a plugin operation that is not a plain fetch (FTP mkdir, Gopher menu …).

        Emits ``HANDLE_CREATED`` on entry and ``REQUEST_COMPLETE`` on a normal
        exit; on an exception it emits ``FAILED`` (or ``CANCELLED``) and re-raises.
        """
        async with self._call(callback, callback_mode, context) as call:
            transfer = _Transfer(self, call, url, parent_id=None, kind=kind, purpose="operation")
            await transfer.emit(Phase.HANDLE_CREATED)
            try:
                self._check_allowed(url, "operation")
                yield transfer
            except LoaderError as exc:
                with anyio.CancelScope(shield=True):
                    await transfer.emit(Phase.FAILED, error=exc)
                raise
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await transfer.emit(Phase.CANCELLED, error=RequestCancelled("cancelled", url=url))
                raise
            except Exception as exc:
                with anyio.CancelScope(shield=True):
                    await transfer.emit(Phase.FAILED, error=exc)
                raise
            else:
                done = transfer.bytes_done
                await transfer.emit(Phase.REQUEST_COMPLETE, bytes_done=done, bytes_total=done)
            finally:
                transfer.control.done()

    @asynccontextmanager
    async def _call(
        self, callback: Callback | None, mode: CallbackMode, context: Any
    ) -> AsyncIterator[_Call]:
        if not self._entered:
            raise RuntimeError("use the Loader as 'async with Loader(...) as loader:'")
        delivery = Delivery(self, callback, mode)
        call = _Call(delivery, context)
        if mode == "long" and callback is not None:
            async with anyio.create_task_group() as tg:
                await delivery.start(tg)
                try:
                    yield call
                finally:
                    await delivery.aclose()
        else:
            yield call

    # -- one request -------------------------------------------------------------

    def _make_sink(
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
                return _DocumentSink(url, self.limits.max_page)
            return MemorySink(url, max_body)
        if isinstance(to, (str, Path)):
            return FileSink(
                url, to if isinstance(to, Path) else Path(to), root=root, exists=exists, max_body=max_body, resume=resume, checked=checked
            )
        if callable(to):
            return CallerSink(url, to, max_body)
        raise TypeError(f"unsupported destination {to!r}")

    async def _fetch_in(
        self,
        call: _Call,
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
    ) -> Result:
        """One request; ``document``: a page or stylesheet kept in memory under ``Limits.max_page``."""
        transfer = _Transfer(self, call, url, parent_id=parent_id, kind=kind, purpose=purpose)
        try:
            sink = self._make_sink(
                transfer.url, to, resume=resume, exists=exists, root=root, checked=checked,
                document=document,
            )
        except Exception:
            transfer.control.done()
            raise
        try:
            return await self._run(transfer, sink, headers, method, content)
        finally:
            transfer.control.done()

    async def _run(
        self, t: _Transfer, sink: Sink, headers: Mapping[str, str] | None, method: str = "GET", content: Any = None
    ) -> Result:
        url = t.url
        # A request with a body or another method asks the server something new each time.
        at_once = self._at_once(t, sink) if _plain_get(method, content) else None
        if at_once is not None:
            return await self._finish_at_once(t, sink, *at_once)
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
        await t.emit(phase, error=error)
        status = getattr(error, "status", None)
        return t.result(False, error=error, status=status)

    async def _attempts(
        self, t: _Transfer, sink: Sink, headers: Mapping[str, str] | None, method: str = "GET", content: Any = None
    ) -> Result:
        url = t.request_url
        plain = plain_origin(url)
        try:
            scheme = plain[0] if plain is not None else urlsplit(url).scheme
        except ValueError as exc:
            raise InvalidURL(f"cannot parse URL: {exc}", url=t.url) from exc
        if not scheme:
            raise InvalidURL("not an absolute URL (no scheme)", url=t.url)
        self._check_allowed(url, t.purpose)
        plugin, handler = self._handler_entry(scheme, t.url)
        request = Request(url=url, method=method, headers=dict(headers or {}), kind=t.kind, content=content)
        retries = self.retries
        repeatable = True
        if not _plain_get(method, content):
            if not getattr(handler, "sends_bodies", False):  # a duck-typed handler: GET only
                what = "a request body" if content is not None else f"the {method} method"
                raise UnsupportedScheme(f"the {plugin!r} plugin cannot send {what} (GET only)", url=t.url)
            # The server may have acted on a POST that failed on its way back: only the
            # caller may say that doing it twice is fine.  A body read once cannot be resent.
            repeatable = request.replayable and (request.idempotent or retries.non_idempotent)
        while True:
            try:
                return await self._attempt(t, plugin, handler, request, sink)
            except LoaderError as exc:
                delay = self._retry_delay(exc, t.attempt, retries) if repeatable else None
                if delay is None:
                    raise
                await t.emit(Phase.RETRY, error=exc, message=f"retrying in {delay:.2f}s")
                await anyio.sleep(delay)
                t.attempt += 1
                t.final_url = t.url

    @staticmethod
    def _retry_delay(exc: LoaderError, attempt: int, retries: Retries) -> float | None:
        if not exc.transient or attempt >= retries.attempts:
            return None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, HTTPStatusError) and retry_after is not None:
            return retry_after if retry_after <= retries.max_retry_after else None
        cap = min(retries.max_backoff, retries.backoff * 2 ** (attempt - 1))
        return random.uniform(0, cap)

    async def _attempt(
        self, t: _Transfer, plugin: str, handler: ProtocolHandler, request: Request, sink: Sink
    ) -> Result:
        async with self._global, self._host_limiter(request.url):
            request = self._prepare(request)
            offset = sink.resume_offset() if isinstance(sink, FileSink) else 0
            if offset:
                # If-Range with the partial's validator: a changed resource comes whole.
                request = dataclasses.replace(request, offset=offset).with_headers(**sink.resume_headers())
            try:
                async with handler.open(request, t) as response:
                    start = response.offset if offset and response.offset == offset else 0
                    sink.start(start)
                    sink.remember_response(response.headers)
                    done = start
                    total = None if response.length is None else response.length + start
                    async for chunk in response.stream:
                        if chunk:
                            await sink.write(chunk)
                            done += len(chunk)
                            await t.emit(Phase.PROGRESS, bytes_done=done, bytes_total=total)
                    stored = sink.commit()
            except LoaderError:
                sink.abort()
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
        )
        await t.emit(Phase.REQUEST_COMPLETE, bytes_done=done, bytes_total=done, status=response.status)
        if _plain_get(request.method, request.content):
            self._remember(t.request_url, result)
        return result

    # -- completing at once ------------------------------------------------------

    def _remember(self, url: str, result: Result) -> None:
        if not self.reuse:
            return
        content = result.content
        if content is not None and (
            len(content) > _CACHE_ENTRY_MAX or self._cache_bytes + len(content) > _CACHE_TOTAL_MAX
        ):
            result = dataclasses.replace(result, content=None)
            if result.path is None:
                return
        self._cache_bytes += len(result.content or b"")
        self._cache[url] = result

    def _at_once(self, t: _Transfer, sink: Sink) -> tuple[bytes | Path, Origin, dict[str, Any]] | None:
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
        cached = self._cache.get(t.request_url) if self.reuse else None
        if cached is None:
            return None
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

    async def _finish_at_once(
        self, t: _Transfer, sink: Sink, body: bytes | Path, origin: Origin, fields: dict[str, Any]
    ) -> Result:
        """Complete without touching the network.

        Exactly two events: ``HANDLE_CREATED`` and ``REQUEST_COMPLETE``, both
        with ``synchronous=True`` (or ``FAILED`` if ``loader_allow`` denies it or
        writing the copy fails).
        """
        t.synchronous = True
        await t.emit(Phase.HANDLE_CREATED)
        stored: bytes | Path | None = None
        try:
            # loader_allow is asked before every request, one answered here included.
            self._check_allowed(t.request_url, t.purpose)
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
            await t.emit(Phase.FAILED, error=exc)
            return t.result(False, error=exc)
        except OSError as exc:
            sink.abort()
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
