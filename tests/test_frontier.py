"""LocalFrontier and its compact seen-set (issue 18: flat memory for long crawls)."""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import loader._frontier as frontier_module
from loader._frontier import LocalFrontier, SeenSet, fingerprint
from loader._page import PageResult

pytestmark = pytest.mark.anyio


def test_seen_set_agrees_with_a_set_across_merges() -> None:
    rng = random.Random(18)
    seen, reference = SeenSet(), set()
    values = [rng.randrange(-(2**63), 2**63) for _ in range(30_000)]
    values += values[:5000]  # repeats, some in the table, some still in the recent set
    for value in values:
        assert seen.add(value) == (value not in reference)
        reference.add(value)
    assert len(seen) == len(reference) == 30_000
    assert len(seen.table) > 20_000  # merged into the table, not all in the set
    assert len(seen.recent) <= max(SeenSet.MERGE_AT, len(seen.table) >> 3)
    assert list(seen) == sorted(reference)
    probes = [rng.randrange(-(2**63), 2**63) for _ in range(2000)]
    assert [p in seen for p in probes] == [p in reference for p in probes]
    assert all(v in seen for v in values[::97])
    assert 2**63 - 1 not in seen and -(2**63) not in seen


def test_seen_set_is_about_nine_bytes_a_url() -> None:
    seen = SeenSet(range(0, 300_000, 3))
    for i in range(1, 60_000, 3):
        seen.add(i)
    seen.merge()
    assert len(seen) == 120_000
    assert seen.nbytes <= 10 * len(seen)  # a set of ints costs ~90 bytes each


def _page(url: str) -> PageResult:
    from loader._models import Result

    return PageResult(url=url, document=Result(request_id=1, url=url, final_url=url, ok=True))


async def _drain(frontier: LocalFrontier, n: int | None = None) -> list[tuple[str, int]]:
    claimed = []
    while n is None or len(claimed) < n:
        claim = await frontier.claim()
        if claim is None:
            break
        await frontier.done(claim, fingerprint(claim.url), [], [], _page(claim.url))
        claimed.append((claim.url, claim.depth))
    return claimed


async def test_frontier_is_breadth_first_and_spills_beyond_its_window(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frontier_module, "WINDOW", 4)
    state = tmp_path / "state.sqlite"
    urls = [f"http://h/{i}" for i in range(23)]
    frontier = LocalFrontier(state)
    async with frontier.open():
        fps = [fingerprint(u) for u in urls]
        assert await frontier.unseen(fps[:10]) == [True] * 10
        await frontier.add([], [(u, 1, fp) for u, fp in zip(urls[:10], fps[:10], strict=True)])
        assert len(frontier.entries) == 4  # the rest wait in the file
        first = await _drain(frontier, 3)
        claim = await frontier.claim()
        assert claim is not None
        # The page's links go to the end of the queue, in the same commit as its completion.
        assert await frontier.unseen(fps[10:] + fps[:2]) == [True] * 13 + [False, False]
        await frontier.done(claim, fingerprint(claim.url), [],
                            [(u, 2, fp) for u, fp in zip(urls[10:], fps[10:], strict=True)], _page(claim.url))
        assert frontier.queued == 6 + 13
        rest = await _drain(frontier, 5)
    assert [u for u, _ in first + [(claim.url, 1)] + rest] == urls[:9]
    assert {d for _, d in first + rest} == {1}

    # Resumed: the seen-set, the order and the depths come back from the file.
    again = LocalFrontier(state)
    async with again.open():
        assert again.resumed == 9 and again.queued == 14 and again.seen == 23
        assert await again.unseen(fps) == [False] * 23
        remaining = await _drain(again)
    assert remaining == [(urls[9], 1)] + [(u, 2) for u in urls[10:]]
    with closing(sqlite3.connect(state)) as db:
        assert db.execute("SELECT count(*) FROM frontier").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM done").fetchone() == (23,)
        assert db.execute("SELECT count(*) FROM seen").fetchone() == (23,)


async def test_without_a_state_file_the_queue_beyond_the_window_waits_on_disk(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stateless crawl's queue holds at most WINDOW entries in memory, in FIFO order."""
    monkeypatch.setattr(frontier_module, "WINDOW", 4)
    urls = [f"http://h/{i}" + "x" * (i % 7) for i in range(40)]
    entries = [(u, 1, fingerprint(u)) for u in urls]
    frontier = LocalFrontier()
    async with frontier.open():
        await frontier.add([], entries[:10])
        assert len(frontier.entries) == 4 and frontier.queued == 10
        spill = frontier._spill
        assert spill is not None and len(spill) == 6
        got = [u for u, _ in await _drain(frontier, 5)]
        claim = await frontier.claim()  # the 6th; its links go behind everything queued
        assert claim is not None
        await frontier.done(claim, claim.fp, [], [(u, 2, fp) for u, _, fp in entries[10:]], _page(claim.url))
        assert len(frontier.entries) <= 4
        rest = await _drain(frontier)
        assert not spill and spill.write_at == 0  # drained: the file was emptied for reuse
        # Queued again after draining: memory first, then the file, still in order.
        await frontier.add([], [(u + "/again", 3, 0) for u in urls[:9]])
        again = await _drain(frontier)
    assert got + [claim.url] + [u for u, _ in rest] == urls
    assert [d for _, d in rest] == [1] * 4 + [2] * 30
    assert [u for u, _ in again] == [u + "/again" for u in urls[:9]]
    assert frontier._spill is None  # closed with the frontier


def test_spill_file_reads_records_longer_than_a_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frontier_module.SpillFile, "CHUNK", 16)
    spill = frontier_module.SpillFile()
    records = [b"a" * n for n in (3, 40, 0, 12, 100, 5)]
    spill.push(records[:4])
    assert spill.pop(2) == records[:2]
    spill.push(records[4:])
    assert spill.pop(10) == records[2:]
    assert spill.pop(1) == [] and len(spill) == 0
    spill.close()


async def test_max_pages_counts_earlier_runs(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    entries = [(f"http://h/{i}", 0, fingerprint(f"http://h/{i}")) for i in range(6)]
    async with LocalFrontier(state).open() as frontier:
        await frontier.add([], entries)
        claims = [await frontier.claim(max_pages=2) for _ in range(3)]
        assert [c is None for c in claims] == [False, False, True]
        for claim in claims[:2]:
            assert claim is not None
            await frontier.done(claim, entries[0][2] if claim.url.endswith("/0") else entries[1][2],
                                [], [], _page(claim.url))
    async with LocalFrontier(state).open() as frontier:
        assert await frontier.claim(max_pages=2) is None
        claim = await frontier.claim(max_pages=3)
        assert claim is not None and claim.url == "http://h/2"
