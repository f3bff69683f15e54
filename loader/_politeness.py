"""A crawl's manners: robots.txt, and the wait between one host's pages.

``Politeness`` is what a crawl asks before and around each page (the shape of the
crawl's ``CrawlPoliteness``)::

    await politeness.allowed(url)      robots.txt says the loader's user agent may fetch it
    async with politeness.turn(url):   the host's delay has passed since its last page
        ...fetch the page...

robots.txt is fetched by the loader itself (``Loader.fetch`` machinery, ``kind`` and
``purpose`` ``"robots"``, so observers see it), once per host: concurrent first
questions for one host wait for the one fetch, and the parsed file is kept in a
bounded LRU with a time to live.  What an answer means follows Google's reading of
RFC 9309:

- 2xx: the file is parsed with ``protego`` (the first ``ROBOTS_MAX`` bytes; the rest
  is ignored) and kept ``ROBOTS_TTL`` seconds;
- 4xx other than 429 (no file, forbidden): everything is allowed, kept as long;
- 429, 5xx or no answer at all (refused, timed out): the server is in trouble, so
  nothing on it is fetched for ``ROBOTS_ERROR_TTL`` seconds; then the file is asked
  for again.

Only ``http`` and ``https`` URLs have a robots.txt: other schemes are always allowed.
The user agent token matched against ``User-agent:`` lines is the product name at the
start of the loader's ``User-Agent`` (``loader`` by default).

The delay between two page fetches of a host is the larger of ``Limits.host_delay``
(wget's ``--wait``) and the host's ``Crawl-delay`` (or ``Request-rate``, as seconds per
request), capped at ``max_crawl_delay``; with ``Limits.random_wait`` each delay is
multiplied by a random factor in 0.5-1.5 (wget's ``--random-wait``).  A host with a
delay fetches one page at a time: the next starts ``delay`` seconds after the last
ended.  A host without one is not held at all.
"""

from __future__ import annotations

import collections
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio

from ._models import Limits, Result, Stats
from ._scheduler import host_key

__all__ = [
    "ROBOTS_ERROR_TTL",
    "ROBOTS_MAX",
    "ROBOTS_TTL",
    "Politeness",
    "RobotsFetch",
    "user_agent_token",
]

#: Bytes of a robots.txt that are read (Google reads 500 KiB and ignores the rest).
ROBOTS_MAX = 500 * 1024
#: Seconds a host's robots.txt (or its absence) is trusted before it is asked for again.
ROBOTS_TTL = 24 * 3600.0
#: Seconds a host whose robots.txt could not be had (429, 5xx, no answer) is left alone.
ROBOTS_ERROR_TTL = 300.0
#: Hosts whose robots.txt is kept at once (least recently used first out).
ROBOTS_HOSTS = 4096
#: Hosts whose last page time is remembered at once (for the delay between pages).
TURN_HOSTS = 4096

#: ``fetch(url, write)``: the loader's request for a robots.txt, each body chunk to ``write``.
RobotsFetch = Callable[[str, Callable[[bytes], None]], Awaitable[Result]]


def user_agent_token(user_agent: str | None) -> str:
    """The product token robots.txt groups are matched against: ``"loader/0.1 (+x)"`` → ``loader``."""
    match = re.match(r"[A-Za-z0-9_-]+", (user_agent or "").strip())
    return match.group(0) if match else "loader"


@dataclass(slots=True)
class _Robots:
    """One host's robots.txt as known: a parser, or allow-all / deny-all, and until when."""

    expires: float
    parser: object | None = None  # a protego.Protego (imported only when a crawl needs it)
    allow_all: bool = True

    def can_fetch(self, url: str, agent: str) -> bool:
        if self.parser is not None:
            return bool(self.parser.can_fetch(url, agent))  # type: ignore[attr-defined]
        return self.allow_all

    def delay(self, agent: str) -> float:
        if self.parser is None:
            return 0.0
        delay = self.parser.crawl_delay(agent)  # type: ignore[attr-defined]
        rate = self.parser.request_rate(agent)  # type: ignore[attr-defined]
        seconds = float(delay or 0.0)
        if rate is not None and rate.requests:
            seconds = max(seconds, rate.seconds / rate.requests)
        return seconds


@dataclass(slots=True)
class _Turn:
    """One host's page turns: one at a time, the next no sooner than ``ready``."""

    lock: anyio.Lock = field(default_factory=anyio.Lock)
    ready: float = 0.0
    users: int = 0


