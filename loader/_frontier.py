"""Where a crawl keeps what it has seen and what it still has to fetch (``Frontier``).

A :class:`~loader._crawl.Crawl` asks its frontier five things::

    unseen(fps)          which of these URL fingerprints nobody has queued or fetched yet
    add(seen, queued)    record fingerprints as seen and queue (url, depth, fp) entries
    claim()              the next page to fetch (a Claim), or None when none is queued now
    claim_requisite(fp)  whether this process fetches a requisite (False: another did)
    done(claim, ...)     the page is done: its links queued, its fingerprint marked done,
                         all in one commit (a crawl killed at any moment loses nothing)

:class:`LocalFrontier` (this module) is one process's frontier: a breadth-first queue
and a compact seen-set, mirrored in an optional SQLite state file for resuming.
``loader._frontier_redis.RedisFrontier`` shares one frontier between processes.

Memory (issue 18: flat for a 100,000-page crawl): the seen-set is :class:`SeenSet`,
8-byte fingerprints in a sorted ``array('q')`` (bisect lookups) plus a small ``set``
merged into it when it grows past an eighth of the table, about 9 bytes per URL
instead of about 90 for a ``set`` of ints; queued URLs are kept encoded as one
``bytes`` each (about 40 bytes plus the URL, instead of about 150 for a tuple of a
str and two ints), and at most ``WINDOW`` of them are in memory at once: the rest
wait in the state file's table, or without one in a :class:`SpillFile` (an anonymous
temporary file), and are read back a window at a time, oldest first.  So the queue,
however long a crawl's frontier grows, holds a few hundred KiB.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import os
import sqlite3
import tempfile
from array import array
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from ._page import PageResult

__all__ = ["WINDOW", "Claim", "Frontier", "LocalFrontier", "SeenSet", "SpillFile", "fingerprint"]

#: Queued URLs a :class:`LocalFrontier` keeps in memory at most (the rest wait on disk).
WINDOW = 4096


def fingerprint(key: str) -> int:
    """The 8-byte blake2b fingerprint of a URL's key, as a signed 64-bit int (SQLite's)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True, slots=True)
class Claim:
    """A page handed to this process: fetch ``url`` (at ``depth`` links from a start URL).

    ``fp`` is the URL's fingerprint; ``token`` the frontier's handle on the claim (a
    state row, a Redis lease) given back to :meth:`Frontier.done`.
    """

    url: str
    depth: int
    fp: int
    token: object = None


class Frontier(Protocol):
    """A crawl's seen-set and queue (see the module docstring).

    ``queued``, ``seen`` and ``resumed`` are counters a display may read at any time
    (a shared frontier's are as of its last answer).  ``poll`` is how long a crawl
    with nothing to claim and no page of its own under way waits before it asks
    again (``None``: it never waits, the crawl is over: only its own pages could add
    more).
    """

    poll: float | None

    @property
    def queued(self) -> int:
        """URLs waiting to be claimed."""
        ...

    @property
    def seen(self) -> int:
        """Distinct URLs queued or fetched."""
        ...

    @property
    def resumed(self) -> int:
        """Pages done before this crawl started (earlier runs, other workers)."""
        ...

    def open(self) -> AbstractAsyncContextManager[Frontier]:
        """Load or connect; closed when the context ends."""
        ...

    async def unseen(self, fps: Sequence[int]) -> list[bool]:
        """For each fingerprint, whether it is new (a local frontier marks it seen)."""
        ...

    async def add(self, seen: Sequence[int], queued: Sequence[tuple[str, int, int]]) -> None:
        """Mark ``seen`` fingerprints and queue ``(url, depth, fp)`` entries not queued before
        (their fingerprints are not in ``seen``)."""
        ...

    async def claim(self, max_pages: int | None = None) -> Claim | None:
        """The next page to fetch, or ``None``: none queued (or ``max_pages`` claimed in all)."""
        ...

    async def idle(self) -> bool:
        """Whether nothing is queued and no process has a page under way."""
        ...

    async def claim_requisite(self, fp: int) -> bool:
        """Whether this process should fetch the requisite with that fingerprint."""
        ...

    async def done(self, claim: Claim, fp: int, seen: Sequence[int],
                   queued: Sequence[tuple[str, int, int]], page: PageResult) -> None:
        """``claim``'s page (fingerprint ``fp``) is done: ``seen`` marked, ``queued`` added
        (``(url, depth, fp)``; their fingerprints are not in ``seen``), in one commit."""
        ...

    async def counts(self) -> dict[str, int]:
        """``queued``, ``under_way``, ``seen`` and ``done``, as the frontier knows them now."""
        ...


