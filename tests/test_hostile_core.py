"""The core's promises against hostile pages and servers: caps, ports, private
addresses, and credentials that stay with the requests but out of what is shown.

Each test meets a real server on 127.0.0.1 (the scripted raw-socket server, or
the FTP and Gopher test servers).
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from support.raw_server import recv_until

from loader import Limits, Loader
from loader._errors import PolicyDenied, SizeLimitExceeded
from loader._policy import BLOCKED_PORTS, address_refusal, port_refusal

pytestmark = pytest.mark.anyio


def _http_head(conn: socket.socket, headers: str = "Content-Type: text/html\r\n") -> None:
    recv_until(conn, b"\r\n\r\n")
    conn.sendall(f"HTTP/1.1 200 OK\r\n{headers}Connection: close\r\n\r\n".encode())


def endless_page(conn: socket.socket) -> None:
    _http_head(conn)
    chunk = b"<p>" + b"x" * 65533
    while True:  # until the client hangs up
        conn.sendall(chunk)


# -- the page cap ---------------------------------------------------------------------


async def test_an_endless_page_fails_at_the_page_cap_naming_url_and_cap(raw_server: Any, tmp_path: Path) -> None:
    server = raw_server(endless_page)
    url = server.url("http", "/page.html")
    async with Loader(limits=Limits(max_page=1 << 20), entry_points=True) as loader:
        page = await loader.fetch_page(url, output=tmp_path)
    assert not page.document.ok
    error = page.document.error
    assert isinstance(error, SizeLimitExceeded)
    assert url in str(error) and "1 MiB" in str(error) and "--max-page-size" in str(error)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing under any name


async def test_a_stylesheet_is_capped_like_a_page(raw_server: Any, tmp_path: Path) -> None:
    def handler(conn: socket.socket) -> None:
        request = recv_until(conn, b"\r\n\r\n")
        if b"GET /page.html" in request:
            body = b'<link rel=stylesheet href="/s.css"><img src="/a.png">'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(body), body))
        elif b"GET /s.css" in request:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nConnection: close\r\n\r\n")
            while True:
                conn.sendall(b"a{}" * 20000)
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 3\r\n"
                         b"Connection: close\r\n\r\npng")

    server = raw_server(handler)
    async with Loader(limits=Limits(max_page=256 << 10)) as loader:
        page = await loader.fetch_page(server.url("http", "/page.html"), kinds=["image", "style"])
    assert page.document.ok
    by_url = {r.url: r for r in page.resources}
    sheet = by_url[server.url("http", "/s.css")]
    assert isinstance(sheet.error, SizeLimitExceeded)
    assert by_url[server.url("http", "/a.png")].ok  # one failed resource never sinks the page


async def test_a_page_over_the_parse_cap_says_so(raw_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import loader._page

    body = b'<img src="/a.png">' * 100

    def handler(conn: socket.socket) -> None:
        recv_until(conn, b"\r\n\r\n")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))

    server = raw_server(handler)
    monkeypatch.setattr(loader._page, "MAX_DOCUMENT", 1000)  # the fallback when max_page is None
    async with Loader(limits=Limits(max_page=None)) as ld:
        page = await ld.fetch_page(server.url("http", "/big.html"))
    assert page.document.ok and page.resources == ()
    assert len(page.warnings) == 1
    assert "not searched for requisites" in page.warnings[0] and "parse cap" in page.warnings[0]


async def test_max_body_caps_ftp_and_gopher_bodies_too(ftp_server: Any, gopher_server: Any, tmp_path: Path) -> None:
    async with Loader(limits=Limits(max_body=100)) as loader:
        ftp = await loader.fetch(ftp_server.url("/pub/binary.bin"), to=tmp_path / "ftp.bin")
        gopher = await loader.fetch(gopher_server.url("9", "/files/data.bin"), to=tmp_path / "g.bin")
    for result in (ftp, gopher):
        assert isinstance(result.error, SizeLimitExceeded), result
    assert list(tmp_path.iterdir()) == []


# -- ports of other protocols -----------------------------------------------------------


def test_port_policy_refuses_other_protocols_ports_but_a_schemes_own() -> None:
    assert port_refusal("gopher://127.0.0.1:6379/1FLUSHALL") is not None
    assert port_refusal("http://127.0.0.1:25/") is not None
    assert port_refusal("http://127.0.0.1:11211/") is not None
    assert port_refusal("ftp://127.0.0.1:21/x") is None
    assert port_refusal("http://127.0.0.1:8080/") is None
    assert port_refusal("gopher://127.0.0.1:6379/", frozenset({6379})) is None
    assert {6379, 11211, 5432, 3306, 27017, 9200} <= BLOCKED_PORTS


def _listen_on_blocked_port() -> socket.socket:
    for port in (6665, 6666, 6667, 6668, 6669, 10080, 4190):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(8)
        return sock
    pytest.skip("no blocked port is free on 127.0.0.1")


async def test_a_page_cannot_send_a_gopher_selector_to_a_blocked_port(raw_server: Any) -> None:
    listener = _listen_on_blocked_port()
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def accept() -> None:
        listener.settimeout(5)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2)
            try:
                received.append(conn.recv(100))
            except OSError:
                received.append(b"")

    body = f'<base href="gopher://127.0.0.1:{port}/"><img src="0FLUSHALL">'.encode()

    def page(conn: socket.socket) -> None:
        recv_until(conn, b"\r\n\r\n")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))

    server = raw_server(page)
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        async with Loader() as loader:
            refused = await loader.fetch_page(server.url("http", "/"))
        (result,) = refused.resources
        assert isinstance(result.error, PolicyDenied)
        assert f":{port}" in str(result.error) and "blocked port" in str(result.error)
        async with Loader(allow_ports=[port]) as loader:
            allowed = await loader.fetch_page(server.url("http", "/"))
        thread.join(5)
        assert received and received[0].startswith(b"FLUSHALL")  # only once allowed
        assert allowed.resources[0].url.endswith(f":{port}/0FLUSHALL")
    finally:
        listener.close()


async def test_a_redirect_to_a_blocked_port_is_refused(raw_server: Any) -> None:
    def handler(conn: socket.socket) -> None:
        recv_until(conn, b"\r\n\r\n")
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:11211/stats\r\n"
                     b"Content-Length: 0\r\nConnection: close\r\n\r\n")

    server = raw_server(handler)
    async with Loader() as loader:
        result = await loader.fetch(server.url("http", "/"))
    assert isinstance(result.error, PolicyDenied) and "11211" in str(result.error)


# -- private addresses --------------------------------------------------------------------


def test_private_address_refusal_covers_each_range() -> None:
    for address in ("127.0.0.1", "::1", "169.254.169.254", "10.1.2.3", "172.16.0.1",
                    "192.168.1.1", "fd12::1", "fe80::1", "100.64.0.1", "0.0.0.0", "::ffff:10.0.0.1"):
        assert address_refusal(address) is not None, address
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert address_refusal(address) is None, address


async def test_deny_private_refuses_ftp_and_gopher_before_sending(ftp_server: Any, gopher_server: Any) -> None:
    async with Loader(deny_private=True) as loader:
        ftp = await loader.fetch(ftp_server.url("/pub/hello.txt"))
        gopher = await loader.fetch(gopher_server.url("0", "/about.txt"))
    for result in (ftp, gopher):
        assert isinstance(result.error, PolicyDenied), result
        assert "127.0.0.1 is a loopback address" in str(result.error)
        assert result.attempts == 1  # a policy is final, never retried


async def test_deny_private_sends_nothing_to_the_address(raw_server: Any) -> None:
    got: list[bytes] = []

    def handler(conn: socket.socket) -> None:
        conn.settimeout(2)
        try:
            got.append(conn.recv(100))
        except OSError:
            got.append(b"")

    server = raw_server(handler)
    async with Loader(deny_private=True) as loader:
        result = await loader.fetch(server.url("gopher", "/0/x"))
    assert isinstance(result.error, PolicyDenied)
    assert got in ([], [b""])


# -- credentials ---------------------------------------------------------------------------


async def test_a_page_url_with_credentials_keeps_them_for_its_requisites(ftp_server: Any, tmp_path: Path) -> None:
    url = ftp_server.url("/site/index.html", user="bob", password="p@ss:w/rd")
    async with Loader() as loader:
        page = await loader.fetch_page(url, output=tmp_path, convert_links=True)
    assert page.document.ok
    assert page.resources and all(r.ok for r in page.resources), [r.error for r in page.resources]
    shown = [page.document.url, page.document.final_url, *(r.url for r in page.resources)]
    assert all("p@ss" not in u and "p%40ss" not in u for u in shown)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert b"p%40ss" not in text and b"p@ss" not in text, path
    assert page.manifest is not None
    manifest = json.loads(page.manifest.read_text())
    assert all(r["ok"] for r in manifest["resources"])


async def test_exists_unique_keeps_the_first_page_and_its_manifest(http_server: Any, tmp_path: Path) -> None:
    async with Loader() as loader:
        first = await loader.fetch_page(http_server.url("/files/http/index.html"), output=tmp_path)
        second = await loader.fetch_page(http_server.url("/files/http/index.html"), output=tmp_path, exists="unique")
    assert first.path is not None and second.path is not None and first.manifest and second.manifest
    assert second.path != first.path and second.manifest != first.manifest
    assert first.path.exists() and first.manifest.exists() and second.path.exists()
    assert json.loads(second.manifest.read_text())["page"]["path"] == second.path.relative_to(tmp_path).as_posix()
