"""A breadth-first crawl over ``PageResult.links`` (``Loader.crawl``).

Data flow::

    start URLs ─▶ frontier.claim() (loader._frontier) ─▶ source() ─▶ Loader.fetch_pages machinery
        ▲              │ LocalFrontier: a compact queue      (at most `concurrency` pages;
        │              ▼ and seen-set, optionally in SQLite  each inside politeness.turn(url))
        │                RedisFrontier: shared by processes         │
        │                                                           │ PageResult as it completes
        │   links of a page at depth d < level:                     ▼
        │   seen? (8-byte fingerprints) ─ scope ─ accept/reject ─ results(): links queued, the
        └── ─ no-parent ─ politeness.allowed ─ policy ◀────────── page marked done with them
                                                                  (frontier.done: one commit),
                                                                  then handed to the caller

Memory follows the frontier: the seen-set holds an 8-byte blake2b fingerprint per
URL ever queued (of the URL's canonical form), the pages under way are at most
``concurrency``, and nothing else is kept.  A page's requisites are claimed from the
frontier before they are fetched (``claim_requisite``): with a shared frontier, a
requisite another worker fetched is listed in ``PageResult.elsewhere`` instead.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

import anyio

from ._frontier import Claim, Frontier, LocalFrontier, fingerprint
from ._page import requisite_claim

if TYPE_CHECKING:
    from ._page import PageResult

__all__ = ["AllowAll", "Crawl", "CrawlPolicy", "CrawlPoliteness", "fingerprint", "link_saved_pages"]


class CrawlPoliteness(Protocol):
    """What a crawl asks before it queues a URL and while it fetches a page.

    ``allowed(url)`` (robots.txt, say) is awaited before a URL is queued: ``False``
    leaves it out (counted in ``Crawl.denied``).  ``turn(url)`` is entered around each
    page's fetch (a per-host delay or rate, a back-off): the page starts once it is
    entered.
    """

    async def allowed(self, url: str) -> bool:
        """Whether ``url`` may be fetched at all."""
        ...

    def turn(self, url: str) -> AbstractAsyncContextManager[object]:
        """A context held while ``url``'s page is fetched."""
        ...


class AllowAll:
    """The default :class:`CrawlPoliteness`: allows everything and waits for nothing."""

    async def allowed(self, url: str) -> bool:
        """Always ``True``."""
        return True

    def turn(self, url: str) -> AbstractAsyncContextManager[object]:
        """A context that does nothing."""
        return contextlib.nullcontext()


#: ``await policy(url, depth, crawl) -> bool``: a user's decision on each link before it
#: is queued (``depth`` the link's, ``crawl`` the :class:`Crawl` asking).
CrawlPolicy = Callable[[str, int, "Crawl"], Awaitable[bool]]

