"""A crawl shared by worker processes through a real redis-server (issue 19).

The workers are ``loader fetch -r --frontier redis://…`` subprocesses against a
loopback site answering after 50 ms; the site's counters say what was requested.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import redis
from support.redis_server import RedisServer, redis_server, serve_redis  # noqa: F401 - a fixture
from support.site import SiteServer, serve_site

from loader import Limits, Loader
from loader._frontier_redis import FrontierURL, RedisFrontier, RedisHostLimiter
from loader.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
PER_HOST = 3


@pytest.fixture
def site_server() -> Iterator[SiteServer]:
    with serve_site() as server:
        yield server


def worker(frontier: str, start: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "loader", "fetch", "-r", "-l", "inf", "-q", "--per-host", str(PER_HOST),
            "--frontier", frontier, "-o", str(out), *extra, start]
    return subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return err


def expected_paths(n: int, images: int = 2, shared: int = 3) -> set[str]:
    pages = {f"/p/{i}.html" for i in range(n)}
    return pages | {f"/img/{i}-{k}.png" for i in range(n) for k in range(images)} | {
        f"/img/shared-{i}.png" for i in range(min(n, shared))}


def status(frontier: str, *options: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["crawl-status", "--frontier", frontier, *options]) == 0
    return capsys.readouterr().out


def test_three_workers_fetch_every_page_and_requisite_once(
        redis_server: RedisServer, site_server: SiteServer,  # noqa: F811
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n = 60
    site_server.generate(n)
    site_server.delay = 0.05
    frontier = redis_server.url("three")
    start = site_server.url("/p/0.html")
    procs = [worker(frontier, start, tmp_path / f"w{i}") for i in range(3)]
    for proc in procs:
        finish(proc)
    counts = dict(site_server.counts)
    # Each worker reads robots.txt at most once (not shared); one that starts when its
    # start URL is already queued, and claims nothing before the end, never needs it.
    assert 1 <= counts.pop("/robots.txt") <= 3
    assert set(counts) == expected_paths(n)
    assert {path: c for path, c in counts.items() if c != 1} == {}
    # The per-host limit held across the three processes, not per process.
    assert site_server.most_in_flight <= PER_HOST
    assert site_server.most_in_flight >= 2  # the limit was reached for, the test can fail

    summary = json.loads(status(frontier, "--json", capsys=capsys))
    assert summary == {"crawl": "three", "queued": 0, "under_way": 0, "done": n, "results": n,
                       "seen": summary["seen"], "requisites": 2 * n + 3}
    records = [json.loads(line) for line in status(frontier, "--collect", capsys=capsys).splitlines()]
    assert sorted(r["url"] for r in records) == sorted(site_server.url(f"/p/{i}.html") for i in range(n))
    assert len({r["worker"] for r in records}) >= 2  # the crawl was shared
    assert all(r["manifest"]["page"]["url"] == r["url"] for r in records)
    # Each requisite is saved by the worker that fetched it; the others list it as elsewhere.
    fetched = {res["url"] for r in records for res in r["resources"]}
    elsewhere = {url for r in records for url in r["elsewhere"]}
    assert {u.split(str(site_server.port), 1)[1] for u in fetched} == expected_paths(n) - {
        f"/p/{i}.html" for i in range(n)}
    assert elsewhere <= fetched
    saved = {p.name for w in range(3) for p in (tmp_path / f"w{w}").rglob("*.png")}
    assert len(saved) == 2 * n + 3
    assert "0 keys" not in status(frontier, "--reset", capsys=capsys)
    assert json.loads(status(frontier, "--json", capsys=capsys))["seen"] == 0


def _done(client: redis.Redis, crawl: str) -> set[str]:
    return {m.decode() for m in client.smembers(f"loader:crawl:{crawl}:done")}  # type: ignore[union-attr]


def test_a_killed_workers_pages_are_completed_by_the_others(
        redis_server: RedisServer, site_server: SiteServer, tmp_path: Path) -> None:  # noqa: F811
    n = 40
    site_server.generate(n)
    site_server.delay = 0.05
    frontier = redis_server.url("kill", lease=1)
    start = site_server.url("/p/0.html")
    client = redis.Redis(port=redis_server.port)
    first = worker(frontier, start, tmp_path / "first")
    try:
        deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
        while (len(_done(client, "kill")) < 6 or not client.zcard("loader:crawl:kill:leases")) \
                and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.communicate()
    assert first.returncode == -signal.SIGKILL
    done_before = _done(client, "kill")
    leased = [m.decode().split(" ", 2)[2] for m in client.zrange("loader:crawl:kill:leases", 0, -1)]
    assert leased and len(done_before) < n
    time.sleep(0.2)  # let the server count requests already received
    before = dict(site_server.counts)

    others = [worker(frontier, start, tmp_path / f"w{i}") for i in range(2)]
    for proc in others:
        finish(proc)
    assert len(_done(client, "kill")) == n
    assert set(site_server.counts) - {"/robots.txt"} == expected_paths(n)
    # The pages the killed worker had claimed were fetched again, by the others …
    for url in leased:
        assert site_server.counts[url.split(str(site_server.port), 1)[1]] >= 1
    # … and nothing it had completed was: neither those pages nor their own images.
    records = _results(client, "kill")
    assert len(records) == n  # one result a page, whoever finished it
    completed = [r for r in records if r["fp"] in done_before]
    assert len(completed) == len(done_before)
    for record in completed:
        i = record["url"].rsplit("/", 1)[1].split(".")[0]
        for path in (f"/p/{i}.html", f"/img/{i}-0.png", f"/img/{i}-1.png"):
            assert site_server.counts[path] == before[path] == 1, path
    assert site_server.most_in_flight <= PER_HOST
    client.close()


def _results(client: redis.Redis, crawl: str) -> list[dict[str, str]]:
    from loader._frontier import fingerprint
    from loader._urls import canonical_url

    out = []
    for _, fields in client.xrange(f"loader:crawl:{crawl}:results"):  # type: ignore[union-attr]
        page = json.loads(fields[b"page"])
        page["worker"] = fields[b"worker"].decode()
        page["fp"] = str(fingerprint(canonical_url(page["url"])))
        out.append(page)
    return out


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis.asyncio: asyncio only
@pytest.mark.anyio
async def test_host_limiter_is_fair_shared_and_survives_a_dead_holder(redis_server: RedisServer) -> None:  # noqa: F811
    import redis.asyncio

    clients = [redis.asyncio.Redis(port=redis_server.port, decode_responses=True) for _ in range(2)]
    limiters = [RedisHostLimiter(c, "loader:crawl:limiter:", lease=1.0) for c in clients]
    inside = most = 0
    entered: list[int] = []

    async def request(i: int) -> None:
        nonlocal inside, most
        async with limiters[i % 2].slot("http://h:80", 2):
            entered.append(i)
            inside += 1
            most = max(most, inside)
            await anyio.sleep(0.02)
            inside -= 1

    async def arrived() -> int:  # tickets the limiter has numbered (each at its arrival)
        return int(await clients[0].get("loader:crawl:limiter:tickets") or 0)

    base = await arrived()
    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(request, i)
            # Arrival order 0, 1, 2 …: the next starts once this one has its place in
            # the queue, not after a fixed sleep a loaded machine may not honour.
            with anyio.fail_after(30):  # a guard against a hang, not a measurement
                while await arrived() < base + i + 1:
                    await anyio.sleep(0.001)
    assert most == 2
    # First come, first served across both "processes": slots are granted in arrival
    # order; two granted at once (the limit) may wake in either order.
    assert sorted(entered) == list(range(12))
    assert all(abs(position - i) < 2 for position, i in enumerate(entered)), entered

    # A holder that dies keeps its slot only until its lease runs out.
    limiter = limiters[0]
    ticket_args = [limiter.prefix, "http://dead:80", "dead-ticket", 1, 300]
    assert await limiter.acquire_script(args=ticket_args) == 1  # taken and never released
    with anyio.fail_after(30):  # a guard against a hang, not a measurement
        async with limiter.slot("http://dead:80", 1):
            pass
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_library_crawl_on_a_shared_frontier_does_nothing_twice(
        redis_server: RedisServer, site_server: SiteServer) -> None:  # noqa: F811
    site_server.generate(12)
    start = site_server.url("/p/0.html")
    url = redis_server.url("library")
    frontier = RedisFrontier(url)
    async with Loader(limits=Limits(per_host=2, host_limiter=frontier.host_limiter)) as loader:
        async with loader.crawl(start, level=None, frontier=frontier, max_pages=5) as crawl:
            first = [p.url async for p in crawl]
    assert len(first) == 5
    again = RedisFrontier(url)
    async with Loader(limits=Limits(per_host=2, host_limiter=again.host_limiter)) as loader:
        async with loader.crawl(start, level=None, frontier=again) as crawl:
            second = [p.url async for p in crawl]
        assert crawl.resumed == 5
    assert set(first).isdisjoint(second)
    assert len(first) + len(second) == 12
    assert all(site_server.counts[f"/p/{i}.html"] == 1 for i in range(12))


def test_bad_frontier_urls_are_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert FrontierURL.parse("redis://h:1/2?crawl=a&lease=5&db=x") == FrontierURL("redis://h:1/2?db=x", "a", 5.0)
    for bad, why in (("http://h/", "redis://HOST:PORT/DB"), ("redis://h/?lease=0", "lease must be"),
                     ("redis://h/?crawl=a b", "crawl name")):
        with pytest.raises(ValueError, match=why):
            FrontierURL.parse(bad)
        assert main(["fetch", "-r", "--frontier", bad, "-o", str(tmp_path), "http://127.0.0.1:1/"]) == 2
        assert why in capsys.readouterr().err
    assert main(["fetch", "-r", "--frontier", "redis://h/", "--state", "x", "http://127.0.0.1:1/"]) == 2
    assert "not allowed with" in capsys.readouterr().err
    assert main(["crawl-status", "--frontier", "redis://127.0.0.1:1/0"]) == 3
    assert "redis://127.0.0.1:1/0" in capsys.readouterr().err


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_host_slot_awaited_longer_than_the_clients_read_timeout(redis_server: RedisServer) -> None:  # noqa: F811
    # redis-py gives up reading a reply after socket_timeout (5 s by default): a waiter
    # blocking in BLPOP for longer (a third of the 30 s lease) failed with its TimeoutError.
    frontier = RedisFrontier(redis_server.url("slow", socket_timeout=0.3))
    limiter = frontier.host_limiter
    assert limiter.wait <= 0.15
    order: list[str] = []

    async def holder() -> None:
        async with limiter.slot("http://slow:80", 1):
            order.append("held")
            await anyio.sleep(1.0)  # over three read timeouts
        order.append("released")

    async def waiter() -> None:
        await anyio.sleep(0.1)
        async with limiter.slot("http://slow:80", 1):
            order.append("waited")

    with anyio.fail_after(30):  # a guard against a hang, not a measurement
        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            tg.start_soon(waiter)
    assert order == ["held", "released", "waited"]
    await frontier.client.aclose()


def test_a_worker_whose_redis_goes_away_stops_with_a_clear_error(
        site_server: SiteServer, tmp_path: Path) -> None:
    site_server.generate(60)
    site_server.delay = 0.05
    with serve_redis(tmp_path) as server:
        frontier = server.url("gone", socket_timeout=1)
        proc = worker(frontier, site_server.url("/p/0.html"), tmp_path / "out")
        client = redis.Redis(port=server.port)
        deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
        while len(_done(client, "gone")) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        client.close()
    # The server is stopped under the worker, mid-crawl.
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    assert f"loader: {frontier}: the shared frontier failed: " in err


def test_a_host_slot_wait_fits_the_default_read_timeout() -> None:
    limiter = RedisFrontier("redis://127.0.0.1:1/0?crawl=t").host_limiter
    assert 0 < limiter.wait < 10.0 / 2 + 0.001
    assert limiter.wait <= limiter.lease / 3
