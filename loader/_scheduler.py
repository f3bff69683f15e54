"""When requests run: the limits, the per-host queues, batched starts and retries.

Every request of a loader, whether ``fetch``, ``fetch_all``, a page's requisite or a
plugin operation (FTP commands, a Gopher menu read), takes its place here::

    Scheduler.slot(url)        global slot (Limits.total), then the host's slot
                               (Limits.per_host): fair, first come first served;
                               an idle host's limiter is dropped (memory stays flat)
    HostQueues.add(url, item)  many items: queued by host, each host drained by at
                               most Limits.per_host workers, started START_BATCH at a
                               time (fetch_all and a page's requisites)
    Scheduler.attempts(...)    one request's attempts: transient failures retried
                               with capped exponential backoff or the server's
                               Retry-After (Retries)
    Scheduler.note_status(...) a 429 or 503 holds its whole host (Limits.host_backoff):
                               slot() waits, before taking any slot, until the host's
                               Retry-After (capped) or exponential delay has passed
    TokenBucket.take(n)        Limits.rate: bytes a second for the whole loader

The module knows nothing of protocols, sinks or events: callers pass in the work.
"""

from __future__ import annotations

import collections
import functools
import random
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._errors import HTTPStatusError, LoaderError
from ._models import Limits, Retries, Stats
from ._urls import split_origin

__all__ = [
    "START_BATCH", "HeldSlot", "HostQueues", "Scheduler", "Slots", "TokenBucket", "host_key",
]

T = TypeVar("T")
Item = TypeVar("Item")

#: Workers started in one pass of the event loop (see :meth:`HostQueues.add`).
START_BATCH = 8
#: Statuses that hold a whole host (``Limits.host_backoff``): "too many requests", "unavailable".
BACKOFF_STATUSES = frozenset({429, 503})
#: Past this many held hosts, hosts whose hold has ended are forgotten (memory stays flat).
BACKOFF_HOSTS = 1024