class SeenSet:
    """A set of signed 64-bit fingerprints in about 9 bytes each.

    A sorted ``array('q')`` searched by bisection, and a ``set`` of recent additions
    merged into it once it holds more than an eighth of the table (at least
    ``MERGE_AT``): merging costs a pass over the table, so each fingerprint is copied
    a bounded number of times on average, and the ``set`` stays small.
    """

    MERGE_AT = 4096

    __slots__ = ("recent", "table")

    def __init__(self, fps: Iterable[int] = ()) -> None:
        self.table = array("q", sorted(set(fps)))
        self.recent: set[int] = set()

    def __len__(self) -> int:
        return len(self.table) + len(self.recent)

    def __contains__(self, fp: object) -> bool:
        if fp in self.recent:
            return True
        table = self.table
        i = bisect.bisect_left(table, fp)  # type: ignore[call-overload]
        return i < len(table) and bool(table[i] == fp)

    def __iter__(self) -> Iterator[int]:
        return heapq.merge(self.table, sorted(self.recent))

    def add(self, fp: int) -> bool:
        """Add ``fp``; ``True`` when it was not there."""
        if fp in self:
            return False
        self.recent.add(fp)
        if len(self.recent) > max(self.MERGE_AT, len(self.table) >> 3):
            self.merge()
        return True

    def merge(self) -> None:
        """Move the recent additions into the sorted table."""
        if self.recent:
            self.table = array("q", heapq.merge(self.table, sorted(self.recent)))
            self.recent = set()

    @property
    def nbytes(self) -> int:
        """Roughly the memory held: the table's buffer and the set's slots."""
        return self.table.buffer_info()[1] * self.table.itemsize + 64 * len(self.recent)


class _State:
    """The crawl's SQLite file: the frontier, the seen fingerprints and the pages done.

    Written by one thread at a time (the frontier holds a lock around each call made
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

    def load(self) -> tuple[SeenSet, int, int, int]:
        """The seen-set, the frontier's length and highest row, the pages done."""
        seen = SeenSet(fp for (fp,) in self.db.execute("SELECT fp FROM seen"))
        queued, top = self.db.execute("SELECT count(*), coalesce(max(id), 0) FROM frontier").fetchone()
        (done,) = self.db.execute("SELECT count(*) FROM done").fetchone()
        return seen, int(queued), int(top), int(done)

    def window(self, after: int, size: int) -> list[tuple[str, int, int]]:
        """Up to ``size`` queued rows after row ``after``, in order."""
        return list(self.db.execute(
            "SELECT url, depth, id FROM frontier WHERE id > ? ORDER BY id LIMIT ?", (after, size)))

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


class SpillFile:
    """A first-in, first-out queue of byte strings in an anonymous temporary file.

    The tail of a crawl's queue without a state file: :meth:`push` appends records
    (a 4-byte length, then the bytes) with one ``pwrite``; :meth:`pop` reads up to ``n``
    of the oldest back.  Once every record has been read the file is emptied and its
    space reused.  Nothing is left behind: the file has no name, and is gone when closed
    (or when the process ends, however it ends).
    """

    CHUNK = 1 << 18

    def __init__(self, directory: str | Path | None = None) -> None:
        self.file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed by close())
        self.fd = self.file.fileno()
        self.read_at = 0
        self.write_at = 0
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def push(self, records: Sequence[bytes]) -> None:
        data = b"".join(len(r).to_bytes(4, "big") + r for r in records)
        written = 0
        while written < len(data):
            written += os.pwrite(self.fd, data[written:], self.write_at + written)
        self.write_at += len(data)
        self.count += len(records)

    def pop(self, n: int) -> list[bytes]:
        """Up to ``n`` of the oldest records."""
        out: list[bytes] = []
        while len(out) < n and self.count:
            chunk = os.pread(self.fd, self.CHUNK, self.read_at)
            at = 0
            while len(out) < n and self.count and at + 4 <= len(chunk):
                size = int.from_bytes(chunk[at:at + 4], "big")
                if at + 4 + size > len(chunk):
                    if at == 0:  # one record longer than a chunk: read it whole
                        record = os.pread(self.fd, size, self.read_at + 4)
                        out.append(record)
                        at = 4 + size
                        self.count -= 1
                    break
                out.append(chunk[at + 4:at + 4 + size])
                at += 4 + size
                self.count -= 1
            self.read_at += at
        if not self.count:  # all read: start the file over
            os.ftruncate(self.fd, 0)
            self.read_at = self.write_at = 0
        return out

    def close(self) -> None:
        self.file.close()


def _encode(url: str, depth: int, row: int) -> bytes:
    return f"{row} {depth} {url}".encode("utf-8", "surrogateescape")


def _decode(entry: bytes) -> tuple[str, int, int]:
    row, depth, url = entry.decode("utf-8", "surrogateescape").split(" ", 2)
    return url, int(depth), int(row)


