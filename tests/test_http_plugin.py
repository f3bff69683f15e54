"""The HTTP plugin: decoding, streaming, resume, and peers that misbehave (scripted raw sockets)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from support import direct_lane_without_proxies
from support.raw_server import recv_until, send_lines

from loader import Loader, NetworkError, Phase, ProtocolError, Retries

pytestmark = pytest.mark.anyio

GZIP_TEXT = b"The quick brown fox jumps over the lazy dog.\n" * 64


async def test_compressed_bodies_are_decoded(http_server: Any) -> None:
    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/gzip"))
    assert result.ok and result.content == GZIP_TEXT and result.size == len(GZIP_TEXT)


async def test_chunked_bodies_stream_to_the_caller(http_server: Any) -> None:
    chunks: list[bytes] = []

    async def write(chunk: bytes) -> None:
        chunks.append(chunk)

    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/chunked/300000"), to=write)
    body = b"".join(chunks)
    assert result.ok and result.content is None and len(body) == 300000 == result.size
    assert body == bytes(i % 251 for i in range(300000))
    assert len(chunks) > 1


async def test_resume_with_a_range_request(raw_server: Any, tmp_path: Path) -> None:
    full = b"0123456789" * 100
    seen: list[bytes] = []

    def ranged(conn: socket.socket) -> None:
        head = recv_until(conn, b"\r\n\r\n").lower()
        seen.append(head)
        start = int(head.split(b"range: bytes=")[1].split(b"-")[0]) if b"range: bytes=" in head else 0
        body = full[start:]
        send_lines(conn, [
            "HTTP/1.1 206 Partial Content" if start else "HTTP/1.1 200 OK",
            f"Content-Range: bytes {start}-{len(full) - 1}/{len(full)}",
            f"Content-Length: {len(body)}", ""
        ])
        conn.sendall(body)

    server = raw_server(ranged)
    target = tmp_path / "file.bin"
    target.write_bytes(full[:400])
    async with Loader() as loader:
        result = await loader.fetch(server.url("http", "/file.bin"), to=target, resume=True)
    assert result.ok and target.read_bytes() == full
    assert b"range: bytes=400-" in seen[0].lower()


async def test_server_ignoring_range_restarts_from_zero(raw_server: Any, tmp_path: Path) -> None:
    def whole(conn: socket.socket) -> None:
        recv_until(conn, b"\r\n\r\n")
        send_lines(conn, ["HTTP/1.1 200 OK", "Content-Length: 5", ""])
        conn.sendall(b"fresh")

    server = raw_server(whole)
    target = tmp_path / "f"
    target.write_bytes(b"stale-partial")
    async with Loader() as loader:
        result = await loader.fetch(server.url("http", "/f"), to=target, resume=True)
    assert result.ok and target.read_bytes() == b"fresh"


async def test_garbage_reply_is_a_clear_error(raw_server: Any) -> None:
    def garbage(conn: socket.socket) -> None:
        recv_until(conn, b"\r\n\r\n")
        conn.sendall(b"SSH-2.0-OpenSSH_9.0\r\n\x00\x01\x02 not http at all\r\n\r\n")

    server = raw_server(garbage)
    url = server.url("http", "/x")
    async with Loader(retries=Retries(attempts=1)) as loader:
        result = await loader.fetch(url)
    assert isinstance(result.error, NetworkError | ProtocolError)
    assert str(result.error).startswith(url)


async def test_truncated_body_is_retried_and_reported(raw_server: Any, tmp_path: Path) -> None:
    def short(conn: socket.socket) -> None:
        recv_until(conn, b"\r\n\r\n")
        send_lines(conn, ["HTTP/1.1 200 OK", "Content-Length: 100", ""])
        conn.sendall(b"only a few bytes")

    server = raw_server(short)
    events: list[Any] = []
    async with Loader(retries=Retries(attempts=2, backoff=0.01)) as loader:
        result = await loader.fetch(server.url("http", "/x"), to=tmp_path / "x", callback=events.append)
    assert isinstance(result.error, NetworkError) and result.attempts == 2
    assert [e.phase for e in events].count(Phase.RETRY) == 1
    assert list(tmp_path.iterdir()) == []
    assert server.connections == 2


async def test_connection_is_reused_across_requests(http_server: Any) -> None:
    http_server.reset()
    async with Loader() as loader:
        for n in range(5):
            assert (await loader.fetch(http_server.url(f"/bytes/{n + 1}"))).ok
    assert http_server.connections == 1


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real HTTPS server (http.server + ssl) with a certificate from a throwaway CA."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"secure")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_address[1]}/", str(ca_file)
    server.shutdown()
    server.server_close()


async def test_tls_is_verified_by_default(https_server: Any) -> None:
    url, ca_file = https_server
    async with Loader(retries=Retries(attempts=3, backoff=0.01)) as loader:
        refused = await loader.fetch(url)
    assert not refused.ok and "CERTIFICATE" in str(refused.error).upper()
    assert refused.attempts == 1  # a bad certificate is not retried
    async with Loader(verify=ca_file) as loader:
        trusted = await loader.fetch(url)
    async with Loader(verify=False) as loader:
        insecure = await loader.fetch(url + "?again")
    assert trusted.content == b"secure" and insecure.content == b"secure"


@pytest.mark.parametrize("transport", ["fast", "httpcore"])
async def test_proxies_from_the_environment(
    raw_server: Any, http_server: Any, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    # A forward proxy gets the absolute-form request; NO_PROXY hosts are reached directly.
    heads: list[bytes] = []

    def proxy(conn: socket.socket) -> None:
        heads.append(recv_until(conn, b"\r\n\r\n"))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nvia proxy")

    server = raw_server(proxy)
    monkeypatch.setenv("LOADER_HTTP_TRANSPORT", transport)
    monkeypatch.setenv("HTTP_PROXY", server.url("http", ""))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in ("http_proxy", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with Loader() as loader:
        proxied = await loader.fetch("http://site.invalid/path?q=1")  # never resolved here
        direct = await loader.fetch(http_server.url("/bytes/10"))
    assert proxied.ok and proxied.content == b"via proxy"
    assert heads and heads[0].startswith(b"GET http://site.invalid/path?q=1 HTTP/1.1\r\n")
    assert direct.ok and direct.size == 10 and len(heads) == 1


def test_cookie_jar_sees_only_responses_that_set_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    # The jar skips the cookiejar machinery without Set-Cookie, and still keeps cookies with it.
    from loader_http._client import Client as _Client
    from loader_http._client import Cookies as _Cookies
    from loader_http._lazy_httpx import httpx

    client = _Client(cookies={"preset": "1"})
    assert isinstance(client.cookies, _Cookies) and client.cookies["preset"] == "1"
    seen: list[object] = []
    monkeypatch.setattr(client.cookies.jar, "extract_cookies", lambda *args: seen.append(args))
    request = httpx.Request("GET", "http://example.test/")
    client.cookies.extract_cookies(httpx.Response(200, headers={"content-type": "text/plain"}, request=request))
    assert seen == []
    client.cookies.extract_cookies(httpx.Response(200, headers={"Set-Cookie": "a=b"}, request=request))
    assert len(seen) == 1
    client.cookies = {"other": "2"}  # the setter keeps the quick jar
    assert isinstance(client.cookies, _Cookies) and client.cookies["other"] == "2"


async def test_warm_up_builds_the_transport_the_first_request_then_uses(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct_lane_without_proxies(monkeypatch)
    async with Loader() as loader:
        handler = loader.handler("http")
        assert handler._fast is None and handler._client is None  # nothing built until asked
        handler.warm_up()
        transport = handler._fast
        assert transport is not None and handler._direct is not None
        result = await loader.fetch(http_server.url("/files/http/hello.txt"))
        assert result.ok and handler._fast is transport and transport.connections_opened == 1
        assert handler._client is None  # a plain GET needed no httpx client


async def test_httpx_client_is_built_when_a_response_needs_it_over_the_same_connections(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct_lane_without_proxies(monkeypatch)
    async with Loader() as loader:
        handler = loader.handler("http")
        first = await loader.fetch(http_server.url("/files/http/hello.txt"))
        assert first.ok and handler._client is None
        moved = await loader.fetch(http_server.url("/redirect/1"))  # a redirect: httpx builds the next request
        assert moved.ok and moved.content == b"done"
        client = handler._client
        assert client is not None and handler._routes.default is handler._fast
        again = await loader.fetch(http_server.url("/files/http/hello.txt"))
        assert again.ok and handler._direct is not None and handler._direct.client is client
        assert handler._fast.connections_opened == 1  # one keep-alive connection all along


async def test_a_proxy_in_the_environment_builds_the_client_first(
    http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct_lane_without_proxies(monkeypatch)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # not used for http: httpx's routing decides
    async with Loader() as loader:
        handler = loader.handler("http")
        result = await loader.fetch(http_server.url("/files/http/hello.txt"))
        assert result.ok and handler._client is not None


def test_the_plugins_modules_import_no_circle() -> None:
    """No module of ``loader_http`` imports one that imports it back, at any depth (lazy imports too)."""
    import ast

    import loader_http

    package = Path(loader_http.__file__).parent
    names = {path.stem for path in package.glob("*.py")}
    imports: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loader_http."):
                found.add(node.module.split(".")[1])  # type: ignore[union-attr]
        imports[path.stem] = found & names
    assert "_lazy_httpx" in imports["_transport"] and "_client" in imports["_handler"]  # the scan sees them

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in imports[start])

    assert [name for name in sorted(names) if reaches(name, name, set())] == []
