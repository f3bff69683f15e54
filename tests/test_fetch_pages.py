"""Loader.fetch_pages: pages as they complete, lazily fed, bounded, cancellable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from loader import Event, Loader, Phase

pytestmark = pytest.mark.anyio


async def test_pages_come_as_they_complete_from_a_lazy_endless_source(asgi_server: Any) -> None:
    asgi_server.reset()
    taken: list[int] = []

    def endless() -> Iterator[str]:
        n = 0
        while True:  # never ends: the consumer decides when to stop
            taken.append(n)
            yield asgi_server.url(f"/bytes/{10 + n}")
            n += 1

    sizes: list[int] = []
    async with Loader() as loader:
        async with loader.fetch_pages(endless(), concurrency=3) as pages:
            async for page in pages:
                assert page.ok and not page.resources  # a body that is no document: no requisites
                sizes.append(page.document.size)
                if len(sizes) == 10:
                    break
    assert len(set(sizes)) == 10 and set(sizes) <= {10 + n for n in taken}
    # Read lazily: the pages taken, those under way, and the one whose slot the tenth freed.
    assert len(taken) <= 10 + 3 + 1


async def test_at_most_concurrency_pages_at_once_whatever_the_consumers_pace(asgi_server: Any) -> None:
    asgi_server.reset()
    open_pages, most = 0, 0

    def watch(event: Event) -> None:
        nonlocal open_pages, most
        if event.parent_id is None and event.phase is Phase.HANDLE_CREATED:
            open_pages += 1
            most = max(most, open_pages)

    async def slow_source() -> AsyncIterator[str]:
        for n in range(12):
            await anyio.sleep(0)
            yield asgi_server.url("/page.html") + f"?n={n}"

    got = 0
    async with Loader() as loader:
        async with loader.fetch_pages(slow_source(), concurrency=2, callback=watch) as pages:
            async for page in pages:
                assert page.ok and len(page.resources) > 0
                got += 1
                open_pages -= 1  # taken: its slot is free again
                await anyio.sleep(0.01)  # a slow consumer
    assert got == 12 and most <= 2


async def test_a_failed_page_is_a_result_and_early_exit_cancels_the_rest(asgi_server: Any, tmp_path: Path) -> None:
    urls = [asgi_server.url("/status/404"), *[asgi_server.url(f"/bytes/{n}") for n in range(100, 160)]]
    seen = []
    async with Loader() as loader:
        async with loader.fetch_pages(urls, concurrency=4, output=tmp_path) as pages:
            async for page in pages:
                seen.append(page)
                if len(seen) == 5:
                    break
        after = await loader.fetch(asgi_server.url("/bytes/7"))  # the loader still works
    assert after.ok and len(seen) == 5
    failed = [p for p in seen if not p.ok]
    assert all(p.document.status == 404 for p in failed)


async def test_concurrency_must_be_positive() -> None:
    async with Loader() as loader:
        with pytest.raises(ValueError, match="concurrency"):
            async with loader.fetch_pages([], concurrency=0):
                pass


async def test_an_error_in_the_consumer_propagates(asgi_server: Any) -> None:
    async with Loader() as loader:
        with pytest.raises(Exception) as info:
            async with loader.fetch_pages([asgi_server.url("/bytes/3")] * 3) as pages:
                async for _ in pages:
                    raise KeyError("consumer")
    error = info.value
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, KeyError)
