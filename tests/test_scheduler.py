"""The scheduler: per-host queues, slots held by every kind of request, retries, pruning."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from loader import Event, Limits, Loader, Phase, Retries
from loader._errors import ConnectError, NotFound
from loader._scheduler import HostQueues, Scheduler, host_key

pytestmark = pytest.mark.anyio


async def test_host_queues_bound_each_host_and_keep_its_order() -> None:
    running: dict[str, int] = {}
    most: dict[str, int] = {}
    done: list[str] = []
    started: list[str] = []

    async def work(url: str) -> None:
        started.append(url)
        key = host_key(url)
        running[key] = running.get(key, 0) + 1
        most[key] = max(most.get(key, 0), running[key])
        await anyio.sleep(0)
        await anyio.sleep(0)
        done.append(url)
        running[key] -= 1

    queues: HostQueues[str] = HostQueues(3, work)
    urls = [f"http://h{n % 4}.test/{n}" for n in range(60)]
    async with anyio.create_task_group() as tg:
        for url in urls:
            queues.add(url, url)
        queues.start(tg)
    assert sorted(done) == sorted(urls)
    assert max(most.values()) == 3 and set(most) == {host_key(u) for u in urls}
    for host in range(4):  # one host's items start in the order they were added
        theirs = [u for u in urls if u.startswith(f"http://h{host}.")]
        assert [u for u in started if u in theirs] == theirs
    assert not queues.queues and not queues.workers  # nothing left behind once drained


async def test_a_drained_host_takes_new_items_again() -> None:
    done: list[int] = []

    async def work(n: int) -> None:
        done.append(n)

    queues: HostQueues[int] = HostQueues(2, work)
    async with anyio.create_task_group() as tg:
        queues.add("http://a.test/", 1)
        queues.start(tg)
    async with anyio.create_task_group() as tg:
        queues.add("http://a.test/", 2)
        queues.start(tg)
    assert done == [1, 2]


async def test_idle_host_limiters_are_dropped() -> None:
    scheduler = Scheduler(Limits(per_host=2), Retries())
    for n in range(50):
        async with scheduler.slot(f"http://host{n}.test/"):
            assert host_key(f"http://host{n}.test/") in scheduler.hosts
    assert scheduler.hosts == {} and scheduler.total.free == scheduler.limits.total


async def test_a_host_limiter_stays_while_someone_waits() -> None:
    scheduler = Scheduler(Limits(per_host=1), Retries())
    order: list[str] = []

    async def second() -> None:
        async with scheduler.slot("http://h.test/b"):
            order.append("second")

    async with anyio.create_task_group() as tg:
        async with scheduler.slot("http://h.test/a"):
            tg.start_soon(second)
            await anyio.wait_all_tasks_blocked()
            assert scheduler.hosts[host_key("http://h.test/")].waiters
            order.append("first")
    assert order == ["first", "second"] and scheduler.hosts == {}


async def test_attempts_retry_transient_errors_only() -> None:
    scheduler = Scheduler(Limits(), Retries(attempts=3, backoff=0.0, max_backoff=0.0))
    seen: list[int] = []
    retried: list[str] = []

    async def flaky(number: int) -> str:
        seen.append(number)
        if number < 3:
            raise ConnectError("refused", url="http://h.test/")
        return "ok"

    async def on_retry(exc: Exception, delay: float) -> None:
        retried.append(type(exc).__name__)

    assert await scheduler.attempts(flaky, on_retry=on_retry) == "ok"
    assert seen == [1, 2, 3] and retried == ["ConnectError", "ConnectError"]

    async def missing(number: int) -> str:
        seen.append(number)
        raise NotFound("gone", url="http://h.test/")

    seen.clear()
    with pytest.raises(NotFound):
        await scheduler.attempts(missing, on_retry=on_retry)
    assert seen == [1]
    seen.clear()
    with pytest.raises(ConnectError):
        await scheduler.attempts(flaky, repeatable=False, on_retry=on_retry)
    assert seen == [1]


async def test_fetch_all_runs_at_most_per_host_requests_of_a_host(asgi_server: Any) -> None:
    """fetch_all queues by host as pages do: no request is even created past the limit."""
    open_now, most = 0, 0

    def watch(event: Event) -> None:
        nonlocal open_now, most
        if event.phase is Phase.HANDLE_CREATED:
            open_now += 1
            most = max(most, open_now)
        elif event.phase.terminal:
            open_now -= 1

    urls = [asgi_server.url(f"/bytes/{100 + n}") for n in range(30)]
    async with Loader(limits=Limits(per_host=2), reuse=False) as loader:
        results = await loader.fetch_all(urls, callback=watch)
    assert [r.url for r in results] == urls and all(r.ok for r in results)
    assert [r.size for r in results] == [100 + n for n in range(30)]
    assert most == 2


async def test_an_operation_holds_a_slot_of_its_host(asgi_server: Any) -> None:
    url = asgi_server.url("/bytes/10")
    async with Loader(limits=Limits(per_host=2)) as loader:
        async with loader.operation(url):
            assert loader.scheduler.hosts[host_key(url)].free == 1
            result = await loader.fetch(url)  # the second slot of the host
            assert result.ok
        assert loader.scheduler.hosts == {}
