"""Hostile Gopher servers and hostile menus, against real sockets on 127.0.0.1.

Each server here is scripted (``support/raw_server.py``): an endless menu line,
a menu that never ends, error items and displays full of terminal escapes, menu
items pointing at another protocol's port.  Nothing is timed; what is asserted
is that the loader stops with a clear error naming the URL, sends nothing it
should not, and shows nothing a terminal would act on.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import loader_gopher
import pytest
from loader_gopher import MAX_LINE, MAX_MENU, MAX_SELECTOR
from support.raw_server import RawServer, recv_until

from loader import (
    Event,
    InvalidURL,
    Limits,
    Loader,
    NotFound,
    Phase,
    PolicyDenied,
    ProtocolError,
    SizeLimitExceeded,
)
from loader.cli import main

Start = Callable[[Callable[[socket.socket], None]], RawServer]

#: What the "endless line" server offers: the 200 MiB line of the bug report.
HUGE = 200 << 20
_BLOCK = b"x" * (64 << 10)


class Streamer:
    """A connection script: read the request line, then stream until the client hangs up.

    ``head`` goes first, then ``block`` over and over until ``total`` bytes were
    offered; ``sent`` and ``requests`` record what happened, for the asserts.
    """

    def __init__(self, head: bytes, block: bytes = _BLOCK, total: int = HUGE) -> None:
        self.head, self.block, self.total = head, block, total
        self.sent: list[int] = []
        self.requests: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket) -> None:
        request = recv_until(conn, b"\n")
        sent = 0
        try:
            conn.sendall(self.head)
            sent = len(self.head)
            while sent < self.total:
                conn.sendall(self.block)
                sent += len(self.block)
        except OSError:
            pass  # the client gave up: what this server is here to see
        finally:
            with self._lock:
                self.requests.append(request)
                self.sent.append(sent)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def wait_for_handlers(server: RawServer, streamer: Streamer, count: int = 1) -> None:
    """The per-connection threads record after the client hung up; wait for them."""
    server.close()
    assert len(streamer.sent) == count, streamer.sent


# -- 1. an endless menu line, an endless menu ---------------------------------


@pytest.mark.anyio
async def test_endless_menu_line_is_refused_without_buffering(raw_server: Start) -> None:
    streamer = Streamer(b"iWelcome\tfake\t(NULL)\t0\r\n0")
    server = raw_server(streamer)
    url = server.url("gopher", "/1/endless")
    async with Loader() as ld:
        with pytest.raises(ProtocolError, match=f"menu line longer than {MAX_LINE} bytes") as info:
            await loader_gopher.read_menu(ld, url)
    assert info.value.url == url
    wait_for_handlers(server, streamer)
    # The client hung up long before the 200 MiB were through (socket buffers hold a few MiB).
    assert streamer.sent[0] < HUGE // 4


@pytest.mark.anyio
async def test_menu_reader_holds_no_more_than_a_line(raw_server: Start) -> None:
    streamer = Streamer(b"1Start\t/s\th\t70\r\n0")
    server = raw_server(streamer)
    async with Loader() as ld:
        async with loader_gopher.open_menu(ld, server.url("gopher", "/1/")) as reader:
            first = await reader.__anext__()
            assert first.selector == "/s"
            with pytest.raises(ProtocolError):
                await reader.__anext__()
            assert len(reader._parser._buffer) == 0  # cleared on the refusal
    wait_for_handlers(server, streamer)


def ls_fails(raw_server: Start, streamer: Streamer, message: str) -> None:
    """``loader gopher ls`` of the streamer's menu fails with ``message`` and the URL."""
    server = raw_server(streamer)
    url = server.url("gopher", "/1/")
    code, out, err = run_cli("gopher", "ls", url, "-q", "--retries", "0")
    assert (code, out) == (3, "")
    assert url in err and message in err, err
    wait_for_handlers(server, streamer)


def test_gopher_ls_refuses_an_endless_line(raw_server: Start) -> None:
    ls_fails(raw_server, Streamer(b"0"), f"longer than {MAX_LINE} bytes")


