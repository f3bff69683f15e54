"""The gopher protocol handler against a real server (pygopherd) and scripted faulty ones."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from loader_gopher import content_type_for, parse_menu
from support.gopher_server import GopherServer, ScriptedServer, reply

from loader import (
    ConnectError,
    Event,
    IdleTimeout,
    InvalidURL,
    Loader,
    NetworkError,
    NotFound,
    Retries,
    Timeouts,
)

pytestmark = pytest.mark.anyio

ONE_TRY = Retries(attempts=1)

Start = Callable[..., ScriptedServer]


def phases(events: list[Event]) -> list[str]:
    """Phase names, with runs of PROGRESS collapsed to one."""
    names: list[str] = []
    for event in events:
        name = event.phase.name
        if not (name == "PROGRESS" and names and names[-1] == name):
            names.append(name)
    return names


@pytest.mark.parametrize(
    ("item", "path", "content_type"),
    [
        ("g", "pics/cat.gif", "image/gif"),
        ("p", "pics/dog.png", "image/png"),
        ("I", "pics/bird.png", "image/png"),
        ("s", "sounds/meow.wav", "audio/x-wav"),
        (";", "video/clip.mp4", "video/mp4"),
        ("9", "files/data.bin", "application/octet-stream"),
        ("0", "about.txt", "text/plain"),
        ("h", "docs/page.html", "text/html"),
    ],
)
async def test_download_byte_for_byte(
    gopher_server: GopherServer, tmp_path: Path, item: str, path: str, content_type: str
) -> None:
    expected = (gopher_server.root / path).read_bytes()
    url = gopher_server.url(item, "/" + path)
    async with Loader() as ld:
        in_memory = await ld.fetch(url)
        to_file = await ld.fetch(url, to=tmp_path / "saved")
    assert in_memory.ok, in_memory.error
    assert in_memory.content == expected
    assert in_memory.size == len(expected)
    assert in_memory.content_type == content_type
    assert to_file.ok and to_file.path is not None
    assert to_file.path.read_bytes() == expected


async def test_root_menu(gopher_server: GopherServer) -> None:
    async with Loader() as ld:
        result = await ld.fetch(gopher_server.url("1", "/"))
    assert result.ok and result.content is not None
    assert result.content_type == "text/x-gopher-menu"
    items = parse_menu(result.content, host=gopher_server.host, port=gopher_server.port)
    assert [(i.type, i.display) for i in items] == [
        ("i", "Welcome to the loader test hole."),
        ("i", ""),
        ("0", "About this server"),
        ("1", "Documents"),
        ("g", "A GIF cat"),
        ("p", "A PNG dog"),
        ("I", "A little bird"),
        ("s", "A short beep"),
        (";", "A tiny clip"),
        ("9", "Random bytes"),
        ("7", "Search the hole"),
        ("h", "A web page"),
        ("h", "An external site"),
    ]
    base = f"gopher://{gopher_server.host}:{gopher_server.port}"
    assert items[3].url == f"{base}/1/docs"
    assert items[4].url == f"{base}/g/pics/cat.gif"
    assert items[10].url == f"{base}/7/search.pyg"
    assert items[12].target == "http://127.0.0.1:9/"


async def test_empty_url_path_is_the_root_menu(gopher_server: GopherServer) -> None:
    async with Loader() as ld:
        bare = await ld.fetch(f"gopher://{gopher_server.host}:{gopher_server.port}")
        root = await ld.fetch(gopher_server.url("1", "/"))
    assert bare.ok and bare.content == root.content


async def test_search(gopher_server: GopherServer) -> None:
    async with Loader() as ld:
        result = await ld.fetch(gopher_server.url("7", "/search.pyg%09PNG"))
    assert result.ok and result.content is not None
    items = parse_menu(result.content)
    assert [(i.type, i.selector) for i in items] == [
        ("p", "/pics/bird.png"),
        ("p", "/pics/dog.png"),
    ]


async def test_search_without_match_is_an_error_item(gopher_server: GopherServer) -> None:
    async with Loader(retries=ONE_TRY) as ld:
        result = await ld.fetch(gopher_server.url("7", "/search.pyg%09zebra"))
    assert not result.ok
    assert isinstance(result.error, NotFound)
    assert "Nothing matches zebra" in str(result.error)


async def test_missing_selector_is_not_found(gopher_server: GopherServer) -> None:
    url = gopher_server.url("I", "/pics/unicorn.gif")
    async with Loader() as ld:
        result = await ld.fetch(url)
    assert not result.ok and result.attempts == 1
    assert isinstance(result.error, NotFound)
    assert result.error.url == url
    assert "/pics/unicorn.gif" in str(result.error)


async def test_events_in_order_with_context(gopher_server: GopherServer) -> None:
    events: list[Event] = []
    context = object()
    async with Loader() as ld:
        result = await ld.fetch(
            gopher_server.url("1", "/docs"), callback=events.append, context=context
        )
    assert result.ok
    assert phases(events) == [
        "HANDLE_CREATED",
        "CONNECTING_TO_SERVER",
        "CONNECTED_TO_SERVER",
        "SENDING_REQUEST",
        "REQUEST_SENT",
        "RECEIVING_RESPONSE",
        "RESPONSE_RECEIVED",
        "PROGRESS",
        "CLOSING_CONNECTION",
        "CONNECTION_CLOSED",
        "REQUEST_COMPLETE",
    ]
    assert all(e.context is context for e in events)
    assert len({e.request_id for e in events}) == 1
    where = f"{gopher_server.host}:{gopher_server.port}"
    assert events[1].message == where
    assert events[3].message == "/docs"
    assert events[-1].bytes_done == result.size


async def test_host_names_are_resolved_with_events(gopher_server: GopherServer) -> None:
    try:
        socket.getaddrinfo("localhost", gopher_server.port, type=socket.SOCK_STREAM)
    except OSError:
        pytest.skip("localhost does not resolve here")
    events: list[Event] = []
    url = f"gopher://localhost:{gopher_server.port}/0/about.txt"
    async with Loader() as ld:
        result = await ld.fetch(url, callback=events.append)
    assert result.ok, result.error
    assert phases(events)[:5] == [
        "HANDLE_CREATED",
        "RESOLVING_NAME",
        "NAME_RESOLVED",
        "CONNECTING_TO_SERVER",
        "CONNECTED_TO_SERVER",
    ]
    assert events[1].message == "localhost"


async def test_tls(gopher_server: GopherServer, monkeypatch: pytest.MonkeyPatch) -> None:
    if gopher_server.ca_file is None:
        pytest.skip("trustme is not installed: no TLS for the gopher server")
    # Verification is on by default: the tests' CA is trusted only through the
    # standard OpenSSL variable, as a user would do it.
    monkeypatch.setenv("SSL_CERT_FILE", str(gopher_server.ca_file))
    expected = (gopher_server.root / "files/data.bin").read_bytes()
    async with Loader() as ld:
        binary = await ld.fetch(gopher_server.url("9", "/files/data.bin", secure=True))
        menu = await ld.fetch(gopher_server.url("1", "/", secure=True))
    assert binary.ok, binary.error
    assert binary.content == expected
    assert menu.ok and menu.content is not None
    assert b"About this server" in menu.content


async def test_tls_verification_is_on_by_default(gopher_server: GopherServer) -> None:
    if gopher_server.ca_file is None:
        pytest.skip("trustme is not installed: no TLS for the gopher server")
    url = gopher_server.url("0", "/about.txt", secure=True)
    async with Loader() as ld:
        refused = await ld.fetch(url)
    assert isinstance(refused.error, ConnectError)
    assert "certificate" in str(refused.error)
    assert refused.attempts == 1  # a bad certificate is not worth retrying
    async with Loader(verify=False) as ld:
        unverified = await ld.fetch(url)
    assert unverified.ok, unverified.error


async def test_plain_gopher_to_a_tls_only_port_is_not_tls(gopher_script_server: Start) -> None:
    # A gophers:// URL never falls back to plain text: a server that does not
    # speak TLS fails the handshake.
    server = gopher_script_server(reply(b"iplain text, not TLS\r\n.\r\n"), whole_line=False)
    async with Loader(retries=ONE_TRY, timeouts=Timeouts(connect=2)) as ld:
        result = await ld.fetch(f"gophers://{server.host}:{server.port}/1/")
    assert isinstance(result.error, ConnectError)


# -- scripted servers: exact bytes on the wire, and faults --------------------------------


async def test_request_line_on_the_wire(gopher_script_server: Start) -> None:
    server = gopher_script_server(reply(b"0r\t/r\th\t70\r\n.\r\n"))
    async with Loader() as ld:
        await ld.fetch(server.url("7", "/find%09cats%20dogs"))
        await ld.fetch(server.url("1", "/caf%C3%A9%FF"))
        await ld.fetch(server.url("1", ""))
    assert server.requests == [b"/find\tcats dogs\r\n", b"/caf\xc3\xa9\xff\r\n", b"\r\n"]


@pytest.mark.parametrize("selector", ["/a%0D%0Ab", "/a%0Ab", "/a%0Db", "/s%09a%0Ab"])
async def test_cr_lf_rejected_before_sending(gopher_script_server: Start, selector: str) -> None:
    server = gopher_script_server(reply(b""))
    events: list[Event] = []
    async with Loader() as ld:
        result = await ld.fetch(server.url("0", selector), callback=events.append)
    assert isinstance(result.error, InvalidURL)
    assert result.error.url == server.url("0", selector)
    assert server.requests == []
    assert phases(events) == ["HANDLE_CREATED", "FAILED"]


async def test_session_types_are_not_documents(gopher_script_server: Start) -> None:
    server = gopher_script_server(reply(b""))
    async with Loader() as ld:
        telnet = await ld.fetch(server.url("8", "user"))
        info = await ld.fetch(server.url("i", "x"))
    assert isinstance(telnet.error, InvalidURL) and "telnet" in str(telnet.error)
    assert isinstance(info.error, InvalidURL)
    assert server.requests == []


async def test_text_dot_stuffing_undone(gopher_script_server: Start) -> None:
    wire = b"first\r\n..starts with a dot\r\n...two\r\n.\r\nnot part of the document\r\n"
    server = gopher_script_server(reply(wire))
    async with Loader() as ld:
        result = await ld.fetch(server.url("0", "/t.txt"))
    assert result.ok
    assert result.content == b"first\r\n.starts with a dot\r\n..two\r\n"


async def test_binary_is_not_unstuffed(gopher_script_server: Start) -> None:
    wire = b"..binary\r\n.\r\nafter\r\n"
    server = gopher_script_server(reply(wire))
    async with Loader() as ld:
        result = await ld.fetch(server.url("9", "/b.bin"))
    assert result.content == wire


class Lingering:
    """A script that sends ``body`` and never closes: only a client that stops at
    the terminator ends the connection, which :meth:`hung_up` then reports."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._seen: list[bool] = []

    def __call__(self, _line: bytes, sock: socket.socket) -> None:
        sock.sendall(self.body)
        sock.settimeout(30)
        self._seen.append(sock.recv(1) == b"")

    async def hung_up(self) -> bool:
        for _ in range(500):  # the handler thread records once it sees the hang-up
            if self._seen:
                break
            await anyio.sleep(0.01)
        return self._seen == [True]


