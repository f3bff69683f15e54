"""A crawl shared by processes and machines through one Redis (``--frontier redis://…``).

Every worker started with the same frontier URL shares the frontier, the seen-set,
the per-host limits and the politeness turns; each runs its own loader and saves
into its own output directory.  Keys, all under ``loader:crawl:NAME:`` (``NAME``
from ``?crawl=NAME``, default ``default``)::

    queue          list of "fp depth url" entries, breadth-first (claimed from the left)
    leases         zset entry -> lease end (ms, the server's clock): pages under way
    seen           set of URL fingerprints ever queued or fetched (decimal)
    done           set of fingerprints of pages completed
    requisites     set of fingerprints of requisites claimed by some worker
    claimed        pages handed out in all (done + under way), for max_pages
    results        stream: one entry per page completed (its summary and manifest)
    host:KEY:held  zset ticket -> lease end: requests under way to host KEY
    host:KEY:wait  zset ticket -> arrival: requests waiting for host KEY, in order
    ticket:T       a waiting ticket's heartbeat (expires with the lease time)
    grant:T        list the grant is pushed on: its owner waits in BLPOP, not polling
    ready:KEY      when host KEY's next page may start (politeness turns)

Each step is one Lua script, atomic in Redis.  A claimed page is a lease of
``lease`` seconds (``?lease=``, default 30) renewed every third of it while its
worker lives; a worker killed (SIGKILL, a machine lost) stops renewing, and the next
claim after the lease ends puts the page back at the front of the queue.  A page's
completion (its links queued, its fingerprint done, its result on the stream) is one
script: nothing completed is fetched again, and a page whose lease ran out while it
was slow is recorded once, whichever worker finishes first.

Left out: a shared robots.txt cache (each worker fetches robots.txt once), a shared
429/503 back-off, trio (redis.asyncio runs on asyncio), Redis Cluster (scripts use
keys they compute).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio

from ._frontier import Claim

if TYPE_CHECKING:
    import redis.asyncio

    from ._page import PageResult
    from ._politeness import Politeness

__all__ = [
    "DEFAULT_LEASE", "FrontierURL", "RedisFrontier", "RedisHostLimiter", "RedisPoliteness",
    "run_status_command",
]

#: Seconds a claimed page or a host slot is held before it is given back, unless renewed.
DEFAULT_LEASE = 30.0
#: Seconds to wait for a reply from Redis before the frontier fails (``?socket_timeout=``).
READ_TIMEOUT = 10.0
#: Connections a worker may open to Redis (``?max_connections=`` overrides).
MAX_CONNECTIONS = 1000
#: Seconds a worker with nothing to claim waits before it asks again (others may add pages).
POLL = 0.2
#: Most entries the results stream keeps (approximately: XADD MAXLEN ~).
RESULTS_MAX = 1_000_000
#: Longest manifest put on the results stream (a larger one is left out, its path noted).
MANIFEST_MAX = 1 << 20

# Redis's clock in milliseconds, for every lease (machines' clocks may differ).
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV: lease ms, max pages (-1: none).  KEYS: queue, leases, done, claimed.
# Returns {entry or "", queue length, leases}.
_CLAIM = _NOW + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for i = #expired, 1, -1 do
  redis.call('ZREM', KEYS[2], expired[i])
  redis.call('LPUSH', KEYS[1], expired[i])
  redis.call('DECR', KEYS[4])
end
local max = tonumber(ARGV[2])
while true do
  if max >= 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= max then break end
  local e = redis.call('LPOP', KEYS[1])
  if not e then break end
  local fp = string.match(e, '^[^ ]+')
  if redis.call('SISMEMBER', KEYS[3], fp) == 0 then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), e)
    redis.call('INCR', KEYS[4])
    return {e, redis.call('LLEN', KEYS[1]), redis.call('ZCARD', KEYS[2])}
  end
end
return {'', redis.call('LLEN', KEYS[1]), redis.call('ZCARD', KEYS[2])}
"""

