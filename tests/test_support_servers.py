"""The test servers behave as ``support/http_server.py`` and ``support/raw_server.py`` say.

Checked with plain ``http.client``, ``urllib`` and ``socket``, so a loader bug can never
hide a server bug.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from email.message import Message

import pytest
from support.http_server import FIXTURES_DIR, GZIP_TEXT, HTTPTestServer, pattern_bytes
from support.raw_server import Handler, RawServer, hold, recv_until, send_lines

StartRaw = Callable[[Handler], RawServer]


def request(
    server: HTTPTestServer,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> tuple[int, Message, bytes]:
    """One request on a fresh connection: status, headers, body."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def wait_idle(server: HTTPTestServer) -> None:
    """Wait until no request from an earlier test is still being answered."""
    deadline = time.monotonic() + 2
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.in_flight == 0


# -- /files ---------------------------------------------------------------------------


def test_files_serves_text_with_type_and_length(http_server: HTTPTestServer) -> None:
    status, headers, body = request(http_server, "/files/http/hello.txt")
    assert status == 200
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == "13"
    assert body == b"hello, world\n"


def test_files_serves_binary_unchanged(http_server: HTTPTestServer) -> None:
    status, headers, body = request(http_server, "/files/http/logo.png")
    assert status == 200
    assert headers["Content-Type"] == "image/png"
    assert body.startswith(b"\x89PNG\r\n\x1a\n")
    assert body == (FIXTURES_DIR / "http" / "logo.png").read_bytes()


@pytest.mark.parametrize("path", ["/files/http/", "/page/index.html"])
def test_directory_index_and_page_alias(http_server: HTTPTestServer, path: str) -> None:
    status, headers, body = request(http_server, path)
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert b'<img src="logo.png"' in body


@pytest.mark.parametrize(
    "path",
    [
        "/files/http/missing.txt",
        "/files/../pyproject.toml",
        "/files/%2e%2e/pyproject.toml",
        "/files/http/../../tests/conftest.py",
        "/no-such-route",
    ],
)
def test_missing_or_outside_fixtures_is_404(http_server: HTTPTestServer, path: str) -> None:
    assert request(http_server, path)[0] == 404


def test_head_and_keep_alive_on_one_connection(http_server: HTTPTestServer) -> None:
    http_server.reset()
    conn = http.client.HTTPConnection(http_server.host, http_server.port, timeout=5)
    try:
        conn.request("HEAD", "/files/http/logo.png")
        head = conn.getresponse()
        assert (head.status, head.headers["Content-Length"], head.read()) == (200, "75", b"")
        conn.request("GET", "/bytes/10")
        assert conn.getresponse().read() == pattern_bytes(10)
    finally:
        conn.close()
    assert [(r.method, r.path) for r in http_server.requests] == [
        ("HEAD", "/files/http/logo.png"),
        ("GET", "/bytes/10"),
    ]
    assert http_server.connections == 1


# -- scripted routes ------------------------------------------------------------------


@pytest.mark.parametrize("code", [201, 404, 418, 503])
def test_status(http_server: HTTPTestServer, code: int) -> None:
    assert request(http_server, f"/status/{code}")[::2] == (code, f"status {code}\n".encode())


def test_status_204_has_no_body(http_server: HTTPTestServer) -> None:
    status, headers, body = request(http_server, "/status/204")
    assert (status, body, headers["Content-Length"]) == (204, b"", None)


def test_redirect_counts_down_to_done(http_server: HTTPTestServer) -> None:
    status, headers, _ = request(http_server, "/redirect/2")
    assert (status, headers["Location"]) == (302, "/redirect/1")
    with urllib.request.urlopen(http_server.url("/redirect/3"), timeout=5) as response:
        assert response.url == http_server.url("/redirect/0")
        assert response.read() == b"done"


def test_redirect_to_and_loop(http_server: HTTPTestServer) -> None:
    target = http_server.alt_url("/files/http/hello.txt")
    status, headers, _ = request(http_server, f"/redirect-to?url={target}&status=307")
    assert (status, headers["Location"]) == (307, target)
    assert request(http_server, "/redirect-to?url=/x")[1]["Location"] == "/x"
    assert request(http_server, "/redirect-to")[0] == 400
    assert request(http_server, "/loop")[1]["Location"] == "/loop2"
    assert request(http_server, "/loop2")[1]["Location"] == "/loop"


def test_pattern_bytes_matches_the_definition() -> None:
    assert pattern_bytes(1000) == bytes(i % 251 for i in range(1000))
    assert pattern_bytes(300, offset=600) == bytes(i % 251 for i in range(600, 900))


def test_bytes_with_content_length(http_server: HTTPTestServer) -> None:
    status, headers, body = request(http_server, "/bytes/200000")
    assert (status, headers["Content-Length"]) == (200, "200000")
    assert body == pattern_bytes(200_000)


def test_chunked(http_server: HTTPTestServer) -> None:
    status, headers, body = request(http_server, "/chunked/100000?chunk=30000")
    assert (status, headers["Transfer-Encoding"], headers["Content-Length"]) == (
        200,
        "chunked",
        None,
    )
    assert body == pattern_bytes(100_000)
    assert request(http_server, "/chunked/0")[2] == b""


def test_bytes_in_delayed_chunks(http_server: HTTPTestServer) -> None:
    started = time.monotonic()
    assert request(http_server, "/bytes/300?chunk=100&delay=0.05")[2] == pattern_bytes(300)
    assert time.monotonic() - started >= 0.1


