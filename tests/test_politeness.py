"""Politeness: robots.txt (fetched once per host, honoured), page delays, rate, host back-off.

Servers are real (scripted raw HTTP on 127.0.0.1); timing is asserted only through the
order of events and counters (waits taken, requests seen), never through elapsed time.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from support.raw_server import Handler, HeadRecorder, RawServer

import loader._politeness as politeness_module
from loader import Event, Limits, Loader, Phase, Retries, hookimpl
from loader._politeness import user_agent_token
from loader._scheduler import host_key

pytestmark = pytest.mark.anyio


class Site(HeadRecorder):
    """A keep-alive server answering each path from ``routes`` (status, headers, body); 200 "ok" else."""

    def __init__(
        self,
        raw_server: Callable[[Handler], RawServer],
        routes: dict[str, tuple[int, dict[str, str], bytes]],
    ) -> None:
        self.routes = routes
        super().__init__(raw_server)

    def answer(self, target: bytes, head: bytes) -> bytes:
        status, headers, body = self.routes.get(target.decode(), (200, {}, b"ok"))
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Content-Type: text/plain"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def count(self, path: str) -> int:
        return sum(1 for head in self.heads if head.split(b" ", 2)[1] == path.encode())

    def paths(self) -> list[str]:
        return [head.split(b" ", 2)[1].decode() for head in self.heads]


def robots(text: str) -> dict[str, tuple[int, dict[str, str], bytes]]:
    return {"/robots.txt": (200, {}, text.encode())}


ROBOTS = "User-agent: *\nDisallow: /private/\n"


async def test_robots_fetched_once_per_host_and_honoured(raw_server) -> None:
    site = Site(raw_server, robots(ROBOTS))
    urls = [site.url(f"/private/{i}") for i in range(10)] + [site.url(f"/pub/{i}") for i in range(10)]
    answers: dict[str, bool] = {}
    async with Loader() as loader:

        async def ask(url: str) -> None:
            answers[url] = await loader.politeness.allowed(url)

        async with anyio.create_task_group() as tg:  # twenty first questions at once
            for url in urls:
                tg.start_soon(ask, url)
        assert await loader.politeness.allowed(site.url("/pub/again"))
        stats = loader.stats
    assert site.count("/robots.txt") == 1
    assert site.paths() == ["/robots.txt"]  # robots.txt only: allowed() fetches no page
    assert [answers[u] for u in urls] == [False] * 10 + [True] * 10
    assert stats.robots_denied == 10
    assert stats.requests == 1


async def test_robots_fetch_is_reported_as_robots(raw_server) -> None:
    site = Site(raw_server, robots(ROBOTS))
    seen: list[tuple[str | None, Phase]] = []

    class Watch:
        @hookimpl
        def loader_event(self, event: Event) -> None:
            seen.append((event.kind, event.phase))

    async with Loader(plugins=[Watch()]) as loader:
        assert not await loader.politeness.allowed(site.url("/private/x"))
    assert (("robots", Phase.HANDLE_CREATED)) in seen
    assert (("robots", Phase.REQUEST_COMPLETE)) in seen


async def test_user_agent_token_picks_the_group(raw_server) -> None:
    text = "User-agent: loader\nDisallow: /\n\nUser-agent: *\nAllow: /\n"
    site = Site(raw_server, robots(text))
    async with Loader() as loader:  # the default User-Agent is loader/<version>
        assert not await loader.politeness.allowed(site.url("/a"))
    async with Loader(user_agent="otherbot/2.0 (+https://example.org)") as loader:
        assert await loader.politeness.allowed(site.url("/a"))
    assert user_agent_token("loader/0.1 (+x)") == "loader"
    assert user_agent_token(None) == "loader"


@pytest.mark.parametrize(
    ("status", "allowed"),
    [(404, True), (403, True), (410, True), (429, False), (500, False), (503, False)],
)
async def test_robots_status_meaning(raw_server, status: int, allowed: bool) -> None:
    site = Site(raw_server, {"/robots.txt": (status, {}, b"User-agent: *\nAllow: /\n")})
    async with Loader(retries=Retries(attempts=1)) as loader:
        assert await loader.politeness.allowed(site.url("/page")) is allowed
        assert await loader.politeness.allowed(site.url("/other")) is allowed  # cached either way
    assert site.count("/robots.txt") == 1


async def test_robots_unreachable_disallows(refused_port: int) -> None:
    async with Loader(retries=Retries(attempts=1)) as loader:
        assert not await loader.politeness.allowed(f"http://127.0.0.1:{refused_port}/page")
        assert loader.stats.robots_denied == 1


async def test_no_robots_fetches_nothing(raw_server) -> None:
    site = Site(raw_server, robots("User-agent: *\nDisallow: /\n"))
    async with Loader(robots=False) as loader:
        assert await loader.politeness.allowed(site.url("/page"))
    assert site.heads == []


async def test_other_schemes_have_no_robots() -> None:
    async with Loader() as loader:
        assert await loader.politeness.allowed("gopher://127.0.0.1:1/1/")
        assert await loader.politeness.allowed("ftp://127.0.0.1:1/pub/")
        assert loader.stats.requests == 0


async def test_robots_cache_is_bounded(raw_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(politeness_module, "ROBOTS_HOSTS", 2)
    sites = [Site(raw_server, robots(ROBOTS)) for _ in range(3)]
    async with Loader() as loader:
        for site in sites:
            await loader.politeness.allowed(site.url("/a"))
        assert len(loader.politeness.cache) == 2
        await loader.politeness.allowed(sites[0].url("/b"))  # the first was dropped: asked again
    assert [s.count("/robots.txt") for s in sites] == [2, 1, 1]


async def _two_pages(loader: Loader, site: Site) -> list[tuple[str, Phase]]:
    """Fetch /one and /two at once, each in its host's turn; the events in order."""
    order: list[tuple[str, Phase]] = []

    def record(event: Event) -> None:
        if event.phase in (Phase.HANDLE_CREATED, Phase.REQUEST_COMPLETE):
            order.append((event.url.rsplit("/", 1)[1], event.phase))

    async def page(path: str) -> None:
        url = site.url(path)
        async with loader.politeness.turn(url):
            result = await loader.fetch(url, callback=record)
            assert result.ok

    async with anyio.create_task_group() as tg:
        tg.start_soon(page, "/one")
        tg.start_soon(page, "/two")
    return order