# KEYS: seen, queue, leases, done, results, claimed.
# ARGV: entry ("" when seeding), fp, result JSON, manifest, worker, n seen, seen..., entries...
# Returns {1 if this completion counted (0: another worker's did), queue length, seen size}.
_DONE = """
local counted = 0
if ARGV[1] ~= '' then
  if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then
    redis.call('INCR', KEYS[6])  -- the lease had run out and was given back meanwhile
  end
  counted = redis.call('SADD', KEYS[4], ARGV[2])
  redis.call('SADD', KEYS[1], ARGV[2])
end
local n = tonumber(ARGV[6])
for i = 7, 6 + n do redis.call('SADD', KEYS[1], ARGV[i]) end
for i = 7 + n, #ARGV do
  local e = ARGV[i]
  if redis.call('SADD', KEYS[1], string.match(e, '^[^ ]+')) == 1 then
    redis.call('RPUSH', KEYS[2], e)
  end
end
if counted == 1 then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', '""" + str(RESULTS_MAX) + """', '*',
             'page', ARGV[3], 'manifest', ARGV[4], 'worker', ARGV[5])
end
return {counted, redis.call('LLEN', KEYS[2]), redis.call('SCARD', KEYS[1])}
"""

# KEYS: leases.  ARGV: lease ms, entries...  Renews the leases still held.
_RENEW = _NOW + """
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
return 0
"""

# KEYS: requisites, seen.  ARGV: fp.  1: this worker fetches it.
_REQUISITE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[1])
  return 1
end
return 0
"""

# The host limiter.  Every script: ARGV[1] key prefix, ARGV[2] host key, ARGV[3] ticket,
# ARGV[4] limit, ARGV[5] lease ms.  grant() hands free slots to the oldest live waiters.
_GRANT = _NOW + """
local p, held, wait = ARGV[1], ARGV[1] .. 'host:' .. ARGV[2] .. ':held', ARGV[1] .. 'host:' .. ARGV[2] .. ':wait'
local limit, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local function grant()
  redis.call('ZREMRANGEBYSCORE', held, '-inf', now)
  while redis.call('ZCARD', held) < limit do
    local first = redis.call('ZRANGE', wait, 0, 0)
    if #first == 0 then break end
    local t = first[1]
    redis.call('ZREM', wait, t)
    if redis.call('EXISTS', p .. 'ticket:' .. t) == 1 then  -- its waiter is alive
      redis.call('DEL', p .. 'ticket:' .. t)
      redis.call('ZADD', held, now + ttl, t)
      redis.call('RPUSH', p .. 'grant:' .. t, '1')
      redis.call('PEXPIRE', p .. 'grant:' .. t, ttl)
    end
  end
end
"""

# 1: the slot is the ticket's now; 0: it waits (for grant:T, or its next call).
_ACQUIRE = _GRANT + """
local t = ARGV[3]
if redis.call('ZSCORE', held, t) then redis.call('DEL', p .. 'grant:' .. t) return 1 end
if redis.call('ZSCORE', wait, t) then
  redis.call('SET', p .. 'ticket:' .. t, '1', 'PX', ttl)  -- still waiting: the heartbeat
else
  redis.call('SET', p .. 'ticket:' .. t, '1', 'PX', ttl)
  redis.call('ZADD', wait, redis.call('INCR', p .. 'tickets'), t)
end
grant()
if redis.call('ZSCORE', held, t) then redis.call('DEL', p .. 'grant:' .. t) return 1 end
return 0
"""

_RELEASE = _GRANT + """
local t = ARGV[3]
redis.call('ZREM', held, t)
redis.call('ZREM', wait, t)
redis.call('DEL', p .. 'ticket:' .. t, p .. 'grant:' .. t)
grant()
return 0
"""

# ARGV[6..]: tickets held (host key, ticket pairs from ARGV[6]); renews their leases.
_RENEW_SLOTS = _NOW + """
local p, ttl = ARGV[1], tonumber(ARGV[5])
for i = 6, #ARGV, 2 do
  redis.call('ZADD', p .. 'host:' .. ARGV[i] .. ':held', 'XX', now + ttl, ARGV[i + 1])