@pytest.mark.anyio
@pytest.mark.parametrize("item_type", ["1", "7"])
async def test_endless_menu_is_capped(raw_server: Start, item_type: str) -> None:
    line = b"0An item that never ends\t/item\th\t70\r\n"
    streamer = Streamer(b"", block=line * 2000)
    server = raw_server(streamer)
    url = server.url("gopher", f"/{item_type}/endless")
    cap = 1 << 20
    items = 0
    async with Loader(limits=Limits(max_page=cap)) as ld:
        with pytest.raises(SizeLimitExceeded, match=f"menu larger than {cap} bytes") as info:
            async with loader_gopher.open_menu(ld, url) as reader:
                async for _item in reader:
                    items += 1
    assert info.value.url == url
    assert items <= cap // len(line)
    wait_for_handlers(server, streamer)


def test_gopher_ls_max_page_size_caps_the_menu(raw_server: Start) -> None:
    streamer = Streamer(b"", block=b" " * 1000 + b"\r\n")
    server = raw_server(streamer)
    url = server.url("gopher", "/1/")
    code, out, err = run_cli("gopher", "ls", url, "-q", "--retries", "0", "--max-page-size", "100K")
    assert (code, out) == (3, "")
    assert url in err and "menu larger than 102400 bytes" in err
    wait_for_handlers(server, streamer)


@pytest.mark.anyio
async def test_max_body_caps_a_menu_too(raw_server: Start) -> None:
    streamer = Streamer(b"", block=b"0item\t/i\th\t70\r\n" * 4000)
    server = raw_server(streamer)
    async with Loader(limits=Limits(max_body=300_000, max_page=None)) as ld:
        with pytest.raises(SizeLimitExceeded, match="menu larger than 300000 bytes"):
            await loader_gopher.read_menu(ld, server.url("gopher", "/1/"))
    wait_for_handlers(server, streamer)


def test_menu_limit_defaults() -> None:
    assert loader_gopher.menu_limit(Limits()) == 64 << 20  # max_page's default
    assert loader_gopher.menu_limit(Limits(max_page=None)) == MAX_MENU
    assert loader_gopher.menu_limit(Limits(max_body=10, max_page=20)) == 10
    assert loader_gopher.menu_limit(Limits(max_body=30, max_page=20)) == 20


def test_gopher_ls_stops_an_endless_menu_at_the_default_cap(raw_server: Start) -> None:
    # Neither --max-body nor a page: the default cap (64 MiB) is what stops it.
    # Blank lines just under MAX_LINE: the parser keeps nothing and does little per
    # byte, so the test measures the cap, not the parsing of millions of items.
    streamer = Streamer(b"", block=b" " * (MAX_LINE - 2) + b"\r\n", total=4 * MAX_MENU)
    ls_fails(raw_server, streamer, f"menu larger than {MAX_MENU} bytes")
    assert streamer.sent[0] < 2 * MAX_MENU


@pytest.mark.anyio
async def test_get_of_an_endless_menu_is_capped(raw_server: Start, tmp_path: Path) -> None:
    streamer = Streamer(b"", block=b"0item\t/i\th\t70\r\n" * 4000)
    server = raw_server(streamer)
    url = server.url("gopher", "/1/")
    async with Loader(limits=Limits(max_page=500_000)) as ld:
        result = await ld.fetch(url, to=tmp_path / "menu.txt")
    assert not result.ok and isinstance(result.error, SizeLimitExceeded)
    assert result.error.url == url
    assert not (tmp_path / "menu.txt").exists()
    wait_for_handlers(server, streamer)


@pytest.mark.anyio
async def test_endless_menu_fetched_as_a_page_is_capped(raw_server: Start) -> None:
    streamer = Streamer(b"", block=b"IPic\t/p.gif\th\t70\r\n" * 4000)
    server = raw_server(streamer)
    url = server.url("gopher", "/1/")
    async with Loader(limits=Limits(max_page=1 << 20)) as ld:
        page = await ld.fetch_page(url)
    assert not page.document.ok and isinstance(page.document.error, SizeLimitExceeded)
    assert page.document.error.url == url and page.resources == ()
    wait_for_handlers(server, streamer)


