"""The HTTP plugin's own HTTP/1.1 transport (``loader_http._transport``) against scripted peers.

Each test drives ``FastTransport`` under a real ``httpx.AsyncClient`` (the way the
handler uses it) against a raw-socket server that writes exactly the bytes a case
needs: keep-alive, framing per RFC 9112 §6.3, stale idle connections, and
malformed replies.  Whole-stack behaviour against real servers is covered by
``test_http_plugin.py`` (the standard library's server) and
``test_http_second_server.py`` (hypercorn).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from loader_http._http11 import Head, framing, parse_head
from loader_http._transport import FastTransport
from support.raw_server import recv_until

from loader import Loader, Phase

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "uvloop", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Every case on asyncio, uvloop (their protocols differ from anyio's) and trio."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
        return ("asyncio", {"use_uvloop": True})
    return request.param

Reply = Callable[[socket.socket, bytes, int], bool]
"""Answers one request head (the n-th on its connection); False ends the connection."""


class Script:
    """A raw keep-alive server loop: reads request heads and lets ``reply`` answer each."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self._lock = threading.Lock()

    def __call__(self, conn: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        n = 0
        while True:
            head = _read_head(conn)
            if not head.endswith(b"\r\n\r\n"):
                return
            with self._lock:
                self.requests.append(head)
            if not self.reply(conn, head, n):
                return
            n += 1


def _read_head(conn: socket.socket) -> bytes:
    if not isinstance(conn, ssl.SSLSocket):
        return recv_until(conn, b"\r\n\r\n")
    head = b""  # TLS sockets cannot peek: a byte at a time never reads past the head
    while not head.endswith(b"\r\n\r\n") and (byte := conn.recv(1)):
        head += byte
    return head


def ok(body: bytes, *extra: str) -> bytes:
    headers = "".join(f"{h}\r\n" for h in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), headers.encode(), body)