end
return 0
"""

# The politeness turn: ARGV[1] prefix, ARGV[2] host key; returns ms until the host's next page.
_TURN_WAIT = _NOW + """
local ready = tonumber(redis.call('GET', ARGV[1] .. 'ready:' .. ARGV[2]) or '0')
return math.max(0, ready - now)
"""

# ARGV[3]: the delay in ms: the host's next page no sooner than now + delay.
_TURN_END = _NOW + """
redis.call('SET', ARGV[1] .. 'ready:' .. ARGV[2], now + tonumber(ARGV[3]), 'PX', tonumber(ARGV[3]) + 60000)
return 0
"""


@dataclass(frozen=True, slots=True)
class FrontierURL:
    """``redis://[user:password@]HOST:PORT/DB?crawl=NAME&lease=SECONDS`` taken apart.

    ``redis`` is the URL Redis's client is given (``crawl`` and ``lease`` removed; any
    other query, ``?ssl_cert_reqs=…`` say, stays); ``prefix`` the crawl's keys'.
    """

    redis: str
    crawl: str
    lease: float

    @property
    def prefix(self) -> str:
        return f"loader:crawl:{self.crawl}:"

    @classmethod
    def parse(cls, url: str) -> FrontierURL:
        """Parse a frontier URL; ``ValueError`` naming the URL and what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"{url}: a frontier is a redis://HOST:PORT/DB URL (or rediss://, unix://)")
        query = parse_qsl(parts.query, keep_blank_values=True)
        crawl, lease, rest = "default", DEFAULT_LEASE, []
        for name, value in query:
            if name == "crawl":
                crawl = value
            elif name == "lease":
                try:
                    lease = float(value)
                except ValueError:
                    lease = -1.0
                if not lease > 0:
                    raise ValueError(f"{url}: lease must be a number of seconds above 0, not {value!r}")
            else:
                rest.append((name, value))
        if not crawl or any(c in crawl for c in " \r\n{}"):
            raise ValueError(f"{url}: crawl name {crawl!r} must be non-empty, without spaces or braces")
        return cls(urlunsplit(parts._replace(query=urlencode(rest))), crawl, lease)


def _client(url: FrontierURL) -> redis.asyncio.Redis:
    try:
        import redis.asyncio
    except ImportError as exc:  # the optional extra
        raise RuntimeError(
            f"{url.redis}: a Redis frontier needs the redis client: pip install 'loader-fetch[redis]'"
        ) from exc
    # Each request waiting for a host slot holds a connection in BLPOP: room for many
    # (a ``?max_connections=`` in the URL wins), not the client's default 100.
    # The read timeout is set here, not left to the client's default, so that
    # _blocking_wait can read it (``?socket_timeout=`` in the URL wins).
    return redis.asyncio.Redis.from_url(
        url.redis, decode_responses=True, max_connections=MAX_CONNECTIONS, socket_timeout=READ_TIMEOUT)


def _blocking_wait(client: redis.asyncio.Redis, lease: float) -> float:
    """How long one ``BLPOP`` may block: a third of the lease, and within the read timeout.

    The client gives up reading a reply after ``socket_timeout`` (:data:`READ_TIMEOUT`):
    a ``BLPOP`` blocking longer would end in its ``TimeoutError``.
    """
    read = client.connection_pool.connection_kwargs.get("socket_timeout")
    wait = lease / 3
    if read:
        wait = min(wait, float(read) / 2)
    return max(wait, 0.05)


def frontier_failure(exc: BaseException) -> BaseException | None:
    """The Redis error in ``exc`` (an exception group, a cause), if the frontier failed."""
    try:
        import redis.exceptions
    except ImportError:
        return None
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, redis.exceptions.RedisError):
            return item
        if isinstance(item, BaseExceptionGroup):
            todo.extend(item.exceptions)
        todo.extend((item.__cause__, item.__context__))
    return None