async def test_text_ends_at_terminator_even_if_server_lingers(gopher_script_server: Start) -> None:
    linger = Lingering(b"short\r\n.\r\n")
    server = gopher_script_server(linger)
    async with Loader(timeouts=Timeouts(idle=30)) as ld:
        result = await ld.fetch(server.url("0", "/t"))
    assert result.ok and result.content == b"short\r\n"
    assert await linger.hung_up()


@pytest.mark.parametrize(
    "body",
    [
        b"3Not here\t\terror.host\t1\r\n.\r\n",
        b"3Not here\t/pic.gif\terror.host\t1\n",
        b"3Not here\t\terror.host\t1\r\niMore words\tfake\t(NULL)\t0\r\n",
    ],
)
async def test_error_item_for_any_type_is_not_found(
    gopher_script_server: Start, body: bytes
) -> None:
    server = gopher_script_server(reply(body))
    async with Loader() as ld:
        image = await ld.fetch(server.url("I", "/pic.gif"))
        menu = await ld.fetch(server.url("1", "/pic.gif"))
    for result in (image, menu):
        assert isinstance(result.error, NotFound), result
        assert "Not here" in str(result.error) and "/pic.gif" in str(result.error)
        assert result.attempts == 1


async def test_data_starting_with_3_is_not_an_error(gopher_script_server: Start) -> None:
    big = b"3 looks like an error\tbut\tis\t1\r\n" + b"x" * 10_000
    small = b"3d model\n"  # no TAB: not an item
    mixed = b"3Error\t\th\t1\r\n0But also text\t/t\th\t70\r\n"
    server = gopher_script_server(
        lambda line, sock: sock.sendall({b"/big\r\n": big, b"/small\r\n": small}.get(line, mixed))
    )
    async with Loader() as ld:
        results = [
            await ld.fetch(server.url(t, s))
            for t, s in (("9", "/big"), ("9", "/small"), ("1", "/mixed"))
        ]
    assert [r.content for r in results] == [big, small, mixed]