def _one_after_the_other(order: list[tuple[str, Phase]]) -> None:
    first = order[0][0]
    assert order[1] == (first, Phase.REQUEST_COMPLETE)  # the second started after the first ended
    assert order[2][1] is Phase.HANDLE_CREATED and order[2][0] != first


@pytest.mark.parametrize(
    ("routes", "options"),
    [
        (robots("User-agent: *\nCrawl-delay: 0.3\n"), {}),  # robots.txt's Crawl-delay
        ({}, {"robots": False, "limits": Limits(host_delay=0.3)}),  # --wait, robots off
    ],
    ids=["crawl-delay", "wait"],
)
async def test_delay_spaces_a_hosts_pages(raw_server, routes, options) -> None:
    site = Site(raw_server, routes)
    async with Loader(**options) as loader:
        assert await loader.politeness.allowed(site.url("/one"))
        assert loader.politeness.delay(site.url("/x")) == pytest.approx(0.3)
        order = await _two_pages(loader, site)
        assert loader.politeness.turn_waits == 1
    _one_after_the_other(order)


async def test_request_rate_is_a_delay(raw_server) -> None:
    site = Site(raw_server, robots("User-agent: *\nRequest-rate: 2/1s\nCrawl-delay: 0.25\n"))
    async with Loader() as loader:
        await loader.politeness.allowed(site.url("/one"))
        assert loader.politeness.delay(site.url("/one")) == pytest.approx(0.5)  # the larger


async def test_crawl_delay_is_capped(raw_server) -> None:
    site = Site(raw_server, robots("User-agent: *\nCrawl-delay: 86400\n"))
    async with Loader() as loader:
        await loader.politeness.allowed(site.url("/one"))
        assert loader.politeness.delay(site.url("/one")) == loader.politeness.max_crawl_delay


async def test_no_delay_holds_nothing(raw_server) -> None:
    site = Site(raw_server, robots("User-agent: *\nAllow: /\n"))
    async with Loader() as loader:
        await loader.politeness.allowed(site.url("/one"))
        assert loader.politeness.delay(site.url("/one")) == 0
        await _two_pages(loader, site)
        assert loader.politeness.turn_waits == 0
        assert loader.politeness.turns == {}