# -- 2. what may be sent: NUL, CR, LF, over-long selectors ---------------------


def _count_connections(conn: socket.socket) -> None:
    recv_until(conn, b"\n")
    conn.sendall(b"iunexpected\tfake\t(NULL)\t0\r\n.\r\n")


BAD_PARTS = {
    "NUL in the selector": "1/a%00b",
    "CR in the selector": "1/a%0Db",
    "LF in the selector": "0/a%0Ab",
    "CRLF smuggling a command": "0/x%0D%0Aset%20k%200%200%201%0D%0A1",
    "NUL in the search terms": "7/find%09a%00b",
    "CR LF in the search terms": "7/find%09a%0D%0Ab",
    "NUL in the Gopher+ string": "1/a%09%09%00",
    "an over-long selector": "1/" + "s" * MAX_SELECTOR,
    "an over-long search": "7/find%09" + "%41" * (MAX_SELECTOR + 1),
}


@pytest.mark.anyio
@pytest.mark.parametrize("part", BAD_PARTS.values(), ids=BAD_PARTS.keys())
async def test_bad_selectors_are_refused_before_connecting(raw_server: Start, part: str) -> None:
    server = raw_server(_count_connections)
    url = server.url("gopher", "/" + part)
    async with Loader() as ld:
        result = await ld.fetch(url)
        with pytest.raises(InvalidURL) as info:
            await loader_gopher.read_menu(ld, url)
        with pytest.raises(InvalidURL):
            async with loader_gopher.open_item(ld, url):
                pass
    assert not result.ok and isinstance(result.error, InvalidURL)
    assert info.value.url == url
    assert "must not contain" in info.value.message or "MAX_SELECTOR" in info.value.message
    assert server.connections == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    "terms", ["a\x00b", "a\r\nb", "x" * (MAX_SELECTOR + 1)], ids=["NUL", "CRLF", "over-long"]
)
async def test_bad_search_terms_are_refused_before_connecting(raw_server: Start, terms: str) -> None:
    server = raw_server(_count_connections)
    url = server.url("gopher", "/7/find")
    async with Loader() as ld:
        with pytest.raises(InvalidURL) as info:
            await loader_gopher.search(ld, url, terms)
    assert info.value.url == url
    assert server.connections == 0


def test_gopher_search_cli_refuses_a_nul(raw_server: Start) -> None:
    server = raw_server(_count_connections)
    code, out, err = run_cli("gopher", "search", server.url("gopher", "/7/find"), "a\x00b", "-q")
    assert (code, out) == (3, "")
    assert "must not contain" in err and "\x00" not in err
    assert server.connections == 0


@pytest.mark.anyio
async def test_menu_items_with_bad_selectors_are_not_requested(raw_server: Start) -> None:
    requests: list[bytes] = []
    long_selector = b"/" + b"L" * MAX_SELECTOR

    def respond(conn: socket.socket) -> None:
        requests.append(recv_until(conn, b"\n", limit=1 << 16))
        conn.sendall(
            b"INul\t/a\x00b.gif\t127.0.0.1\t%d\r\n" % server.port
            + b"ILong\t%s\t127.0.0.1\t%d\r\n" % (long_selector, server.port)
            + b".\r\n"
        )

    server = raw_server(respond)
    async with Loader() as ld:
        page = await ld.fetch_page(server.url("gopher", "/1/"))
    server.close()
    assert page.document.ok
    assert len(page.resources) == 2
    assert all(isinstance(r.error, InvalidURL) for r in page.resources)
    assert requests == [b"/\r\n"]  # the menu's own request, nothing else


@pytest.mark.anyio
async def test_a_selector_at_the_cap_is_sent(raw_server: Start) -> None:
    requests: list[bytes] = []

    def record(conn: socket.socket) -> None:
        requests.append(recv_until(conn, b"\n", limit=1 << 16))
        conn.sendall(b"iok\tfake\t(NULL)\t0\r\n.\r\n")

    server = raw_server(record)
    selector = "/" + "s" * (MAX_SELECTOR - 1)
    async with Loader() as ld:
        menu = await loader_gopher.read_menu(ld, server.url("gopher", "/1" + selector))
    server.close()
    assert [i.display for i in menu] == ["ok"]
    assert requests == [selector.encode() + b"\r\n"]


