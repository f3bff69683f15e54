"""A gopher menu is a page: its images and sounds are fetched with it, concurrently."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from support.gopher_server import GopherServer, ScriptedServer

from loader import Event, Limits, Loader, Phase

pytestmark = pytest.mark.anyio

Start = Callable[..., ScriptedServer]


async def test_menu_page_fetches_images_and_sounds(
    gopher_server: GopherServer, tmp_path: Path
) -> None:
    events: list[Event] = []
    async with Loader() as ld:
        page = await ld.fetch_page(
            gopher_server.url("1", "/"), output=tmp_path, callback=events.append, context="menu"
        )
    assert page.ok, page.failed
    base = f"gopher://{gopher_server.host}:{gopher_server.port}"
    assert sorted((f.url, f.kind, f.provenance()) for f in page.found) == sorted(
        [
            (f"{base}/g/pics/cat.gif", "image", "gopher-menu[g]"),
            (f"{base}/p/pics/dog.png", "image", "gopher-menu[p]"),
            (f"{base}/I/pics/bird.png", "image", "gopher-menu[I]"),
            (f"{base}/s/sounds/meow.wav", "sound", "gopher-menu[s]"),
        ]
    )
    assert len(page.resources) == 4
    for result in page.resources:
        assert result.path is not None
        selector = result.url.split("/", 4)[4]
        assert result.path.read_bytes() == (gopher_server.root / selector).read_bytes()
        assert tmp_path in result.path.parents
    # Every request reports with the call's context; resources name the page as parent.
    assert all(e.context == "menu" for e in events)
    page_id = page.document.request_id
    assert {e.parent_id for e in events if e.request_id != page_id} == {page_id}
    completed = [e for e in events if e.phase is Phase.REQUEST_COMPLETE]
    assert len(completed) == 5


async def test_videos_on_request(gopher_server: GopherServer) -> None:
    async with Loader() as ld:
        page = await ld.fetch_page(gopher_server.url("1", "/"), kinds={"video"})
    assert [f.url.rsplit("/", 2)[-2:] for f in page.found] == [["video", "clip.mp4"]]
    assert page.ok and len(page.resources) == 1


async def test_html_item_is_a_page(gopher_server: GopherServer) -> None:
    async with Loader() as ld:
        page = await ld.fetch_page(gopher_server.url("h", "/docs/page.html"))
    assert page.ok, page.failed
    assert page.document.content_type == "text/html"
    contents = sorted(r.content for r in page.resources if r.content is not None)
    expected = sorted(
        (gopher_server.root / p).read_bytes() for p in ("pics/dog.png", "sounds/meow.wav")
    )
    assert contents == expected


# One backend is enough here: this is about the page pipeline's cost, and the
# transport runs on both backends everywhere else.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_huge_menu_is_capped(gopher_script_server: Start) -> None:
    gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"

    def respond(line: bytes, sock: socket.socket) -> None:
        if line.startswith(b"/img/"):
            sock.sendall(gif)
            return
        port = sock.getsockname()[1]
        menu = b"".join(
            b"IPicture %d\t/img/%d.gif\t127.0.0.1\t%d\r\n" % (n, n, port) for n in range(100_000)
        )
        sock.sendall(menu + b".\r\n")

    server = gopher_script_server(respond)
    async with Loader(limits=Limits(per_page=10)) as ld:
        page = await ld.fetch_page(server.url("1", "/"))
    assert page.document.ok
    assert len(page.resources) == 10 and all(r.content == gif for r in page.resources)
    assert page.skipped > 0
    assert len(server.requests) == 11