async def test_server_closes_without_reply(gopher_script_server: Start) -> None:
    server = gopher_script_server(reply(b""))
    async with Loader(retries=Retries(attempts=2, backoff=0.01)) as ld:
        menu = await ld.fetch(server.url("1", "/"))
        empty_file = await ld.fetch(server.url("9", "/empty"))
    assert isinstance(menu.error, NetworkError)
    assert menu.attempts == 2  # transient: retried
    assert empty_file.ok and empty_file.content == b""


async def test_server_resets_mid_transfer(gopher_script_server: Start) -> None:
    server = gopher_script_server(reply(b"x" * 100_000, reset=True))
    async with Loader(retries=ONE_TRY) as ld:
        result = await ld.fetch(server.url("9", "/big.bin"))
    # A reset may hit before or after the bytes are read; either it is an
    # error, or the bytes that made it are all there.
    if result.ok:
        assert result.content == b"x" * 100_000
    else:
        assert isinstance(result.error, NetworkError)


async def test_server_closes_mid_menu(gopher_script_server: Start) -> None:
    server = gopher_script_server(reply(b"0one\t/1\th\t70\r\n0two\t/2\th\t70\r\n0thr"))
    async with Loader() as ld:
        result = await ld.fetch(server.url("1", "/"))
    assert result.ok and result.content is not None
    # The cut line cannot be a link: it is kept as text.
    items = parse_menu(result.content)
    assert [(i.type, i.display) for i in items] == [("0", "one"), ("0", "two"), ("i", "0thr")]