def test_slow_and_latency_wait_first(http_server: HTTPTestServer) -> None:
    started = time.monotonic()
    assert request(http_server, "/slow?delay=0.1")[2] == b"slow"
    assert request(http_server, "/latency/100/http/hello.txt")[2] == b"hello, world\n"
    assert time.monotonic() - started >= 0.2


def test_stall_sends_some_bytes_then_nothing(http_server: HTTPTestServer) -> None:
    with socket.create_connection((http_server.host, http_server.port), timeout=5) as sock:
        sock.sendall(b"GET /stall?after=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        head = recv_until(sock, b"\r\n\r\n")
        assert b"Content-Length: 10000" in head
        assert sock.recv(100) == pattern_bytes(5)
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(100)
    wait_idle(http_server)  # the server notices the hang-up instead of sleeping 30 s


@pytest.mark.parametrize("reset", [False, True])
def test_drop_closes_mid_body(http_server: HTTPTestServer, reset: bool) -> None:
    conn = http.client.HTTPConnection(http_server.host, http_server.port, timeout=5)
    try:
        conn.request("GET", f"/drop?after=10&reset={int(reset)}")
        response = conn.getresponse()
        assert response.headers["Content-Length"] == "100000"
        with pytest.raises((http.client.IncompleteRead, ConnectionResetError)) as caught:
            response.read()
        if not reset:
            assert isinstance(caught.value, http.client.IncompleteRead)
            assert caught.value.partial == pattern_bytes(10)
    finally:
        conn.close()


def test_flaky_fails_then_recovers(http_server: HTTPTestServer) -> None:
    path = f"/flaky/{uuid.uuid4().hex}/2?status=503&retry_after=1"
    first, second, third = (request(http_server, path) for _ in range(3))
    assert (first[0], first[1]["Retry-After"]) == (503, "1")
    assert second[0] == 503
    assert (third[0], third[2]) == (200, b"recovered")
    assert request(http_server, f"/flaky/{uuid.uuid4().hex}/1?status=429")[0] == 429


def test_headers_echo_and_alt_url(http_server: HTTPTestServer) -> None:
    body = request(http_server, "/headers", headers={"X-Test": "yes"})[2]
    assert json.loads(body)["x-test"] == "yes"
    with urllib.request.urlopen(http_server.alt_url("/headers"), timeout=5) as response:
        assert json.loads(response.read())["host"] == f"localhost:{http_server.port}"
    assert http_server.base == f"http://127.0.0.1:{http_server.port}"
    assert http_server.url("/a") == http_server.url("a") == http_server.base + "/a"


def test_set_cookie_and_gzip(http_server: HTTPTestServer) -> None:
    headers = request(http_server, "/set-cookie?a=1&b=2")[1]
    assert headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    _, headers, body = request(http_server, "/gzip")
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == GZIP_TEXT


# -- counters -------------------------------------------------------------------------


def test_requests_log_and_hits(http_server: HTTPTestServer) -> None:
    http_server.reset()
    request(http_server, "/status/200", headers={"X-Trace": "1"})
    request(http_server, "/files/http/hello.txt?v=1")
    method, path, headers = http_server.requests[0]
    assert (method, path, headers["x-trace"]) == ("GET", "/status/200", "1")
    assert http_server.hits("/files/http/hello.txt") == 1
    assert http_server.hits("/files/http/hello.txt?v=1") == 1
    assert http_server.hits("/status/404") == 0
    http_server.reset()
    assert (http_server.requests, http_server.connections) == ([], 0)


def test_max_concurrent(http_server: HTTPTestServer) -> None:
    wait_idle(http_server)
    http_server.reset()
    threads = [
        threading.Thread(target=request, args=(http_server, "/slow?delay=0.2")) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert http_server.max_concurrent == 3
    http_server.reset()
    for _ in range(5):  # back to back on new connections: never counted as overlapping
        request(http_server, "/bytes/100000")
    assert http_server.max_concurrent == 1


# -- raw server -----------------------------------------------------------------------


def test_raw_server_runs_the_script(raw_server: StartRaw) -> None:
    def half_response(conn: socket.socket) -> None:
        recv_until(conn, b"\r\n\r\n")
        send_lines(conn, ["HTTP/1.1 200 OK", "Content-Length: 100", ""])
        conn.sendall(b"short")

    server = raw_server(half_response)
    assert server.url("gopher", "1/menu") == f"gopher://127.0.0.1:{server.port}/1/menu"
    for _ in range(2):
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while chunk := sock.recv(1024):
                reply += chunk
        assert reply == b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"
    assert server.connections == 2


def test_recv_until_stops_at_the_marker() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.sendall(b"USER a\r")
        right.sendall(b"\nPASS b\r\nrest")
        assert recv_until(left) == b"USER a\r\n"
        assert recv_until(left) == b"PASS b\r\n"
        right.shutdown(socket.SHUT_WR)
        assert recv_until(left) == b"rest"  # the peer closed first: what arrived


def test_hold_ends_when_the_peer_hangs_up() -> None:
    left, right = socket.socketpair()
    with left:
        assert hold(left, 0.02) is False
        right.close()
        started = time.monotonic()
        assert hold(left, 5) is True
        assert time.monotonic() - started < 1


def test_raw_server_close_wakes_handlers_and_keeps_errors() -> None:
    def script(conn: socket.socket) -> None:
        hold(conn)
        raise RuntimeError("script bug")

    server = RawServer(script)
    with socket.create_connection((server.host, server.port), timeout=5):
        deadline = time.monotonic() + 2
        while not server.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 0.5
    assert [str(e) for e in server.errors] == ["script bug"]


def test_refused_port(refused_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", refused_port), timeout=2)