class RedisHostLimiter:
    """A :class:`~loader._models.HostLimiter` shared by every process on one Redis.

    Fair: each request takes a ticket and waits in its host's queue in arrival
    order; a release hands the slot to the oldest waiter still alive and pushes on
    that waiter's own list, which it awaits in ``BLPOP`` (woken, not polling; it asks
    again only every ``lease`` / 3 seconds, to keep its place alive and to take slots
    whose holder died).  A slot is a lease of ``lease`` seconds, renewed by
    :meth:`renew` while held: a killed worker's slots come free when it ends.
    """

    def __init__(self, client: redis.asyncio.Redis, prefix: str, lease: float = DEFAULT_LEASE) -> None:
        self.client = client
        self.prefix = prefix
        self.lease = lease
        self.held: dict[str, str] = {}  # ticket -> host key, for renew()
        self.acquire_script = client.register_script(_ACQUIRE)
        self.release_script = client.register_script(_RELEASE)
        self.renew_script = client.register_script(_RENEW_SLOTS)
        self.wait = _blocking_wait(client, lease)

    def _args(self, key: str, ticket: str, limit: int) -> list[str | int]:
        return [self.prefix, key, ticket, limit, int(self.lease * 1000)]

    @asynccontextmanager
    async def slot(self, key: str, limit: int) -> AsyncIterator[None]:
        """Hold one of ``limit`` slots of host ``key`` across all processes."""
        ticket = uuid.uuid4().hex
        args = self._args(key, ticket, limit)
        try:
            while not await self.acquire_script(args=args):
                # Woken by the release that grants us the slot; at the latest after
                # self.wait, to renew our place and look for dead holders.
                await self.client.blpop([f"{self.prefix}grant:{ticket}"], timeout=self.wait)
            self.held[ticket] = key
            yield
        finally:
            self.held.pop(ticket, None)
            with anyio.CancelScope(shield=True):
                await self.release_script(args=args)

    async def renew(self) -> None:
        """Extend the leases of the slots this process holds."""
        pairs = [part for ticket, key in list(self.held.items()) for part in (key, ticket)]
        if pairs:
            await self.renew_script(args=[self.prefix, "", "", 0, int(self.lease * 1000), *pairs])


class RedisPoliteness:
    """A crawl's politeness with the per-host page turns shared through Redis.

    ``allowed`` is the local :class:`~loader._politeness.Politeness`' (each worker
    reads robots.txt once); ``turn(url)``, when the host has a delay (``--wait``,
    ``Crawl-delay``), takes the host's one turn slot across all workers, waits until
    the host's shared ready time, and sets the next one when the page is done.
    """

    def __init__(self, local: Politeness, limiter: RedisHostLimiter) -> None:
        self.local = local
        self.limiter = limiter
        self.wait_script = limiter.client.register_script(_TURN_WAIT)
        self.end_script = limiter.client.register_script(_TURN_END)

    async def allowed(self, url: str) -> bool:
        return await self.local.allowed(url)

    def turn(self, url: str) -> AbstractAsyncContextManager[object]:
        from ._scheduler import host_key

        delay = self.local.delay(url)
        if delay <= 0:
            return nullcontext()
        return self._turn(host_key(url), delay)

    @asynccontextmanager
    async def _turn(self, key: str, delay: float) -> AsyncIterator[None]:
        prefix = self.limiter.prefix
        async with self.limiter.slot("turn|" + key, 1):
            wait = int(await self.wait_script(args=[prefix, key]))
            if wait > 0:
                self.local.turn_waits += 1
                await anyio.sleep(wait / 1000)
            try:
                yield
            finally:
                factor = random.uniform(0.5, 1.5) if self.local.limits.random_wait else 1.0
                with anyio.CancelScope(shield=True):
                    await self.end_script(args=[prefix, key, int(delay * factor * 1000)])


def _summary(page: PageResult) -> str:
    document = page.document
    return json.dumps({
        "url": page.url, "final_url": document.final_url, "ok": document.ok,
        "status": document.status, "error": None if document.error is None else str(document.error),
        "path": None if page.path is None else str(page.path),
        "resources": [{"url": r.url, "ok": r.ok, "size": r.size} for r in page.resources],
        "elsewhere": list(page.elsewhere),
    }, ensure_ascii=False)


def _manifest(page: PageResult) -> str:
    if page.manifest is None:
        return ""
    try:
        if page.manifest.stat().st_size > MANIFEST_MAX:
            return ""
        return page.manifest.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