async def test_idle_timeout(gopher_script_server: Start) -> None:
    def stall(_line: bytes, sock: socket.socket) -> None:
        sock.sendall(b"0one\t/1\th\t70\r\n")
        time.sleep(2)

    server = gopher_script_server(stall)
    async with Loader(retries=ONE_TRY, timeouts=Timeouts(idle=0.2)) as ld:
        result = await ld.fetch(server.url("1", "/"))
    assert isinstance(result.error, IdleTimeout)


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Loader(retries=ONE_TRY) as ld:
        result = await ld.fetch(f"gopher://127.0.0.1:{port}/1/")
    assert isinstance(result.error, ConnectError)
    assert result.error.url == f"gopher://127.0.0.1:{port}/1/"


@pytest.mark.parametrize(
    ("item", "selector", "expected"),
    [
        ("1", "/", ("text/x-gopher-menu", "gopher-menu")),
        ("7", "/s", ("text/x-gopher-menu", "gopher-menu")),
        ("h", "/page", ("text/html", "html")),
        ("h", "/page.html", ("text/html", "html")),
        ("h", "/pics/dog.png", ("image/png", None)),
        ("h", "URL:http://e.org/", ("text/html", "html")),
        ("0", "/a.txt", ("text/plain", None)),
        ("0", "/a.html", ("text/html", "html")),
        ("g", "/x", ("image/gif", None)),
        ("I", "/x.jpg", ("image/jpeg", None)),
        ("I", "/x", ("application/octet-stream", None)),
        ("I", "/x.txt", ("application/octet-stream", None)),
        ("s", "/x.wav", ("audio/x-wav", None)),
        ("d", "/x.pdf", ("application/pdf", None)),
        ("Z", "/x", ("application/octet-stream", None)),
    ],
)
def test_content_types(item: str, selector: str, expected: tuple[str, str | None]) -> None:
    assert content_type_for(item, selector) == expected