class Politeness:
    """robots.txt and per-host page delays for one loader (see the module docstring).

    ``fetch`` fetches a robots.txt through the loader (``Loader.politeness`` passes its
    own); ``robots=False`` (``--no-robots``) allows everything and fetches nothing.
    ``Stats.robots_denied`` counts the URLs refused; ``turn_waits`` counts the page
    fetches that had to wait for their host's delay.
    """

    def __init__(
        self,
        fetch: RobotsFetch,
        *,
        limits: Limits,
        stats: Stats,
        user_agent: str | None = None,
        robots: bool = True,
        max_crawl_delay: float = 60.0,
    ) -> None:
        self.fetch = fetch
        self.limits = limits
        self.stats = stats
        self.agent = user_agent_token(user_agent)
        self.robots = robots
        self.max_crawl_delay = max_crawl_delay
        self.cache: collections.OrderedDict[str, _Robots] = collections.OrderedDict()
        self.fetching: dict[str, anyio.Event] = {}
        self.turns: dict[str, _Turn] = {}
        #: Page fetches that waited for their host's delay.
        self.turn_waits = 0

    # -- robots.txt ------------------------------------------------------------

    async def allowed(self, url: str) -> bool:
        """Whether robots.txt lets this loader's user agent fetch ``url`` (fetched if need be)."""
        if not self.robots:
            return True
        robots = await self._robots_for(url)
        if robots is None or robots.can_fetch(url, self.agent):
            return True
        self.stats.robots_denied += 1
        return False

    async def _robots_for(self, url: str) -> _Robots | None:
        try:
            parts = urlsplit(url)
        except ValueError:
            return None  # a bad URL fails later, with its own error
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        key = host_key(url)
        while True:
            known = self.cache.get(key)
            if known is not None and known.expires > time.monotonic():
                self.cache.move_to_end(key)
                return known
            running = self.fetching.get(key)
            if running is None:
                break
            await running.wait()  # one fetch per host: the others wait for its answer
        done = self.fetching[key] = anyio.Event()
        try:
            robots = await self._fetch(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/robots.txt")
            self.cache[key] = robots
            self.cache.move_to_end(key)
            while len(self.cache) > ROBOTS_HOSTS:
                self.cache.popitem(last=False)
            return robots
        finally:
            del self.fetching[key]
            done.set()

    async def _fetch(self, robots_url: str) -> _Robots:
        chunks: list[bytes] = []
        kept = 0

        def write(chunk: bytes) -> None:
            nonlocal kept
            if kept < ROBOTS_MAX:
                chunks.append(chunk[: ROBOTS_MAX - kept])
                kept += len(chunks[-1])

        result = await self.fetch(robots_url, write)
        now = time.monotonic()
        status = result.status if result.status is not None else getattr(result.error, "status", None)
        if result.ok and status is not None and 200 <= status < 300:
            from protego import Protego

            text = b"".join(chunks).decode("utf-8", errors="replace")
            return _Robots(now + ROBOTS_TTL, parser=Protego.parse(text))
        if status is not None and 400 <= status < 500 and status != 429:
            return _Robots(now + ROBOTS_TTL, allow_all=True)
        # 429, 5xx, a redirect loop or no answer at all: stay away for a while.
        return _Robots(now + ROBOTS_ERROR_TTL, allow_all=False)

    # -- the delay between a host's pages -------------------------------------------

    def delay(self, url: str) -> float:
        """Seconds between two page fetches of ``url``'s host (0: no wait, no turns)."""
        delay = self.limits.host_delay
        if self.robots:
            known = self.cache.get(host_key(url))
            if known is not None:
                delay = max(delay, min(self.max_crawl_delay, known.delay(self.agent)))
        return delay

    def turn(self, url: str) -> AbstractAsyncContextManager[None]:
        """``async with politeness.turn(url):`` around one page fetch of ``url``'s host."""
        delay = self.delay(url)
        if delay <= 0:
            return nullcontext()
        return self._turn(host_key(url), delay)

    @asynccontextmanager
    async def _turn(self, key: str, delay: float) -> AsyncIterator[None]:
        turn = self.turns.get(key)
        if turn is None:
            if len(self.turns) >= TURN_HOSTS:
                self._forget_idle()
            turn = self.turns[key] = _Turn()
        turn.users += 1
        try:
            async with turn.lock:
                wait = turn.ready - anyio.current_time()
                if wait > 0:
                    self.turn_waits += 1
                    await anyio.sleep(wait)
                try:
                    yield
                finally:
                    factor = random.uniform(0.5, 1.5) if self.limits.random_wait else 1.0
                    turn.ready = anyio.current_time() + delay * factor
        finally:
            turn.users -= 1

    def _forget_idle(self) -> None:
        now = anyio.current_time()
        for key in [k for k, t in self.turns.items() if not t.users and t.ready <= now]:
            del self.turns[key]