#: ``stream(urls, concurrency, fetch_one)``: the fetch_pages machinery.
_Stream = Callable[
    [AsyncIterable[str], int, Callable[[str], Awaitable["PageResult"]]],
    AbstractAsyncContextManager[AsyncIterator["PageResult"]],
]


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _directory(url: str) -> tuple[str, str, str]:
    """``(scheme, host, path up to its last "/")`` for wget's ``--no-parent``."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return parts.scheme.lower(), (parts.hostname or "").lower(), path[: path.rfind("/") + 1]


class Crawl:
    """One crawl: its frontier, seen-set, scope and counters; an async iterator of pages.

    Made by :meth:`Loader.crawl` (see it for the options).  The counters can be read
    while it runs: ``pages`` (pages handed out, this run), ``queued`` (the frontier's
    length), ``seen`` (URLs ever queued or fetched), ``denied`` (left out by the
    politeness' ``allowed``), ``refused`` (left out by ``policy``), ``resumed`` (pages
    done by earlier runs of the state file, or by other workers of a shared frontier).
    ``frontier`` (a :class:`~loader._frontier.Frontier`) replaces the default
    :class:`~loader._frontier.LocalFrontier` on ``state``.
    """

    def __init__(
        self,
        start_urls: Iterable[str],
        *,
        fetch_page: Callable[..., Awaitable[PageResult]],
        stream: _Stream,
        url_key: Callable[[str], str],
        schemes: Callable[[], Iterable[str]],
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
        page_options: dict[str, Any] | None = None,
        frontier: Frontier | None = None,
    ) -> None:
        if isinstance(start_urls, str):
            start_urls = [start_urls]
        self.start_urls = list(start_urls)
        if not self.start_urls:
            raise ValueError("a crawl needs at least one start URL")
        if level is None or level == math.inf:
            self.level: int | None = None
        elif isinstance(level, float) and not level.is_integer() or level < 0:
            raise ValueError(f"level must be a whole number of 0 or more, or inf, not {level!r}")
        else:
            self.level = int(level)
        if max_pages is not None and max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, not {max_pages}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        options = dict(page_options or {})
        if options.get("kinds") is not None:
            from .discovery import check_kinds

            options["kinds"] = check_kinds(options["kinds"])
        self.page_options = options
        self._fetch_page = fetch_page
        self._stream = stream
        self._url_key = url_key
        self._schemes = schemes
        self.span_hosts = span_hosts
        self.domains = tuple(d.strip().lower().strip(".") for d in domains or () if d.strip())
        self.accept = re.compile(accept) if isinstance(accept, str) else accept
        self.reject = re.compile(reject) if isinstance(reject, str) else reject
        self.no_parent = no_parent
        self.max_pages = max_pages
        self.concurrency = concurrency
        self.state_path = None if state is None else Path(state)
        self.policy = policy
        self.politeness: CrawlPoliteness = politeness or AllowAll()
        self.hosts = {_host(url) for url in self.start_urls}
        self.parents = {_directory(url) for url in self.start_urls}
        self.frontier: Frontier = frontier if frontier is not None else LocalFrontier(self.state_path)
        self.under_way: dict[str, Claim] = {}  # url -> its claim: at most `concurrency`
        self.pages = 0
        self.denied = 0
        self.refused = 0
        self._wake: anyio.Event | None = None  # made in run(): an Event needs the running loop
        self._results: AsyncIterator[PageResult] | None = None

    # -- counters -----------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """URLs waiting in the frontier."""
        return self.frontier.queued

    @property
    def seen(self) -> int:
        """Distinct URLs queued or fetched so far (the seen-set's size)."""
        return self.frontier.seen

    @property
    def resumed(self) -> int:
        """Pages done before this run (earlier runs of the state file, other workers)."""
        return self.frontier.resumed

    # -- the iterator -------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[PageResult]:
        return self

    async def __anext__(self) -> PageResult:
        if self._results is None:
            raise RuntimeError("iterate a crawl inside 'async with loader.crawl(...) as pages:'")
        return await anext(self._results)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Crawl]:
        """Open the frontier, seed it, fetch; yields ``self`` to iterate."""
        self._wake = anyio.Event()
        async with self.frontier.open():
            await self._seed()
            async with self._stream(self._source(), self.concurrency, self._fetch_one) as pages:
                self._results = self._process(pages)
                try:
                    yield self
                finally:
                    await self._results.aclose()  # type: ignore[attr-defined]
                    self._results = None

    async def _seed(self) -> None:
        fps = [self._fingerprint(url) for url in self.start_urls]
        new = await self.frontier.unseen(fps)
        denied: list[int] = []
        queued: list[tuple[str, int, int]] = []
        for url, fp, is_new in zip(self.start_urls, fps, new, strict=True):
            if not is_new:
                continue  # queued or done by an earlier run, or by another worker
            if not await self.politeness.allowed(url):
                self.denied += 1
                denied.append(fp)
                continue
            queued.append((url, 0, fp))
        await self.frontier.add(denied, queued)

    def _fingerprint(self, url: str) -> int:
        return fingerprint(self._url_key(url))

    async def _source(self) -> AsyncIterator[str]:
        """The URLs to fetch, in breadth-first order; waits while pages under way may add more."""
        frontier = self.frontier
        while True:
            claim = await frontier.claim(self.max_pages)
            if claim is not None:
                self.under_way[claim.url] = claim
                yield claim.url
                continue
            if not self.under_way and (frontier.poll is None or await frontier.idle()):
                return
            assert self._wake is not None
            with anyio.move_on_after(math.inf if frontier.poll is None else frontier.poll):
                await self._wake.wait()
            if self._wake.is_set():
                self._wake = anyio.Event()

    async def _fetch_one(self, url: str) -> PageResult:
        token = requisite_claim.set(self._claim_requisite)
        try:
            async with self.politeness.turn(url):
                return await self._fetch_page(url, **self.page_options)
        finally:
            requisite_claim.reset(token)

    async def _claim_requisite(self, url: str) -> bool:
        return await self.frontier.claim_requisite(self._fingerprint(url))

    async def _process(self, pages: AsyncIterator[PageResult]) -> AsyncIterator[PageResult]:
        async for page in pages:
            claim = self.under_way[page.url]
            try:
                seen, queued = await self._follow(page, claim.depth)
                # Done once this commits: a restart neither fetches it again nor loses its links.
                await self.frontier.done(claim, self._fingerprint(page.url), seen, queued, page)
            finally:
                del self.under_way[page.url]
                if self._wake is not None:
                    self._wake.set()
            self.pages += 1
            yield page

    async def _follow(self, page: PageResult, depth: int) -> tuple[list[int], list[tuple[str, int, int]]]:
        """The page's links that pass, to queue as ``(url, depth, fp)``; the other
        fingerprints to mark seen (requisites, a redirect's target, links left out)."""
        found: dict[int, str] = {}  # fp -> URL, in the page's order: requisites, then links
        document = page.document
        if document.ok and document.final_url != page.url:
            found.setdefault(self._fingerprint(document.final_url), "")
            if depth == 0:
                # A start URL that redirects (example.com → www.example.com) moves the scope.
                self.hosts.add(_host(document.final_url))
                self.parents.add(_directory(document.final_url))
        for resource in page.resources:
            if resource.ok:
                found.setdefault(self._fingerprint(resource.url), "")  # fetched as a requisite
        for url in page.elsewhere:
            found.setdefault(self._fingerprint(url), "")  # fetched by another worker
        if self.level is None or depth < self.level:
            schemes = set(self._schemes())
            for link in page.links:
                url = link.url
                if url.partition(":")[0].lower() in schemes and self.in_scope(url):
                    found.setdefault(self._fingerprint(url), url)
        fps = list(found)
        seen: list[int] = []
        queued: list[tuple[str, int, int]] = []
        for fp, is_new in zip(fps, await self.frontier.unseen(fps), strict=True):
            url = found[fp]
            if not is_new:
                continue
            if not url:
                seen.append(fp)
            elif not await self.politeness.allowed(url):
                self.denied += 1
                seen.append(fp)
            elif self.policy is not None and not await self.policy(url, depth + 1, self):
                self.refused += 1
                seen.append(fp)
            else:
                queued.append((url, depth + 1, fp))
        return seen, queued

    def in_scope(self, url: str) -> bool:
        """Whether a link is within the crawl's hosts, domains, regexes and parent directories."""
        host = _host(url)
        if not self.span_hosts:
            if host not in self.hosts:
                return False
        elif self.domains and not any(host == d or host.endswith("." + d) for d in self.domains):
            return False
        if self.accept is not None and self.accept.search(url) is None:
            return False
        if self.reject is not None and self.reject.search(url) is not None:
            return False
        if self.no_parent and any(h == host for _, h, _ in self.parents):
            # wget's -np: on a start URL's host, only below a start URL's directory.
            parts = urlsplit(url)
            scheme, path = parts.scheme.lower(), parts.path or "/"
            if not any(s == scheme and h == host and path.startswith(p) for s, h, p in self.parents):
                return False
        return True