async def test_random_wait_scales_each_delay(raw_server, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        asked.append((low, high))
        return 0.5

    monkeypatch.setattr(politeness_module.random, "uniform", uniform)
    site = Site(raw_server, {})
    async with Loader(robots=False, limits=Limits(host_delay=0.3, random_wait=True)) as loader:
        await _two_pages(loader, site)
    assert asked == [(0.5, 1.5), (0.5, 1.5)]


# -- host-wide back-off (the scheduler) ------------------------------------------


async def _held(loader: Loader, url: str) -> bool:
    """Whether a fetch of ``url`` is still held back after a moment (then given up)."""
    with anyio.move_on_after(0.5):
        await loader.fetch(url)
        return False
    return True


@pytest.mark.parametrize(
    ("status", "headers"), [(503, {"Retry-After": "30"}), (429, {"Retry-After": "30"}), (429, {})]
)
async def test_429_503_hold_the_whole_host(raw_server, status: int, headers: dict[str, str]) -> None:
    site = Site(raw_server, {"/busy": (status, headers, b"busy")})
    # Without Retry-After: Retries.backoff (30 s here) doubled per strike, under the cap.
    retries = Retries(attempts=1, backoff=30)
    async with Loader(limits=Limits(host_backoff=60), retries=retries) as loader:
        assert (await loader.fetch(site.url("/busy"))).status == status
        assert await _held(loader, site.url("/other"))
        assert loader.stats.host_backoffs == 1
        assert host_key(site.url("/")) in loader.scheduler.held
    assert site.paths() == ["/busy"]  # /other never reached the server


async def test_no_host_backoff_by_default(raw_server) -> None:
    site = Site(raw_server, {"/busy": (503, {"Retry-After": "30"}, b"busy")})
    async with Loader(retries=Retries(attempts=1)) as loader:
        await loader.fetch(site.url("/busy"))
        assert not await _held(loader, site.url("/other"))
        assert loader.stats.host_backoffs == 0
    assert site.paths() == ["/busy", "/other"]


async def test_host_backoff_is_capped_and_ends(raw_server) -> None:
    site = Site(raw_server, {"/busy": (503, {"Retry-After": "3600"}, b"busy")})
    async with Loader(limits=Limits(host_backoff=0.2), retries=Retries(attempts=1)) as loader:
        await loader.fetch(site.url("/busy"))
        with anyio.fail_after(30):  # far under the hour asked for: the cap held
            assert (await loader.fetch(site.url("/other"))).ok
        assert loader.scheduler.held == {}  # a success after the hold forgets the host
    assert site.paths() == ["/busy", "/other"]


async def test_other_hosts_are_not_held(raw_server) -> None:
    busy = Site(raw_server, {"/busy": (503, {"Retry-After": "30"}, b"busy")})
    calm = Site(raw_server, {})
    async with Loader(limits=Limits(host_backoff=60), retries=Retries(attempts=1)) as loader:
        await loader.fetch(busy.url("/busy"))
        assert not await _held(loader, calm.url("/page"))
    assert calm.paths() == ["/page"]


# -- the rate limit ------------------------------------------------------------------


async def test_rate_limit_makes_bodies_wait(http_server) -> None:
    url = http_server.url("/bytes/600000")
    async with Loader(limits=Limits(rate=1_000_000)) as loader:
        result = await loader.fetch(url)
        assert result.ok and result.size == 600_000
        # 100 kB may pass at once; the other 500 kB owe the bucket, paid in waits.
        assert loader.stats.rate_waits >= 1
    async with Loader() as loader:
        await loader.fetch(url)
        assert loader.stats.rate_waits == 0


async def test_rate_bucket_debt_is_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    from loader._models import Stats
    from loader._scheduler import TokenBucket

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    clock = [100.0]
    monkeypatch.setattr(anyio, "sleep", sleep)
    monkeypatch.setattr(anyio, "current_time", lambda: clock[0])
    bucket = TokenBucket(100_000, Stats())
    await bucket.take(16_384)  # the burst: no wait
    await bucket.take(50_000)  # half a second of debt
    await bucket.take(50_000)  # a second taker queues behind it: one second
    assert slept == [pytest.approx(0.5), pytest.approx(1.0)]
    assert bucket.stats.rate_waits == 2


def test_limits_reject_bad_politeness() -> None:
    for bad in ({"host_delay": -1}, {"rate": 0}, {"host_backoff": -1}):
        with pytest.raises(ValueError):
            Limits(**bad)  # type: ignore[arg-type]



def test_cli_politeness_options() -> None:
    import argparse

    from loader.cli import CRAWL_HOST_BACKOFF, build_parser, make_loader, parse_rate

    assert [parse_rate(v) for v in ("200k", "1.5m", "300", 0, None, 4096)] == [
        204800, 1572864, 300, None, None, 4096,
    ]
    args = build_parser().parse_args(["fetch", "http://127.0.0.1:1/", "-o", "out"])
    plain = make_loader(args)
    assert (plain.limits.host_delay, plain.limits.rate, plain.limits.host_backoff) == (0.0, None, None)
    assert plain.robots
    crawl = argparse.Namespace(**{
        **vars(args), "recursive": True, "wait": 2.0, "random_wait": True,
        "limit_rate": "100k", "no_robots": True,
    })
    loader = make_loader(crawl)
    limits = loader.limits
    assert (limits.host_delay, limits.random_wait, limits.rate) == (2.0, True, 102400)
    assert limits.host_backoff == CRAWL_HOST_BACKOFF
    assert not loader.robots