class RedisFrontier:
    """A :class:`~loader._frontier.Frontier` shared by processes through Redis.

    ``RedisFrontier("redis://127.0.0.1:6379/0?crawl=site")``; ``host_limiter`` is its
    :class:`RedisHostLimiter` for ``Limits.host_limiter`` (the CLI sets both), and
    ``politeness(local)`` wraps a loader's politeness with shared turns.  The
    counters are those Redis answered last.
    """

    poll: float | None = POLL

    def __init__(self, url: str, *, worker: str | None = None) -> None:
        self.url = FrontierURL.parse(url)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.client = _client(self.url)
        p = self.url.prefix
        self.keys = {name: p + name for name in (
            "queue", "leases", "seen", "done", "requisites", "claimed", "results")}
        self.host_limiter = RedisHostLimiter(self.client, p, self.url.lease)
        self.queued = 0
        self.seen = 0
        self.resumed = 0
        self.leased = 0
        self.held: set[str] = set()  # this worker's leases (entries), renewed while held
        self._max: int | None = None
        client = self.client
        self._claim = client.register_script(_CLAIM)
        self._done = client.register_script(_DONE)
        self._renew = client.register_script(_RENEW)
        self._requisite = client.register_script(_REQUISITE)

    def politeness(self, local: Politeness) -> RedisPoliteness:
        """``local``'s robots.txt with this frontier's shared page turns."""
        return RedisPoliteness(local, self.host_limiter)

    @property
    def _lease_ms(self) -> int:
        return int(self.url.lease * 1000)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[RedisFrontier]:
        """Connect, read the counters, renew this worker's leases while open."""
        try:
            counts = await self.counts()
        except Exception as exc:
            import redis.exceptions

            if isinstance(exc, redis.exceptions.RedisError):
                raise ConnectionError(f"{self.url.redis}: cannot use the frontier: {exc}") from exc
            raise
        self.resumed = counts["done"]
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._renew_leases)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self.client.aclose()

    async def _renew_leases(self) -> None:
        while True:
            await anyio.sleep(self.url.lease / 3)
            if self.held:
                await self._renew(keys=[self.keys["leases"]], args=[self._lease_ms, *self.held])
            await self.host_limiter.renew()

    async def unseen(self, fps: Sequence[int]) -> list[bool]:
        """Which fingerprints no worker has seen (a read: :meth:`done` decides for good)."""
        if not fps:
            return []
        known = await self.client.smismember(self.keys["seen"], [str(fp) for fp in fps])
        return [not k for k in known]

    def _commit_keys(self) -> list[str]:
        k = self.keys
        return [k["seen"], k["queue"], k["leases"], k["done"], k["results"], k["claimed"]]

    async def add(self, seen: Sequence[int], queued: Sequence[tuple[str, int, int]]) -> None:
        """Mark ``seen`` and queue the entries no worker queued before."""
        await self._commit("", 0, "", "", seen, queued)

    async def _commit(self, entry: str, fp: int, result: str, manifest: str, seen: Sequence[int],
                      queued: Sequence[tuple[str, int, int]]) -> int:
        entries = [f"{qfp} {depth} {url}" for url, depth, qfp in queued]
        counted, self.queued, self.seen = await self._done(
            keys=self._commit_keys(),
            args=[entry, fp, result, manifest, self.worker, len(seen), *seen, *entries])
        return int(counted)

    async def claim(self, max_pages: int | None = None) -> Claim | None:
        """Lease the next queued page not done (leases run out are queued again first)."""
        self._max = max_pages
        entry, self.queued, self.leased = await self._claim(
            keys=[self.keys["queue"], self.keys["leases"], self.keys["done"], self.keys["claimed"]],
            args=[self._lease_ms, -1 if max_pages is None else max_pages])
        if not entry:
            return None
        fp, depth, url = entry.split(" ", 2)
        self.held.add(entry)
        return Claim(url, int(depth), int(fp), entry)

    async def idle(self) -> bool:
        """Nothing to claim (queue empty, or ``max_pages`` handed out) and no lease held anywhere."""
        k = self.keys
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.llen(k["queue"])
            pipe.zcard(k["leases"])
            pipe.get(k["claimed"])
            queued, leased, claimed = await pipe.execute()
        finished = self._max is not None and int(claimed or 0) >= self._max
        return int(leased) == 0 and (int(queued) == 0 or finished)

    async def claim_requisite(self, fp: int) -> bool:
        """``True`` for the first worker to ask; the others find it in ``PageResult.elsewhere``."""
        return bool(await self._requisite(keys=[self.keys["requisites"], self.keys["seen"]], args=[fp]))

    async def done(self, claim: Claim, fp: int, seen: Sequence[int],
                   queued: Sequence[tuple[str, int, int]], page: PageResult) -> None:
        """Queue the page's links, mark it done and put its result on the stream: one script."""
        entry = str(claim.token)
        try:
            with anyio.CancelScope(shield=True):  # half a completion would lose the page's links
                await self._commit(entry, claim.fp, _summary(page), _manifest(page), seen, queued)
        finally:
            self.held.discard(entry)

    async def counts(self) -> dict[str, int]:
        """``queued``, ``under_way``, ``seen``, ``done``, ``requisites`` and ``results`` now."""
        k = self.keys
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.llen(k["queue"])
            pipe.zcard(k["leases"])
            pipe.scard(k["seen"])
            pipe.scard(k["done"])
            pipe.scard(k["requisites"])
            pipe.xlen(k["results"])
            values = await pipe.execute()
        names = ("queued", "under_way", "seen", "done", "requisites", "results")
        counts = dict(zip(names, (int(v) for v in values), strict=True))
        self.queued, self.seen = counts["queued"], counts["seen"]
        return counts

    async def results(self, after: str = "-", count: int = 1000) -> list[tuple[str, dict[str, str]]]:
        """Entries of the results stream after id ``after`` (``"-"``: from the start)."""
        start = after if after == "-" else "(" + after
        entries = await self.client.xrange(self.keys["results"], min=start, count=count)
        return [(str(i), {str(n): str(v) for n, v in (fields or {}).items()}) for i, fields in entries or ()]

    async def reset(self) -> int:
        """Delete every key of this crawl; how many were deleted."""
        deleted = 0
        async for key in self.client.scan_iter(match=self.url.prefix + "*", count=1000):
            deleted += int(await self.client.delete(key))
        return deleted