async def test_events_when_the_server_answers_with_an_error(gopher_server: GopherServer) -> None:
    events: list[Event] = []
    async with Loader() as ld:
        result = await ld.fetch(gopher_server.url("0", "/missing.txt"), callback=events.append)
    assert isinstance(result.error, NotFound)
    assert phases(events) == [
        "HANDLE_CREATED",
        "CONNECTING_TO_SERVER",
        "CONNECTED_TO_SERVER",
        "SENDING_REQUEST",
        "REQUEST_SENT",
        "RECEIVING_RESPONSE",
        "CLOSING_CONNECTION",
        "CONNECTION_CLOSED",
        "FAILED",
    ]
    assert events[-1].error is result.error


PLAIN_ERROR = b"Error: File or directory not found! (null)\r\n____\r\n  Gophered by Gophernicus\r\n"


@pytest.mark.anyio
@pytest.mark.parametrize("item_type", ["1", "7"])
async def test_plain_text_error_for_a_menu_is_not_found(
    gopher_script_server: Start, item_type: str
) -> None:
    # gophernicus's answer to a missing selector without a trailing "/".
    server = gopher_script_server(reply(PLAIN_ERROR))
    url = server.url(item_type, "/missing")
    async with Loader() as ld:
        result = await ld.fetch(url)
    assert isinstance(result.error, NotFound) and result.error.url == url
    assert "Error: File or directory not found! (null)" in result.error.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("item_type", "body"),
    [
        ("0", PLAIN_ERROR),  # a text that happens to start with "Error"
        ("1", b"iError handling notes\tfake\t(NULL)\t0\r\n"),  # a menu with items
        ("1", b"Errors are listed below\r\n0List\t/l\th\t70\r\n"),
    ],
)
async def test_replies_starting_with_error_that_are_documents(
    gopher_script_server: Start, item_type: str, body: bytes
) -> None:
    server = gopher_script_server(reply(body))
    async with Loader() as ld:
        result = await ld.fetch(server.url(item_type, "/doc"))
    assert result.ok and result.content == body


@pytest.mark.anyio
async def test_menu_ends_at_terminator_even_if_server_lingers(gopher_script_server: Start) -> None:
    linger = Lingering(b"iok\tfake\t(NULL)\t0\r\n.\r\nnot part of the menu")
    server = gopher_script_server(linger)
    async with Loader(retries=ONE_TRY, timeouts=Timeouts(idle=30)) as ld:
        result = await ld.fetch(server.url("1", "/"))
    assert result.ok and result.content == b"iok\tfake\t(NULL)\t0\r\n.\r\n"
    assert await linger.hung_up()


@pytest.mark.anyio
@pytest.mark.parametrize("item_type", ["1", "0", "I"])
async def test_error_item_from_a_lingering_server(gopher_script_server: Start, item_type: str) -> None:
    linger = Lingering(b"3Not here\t\terror.host\t1\r\n.\r\n")
    server = gopher_script_server(linger)
    url = server.url(item_type, "/gone")
    async with Loader(retries=ONE_TRY, timeouts=Timeouts(idle=30)) as ld:
        result = await ld.fetch(url)
    assert isinstance(result.error, NotFound) and "Not here" in result.error.message
    assert await linger.hung_up()


@pytest.mark.anyio
async def test_binary_after_a_dot_line_is_not_cut(gopher_script_server: Start) -> None:
    wire = b"3 items?\r\n.\r\n" + bytes(range(256)) * 64
    server = gopher_script_server(reply(wire))
    async with Loader() as ld:
        result = await ld.fetch(server.url("9", "/b.bin"))
    assert result.ok and result.content == wire
