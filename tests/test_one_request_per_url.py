"""One request per URL per loader: canonical keys, sharing what is in flight, the key hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from loader import Limits, Loader, Retries, hookimpl
from loader._urls import canonical_url

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("url", "key"), [
    ("http://Example.COM:80/a%7eb%2fc?q=%41#frag", "http://example.com/a~b%2Fc?q=A"),
    ("HTTP://h", "http://h/"),
    ("https://h:443", "https://h/"),
    ("http://h:8080/x?b=2&a=1", "http://h:8080/x?b=2&a=1"),  # query order is the server's business
    ("http://h/a/./b/", "http://h/a/./b/"),
    ("ftp://User:Pw@FTP.Example:21/x", "ftp://User:Pw@ftp.example/x"),  # user info keeps its case
    ("gopher://h:70/1/", "gopher://h/1/"),
    ("gophers://h:7070/1/", "gophers://h:7070/1/"),
    ("http://[::1]:80/x", "http://[::1]/x"),
    ("http://h/%e2%82%ac", "http://h/%E2%82%AC"),
    ("http://h:99999/", "http://h:99999/"),  # unparseable port: left as it is
    ("data:text/plain,a#b", "data:text/plain,a"),
])
def test_canonical_url(url: str, key: str) -> None:
    assert canonical_url(url) == key
    assert canonical_url(key) == key  # a key is its own key


async def test_concurrent_requests_for_one_url_make_one_request(asgi_server: Any, tmp_path: Path) -> None:
    asgi_server.reset()
    url = asgi_server.url("/bytes/5000")
    spellings = [url, url.replace("http://", "HTTP://"), url + "#top", url]
    results: list[Any] = []
    async with Loader(limits=Limits(per_host=8)) as loader:
        async with anyio.create_task_group() as tg:
            for n, spelling in enumerate(spellings * 3):
                to = tmp_path / f"copy-{n}.bin" if n % 2 else None

                async def one(spelling: str = spelling, to: Path | None = to) -> None:
                    results.append(await loader.fetch(spelling, to=to))

                tg.start_soon(one)
        shared = loader._running.shared
    assert asgi_server.hits("/bytes/5000") == 1
    assert len(results) == 12 and all(r.ok and r.size == 5000 for r in results)
    assert sum(not r.completed_synchronously for r in results) == 1
    assert shared >= 1  # at least one waited for the request in flight rather than finding it done
    files = sorted(tmp_path.glob("copy-*.bin"))
    assert len(files) == 6 and {f.read_bytes() for f in files} == {results[0].content or files[0].read_bytes()}


async def test_a_failure_is_not_shared_each_waiter_asks_in_turn(asgi_server: Any) -> None:
    """Only a success is shared; after a failure the waiters ask one at a time (never at once)."""
    asgi_server.reset()
    url = asgi_server.url("/status/404")
    results: list[Any] = []
    async with Loader(retries=Retries(attempts=1)) as loader:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                async def one() -> None:
                    results.append(await loader.fetch(url))

                tg.start_soon(one)
    assert [r.status for r in results] == [404, 404, 404] and not any(r.ok for r in results)
    assert asgi_server.hits("/status/404") == 3


async def test_the_url_key_hook_replaces_the_canonical_form(asgi_server: Any) -> None:
    class DropQuery:
        @hookimpl
        def loader_url_key(self, url: str) -> str | None:
            return url.partition("?")[0]

    asgi_server.reset()
    async with Loader(plugins=[DropQuery()]) as loader:
        first = await loader.fetch(asgi_server.url("/bytes/300?utm_source=a"))
        second = await loader.fetch(asgi_server.url("/bytes/300?utm_source=b"))
    assert first.ok and second.ok and second.completed_synchronously
    assert asgi_server.hits("/bytes/300") == 1


async def test_without_reuse_every_request_goes_out(asgi_server: Any) -> None:
    asgi_server.reset()
    url = asgi_server.url("/bytes/400")
    async with Loader(reuse=False) as loader:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(loader.fetch, url)
    assert asgi_server.hits("/bytes/400") == 3


async def test_fetch_requisites_uses_the_callers_copy_of_the_page(asgi_server: Any, tmp_path: Path) -> None:
    from support.asgi_server import PAGE_IMAGES, PAGE_SOUNDS

    from loader import Event, Origin, Phase

    asgi_server.reset()
    page_url = asgi_server.url("/page.html")
    async with Loader() as other:  # the crawler's own download
        downloaded = await other.fetch(page_url)
    assert downloaded.ok and downloaded.content
    events: list[Event] = []
    async with Loader() as loader:
        page = await loader.fetch_requisites(
            page_url, downloaded.content, content_type="text/html; charset=utf-8",
            headers={"X-Crawler": "yes"}, status=200, output=tmp_path, callback=events.append,
        )
    assert asgi_server.hits("/page.html") == 1  # only the crawler's request
    assert page.ok and page.document.origin is Origin.GIVEN and page.document.completed_synchronously
    assert page.document.status == 200 and page.document.headers == {"X-Crawler": "yes"}
    assert len(page.resources) == PAGE_IMAGES + PAGE_SOUNDS
    assert all(r.parent_id == page.document.request_id for r in page.resources)
    page_events = [e.phase for e in events if e.request_id == page.document.request_id]
    assert page_events == [Phase.HANDLE_CREATED, Phase.REQUEST_COMPLETE]
    assert page.path is not None and page.path.read_bytes() == downloaded.content
    assert page.manifest is not None and page.manifest.is_file()


async def test_fetch_requisites_holds_the_page_cap(asgi_server: Any) -> None:
    from loader import Limits as L

    async with Loader(limits=L(max_page=100)) as loader:
        page = await loader.fetch_requisites(asgi_server.url("/big.html"), b"<p>" * 100,
                                             content_type="text/html")
    assert not page.ok and "page cap" in str(page.document.error)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/img/i0.png", "https://example.com/a/b?c=d",
                                 "ftp://h/pub/", "gopher://h:7070/1/x"])
def test_a_canonical_url_is_its_own_key_without_reparsing(url: str) -> None:
    assert canonical_url(url) is url  # the common case returns the very string: no rebuilding
