"""A breadth-first crawl over ``PageResult.links`` (``Loader.crawl``).

Data flow::

    start URLs ─▶ frontier (deque of (url, depth)) ─▶ source() ─▶ Loader.fetch_pages machinery
        ▲              │ mirrored in the state file         (at most `concurrency` pages;
        │              ▼ (SQLite: frontier, seen, done)      each inside politeness.turn(url))
        │                                                           │ PageResult as it completes
        │   links of a page at depth d < level:                     ▼
        │   seen? (8-byte fingerprints) ─ scope ─ accept/reject ─ results(): links queued, the
        └── ─ no-parent ─ politeness.allowed ─ policy ◀────────── page's row marked done (one
                                                                  commit), then the page is
                                                                  handed to the caller

Memory follows the frontier: the seen-set holds one int per URL ever queued (a
blake2b fingerprint of the URL's canonical form), the pages under way are at most
``concurrency``, and nothing else is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import sqlite3
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

import anyio

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


def fingerprint(key: str) -> int:
    """The 8-byte blake2b fingerprint of a URL's key, as a signed 64-bit int (SQLite's)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


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


class _State:
    """The crawl's SQLite file: the frontier, the seen fingerprints and the pages done.

    Written by one thread at a time (the crawl holds a lock around each call made
    through ``anyio.to_thread``); each page's outcome is one transaction, so a crawl
    killed at any moment finds, on restart, every page either done or still queued.
    """

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses nothing committed
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS frontier (id INTEGER PRIMARY KEY, url TEXT NOT NULL,"
            " depth INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS seen (fp INTEGER PRIMARY KEY) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS done (fp INTEGER PRIMARY KEY) WITHOUT ROWID;"
        )

    def load(self) -> tuple[set[int], list[tuple[str, int, int]], int]:
        seen = {fp for (fp,) in self.db.execute("SELECT fp FROM seen")}
        frontier = list(self.db.execute("SELECT url, depth, id FROM frontier ORDER BY id"))
        (done,) = self.db.execute("SELECT count(*) FROM done").fetchone()
        return seen, frontier, int(done)

    def commit(self, seen: Sequence[int], queued: Sequence[tuple[str, int, int]],
               done: int | None, row: int | None) -> None:
        db = self.db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", [(fp,) for fp in seen])
            db.executemany("INSERT INTO frontier (url, depth, id) VALUES (?, ?, ?)", queued)
            if done is not None:
                db.execute("INSERT OR IGNORE INTO done VALUES (?)", (done,))
            if row is not None:
                db.execute("DELETE FROM frontier WHERE id = ?", (row,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


class Crawl:
    """One crawl: its frontier, seen-set, scope and counters; an async iterator of pages.

    Made by :meth:`Loader.crawl` (see it for the options).  The counters can be read
    while it runs: ``pages`` (pages handed out, this run), ``queued`` (the frontier's
    length), ``seen`` (URLs ever queued or fetched), ``denied`` (left out by the
    politeness' ``allowed``), ``refused`` (left out by ``policy``), ``resumed`` (pages
    done by earlier runs of the state file).
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
        self.frontier: deque[tuple[str, int, int]] = deque()  # (url, depth, state row)
        self.seen_set: set[int] = set()
        self.under_way: dict[str, tuple[int, int]] = {}  # url -> (depth, row): at most `concurrency`
        self.pages = 0
        self.denied = 0
        self.refused = 0
        self.resumed = 0
        self._started = 0
        self._next_row = 1
        self._wake: anyio.Event | None = None  # made in run(): an Event needs the running loop
        self._store: _State | None = None
        self._lock: anyio.Lock | None = None
        self._results: AsyncIterator[PageResult] | None = None

    # -- counters -----------------------------------------------------------------------

    @property
    def queued(self) -> int:
        """URLs waiting in the frontier."""
        return len(self.frontier)

    @property
    def seen(self) -> int:
        """Distinct URLs queued or fetched so far (the seen-set's size)."""
        return len(self.seen_set)

    # -- the iterator -------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[PageResult]:
        return self

    async def __anext__(self) -> PageResult:
        if self._results is None:
            raise RuntimeError("iterate a crawl inside 'async with loader.crawl(...) as pages:'")
        return await anext(self._results)

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Crawl]:
        """Open the state, seed the frontier, fetch; yields ``self`` to iterate."""
        self._wake, self._lock = anyio.Event(), anyio.Lock()
        if self.state_path is not None:
            self._store = await anyio.to_thread.run_sync(_State, self.state_path)
        try:
            await self._seed()
            async with self._stream(self._source(), self.concurrency, self._fetch_one) as pages:
                self._results = self._process(pages)
                try:
                    yield self
                finally:
                    await self._results.aclose()  # type: ignore[attr-defined]
                    self._results = None
        finally:
            if self._store is not None:
                with anyio.CancelScope(shield=True):
                    async with self._lock:
                        await anyio.to_thread.run_sync(self._store.close)
                self._store = None

    async def _seed(self) -> None:
        if self._store is not None:
            assert self._lock is not None
            async with self._lock:
                seen, frontier, done = await anyio.to_thread.run_sync(self._store.load)
            self.seen_set = seen
            self.frontier.extend(frontier)
            self.resumed = self._started = done
            self._next_row = max((row for _, _, row in frontier), default=0) + 1
        new_seen: list[int] = []
        queued: list[tuple[str, int, int]] = []
        for url in self.start_urls:
            fp = self._fingerprint(url)
            if fp in self.seen_set:
                continue  # queued or done by an earlier run of this state file
            if not await self.politeness.allowed(url):
                self.denied += 1
                continue
            self.seen_set.add(fp)
            new_seen.append(fp)
            queued.append(self._queue(url, 0))
        await self._save(new_seen, queued, None, None)

    def _queue(self, url: str, depth: int) -> tuple[str, int, int]:
        entry = (url, depth, self._next_row)
        self._next_row += 1
        self.frontier.append(entry)
        return entry

    async def _save(self, seen: Sequence[int], queued: Sequence[tuple[str, int, int]],
                    done: int | None, row: int | None) -> None:
        if self._store is None:
            return
        store = self._store
        assert self._lock is not None
        async with self._lock:
            await anyio.to_thread.run_sync(store.commit, seen, queued, done, row)

    def _fingerprint(self, url: str) -> int:
        return fingerprint(self._url_key(url))

    async def _source(self) -> AsyncIterator[str]:
        """The URLs to fetch, in breadth-first order; waits while pages under way may add more."""
        while True:
            if self.max_pages is not None and self._started >= self.max_pages:
                return
            if self.frontier:
                url, depth, row = self.frontier.popleft()
                self.under_way[url] = (depth, row)
                self._started += 1
                yield url
            elif not self.under_way:
                return
            else:
                assert self._wake is not None
                await self._wake.wait()
                self._wake = anyio.Event()

    async def _fetch_one(self, url: str) -> PageResult:
        async with self.politeness.turn(url):
            return await self._fetch_page(url, **self.page_options)

    async def _process(self, pages: AsyncIterator[PageResult]) -> AsyncIterator[PageResult]:
        async for page in pages:
            depth, row = self.under_way[page.url]
            try:
                seen, queued = await self._follow(page, depth)
                # Done once this commits: a restart neither fetches it again nor loses its links.
                await self._save(seen, queued, self._fingerprint(page.url), row)
            finally:
                del self.under_way[page.url]
                if self._wake is not None:
                    self._wake.set()
            self.pages += 1
            yield page

    async def _follow(self, page: PageResult, depth: int) -> tuple[list[int], list[tuple[str, int, int]]]:
        """Queue the page's links that pass; the fingerprints and rows to store."""
        seen: list[int] = []
        queued: list[tuple[str, int, int]] = []

        def mark(url: str) -> bool:
            fp = self._fingerprint(url)
            if fp in self.seen_set:
                return False
            self.seen_set.add(fp)
            seen.append(fp)
            return True

        document = page.document
        if document.ok and document.final_url != page.url:
            mark(document.final_url)
            if depth == 0:
                # A start URL that redirects (example.com → www.example.com) moves the scope.
                self.hosts.add(_host(document.final_url))
                self.parents.add(_directory(document.final_url))
        for resource in page.resources:
            if resource.ok:
                mark(resource.url)  # fetched as a requisite: not again as a page
        if self.level is not None and depth >= self.level:
            return seen, queued
        schemes = set(self._schemes())
        for link in page.links:
            url = link.url
            if url.partition(":")[0].lower() not in schemes or not self.in_scope(url):
                continue
            if not mark(url):
                continue
            if not await self.politeness.allowed(url):
                self.denied += 1
                continue
            if self.policy is not None and not await self.policy(url, depth + 1, self):
                self.refused += 1
                continue
            queued.append(self._queue(url, depth + 1))
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