# -- loader crawl-status ---------------------------------------------------------------


def run_status_command(args: argparse.Namespace) -> int:
    """``loader crawl-status`` (its parser: :mod:`loader._crawl_status`); the exit code."""
    out = getattr(args, "_stdout", sys.stdout)
    err = getattr(args, "_stderr", sys.stderr)
    try:
        frontier = RedisFrontier(args.frontier)
    except (ValueError, RuntimeError) as exc:
        err.write(f"loader crawl-status: {exc}\n")
        return 2

    async def run() -> int:
        try:
            if args.reset:
                out.write(f"{await frontier.reset()} keys deleted\n")
            elif args.collect:
                after = "-"
                while entries := await frontier.results(after):
                    for after, fields in entries:
                        record: dict[str, Any] = {"id": after, "worker": fields.get("worker")}
                        record.update(json.loads(fields.get("page") or "{}"))
                        manifest = fields.get("manifest")
                        record["manifest"] = json.loads(manifest) if manifest else None
                        out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                counts = await frontier.counts()
                if args.json:
                    out.write(json.dumps({"crawl": frontier.url.crawl, **counts}) + "\n")
                else:
                    out.write(f"crawl {frontier.url.crawl}: " + ", ".join(
                        f"{value} {name.replace('_', ' ')}" for name, value in counts.items()) + "\n")
            return 0
        finally:
            with contextlib.suppress(Exception):
                await frontier.client.aclose()

    try:
        return anyio.run(run)
    except Exception as exc:
        import redis.exceptions

        if isinstance(exc, redis.exceptions.RedisError | OSError):
            err.write(f"loader crawl-status: {frontier.url.redis}: {exc}\n")
            return 3
        raise