class Slots:
    """A counting semaphore for the request limits (total, per host), fair (first come, first served).

    anyio's ``CapacityLimiter`` tracks each borrowing task and yields to the
    event loop twice per acquisition even when a token is free; this one takes a
    free token with no trip through the loop and no bookkeeping, which matters
    at thousands of requests a second.  Waiting is cancellable: a token handed to
    a waiter cancelled meanwhile is passed on.
    """

    __slots__ = ("free", "total", "waiters")

    def __init__(self, total: int) -> None:
        self.free = total
        self.total = total
        self.waiters: collections.deque[anyio.Event] = collections.deque()

    @property
    def idle(self) -> bool:
        """Nobody holds a token and nobody waits for one."""
        return self.free == self.total and not self.waiters

    def take_free(self) -> bool:
        """Take a token if one is free and nobody waits (no trip through the loop)."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return True
        return False

    async def __aenter__(self) -> None:
        if not self.take_free():
            await self.wait_turn()

    async def wait_turn(self) -> None:
        """Wait in line for a token (after :meth:`take_free` found none)."""
        granted = anyio.Event()
        self.waiters.append(granted)
        try:
            await granted.wait()
        except BaseException:
            if granted.is_set():
                self.release()  # the token came with the cancellation: pass it on
            else:
                self.waiters.remove(granted)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        """Give a token back: straight to the next in line, if anyone waits."""
        if self.waiters:
            self.waiters.popleft().set()
        else:
            self.free += 1


@functools.lru_cache(maxsize=4096)  # a page asks once to queue a URL, once to fetch it
def host_key(url: str) -> str:
    """What the per-host limit counts by: scheme, host and port."""
    origin = split_origin(url)
    if origin is None:
        return url  # a bad URL fails later, with its own error
    return f"{origin[0]}://{origin[1]}:{origin[2] or ''}"


class TokenBucket:
    """``Limits.rate``: at most ``rate`` bytes a second across every body of a loader.

    A bucket that may go into debt: each chunk takes its bytes as it arrives, and a
    taker that leaves the bucket below zero sleeps until the refill has paid the debt
    back.  Concurrent bodies queue behind one another's debt, so the total holds
    whatever the number of transfers; ``burst`` bytes (a tenth of a second's worth, at
    least 16 KiB) may pass at once.  Each wait is counted in ``Stats.rate_waits``.
    """

    __slots__ = ("burst", "rate", "stamp", "stats", "tokens")

    def __init__(self, rate: float, stats: Stats) -> None:
        self.rate = float(rate)
        self.burst = max(self.rate / 10, 16384.0)
        self.tokens = self.burst
        self.stamp: float | None = None
        self.stats = stats

    async def take(self, size: int) -> None:
        """Account for ``size`` bytes received; sleep while the bucket is in debt."""
        now = anyio.current_time()
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= size
        if self.tokens < 0:
            self.stats.rate_waits += 1
            await anyio.sleep(-self.tokens / self.rate)


class Scheduler:
    """One loader's limits and retry policy (see the module docstring)."""

    def __init__(self, limits: Limits, retries: Retries, stats: Stats | None = None) -> None:
        self.limits = limits
        self.retries = retries
        self.stats = stats if stats is not None else Stats()
        self.total = Slots(limits.total)
        self.hosts: dict[str, Slots] = {}
        #: Hosts held after a 429/503: until when (``anyio.current_time``), and how many in a row.
        self.held: dict[str, tuple[float, int]] = {}
        self.rate = TokenBucket(limits.rate, self.stats) if limits.rate else None

    def note_status(self, url: str, status: int | None, retry_after: float | None = None) -> None:
        """Tell the scheduler how ``url``'s host answered (``Limits.host_backoff``).

        A 429 or 503 holds the host: every request to it waits ``retry_after`` seconds
        (the server's ``Retry-After``), else ``Retries.backoff`` doubled for each such
        answer in a row, either capped at ``Limits.host_backoff``.  A later answer
        below 400 ends the run of strikes.
        """
        cap = self.limits.host_backoff
        if cap is None or status is None:
            return
        key = host_key(url)
        if status in BACKOFF_STATUSES:
            until, strikes = self.held.get(key, (0.0, 0))
            if retry_after is not None:
                delay = min(cap, max(0.0, retry_after))
            else:
                delay = min(cap, self.retries.backoff * 2**strikes)
            if len(self.held) >= BACKOFF_HOSTS:
                self._forget_ended()
            self.held[key] = (max(until, anyio.current_time() + delay), strikes + 1)
            self.stats.host_backoffs += 1
        elif status < 400 and key in self.held and self.held[key][0] <= anyio.current_time():
            del self.held[key]

    def _forget_ended(self) -> None:
        now = anyio.current_time()
        for key in [key for key, (until, _) in self.held.items() if until <= now]:
            del self.held[key]

    async def wait_host(self, key: str) -> None:
        """Wait while host ``key`` is held after a 429/503 (the hold may grow meanwhile)."""
        while (entry := self.held.get(key)) is not None:
            delay = entry[0] - anyio.current_time()
            if delay <= 0:
                return
            await anyio.sleep(delay)

    def slot(self, url: str) -> HeldSlot:
        """Hold a global slot and ``url``'s host slot for the body of an ``async with``."""
        return self.host_slot(host_key(url))

    def host_slot(self, key: str) -> HeldSlot:
        """:meth:`slot` for a URL whose :func:`host_key` is ``key`` (already known)."""
        return HeldSlot(self, key)

    def retry_delay(self, exc: LoaderError, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None``: do not retry."""
        retries = self.retries
        if not exc.transient or attempt >= retries.attempts:
            return None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, HTTPStatusError) and retry_after is not None:
            return retry_after if retry_after <= retries.max_retry_after else None
        cap = min(retries.max_backoff, retries.backoff * 2 ** (attempt - 1))
        return random.uniform(0, cap)

    async def attempts(
        self,
        attempt: Callable[[int], Awaitable[T]],
        *,
        first: int = 1,
        repeatable: bool = True,
        on_retry: Callable[[LoaderError, float], Awaitable[None]],
        failed: LoaderError | None = None,
    ) -> T:
        """Run ``attempt(number)`` (``number`` from ``first``) until it succeeds or fails for good.

        ``on_retry(error, delay)`` is awaited before each wait (it reports the retry);
        ``repeatable=False`` (a body sent once) never retries.  ``failed``: attempt
        ``first`` was already made by the caller and failed so (then only the retries
        run here; a request's first attempt is called directly, without a closure).
        """
        number = first
        while True:
            if failed is None:
                try:
                    return await attempt(number)
                except LoaderError as exc:
                    failed = exc
            delay = self.retry_delay(failed, number) if repeatable else None
            if delay is None:
                raise failed
            await on_retry(failed, delay)
            await anyio.sleep(delay)
            number += 1
            failed = None


class HeldSlot:
    """``async with scheduler.slot(url)``: a global slot, then the host's; released in reverse.

    A plain class rather than ``@asynccontextmanager``: it is entered once per request,
    and a generator-based manager costs a few microseconds more each time.
    """

    __slots__ = ("key", "limiter", "scheduler", "shared")

    def __init__(self, scheduler: Scheduler, key: str) -> None:
        self.scheduler = scheduler
        self.key = key
        self.limiter: Slots | None = None
        self.shared: AbstractAsyncContextManager[object] | None = None  # Limits.host_limiter's

    async def __aenter__(self) -> None:
        scheduler = self.scheduler
        if scheduler.held:  # a held host's requests wait without taking a slot
            await scheduler.wait_host(self.key)
        if not scheduler.total.take_free():  # a free token needs no coroutine
            await scheduler.total.wait_turn()
        if scheduler.limits.host_limiter is not None:
            self.shared = scheduler.limits.host_limiter.slot(self.key, scheduler.limits.per_host)
            try:
                await self.shared.__aenter__()
            except BaseException:
                scheduler.total.release()
                raise
            return
        try:
            limiter = scheduler.hosts.get(self.key)
            if limiter is None:
                limiter = scheduler.hosts[self.key] = Slots(scheduler.limits.per_host)
            self.limiter = limiter
            if not limiter.take_free():
                await limiter.wait_turn()
        except BaseException:
            self._drop_if_idle()
            scheduler.total.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        if self.shared is not None:
            try:
                await self.shared.__aexit__(None, None, None)
            finally:
                self.scheduler.total.release()
            return
        assert self.limiter is not None
        self.limiter.release()
        self._drop_if_idle()
        self.scheduler.total.release()

    def _drop_if_idle(self) -> None:
        # A crawl meets thousands of hosts: keep only the limiters in use.
        limiter, hosts = self.limiter, self.scheduler.hosts
        if limiter is not None and limiter.idle and hosts.get(self.key) is limiter:
            del hosts[self.key]


class HostQueues(Generic[Item]):
    """Items queued by host, each host drained by at most ``per_host`` workers.

    A thousand images of one host are six tasks pulling from a queue, not a thousand
    tasks queued on a limiter (each of which costs a task, a wait and a wake-up).
    ``work`` is awaited once per item, in the order items were added for their host.
    """

    def __init__(self, per_host: int, work: Callable[[Item], Awaitable[None]]) -> None:
        self.per_host = per_host
        self.work = work
        self.queues: dict[Hashable, collections.deque[Item]] = {}
        self.workers: dict[Hashable, int] = {}
        self.starting: list[Hashable] = []

    def add(self, url: str, item: Item) -> None:
        """Queue ``item`` under ``url``'s host; call :meth:`start` after a batch of adds."""
        key = host_key(url)
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = collections.deque()
        queue.append(item)
        running = self.workers.get(key, 0)
        if running < self.per_host:
            self.workers[key] = running + 1
            self.starting.append(key)

    def start(self, tg: TaskGroup) -> None:
        """Start the workers the adds made due, ``START_BATCH`` at a time.

        Started all at once, a hundred workers would each open their connection
        before the first of them could send its request: the loop runs every new
        task's first step before it looks at a connection again.  In batches, the
        first requests go out while later connections are still being set up, and
        their responses come back spread out rather than in one burst.
        """
        keys, self.starting = self.starting, []
        self._start(keys, tg)

    def _start(self, keys: list[Hashable], tg: TaskGroup) -> None:
        for key in keys[:START_BATCH]:
            tg.start_soon(self._worker, key)
        if len(keys) > START_BATCH:
            tg.start_soon(self._start_later, keys[START_BATCH:], tg)

    async def _start_later(self, keys: list[Hashable], tg: TaskGroup) -> None:
        self._start(keys, tg)  # a task of its own: one pass of the loop after the batch before

    async def _worker(self, key: Hashable) -> None:
        queue = self.queues[key]
        try:
            while queue:
                await self.work(queue.popleft())
        finally:
            self.workers[key] -= 1
            if not self.workers[key] and not queue:
                del self.workers[key], self.queues[key]