# -- 3. server text shown to a person ------------------------------------------

ESCAPES = ("\x1b", "\u202e", "\u200b", "\u2066", "\x9b", "\x07", "\x7f")
HOSTILE_MENU = (
    "i\x1b[2J\x1b]0;pwned\x07Cleared your screen\tfake\t(NULL)\t0\r\n"
    "0Read me \u202etxt.exe\t/readme\t127.0.0.1\t70\r\n"
    "1Zero\u200bwidth\u2066isolate\t/z\u200b\t127.0.0.1\t70\r\n"
    "3Error \x9b31m red \x7f\tfake\t(NULL)\t0\r\n"
    "hLink\tURL:http://example.com/\x1b[5m\t127.0.0.1\t70\r\n"
    "\x1b[31mno tab at all\r\n"
    ".\r\n"
).encode()


def _serve(body: bytes) -> Callable[[socket.socket], None]:
    def respond(conn: socket.socket) -> None:
        recv_until(conn, b"\n")
        conn.sendall(body)

    return respond


def _assert_inert(text: str) -> None:
    for char in ESCAPES:
        assert char not in text, (char, text)


@pytest.mark.parametrize("extra", [[], ["--json"], ["--links-only"]])
def test_gopher_ls_shows_no_escapes(raw_server: Start, extra: list[str]) -> None:
    server = raw_server(_serve(HOSTILE_MENU))
    code, out, err = run_cli("gopher", "ls", server.url("gopher", "/1/"), "-q", *extra)
    assert code == 0, err
    _assert_inert(out + err)
    if not extra:
        assert "\\x1b[2J" in out and "\\u202etxt.exe" in out and "Zero\\u200bwidth" in out
        assert "3 error   Error \\x9b31m red \\x7f" in out


def test_gopher_ls_json_keeps_the_data_exact(raw_server: Start) -> None:
    import json

    server = raw_server(_serve(HOSTILE_MENU))
    code, out, _ = run_cli("gopher", "ls", server.url("gopher", "/1/"), "-q", "--json")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records[1]["display"] == "Read me \u202etxt.exe"
    assert records[2]["selector"] == "/z\u200b"
    assert records[3]["display"] == "Error \x9b31m red \x7f"


@pytest.mark.anyio
async def test_error_item_text_is_escaped(raw_server: Start) -> None:
    body = "3\x1b[2JNo such \u202ething\tfake\t(NULL)\t0\r\n.\r\n".encode()
    server = raw_server(_serve(body))
    url = server.url("gopher", "/0/missing")
    async with Loader() as ld:
        with pytest.raises(NotFound) as info:
            async with loader_gopher.open_item(ld, url):
                pass
    _assert_inert(str(info.value))
    assert "\\x1b[2JNo such \\u202ething" in str(info.value) and info.value.url == url


def test_get_error_item_text_is_escaped(raw_server: Start) -> None:
    body = "3\x1b[2JNo such \u202ething\tfake\t(NULL)\t0\r\n.\r\n".encode()
    server = raw_server(_serve(body))
    code, out, err = run_cli("get", server.url("gopher", "/0/missing"), "-q", "-o", "-")
    assert code != 0 and out == ""
    assert "No such" in err
    _assert_inert(err)


@pytest.mark.anyio
async def test_selector_on_a_progress_line_is_escaped(raw_server: Start) -> None:
    server = raw_server(_serve(b"iok\tfake\t(NULL)\t0\r\n.\r\n"))
    events: list[Event] = []
    async with Loader() as ld:
        result = await ld.fetch(server.url("gopher", "/1/a%1B[2Jb%E2%80%AEc"), callback=events.append)
    assert result.ok
    (sending,) = [e for e in events if e.phase is Phase.SENDING_REQUEST]
    assert sending.message == "/a\\x1b[2Jb\\u202ec"


