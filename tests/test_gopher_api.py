"""The library API: menus as typed items (find-first/next), search, any item as a stream."""

from __future__ import annotations

from collections.abc import Callable

import loader_gopher
import pytest
from loader_gopher import ItemKind, Menu, MenuItem
from support.gopher_server import GopherServer, ScriptedServer, reply

from loader import Event, InvalidURL, Loader, NotFound, Phase

pytestmark = pytest.mark.anyio

Start = Callable[..., ScriptedServer]


async def test_read_menu(gopher_server: GopherServer) -> None:
    events: list[Event] = []
    async with Loader() as ld:
        menu = await loader_gopher.read_menu(
            ld, gopher_server.url("1", "/docs"), callback=events.append, context=42
        )
    assert isinstance(menu, Menu)
    assert menu.url == gopher_server.url("1", "/docs")
    assert [(i.kind, i.display) for i in menu] == [
        (ItemKind.INFO, "Documents"),
        (ItemKind.TEXT, "About this server"),
        (ItemKind.HTML, "A web page"),
        (ItemKind.MENU, "Back to the top"),
    ]
    about = menu.links[0]
    assert (about.selector, about.host, about.port) == (
        "/about.txt",
        gopher_server.host,
        gopher_server.port,
    )
    # One operation, one request id, the whole grammar, the caller's context.
    assert len({e.request_id for e in events}) == 1
    assert events[0].phase is Phase.HANDLE_CREATED and events[-1].phase is Phase.REQUEST_COMPLETE
    assert Phase.PROGRESS in {e.phase for e in events}
    assert all(e.context == 42 for e in events)


async def test_open_menu_streams_items(gopher_script_server: Start) -> None:
    lines = b"".join(b"0item %d\t/%d\th\t70\r\n" % (n, n) for n in range(5000))
    server = gopher_script_server(reply(lines + b".\r\nignored\t/x\th\t70\r\n"))
    async with Loader() as ld:
        async with loader_gopher.open_menu(ld, server.url("1", "/big")) as reader:
            first = await reader.__anext__()
            rest = [item async for item in reader]
    assert first == MenuItem("0", "item 0", "/0", "h", 70)
    assert len(rest) == 4999 and rest[-1].selector == "/4999"
    assert reader.malformed == 0


async def test_stop_reading_early(gopher_script_server: Start) -> None:
    lines = b"".join(b"0item %d\t/%d\th\t70\r\n" % (n, n) for n in range(50_000))
    server = gopher_script_server(reply(lines))
    events: list[Event] = []
    async with Loader() as ld:
        async with loader_gopher.open_menu(
            ld, server.url("1", "/"), callback=events.append
        ) as reader:
            async for item in reader:
                if item.selector == "/3":
                    break
    assert events[-1].phase is Phase.REQUEST_COMPLETE
    assert [e.phase for e in events][-3:] == [
        Phase.CLOSING_CONNECTION,
        Phase.CONNECTION_CLOSED,
        Phase.REQUEST_COMPLETE,
    ]


async def test_search(gopher_server: GopherServer) -> None:
    async with Loader() as ld:
        menu = await loader_gopher.search(ld, gopher_server.url("7", "/search.pyg"), "about")
        by_option = await loader_gopher.read_menu(
            ld, gopher_server.url("7", "/search.pyg"), search="about"
        )
    assert [(i.type, i.selector) for i in menu] == [("0", "/about.txt")]
    assert menu.url == gopher_server.url("7", "/search.pyg%09about")
    assert list(by_option) == list(menu)


async def test_search_sends_terms(gopher_script_server: Start) -> None:
    server = gopher_script_server(reply(b"0hit\t/hit\th\t70\r\n.\r\n"))
    async with Loader() as ld:
        await loader_gopher.search(ld, server.url("7", "/find"), "cats & dogs")
        with pytest.raises(InvalidURL):
            await loader_gopher.search(ld, server.url("7", "/find"), "cats\r\ndogs")
    assert server.requests == [b"/find\tcats & dogs\r\n"]


async def test_errors_raise(gopher_server: GopherServer) -> None:
    events: list[Event] = []
    async with Loader() as ld:
        with pytest.raises(NotFound):
            await loader_gopher.read_menu(
                ld, gopher_server.url("1", "/no/such/menu"), callback=events.append
            )
    assert events[-1].phase is Phase.FAILED
    assert isinstance(events[-1].error, NotFound)


async def test_open_item_streams(gopher_server: GopherServer) -> None:
    events: list[Event] = []
    async with Loader() as ld:
        menu = await loader_gopher.read_menu(ld, gopher_server.url("1", "/"))
        binary = next(i for i in menu if i.type == "9")
        async with loader_gopher.open_item(
            ld, binary, callback=events.append, context="bin"
        ) as response:
            assert response.content_type == "application/octet-stream"
            body = b"".join([chunk async for chunk in response.stream])
        async with loader_gopher.open_item(ld, gopher_server.url("0", "/about.txt")) as response:
            text = b"".join([chunk async for chunk in response.stream])
    assert body == (gopher_server.root / "files/data.bin").read_bytes()
    assert text == (gopher_server.root / "about.txt").read_bytes()
    progress = [e.bytes_done for e in events if e.phase is Phase.PROGRESS]
    assert progress and progress[-1] == len(body) and progress == sorted(progress)
    assert all(e.context == "bin" for e in events)
    assert events[-1].phase is Phase.REQUEST_COMPLETE