class _RelativeTo(Mapping[str, str]):
    """URL → a saved page's path relative to ``directory`` (computed when asked: one
    mapping serves every page without a copy per page)."""

    def __init__(self, saved: Mapping[str, Path], directory: Path) -> None:
        self.saved = saved
        self.directory = directory

    def __getitem__(self, url: str) -> str:
        rel = os.path.relpath(self.saved[url], self.directory).replace(os.sep, "/")
        return quote(rel, safe="/._-~")

    def __iter__(self) -> Iterator[str]:
        return iter(self.saved)

    def __len__(self) -> int:
        return len(self.saved)


def link_saved_pages(saved: Mapping[str, Path], root: Path) -> int:
    """Rewrite the links between saved HTML pages to their local copies (``--convert-links``).

    ``saved`` maps each page's URL (as requested, and as it finally answered) to its
    file under ``root``.  Each ``.html``/``.htm`` file is read again, its links to other
    saved pages made relative, and written back atomically; other links stay as they
    are (absolute when the page had a ``<base>``).  Run once the crawl is over, as
    wget does: a page's link may name a page saved after it.  Returns how many files
    changed; one that cannot be read or written is left as it is.
    """
    from ._errors import LoaderError
    from ._saving import write_file
    from .discovery import parse_document, rewrite_html

    changed = 0
    checked: set[str] = set()
    by_path: dict[Path, str] = {}
    for url, path in saved.items():
        by_path.setdefault(path, url)
    for path, url in by_path.items():
        if path.suffix.lower() not in (".html", ".htm"):
            continue
        try:
            content = path.read_bytes()
        except OSError:
            continue
        document = parse_document(content, url)
        new = rewrite_html(document, _RelativeTo(saved, path.parent))
        if new == content:
            continue
        try:
            write_file(url, path, new, root=root, checked=checked)
        except LoaderError:
            continue
        changed += 1
    return changed