def test_gopher_ls_error_is_escaped(raw_server: Start) -> None:
    body = "3\x1b]0;owned\x07Gone \u202e\tfake\t(NULL)\t0\r\n".encode()
    server = raw_server(_serve(body))
    code, out, err = run_cli("gopher", "ls", server.url("gopher", "/1/gone"), "-q", "--retries", "0")
    assert (code, out) == (3, "")
    _assert_inert(err)
    assert "\\x1b]0;owned\\x07Gone \\u202e" in err


# -- 4. where a menu may send the loader ---------------------------------------


@pytest.fixture
def memcached_port() -> Iterator[socket.socket | None]:
    """A listener on 11211 (memcached's port, a blocked one), or None when it is taken."""
    try:
        sock = socket.create_server(("127.0.0.1", 11211))
    except OSError:
        yield None
        return
    sock.setblocking(False)
    with sock:
        yield sock


def _accepted(listener: socket.socket | None) -> int:
    if listener is None:
        return 0
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.mark.anyio
async def test_menu_item_on_a_blocked_port_is_refused(
    raw_server: Start, memcached_port: socket.socket | None
) -> None:
    menu = (
        b"IFine\t/ok.gif\t127.0.0.1\t%d\r\n"
        b"IStats\tstats\t127.0.0.1\t11211\r\n"
        b"sFlush\tflush_all\t127.0.0.1\t6379\r\n"
        b".\r\n"
    )
    gif = b"GIF89a" + b"\x00" * 20

    def respond(conn: socket.socket) -> None:
        line = recv_until(conn, b"\n")
        conn.sendall(gif if line.startswith(b"/ok.gif") else menu % server.port)

    server = raw_server(respond)
    async with Loader() as ld:
        page = await ld.fetch_page(server.url("gopher", "/1/"))
    assert page.document.ok, page.document.error
    results = {r.url: r for r in page.resources}
    assert results[server.url("gopher", "/I/ok.gif")].ok
    for port, selector in ((11211, "stats"), (6379, "flush_all")):
        refused = results[f"gopher://127.0.0.1:{port}/{'I' if port == 11211 else 's'}{selector}"]
        assert not refused.ok and isinstance(refused.error, PolicyDenied)
        assert f"port {port}" in str(refused.error)
    assert _accepted(memcached_port) == 0
    assert server.connections == 2  # the menu and the one allowed image


@pytest.mark.anyio
async def test_allow_ports_lets_the_item_through(raw_server: Start) -> None:
    def respond(conn: socket.socket) -> None:
        recv_until(conn, b"\n")
        conn.sendall(b"IPic\t/p.gif\t127.0.0.1\t11211\r\n.\r\n")

    server = raw_server(respond)
    async with Loader(allow_ports=[11211]) as ld:
        page = await ld.fetch_page(server.url("gopher", "/1/"))
    (result,) = page.resources
    assert not isinstance(result.error, PolicyDenied)  # refused by the network, if anything


def test_gopher_ls_deny_private(raw_server: Start) -> None:
    received: list[bytes] = []

    def respond(conn: socket.socket) -> None:
        received.append(conn.recv(65536))

    server = raw_server(respond)
    url = server.url("gopher", "/1/")
    code, out, err = run_cli("gopher", "ls", url, "-q", "--retries", "0", "--deny-private")
    server.close()
    assert (code, out) == (3, "")
    assert url in err and "loopback" in err
    assert received == [b""] * len(received)


@pytest.mark.anyio
async def test_deny_private_refuses_before_sending(raw_server: Start) -> None:
    received: list[bytes] = []

    def respond(conn: socket.socket) -> None:
        received.append(conn.recv(65536))
        conn.sendall(b"iunexpected\tfake\t(NULL)\t0\r\n")

    server = raw_server(respond)
    url = server.url("gopher", "/1/secret")
    async with Loader(deny_private=True) as ld:
        result = await ld.fetch(url)
        with pytest.raises(PolicyDenied, match="loopback") as info:
            await loader_gopher.read_menu(ld, url)
    server.close()
    assert not result.ok and isinstance(result.error, PolicyDenied)
    assert info.value.url == url
    assert received == [b""] * len(received)  # connected (to learn the address), sent nothing