class LocalFrontier:
    """One process's frontier: breadth-first, compact, optionally kept in a SQLite file.

    ``state``: the SQLite file (``--state``); a frontier opened on an existing file
    resumes it (``resumed``: the pages its earlier runs completed).  The URL
    fingerprints come from the crawl (:func:`fingerprint` of the URL's key).
    """

    poll: float | None = None

    def __init__(self, state: str | Path | None = None) -> None:
        self.state_path = None if state is None else Path(state)
        self.seen_set = SeenSet()
        self.entries: deque[bytes] = deque()  # encoded (url, depth, row), oldest first
        self.queued = 0  # in memory and in the state file's table beyond the window
        self.resumed = 0
        self.done_count = 0
        self.under_way = 0
        self._next_row = 1
        self._loaded = 0  # highest row read into `entries` (rows above it wait in the file)
        self._spilled = False  # queued rows in the file that are not in `entries`
        self._store: _State | None = None
        self._spill: SpillFile | None = None  # without a state file: the queue beyond WINDOW
        self._lock: anyio.Lock | None = None

    @property
    def seen(self) -> int:
        """Distinct URLs queued or fetched so far."""
        return len(self.seen_set)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[LocalFrontier]:
        """Open (or resume) the state file; closed at the end."""
        self._lock = anyio.Lock()
        if self.state_path is not None:
            self._store = await anyio.to_thread.run_sync(_State, self.state_path)
            seen, queued, top, done = await anyio.to_thread.run_sync(self._store.load)
            self.seen_set, self.queued, self.resumed = seen, queued, done
            self.done_count = done
            self._next_row = top + 1
            self._spilled = queued > 0
        try:
            yield self
        finally:
            if self._spill is not None:
                self._spill.close()
                self._spill = None
            if self._store is not None:
                with anyio.CancelScope(shield=True):
                    async with self._lock:
                        await anyio.to_thread.run_sync(self._store.close)
                self._store = None

    async def unseen(self, fps: Sequence[int]) -> list[bool]:
        """Which fingerprints are new; they are marked seen at once (one process asks)."""
        return [self.seen_set.add(fp) for fp in fps]

    def _queue(self, queued: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
        """Rows for the entries; kept in memory unless the window is full or rows wait on disk."""
        rows = []
        overflow: list[bytes] = []
        for url, depth, _fp in queued:
            row = self._next_row
            self._next_row += 1
            rows.append((url, depth, row))
            if self._store is not None and (self._spilled or len(self.entries) >= WINDOW):
                self._spilled = True  # read back from the file when the window empties
            elif self._store is None and (self._spill or len(self.entries) >= WINDOW):
                overflow.append(_encode(url, depth, row))  # behind the window, in order
            else:
                self.entries.append(_encode(url, depth, row))
                self._loaded = row
        if overflow:
            if self._spill is None:
                self._spill = SpillFile()
            self._spill.push(overflow)
        self.queued += len(rows)
        return rows

    async def add(self, seen: Sequence[int], queued: Sequence[tuple[str, int, int]]) -> None:
        """Record ``seen`` (already marked by :meth:`unseen`) and queue ``queued``."""
        marked = [*seen, *(q[2] for q in queued)]
        for fp in marked:
            self.seen_set.add(fp)
        await self._save(marked, self._queue(queued), None, None)

    async def _save(self, seen: Sequence[int], queued: Sequence[tuple[str, int, int]],
                    done: int | None, row: int | None) -> None:
        if self._store is None:
            return
        store = self._store
        assert self._lock is not None
        async with self._lock:
            await anyio.to_thread.run_sync(store.commit, seen, queued, done, row)

    async def claim(self, max_pages: int | None = None) -> Claim | None:
        """The oldest queued page (``None``: none, or ``max_pages`` handed out in all runs)."""
        if max_pages is not None and self.done_count + self.under_way >= max_pages:
            return None
        if not self.entries and self._spilled and self._store is not None:
            assert self._lock is not None
            async with self._lock:
                rows = await anyio.to_thread.run_sync(self._store.window, self._loaded, WINDOW)
            if not rows:
                self._spilled = False
            for url, depth, row in rows:
                self.entries.append(_encode(url, depth, row))
                self._loaded = row
            if len(rows) < WINDOW:
                self._spilled = False
        if not self.entries and self._spill:
            self.entries.extend(self._spill.pop(WINDOW))  # ~WINDOW x 100 bytes: one read
        if not self.entries:
            return None
        url, depth, row = _decode(self.entries.popleft())
        self.queued -= 1
        self.under_way += 1
        return Claim(url, depth, 0, row)

    async def idle(self) -> bool:
        """Nothing queued and no page under way."""
        return not self.queued and not self.under_way

    async def claim_requisite(self, fp: int) -> bool:
        """Always ``True``: one process, whose loader fetches each URL once."""
        return True

    async def done(self, claim: Claim, fp: int, seen: Sequence[int],
                   queued: Sequence[tuple[str, int, int]], page: PageResult) -> None:
        """Commit the page's outcome: its links queued, its fingerprint done, its row gone."""
        rows = self._queue(queued)
        marked = [*seen, *(q[2] for q in queued)]
        try:
            await self._save(marked, rows, fp, claim.token)  # type: ignore[arg-type]
        finally:
            self.under_way -= 1
            self.done_count += 1

    async def counts(self) -> dict[str, int]:
        return {"queued": self.queued, "under_way": self.under_way, "seen": self.seen,
                "done": self.done_count}