@pytest.fixture
def serve(raw_server: Any) -> Callable[[Reply], tuple[Script, Any]]:
    def start(reply: Reply) -> tuple[Script, Any]:
        script = Script(reply)
        return script, raw_server(script)

    return start


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, FastTransport]]:
    transport = FastTransport(fallback=httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(transport=transport, timeout=5.0) as c:
        yield c, transport


# -- keep-alive and reuse -------------------------------------------------------------


async def test_requests_reuse_one_connection(serve: Any, client: Any) -> None:
    script, server = serve(lambda c, head, n: c.sendall(ok(b"body %d" % n)) or True)
    c, transport = client
    bodies = [(await c.get(server.url("http", f"/r{i}"))).content for i in range(5)]
    assert bodies == [b"body %d" % i for i in range(5)]
    assert script.connections == 1 == transport.connections_opened
    assert [h.split(b" ")[1] for h in script.requests] == [b"/r%d" % i for i in range(5)]


async def test_request_head_is_well_formed(serve: Any, client: Any) -> None:
    script, server = serve(lambda c, head, n: c.sendall(ok(b"")) or True)
    c, _ = client
    await c.get(server.url("http", "/a%20b?q=1&r=2"), headers={"X-Test": "yes"})
    head = script.requests[0]
    assert head.startswith(b"GET /a%20b?q=1&r=2 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in head and b"\r\nX-Test: yes\r\n" in head


async def test_idle_connection_closed_by_the_server_is_not_used(serve: Any, client: Any) -> None:
    # The server answers once and hangs up: the pool must notice before the next request.
    script, server = serve(lambda c, head, n: c.sendall(ok(b"once")) and False)
    c, transport = client
    first = await c.get(server.url("http", "/1"))
    await anyio.sleep(0.05)
    second = await c.get(server.url("http", "/2"))
    assert first.content == second.content == b"once"
    assert script.connections == 2 == transport.connections_opened


def _first_request_only(c: socket.socket, head: bytes, n: int) -> bool:
    """Answer a connection's first request; read the second, then hang up without a word
    (as a server whose keep-alive timer fired does)."""
    if n == 0:
        c.sendall(ok(b"first"))
        return True
    return False


async def test_stale_connection_is_retried_once_for_an_idempotent_request(serve: Any, client: Any) -> None:
    # GET is sent again on a new connection.
    script, server = serve(_first_request_only)
    c, transport = client
    assert (await c.get(server.url("http", "/1"))).content == b"first"
    assert (await c.get(server.url("http", "/2"))).content == b"first"  # a new connection's first reply
    assert transport.connections_opened == 2


async def test_stale_connection_is_not_retried_for_post(serve: Any, client: Any) -> None:
    _, server = serve(_first_request_only)
    c, transport = client
    await c.get(server.url("http", "/1"))
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await c.post(server.url("http", "/2"), content=b"payload")
    assert transport.connections_opened == 1


async def test_connection_close_is_honoured(serve: Any, client: Any) -> None:
    script, server = serve(lambda c, head, n: c.sendall(ok(b"x", "Connection: close")) or True)
    c, transport = client
    for _ in range(3):
        assert (await c.get(server.url("http", "/"))).content == b"x"
    assert transport.connections_opened == 3


async def test_http10_without_keep_alive_is_not_reused(serve: Any, client: Any) -> None:
    reply = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    _, server = serve(lambda c, head, n: c.sendall(reply) or True)
    c, transport = client
    r1 = await c.get(server.url("http", "/"))
    r2 = await c.get(server.url("http", "/"))
    assert r1.content == r2.content == b"hi" and r1.http_version == "HTTP/1.0"
    assert transport.connections_opened == 2


async def test_keepalive_expiry(serve: Any) -> None:
    _, server = serve(lambda c, head, n: c.sendall(ok(b"x")) or True)
    transport = FastTransport(fallback=httpx.AsyncHTTPTransport(), keepalive_expiry=0.0)
    async with httpx.AsyncClient(transport=transport) as c:
        for _ in range(3):
            await c.get(server.url("http", "/"))
    assert transport.connections_opened == 3


async def test_pool_keeps_at_most_max_idle(serve: Any) -> None:
    def reply(c: socket.socket, head: bytes, n: int) -> bool:
        time.sleep(0.05)
        c.sendall(ok(b"x"))
        return True

    script, server = serve(reply)
    transport = FastTransport(fallback=httpx.AsyncHTTPTransport(), max_idle=1)
    async with httpx.AsyncClient(transport=transport) as c:
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(c.get, server.url("http", "/"))
        assert transport.connections_opened == 3 and transport._idle_count == 1
        await c.get(server.url("http", "/"))
        assert transport.connections_opened == 3  # the one kept is reused


async def test_early_close_of_a_body_discards_the_connection(serve: Any, client: Any) -> None:
    big = b"z" * 300_000
    _, server = serve(lambda c, head, n: c.sendall(ok(big)) or True)
    c, transport = client
    async with c.stream("GET", server.url("http", "/")) as response:
        async for _chunk in response.aiter_raw():
            break
    assert (await c.get(server.url("http", "/"))).content == big
    assert transport.connections_opened == 2


# -- framing ------------------------------------------------------------------------


async def test_chunked_body_with_extensions_and_trailers(serve: Any, client: Any) -> None:
    def reply(c: socket.socket, head: bytes, n: int) -> bool:
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n")
        time.sleep(0.02)  # a chunk split across reads
        c.sendall(b"6\r\n wor")
        time.sleep(0.02)
        c.sendall(b"ld\r\n0\r\nX-Trailer: yes\r\n\r\n")
        return True

    _, server = serve(reply)
    c, transport = client
    assert (await c.get(server.url("http", "/"))).content == b"hello world"
    assert (await c.get(server.url("http", "/"))).content == b"hello world"
    assert transport.connections_opened == 1


async def test_close_delimited_body(serve: Any, client: Any) -> None:
    def reply(c: socket.socket, head: bytes, n: int) -> bool:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        return False

    _, server = serve(reply)
    c, transport = client
    assert (await c.get(server.url("http", "/"))).content == b"until the end"
    assert (await c.get(server.url("http", "/"))).content == b"until the end"
    assert transport.connections_opened == 2


async def test_lf_only_line_endings_and_folded_header(serve: Any, client: Any) -> None:
    reply = b"HTTP/1.1 200 OK\nX-Long: one\n two\nContent-Length: 3\n\nabc"
    _, server = serve(lambda c, head, n: c.sendall(reply) or True)
    c, _ = client
    response = await c.get(server.url("http", "/"))
    assert response.content == b"abc" and response.headers["x-long"] == "one two"


async def test_interim_responses_are_skipped(serve: Any, client: Any) -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + ok(b"final")
    _, server = serve(lambda c, head, n: c.sendall(reply) or True)
    c, _ = client
    response = await c.get(server.url("http", "/"))
    assert response.status_code == 200 and response.content == b"final"


async def test_head_and_204_have_no_body_and_keep_the_connection(serve: Any, client: Any) -> None:
    def reply(c: socket.socket, head: bytes, n: int) -> bool:
        if head.startswith(b"HEAD"):
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        else:
            c.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        return True

    _, server = serve(reply)
    c, transport = client
    head = await c.head(server.url("http", "/"))
    empty = await c.get(server.url("http", "/"))
    assert head.content == b"" and head.headers["content-length"] == "1000"
    assert empty.status_code == 204 and empty.content == b""
    assert transport.connections_opened == 1


async def test_bytes_beyond_the_declared_length_end_reuse(serve: Any, client: Any) -> None:
    _, server = serve(lambda c, head, n: c.sendall(ok(b"abc") + b"GARBAGE") or True)
    c, transport = client
    assert (await c.get(server.url("http", "/"))).content == b"abc"
    assert (await c.get(server.url("http", "/"))).content == b"abc"
    assert transport.connections_opened == 2


async def test_request_bodies_fixed_and_chunked(serve: Any, client: Any) -> None:
    received: list[bytes] = []

    def reply(c: socket.socket, head: bytes, n: int) -> bool:
        if b"Transfer-Encoding: chunked" in head:
            received.append(recv_until(c, b"0\r\n\r\n"))
        else:
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            received.append(c.recv(length, socket.MSG_WAITALL))
        c.sendall(ok(b"thanks"))
        return True

    _, server = serve(reply)
    c, _ = client

    async def parts() -> AsyncIterator[bytes]:
        yield b"one"
        yield b"two"

    assert (await c.post(server.url("http", "/"), content=b"payload")).content == b"thanks"
    assert (await c.post(server.url("http", "/"), content=parts())).content == b"thanks"
    assert received == [b"payload", b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"]


# -- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "95 of 100 body bytes missing"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "of 5 chunk bytes missing"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "chunked is not the last"),
        (b"HTTP/1.1 200 OK\r\nX: a\rContent-Length: 0\r\n\r\n", "bare CR"),
        (b"SSH-2.0-OpenSSH_9.0\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "bad status code"),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000, "larger than"),
        (b"HTTP/1.1 200 OK\r\nContent-", "inside the response head"),
        (b"", "without sending a response"),
    ],
)
async def test_malformed_replies_fail_clearly(serve: Any, client: Any, reply: bytes, message: str) -> None:
    _, server = serve(lambda c, head, n: c.sendall(reply) and False)
    c, _ = client
    with pytest.raises(httpx.HTTPError, match=message):
        await c.get(server.url("http", "/"))


async def test_read_timeout(serve: Any) -> None:
    def silent(c: socket.socket, head: bytes, n: int) -> bool:
        c.recv(1)  # wait until the client gives up and hangs up
        return False

    _, server = serve(silent)
    async with httpx.AsyncClient(transport=FastTransport(fallback=httpx.AsyncHTTPTransport()),
                                 timeout=httpx.Timeout(5.0, read=0.2)) as c:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await c.get(server.url("http", "/"))
        assert time.monotonic() - started < 2


async def test_connect_refused(refused_port: int, client: Any) -> None:
    c, _ = client
    with pytest.raises(httpx.ConnectError, match="(?i)refused"):
        await c.get(f"http://127.0.0.1:{refused_port}/")


async def test_header_injection_is_refused(serve: Any, client: Any) -> None:
    script, server = serve(lambda c, head, n: c.sendall(ok(b"")) or True)
    c, _ = client
    with pytest.raises(httpx.LocalProtocolError, match="illegal character"):
        await c.get(server.url("http", "/"), headers={"X-Evil": "a\r\nInjected: yes"})
    assert script.requests == []


async def test_unsupported_scheme_goes_to_the_fallback() -> None:
    class Recording(httpx.AsyncBaseTransport):
        seen: list[str] = []

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.seen.append(str(request.url))
            return httpx.Response(200, content=b"fallback")

    fallback = Recording()
    transport = FastTransport(fallback=fallback, http2=True)
    async with httpx.AsyncClient(transport=transport) as c:
        assert (await c.get("https://example.invalid/x")).content == b"fallback"
    assert fallback.seen == ["https://example.invalid/x"] and transport.connections_opened == 0


# -- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_pair() -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    yield server_ctx, client_ctx


async def test_https_keep_alive_through_the_fast_transport(raw_server: Any, tls_pair: Any) -> None:
    server_ctx, client_ctx = tls_pair
    script = Script(lambda c, head, n: c.sendall(ok(b"secret %d" % n)) or True)

    def tls(conn: socket.socket) -> None:
        with server_ctx.wrap_socket(conn, server_side=True) as wrapped:
            script(wrapped)

    server = raw_server(tls)
    transport = FastTransport(fallback=httpx.AsyncHTTPTransport(verify=client_ctx), ssl_context=client_ctx)
    async with httpx.AsyncClient(transport=transport) as c:
        bodies = [(await c.get(server.url("https", "/"))).content for _ in range(3)]
    assert bodies == [b"secret 0", b"secret 1", b"secret 2"]
    assert transport.connections_opened == 1 == script.connections


async def test_https_with_an_untrusted_certificate_fails(raw_server: Any, tls_pair: Any) -> None:
    server_ctx, _ = tls_pair

    def tls(conn: socket.socket) -> None:
        try:
            server_ctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass

    server = raw_server(tls)
    default = httpx.create_ssl_context()
    transport = FastTransport(fallback=httpx.AsyncHTTPTransport(), ssl_context=default)
    async with httpx.AsyncClient(transport=transport) as c:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await c.get(server.url("https", "/"))


# -- through the loader ----------------------------------------------------------------


async def test_loader_events_come_from_the_fast_transport(serve: Any) -> None:
    _, server = serve(lambda c, head, n: c.sendall(ok(b"abc")) or True)
    phases: list[list[Phase]] = []
    async with Loader() as loader:
        for i in range(2):  # two URLs: a repeated one would complete at once from memory
            seen: list[Phase] = []
            result = await loader.fetch(server.url("http", f"/{i}"), callback=lambda e, s=seen: s.append(e.phase))
            assert result.ok and result.content == b"abc"
            phases.append(seen)
        handler = loader.handler("http")
        assert handler.client is not None
        transport = handler._routes.default  # the client's Routes send to it
        assert isinstance(transport, FastTransport) and transport.connections_opened == 1
    wire = [Phase.SENDING_REQUEST, Phase.REQUEST_SENT, Phase.RECEIVING_RESPONSE, Phase.RESPONSE_RECEIVED]
    assert [p for p in phases[0] if p in (Phase.CONNECTING_TO_SERVER, Phase.CONNECTED_TO_SERVER, *wire)] == [
        Phase.CONNECTING_TO_SERVER, Phase.CONNECTED_TO_SERVER, *wire]
    # The second request reuses the connection: no connecting phases.
    assert [p for p in phases[1] if p in (Phase.CONNECTING_TO_SERVER, Phase.CONNECTED_TO_SERVER, *wire)] == wire


async def test_standard_transport_can_be_chosen(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADER_HTTP_TRANSPORT", "httpcore")
    _, server = serve(lambda c, head, n: c.sendall(ok(b"abc")) or True)
    async with Loader() as loader:
        assert (await loader.fetch(server.url("http", "/"))).content == b"abc"
        handler = loader.handler("http")
        assert handler.client is not None and not isinstance(handler._routes.default, FastTransport)


# -- pure parsing ----------------------------------------------------------------------


def test_parse_head_and_framing_rules() -> None:
    head = parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3")
    assert head == (b"HTTP/1.1", 404, b"Not Found", [(b"Content-Length", b"3")])
    assert parse_head(b"HTTP/1.1 200").reason == b""

    def frame(method: str, status: int, version: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[str, int, bool]:
        return framing(method, Head(version, status, b"", headers))

    assert frame("GET", 200, b"HTTP/1.1", [(b"Content-Length", b"3")]) == ("length", 3, True)
    assert frame("GET", 200, b"HTTP/1.1", [(b"Content-Length", b"3, 3")]) == ("length", 3, True)
    assert frame("HEAD", 200, b"HTTP/1.1", [(b"Content-Length", b"3")]) == ("none", 0, True)
    assert frame("GET", 304, b"HTTP/1.1", []) == ("none", 0, True)
    assert frame("GET", 101, b"HTTP/1.1", []) == ("none", 0, False)  # the connection is not HTTP's any more
    # Transfer-Encoding wins over Content-Length, and such a connection is not reused.
    both = [(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")]
    assert frame("GET", 200, b"HTTP/1.1", both) == ("chunked", 0, False)
    assert frame("GET", 200, b"HTTP/1.1", [(b"Transfer-Encoding", b"gzip")]) == ("close", 0, False)
    assert frame("GET", 200, b"HTTP/1.0", [(b"Content-Length", b"1")]) == ("length", 1, False)
    keep = [(b"Content-Length", b"1"), (b"Connection", b"Keep-Alive")]
    assert frame("GET", 200, b"HTTP/1.0", keep) == ("length", 1, True)
    assert frame("GET", 200, b"HTTP/1.1", [(b"Connection", b"close"), (b"Content-Length", b"1")])[2] is False


@pytest.mark.parametrize("use_uvloop", [False, True])
def test_reading_ahead_is_bounded_on_asyncio(http_server: Any, use_uvloop: bool) -> None:
    # A fast peer and a slow reader: what the event loop buffers for us stays at one
    # chunk (uvloop would otherwise read megabytes ahead per connection).
    if use_uvloop:
        pytest.importorskip("uvloop")
    most = 0

    async def main() -> int:
        nonlocal most
        transport = FastTransport(fallback=httpx.AsyncHTTPTransport())
        async with httpx.AsyncClient(transport=transport) as c:
            async with c.stream("GET", http_server.url("/bytes/20000000")) as response:
                conn = response.extensions["network_stream"]
                total = 0
                async for chunk in response.aiter_raw():
                    total += len(chunk)
                    await anyio.sleep(0.002)  # the slow reader
                    most = max(most, conn.read_ahead())
                return total

    total = anyio.run(main, backend="asyncio", backend_options={"use_uvloop": use_uvloop})
    assert total == 20_000_000
    assert most <= 2 * 256 * 1024, most


async def test_write_timeout_when_the_peer_does_not_read(raw_server: Any) -> None:
    # The body outgrows the kernel's buffers and the transport's: the send must give up in time.
    done = threading.Event()
    server = raw_server(lambda conn: done.wait(20))
    try:
        transport = FastTransport(fallback=httpx.AsyncHTTPTransport())
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(5.0, write=0.3)) as c:
            started = time.monotonic()
            with pytest.raises(httpx.WriteTimeout):
                await c.post(server.url("http", "/"), content=b"x" * (64 << 20))
            assert time.monotonic() - started < 3
    finally:
        done.set()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize(("backend", "use_uvloop"), [("asyncio", False), ("asyncio", True), ("trio", None)])
def test_plain_http_on_asyncio_reads_through_its_own_protocol(
    serve: Any, backend: str, use_uvloop: bool | None, host: str
) -> None:
    # On asyncio (and uvloop) a plain connection is opened by the loop itself (an IP
    # address or a host name, which the loop resolves) and its bytes bypass anyio's
    # stream; on trio they go through it.  Either way several requests share the connection.
    if use_uvloop:
        pytest.importorskip("uvloop")
    from loader_http._transport import _LoopConnection, _WireConnection

    _, server = serve(lambda c, head, n: c.sendall(ok(b"body %d" % n)) or True)

    async def main() -> tuple[list[bytes], list[type]]:
        transport = FastTransport(fallback=httpx.AsyncHTTPTransport())
        bodies, kinds = [], []
        async with httpx.AsyncClient(transport=transport) as c:
            for i in range(3):
                url = server.url("http", f"/{i}").replace("127.0.0.1", host)
                async with c.stream("GET", url) as response:
                    kinds.append(type(response.extensions["network_stream"]))
                    bodies.append(await response.aread())
        assert transport.connections_opened == 1
        return bodies, kinds

    options = {"use_uvloop": use_uvloop} if backend == "asyncio" else {}
    bodies, kinds = anyio.run(main, backend=backend, backend_options=options)
    assert bodies == [b"body 0", b"body 1", b"body 2"]
    expected = _LoopConnection if backend == "asyncio" else None
    assert kinds == [expected] * 3 if expected else not any(issubclass(k, _WireConnection) for k in kinds)


def test_wire_hands_out_bytes_and_bounds_what_it_holds() -> None:
    # The protocol's own bookkeeping: bytearrays become bytes, reading pauses past
    # READ_SIZE and resumes once the bytes are taken, end of stream reads as b"".
    from collections import deque

    from loader_http._transport import READ_SIZE, _Wire

    class Transport:
        paused = False

        def pause_reading(self) -> None:
            self.paused = True

        def resume_reading(self) -> None:
            self.paused = False

        def is_closing(self) -> bool:
            return False

    async def main() -> None:
        transport = Transport()
        wire = _Wire(transport, deque(), eof=False, error=None)  # type: ignore[arg-type]
        wire.paused = False
        wire.data_received(bytearray(b"ab"))  # type: ignore[arg-type]
        data = await wire.receive(1.0)
        assert data == b"ab" and type(data) is bytes
        wire.data_received(b"x" * READ_SIZE)
        assert transport.paused
        assert len(await wire.receive(1.0)) == READ_SIZE and not transport.paused
        wire.eof_received()
        assert await wire.receive(1.0) == b""

    anyio.run(main, backend="asyncio")


def test_head_end_finds_the_first_blank_line_either_way() -> None:
    """``head_end`` (which scans a bare-LF end only before the CRLF one) against both scans."""
    import random

    from loader_http._http11 import head_end

    def both_scans(buffer: bytes) -> tuple[int, int]:
        crlf, lf = buffer.find(b"\n\r\n"), buffer.find(b"\n\n")
        if lf >= 0 and (crlf < 0 or lf < crlf):
            return lf, lf + 2
        return (crlf, crlf + 3) if crlf >= 0 else (-1, -1)

    rng = random.Random(5)
    for _ in range(50_000):
        buffer = bytes(rng.choice(b"\r\nab") for _ in range(rng.randint(0, 14)))
        assert head_end(buffer) == both_scans(buffer), buffer
        # Resuming a scan where an earlier, shorter one stopped finds the same end.
        cut = rng.randint(0, len(buffer))
        if head_end(buffer[:cut]) == (-1, -1):
            assert head_end(buffer, max(0, cut - 3)) == both_scans(buffer), (buffer, cut)
    assert head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n" + b"\n\n" * 10) == (22, 25)
    assert head_end(b"HTTP/1.1 200 OK\nA: b\n\nbody\r\n\r\n") == (20, 22)
    assert head_end(b"HTTP/1.1 200 OK\nA: b\n\r\nbody") == (20, 23)
