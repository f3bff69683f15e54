"""Loader.stats: exact counts of requests, bytes, failures, retries, cache hits, sharing, hosts."""

from __future__ import annotations

import anyio
import pytest

import loader._models as models
from loader import Loader, Retries, Stats
from loader._scheduler import host_key

pytestmark = pytest.mark.anyio


async def test_requests_bytes_and_cache_hits(http_server) -> None:
    url = http_server.url("/bytes/5000")
    async with Loader() as loader:
        assert loader.stats.requests == 0
        await loader.fetch(url)
        await loader.fetch(url)  # from memory
        stats = loader.stats
    assert (stats.requests, stats.bytes, stats.cache_hits, stats.failures) == (1, 5000, 1, 0)
    host = stats.hosts[host_key(url)]
    assert (host.requests, host.bytes, host.failures) == (1, 5000, 0)


async def test_failures_per_host(http_server) -> None:
    async with Loader(retries=Retries(attempts=1)) as loader:
        await loader.fetch(http_server.url("/status/404"))
        await loader.fetch(http_server.url("/status/500"))
        await loader.fetch(http_server.url("/bytes/10"))
        stats = loader.stats
    assert (stats.requests, stats.failures, stats.retries) == (3, 2, 0)
    assert stats.hosts[host_key(http_server.url("/"))].failures == 2


async def test_retries_count_attempts(http_server, anyio_backend: str) -> None:
    # The flaky counts are per server (one for the session): a key of its own per backend.
    url = http_server.url(f"/flaky/stats-retries-{anyio_backend}/2?status=503&retry_after=0")
    async with Loader(retries=Retries(attempts=3, backoff=0.01)) as loader:
        result = await loader.fetch(url)
        stats = loader.stats
    assert result.ok and result.attempts == 3
    assert (stats.requests, stats.retries, stats.failures) == (3, 2, 0)


async def test_shared_in_flight(http_server) -> None:
    url = http_server.url("/slow?delay=0.3")
    async with Loader() as loader:
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(loader.fetch, url)
        stats = loader.stats
    assert (stats.requests, stats.shared) == (1, 3)


def test_hosts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "STATS_HOSTS", 2)
    stats = Stats()
    for n in range(5):
        stats.host(f"http://h{n}:").requests += 1
    assert sorted(stats.hosts) == ["*", "http://h0:", "http://h1:"]
    assert stats.hosts["*"].requests == 3


def test_as_dict() -> None:
    stats = Stats(requests=2, bytes=10)
    stats.host("http://a:").requests = 2
    data = stats.as_dict()
    assert data["requests"] == 2 and data["bytes"] == 10 and data["robots_denied"] == 0
    assert data["hosts"] == {"http://a:": {"requests": 2, "bytes": 0, "failures": 0}}
