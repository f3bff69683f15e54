"""The Loader: a facade over the plugin host, the scheduler and event delivery.

``Loader`` holds the settings and the public API; the parts it is made of::

    PluginHost (_host.py)      plugin manager, handlers per scheme, loader_allow/prepare hooks
    Scheduler (_scheduler.py)  global and per-host slots, per-host queues, retries
    Requests (_requests.py)    one request's life: events, sinks, attempts, reuse of results
    Delivery (_dispatch.py)    events to observers and the call's callback
    fetch_page (_page.py)      a page: discovery, requisites, saving, the manifest
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pluggy
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._context import PluginContext
from ._dispatch import Callback, CallbackMode, Delivery
from ._errors import (
    LoaderError,
    RequestCancelled,
)
from ._events import Phase
from ._host import PluginHost
from ._models import Limits, Result, Retries, Stats, Timeouts
from ._plugins import make_plugin_manager
from ._protocol import ProtocolHandler
from ._requests import Call, Destination, Requests, Transfer, plain_get
from ._scheduler import HostQueues, Scheduler

if TYPE_CHECKING:
    from ._crawl import Crawl, CrawlPolicy, CrawlPoliteness
    from ._frontier import Frontier
    from ._page import PageResult
    from ._politeness import Politeness
    from .discovery import Browser
    from .har import HarCollector
    from .warc import WarcWriter
from ._saving import ExistsPolicy

__all__ = ["Loader"]

log = logging.getLogger("loader")



async def _as_async(items: Iterable[str]) -> AsyncIterator[str]:
    for item in items:  # read one at a time, when asked: the iterable may be endless
        yield item


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
    only, ``"::"``: IPv6 only, as ``-4``/``-6`` ask).  ``har`` names a file the loader
    writes, when it closes, the HAR 1.2 log of every request it made (see ``loader.har``).
    ``robots`` (default on) makes :attr:`politeness` honour robots.txt, which a crawl
    asks before each page (``--no-robots`` turns it off); the other politeness settings
    (delay, rate, host back-off) are in :class:`Limits`.  ``warc`` (a
    :class:`loader.warc.WarcWriter`, or a name for one: ``NAME.warc.gz``) records every
    exchange as received, and each page's manifest, in a WARC file closed with the loader.
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
        har: str | os.PathLike[str] | None = None,
        robots: bool = True,
        warc: WarcWriter | str | os.PathLike[str] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.robots = robots
        self._stats = Stats()
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
        self.host = PluginHost(self.pm, lambda: self.context, headers=self.headers, allow_ports=allow_ports)
        self._requests: Requests | None = None
        self._entered = False
        self._har: tuple[str | os.PathLike[str], HarCollector] | None = None
        if har is not None:
            from .har import HarCollector

            collector = HarCollector()
            self.pm.register(collector, name="har")
            self._har = (har, collector)
        self.warc: WarcWriter | None = None
        if warc is not None:
            from .warc import WarcWriter

            self.warc = warc if isinstance(warc, WarcWriter) else WarcWriter(warc)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def _running(self) -> Requests:
        if self._requests is None:
            raise RuntimeError("use the Loader as 'async with Loader(...) as loader:'")
        return self._requests

    async def __aenter__(self) -> Loader:
        if self._requests is None:  # settings changed before the first entry still count
            self.scheduler = Scheduler(self.limits, self.retries, self._stats)
            self._requests = Requests(self.host, self.scheduler, self.context, reuse=self.reuse)
        self._long_limiter = anyio.CapacityLimiter(self.limits.long_callbacks)
        self._entered = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every protocol handler (connection pools) this loader created."""
        await self.host.aclose()
        self._entered = False
        if self._har is not None:
            from .har import write_har

            write_har(self._har[0], self._har[1].har())
        if self.warc is not None:
            self.warc.close()

    @functools.cached_property
    def context(self) -> PluginContext:
        """What this loader's protocol plugins see of it (built on first use, from the settings then)."""
        return PluginContext(
            timeouts=self.timeouts, limits=self.limits, retries=self.retries, headers=self.headers,
            verify=self.verify, http2=self.http2, max_redirects=self.max_redirects, proxy=self.proxy,
            local_address=self.local_address, deny_private=self.deny_private, recorder=self.warc,
        )

    @property
    def stats(self) -> Stats:
        """This loader's running counters (requests, bytes, failures, cache hits, per host …)."""
        return self._stats

    @functools.cached_property
    def politeness(self) -> Politeness:
        """This loader's robots.txt and per-host page delays (see ``loader._politeness``)."""
        from ._politeness import Politeness

        agent = next((v for k, v in self.headers.items() if k.lower() == "user-agent"), None)
        return Politeness(
            self._fetch_robots, limits=self.limits, stats=self._stats, user_agent=agent,
            robots=self.robots,
        )

    async def _fetch_robots(self, url: str, write: Callable[[bytes], None]) -> Result:
        async with self._call(None, "short", None) as call:
            return await self._running.fetch_in(call, url, to=write, kind="robots", purpose="robots")

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS client context ``verify`` asks for, built once per loader (FTPS, gophers …)."""
        return self.context.ssl_context

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
        return self.host.handler(scheme)

    def schemes(self) -> dict[str, str]:
        """Every scheme an enabled plugin declares, mapped to the plugin's name."""
        return self.host.schemes()

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
        as_is: bool = False,
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

        ``as_is=True`` is for a caller that makes its own decisions, a crawler's download
        handler (``loader_scrapy``): the server's answer comes back as it is, a 3xx or 4xx/5xx
        included (an ``ok`` result with its status, headers and body), no redirect is
        followed, one attempt is made (no retry), and neither the loader's memory of
        earlier fetches nor a request in flight for the same URL answers it.  Cookies are the
        caller's too: only a ``Cookie`` in ``headers`` is sent, never the loader's jar's.
        Transport failures are still failed results.
        """
        if not plain_get(method, content):
            from ._upload import RequestContent, check_method

            check_method(method)
            if resume:
                raise ValueError("resume continues a download: it cannot send a body or another method than GET")
            content = None if content is None else RequestContent.of(content)
        async with self._call(callback, callback_mode, context) as call:
            return await self._running.fetch_in(
                call, url, to=to, kind=kind, resume=resume, exists=exists, headers=headers,
                method=method, content=content, as_is=as_is,
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

        async def fetch_one(index: int) -> None:
            result = results[index] = await self._running.fetch_in(call, urls[index])
            if on_result is not None:
                outcome = on_result(result)
                if outcome is not None:
                    await outcome

        async with self._call(callback, callback_mode, context) as call:
            # By host, as a page's requisites go: ten thousand URLs are not ten thousand tasks.
            queues = HostQueues(self.limits.per_host, fetch_one)
            for index, url in enumerate(urls):
                queues.add(url, index)
            async with anyio.create_task_group() as tg:
                queues.start(tg)
        return [r for r in results if r is not None]

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
        return await self._page(
            url, None, output=output, kinds=kinds, same_host=same_host, convert_links=convert_links,
            exists=exists, callback=callback, context=context, callback_mode=callback_mode,
            on_result=on_result, list_only=list_only, manifest=manifest, resume=resume,
            browser=browser,
        )

    async def fetch_requisites(
        self,
        url: str,
        body: bytes,
        *,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        **page_options: Any,
    ) -> PageResult:
        """:meth:`fetch_page` for a document the caller already has: nothing fetches it again.

        ``url`` is where ``body`` came from (relative references resolve against it, a
        ``<base>`` aside); ``content_type`` (e.g. ``"text/html; charset=utf-8"``) says
        what it is and may name its charset; ``headers`` and ``status`` are recorded in
        its result.  ``page_options`` are :meth:`fetch_page`'s (``output``, ``kinds``,
        ``callback`` …).  The page's own result completes at once (``Origin.GIVEN``,
        ``synchronous``), so a crawler that downloaded the page hands it over and the
        loader fetches only its requisites.
        """
        fields: dict[str, Any] = {
            "content_type": content_type, "headers": dict(headers or {}), "status": status,
        }
        return await self._page(url, (bytes(body), fields), **page_options)

    @asynccontextmanager
    async def fetch_pages(
        self,
        urls: Iterable[str] | AsyncIterable[str],
        *,
        concurrency: int = 8,
        **page_options: Any,
    ) -> AsyncIterator[AsyncIterator[PageResult]]:
        """Fetch many pages, at most ``concurrency`` at once; yield them as they complete.

        ``urls`` (an iterable or an async iterable) is read lazily, one URL each time a
        page may start, so it can be endless (a crawler's frontier); ``page_options`` are
        :meth:`fetch_page`'s.  Nothing is kept: at most ``concurrency`` pages are fetching
        or waiting to be taken at any time, whatever the consumer's pace.  A failed page
        is a ``PageResult`` whose ``document`` failed, never an exception.  Use it as::

            async with loader.fetch_pages(urls, output="out") as pages:
                async for page in pages:
                    ...

        A context manager rather than a bare async generator: the pages are fetched by
        tasks of a task group, and a generator that yields from inside a task group
        would deliver their cancellations to the consumer's code.  Leaving the block
        early cancels the pages still under way.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        async with self._page_stream(urls, concurrency, functools.partial(self.fetch_page, **page_options)) as pages:
            yield pages

    @asynccontextmanager
    async def _page_stream(
        self,
        urls: Iterable[str] | AsyncIterable[str],
        concurrency: int,
        fetch_one: Callable[[str], Awaitable[PageResult]],
    ) -> AsyncIterator[AsyncIterator[PageResult]]:
        """The body of :meth:`fetch_pages`, each page fetched by ``fetch_one(url)``."""
        send: MemoryObjectSendStream[PageResult]
        send, receive = anyio.create_memory_object_stream(0)
        slots = anyio.Semaphore(concurrency)

        async def one(url: str, out: MemoryObjectSendStream[PageResult]) -> None:
            try:
                async with out:
                    page = await fetch_one(url)
                    with contextlib.suppress(anyio.BrokenResourceError):  # the consumer left
                        await out.send(page)
            finally:
                slots.release()  # only once handed over: a slow consumer holds the pages back

        async def feed(tg: TaskGroup) -> None:
            # A slot first, then the next URL: the source is read no further than needed.
            source = aiter(urls) if isinstance(urls, AsyncIterable) else _as_async(urls)
            async with send:
                while True:
                    await slots.acquire()
                    url = await anext(source, None)
                    if url is None:
                        slots.release()
                        return
                    tg.start_soon(one, url, send.clone())

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed, tg)
            try:
                async with receive:
                    yield receive
            finally:
                tg.cancel_scope.cancel()

    def crawl(
        self,
        start_urls: str | Iterable[str],
        *,
        level: float | None = 5,
        span_hosts: bool = False,
        domains: Iterable[str] | None = None,
        accept: str | re.Pattern[str] | None = None,
        reject: str | re.Pattern[str] | None = None,
        no_parent: bool = False,
        max_pages: int | None = None,
        concurrency: int = 8,
        state: str | Path | None = None,
        policy: CrawlPolicy | None = None,
        politeness: CrawlPoliteness | None = None,
        frontier: Frontier | None = None,
        **page_options: Any,
    ) -> AbstractAsyncContextManager[Crawl]:
        """Crawl breadth-first from ``start_urls`` along ``PageResult.links``; yield pages as they complete.

        Used as :meth:`fetch_pages` is (and built on it)::

            async with loader.crawl("https://example.com/", level=2, output="out") as pages:
                async for page in pages:
                    ...

        ``level``: how many links deep (0: the start pages only; ``None`` or ``math.inf``:
        no limit).  A link is followed when it is on a start URL's host (with
        ``span_hosts``, on any host, or under one of ``domains``: ``example.com`` takes
        ``www.example.com``), matches ``accept`` and not ``reject`` (regexes searched in
        the URL), and, with ``no_parent``, lies below a start URL's directory on that
        host; then ``await policy(url, depth, crawl)`` decides (``crawl``: the
        :class:`~loader._crawl.Crawl` yielded, with its counters).  Requisites a page
        fetched are not fetched again as pages.  ``max_pages`` stops handing out pages
        after that many (those of earlier runs of ``state`` included).  ``concurrency``
        pages at once.  ``state`` names a SQLite file holding the frontier, the seen
        URLs and the pages done, committed as each page completes: a crawl killed at any
        moment and run again with the same file continues, fetching no completed page
        again.  ``politeness`` (a :class:`~loader._crawl.CrawlPoliteness`) is asked
        before each URL is queued and entered around each page's fetch; the default
        allows everything at once.  ``frontier`` (a :class:`~loader.Frontier`,
        such as :class:`loader.RedisFrontier`, shared by processes) replaces
        the local one (and ``state``).  ``page_options`` are :meth:`fetch_page`'s.
        Each URL is fetched once: the seen-set keeps an 8-byte fingerprint of each
        URL's key (``loader_url_key``, else ``canonical_url``).
        """
        from ._crawl import Crawl

        crawl = Crawl(
            start_urls, fetch_page=self.fetch_page, stream=self._page_stream,
            url_key=lambda url: self._running.url_key(url), schemes=self.schemes,
            level=level, span_hosts=span_hosts, domains=domains, accept=accept, reject=reject,
            no_parent=no_parent, max_pages=max_pages, concurrency=concurrency, state=state,
            policy=policy, politeness=politeness, page_options=page_options, frontier=frontier,
        )
        return crawl.run()

    async def _page(
        self,
        url: str,
        given: tuple[bytes, dict[str, Any]] | None,
        *,
        output: str | Path | None = None,
        kinds: Iterable[str] | None = None,
        callback: Callback | None = None,
        context: Any = None,
        callback_mode: CallbackMode = "short",
        **options: Any,
    ) -> PageResult:
        from ._page import fetch_page
        from .discovery import DEFAULT_KINDS, check_kinds

        chosen = DEFAULT_KINDS if kinds is None else check_kinds(kinds)
        async with self._call(callback, callback_mode, context) as call:
            page = await fetch_page(
                functools.partial(self._running.fetch_in, call), self.pm, self.limits, url,
                output=None if output is None else Path(output), kinds=chosen, given=given, **options,
            )
        if self.warc is not None:
            self.warc.page(page)
        return page

    @asynccontextmanager
    async def operation(
        self,
        url: str,
        *,
        callback: Callback | None = None,
        context: Any = None,
        callback_mode: CallbackMode = "short",
        kind: str | None = None,
    ) -> AsyncIterator[Transfer]:
        """A channel for a plugin operation that is not a plain fetch (FTP mkdir, Gopher menu …).

        Emits ``HANDLE_CREATED`` on entry and ``REQUEST_COMPLETE`` on a normal
        exit; on an exception it emits ``FAILED`` (or ``CANCELLED``) and re-raises.
        The block holds a global and a per-host slot, as a transfer does: an operation
        that starts another request to the same host inside its block needs
        ``Limits.per_host`` of 2 or more.
        """
        async with self._call(callback, callback_mode, context) as call:
            transfer = Transfer(self._running, call, url, parent_id=None, kind=kind, purpose="operation")
            await transfer.emit(Phase.HANDLE_CREATED)
            try:
                self.host.check_allowed(url, "operation")
                async with self.scheduler.slot(transfer.request_url):
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
    ) -> AsyncIterator[Call]:
        if not self._entered:
            raise RuntimeError("use the Loader as 'async with Loader(...) as loader:'")
        delivery = Delivery(self.pm, callback, mode, self._long_limiter)
        call = Call(delivery, context)
        if mode == "long" and callback is not None:
            async with anyio.create_task_group() as tg:
                await delivery.start(tg)
                try:
                    yield call
                finally:
                    await delivery.aclose()
        else:
            yield call
