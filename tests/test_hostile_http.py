"""The HTTP plugin against hostile and odd servers, on every lane.

Each test that talks to a server runs on the direct lane, on httpx's lane over the
fast transport (``LOADER_HTTP_DIRECT=0``) and, where the lane matters, on httpx's
lane over httpcore (``LOADER_HTTP_TRANSPORT=httpcore``).  The servers are scripted
raw sockets on 127.0.0.1 (``support/raw_server.py``) and hypercorn for HTTP/2.
"""

from __future__ import annotations

import gzip
import socket
import threading
import zlib
from pathlib import Path
from typing import Any

import anyio
import pytest
from loader_http._decoding import Decoder
from support import direct_lane_without_proxies
from support.asgi_server import ASGITestServer
from support.raw_server import HeadRecorder, RawServer, recv_until

import loader._policy
from loader import Limits, Loader, Phase, PolicyDenied, ProtocolError, Retries, SizeLimitExceeded

pytestmark = pytest.mark.anyio

LANES = ["direct", "httpx", "httpcore"]


@pytest.fixture(params=LANES)
def lane(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Pins the HTTP plugin to one lane for the test."""
    direct_lane_without_proxies(monkeypatch)
    if request.param != "direct":
        monkeypatch.setenv("LOADER_HTTP_DIRECT", "0")
    if request.param == "httpcore":
        monkeypatch.setenv("LOADER_HTTP_TRANSPORT", "httpcore")
    return str(request.param)


def response(status: str, headers: list[str], body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    """A response with Content-Length framing."""
    lines = [f"{version} {status}", *headers, f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


class Scripted(HeadRecorder):
    """A keep-alive raw server answering each request path from ``answers``; keeps the heads."""

    def __init__(self, raw_server: Any, answers: dict[str, bytes]) -> None:
        self.answers = answers
        super().__init__(raw_server)

    def answer(self, target: bytes, head: bytes) -> bytes:
        return self.answers[target.decode()]


async def fetch(url: str, **options: Any) -> Any:
    """One fetch with a fresh loader, its events collected (``result.events``)."""
    events: list[Any] = []
    to = options.pop("to", None)
    resume = options.pop("resume", False)
    headers = options.pop("headers", None)
    async with Loader(retries=Retries(attempts=1), **options) as loader:
        result = await loader.fetch(url, to=to, resume=resume, headers=headers, callback=events.append)
    return result, events


# -- 1. bounded decoding ------------------------------------------------------------------

ZEROS = 10 * 1024 * 1024
BOMB = gzip.compress(b"\0" * ZEROS, 9)  # ~10 KiB: one network read
TEXT = b"the quick brown fox " * 5000


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def _encoded(coding: str, body: bytes) -> bytes:
    return response("200 OK", ["Content-Type: application/octet-stream", f"Content-Encoding: {coding}"], body)


async def test_a_gzip_bomb_reaches_the_core_in_bounded_pieces(raw_server: Any, lane: str) -> None:
    server = Scripted(raw_server, {"/bomb": _encoded("gzip", BOMB)})
    result, events = await fetch(server.url("/bomb"))
    assert result.ok and result.size == ZEROS
    done = [e.bytes_done for e in events if e.phase is Phase.PROGRESS]
    steps = [b - a for a, b in zip([0, *done], done, strict=False)]
    # httpx's decoders handed the core the whole 10 MiB read inflated at once.
    assert max(steps) <= 256 * 1024
    assert len(steps) >= ZEROS // (256 * 1024)


async def test_a_gzip_bomb_stops_at_max_body_as_it_inflates(raw_server: Any, lane: str) -> None:
    server = Scripted(raw_server, {"/bomb": _encoded("gzip", BOMB)})
    seen: list[int] = []

    async with Loader(retries=Retries(attempts=1), limits=Limits(max_body=1024 * 1024)) as loader:
        result = await loader.fetch(server.url("/bomb"), to=lambda chunk: seen.append(len(chunk)))
    assert isinstance(result.error, SizeLimitExceeded)
    assert sum(seen) <= 1024 * 1024 + 256 * 1024  # stopped within a piece of the cap


async def test_a_thousand_stacked_codings_are_refused(raw_server: Any, lane: str) -> None:
    body = b"x"
    server = Scripted(raw_server, {"/stack": _encoded(", ".join(["gzip"] * 1000), body)})
    result, _ = await fetch(server.url("/stack"))
    assert isinstance(result.error, ProtocolError)
    assert "more than 4 stacked content codings" in str(result.error)
    assert server.url("/stack") in str(result.error)


async def test_a_truncated_gzip_body_is_a_failure(raw_server: Any, lane: str) -> None:
    cut = gzip.compress(TEXT)[:-12]  # framing complete, the gzip stream not
    server = Scripted(raw_server, {"/cut": _encoded("gzip", cut)})
    result, _ = await fetch(server.url("/cut"))
    assert not result.ok
    assert isinstance(result.error, ProtocolError) and "truncated" in str(result.error)


async def test_every_member_of_a_gzip_body_is_decoded(raw_server: Any, lane: str) -> None:
    two = gzip.compress(TEXT) + gzip.compress(b"second member")
    server = Scripted(raw_server, {"/two": _encoded("gzip", two)})
    result, _ = await fetch(server.url("/two"))
    assert result.ok and result.content == TEXT + b"second member"


@pytest.mark.parametrize("packed", [zlib.compress(TEXT), _raw_deflate(TEXT)], ids=["zlib", "raw"])
async def test_deflate_wrapped_or_raw(raw_server: Any, lane: str, packed: bytes) -> None:
    server = Scripted(raw_server, {"/d": _encoded("deflate", packed)})
    result, _ = await fetch(server.url("/d"))
    assert result.ok and result.content == TEXT


async def test_garbage_after_a_gzip_member_is_a_failure(raw_server: Any, lane: str) -> None:
    server = Scripted(raw_server, {"/g": _encoded("gzip", gzip.compress(TEXT) + b"garbage")})
    result, _ = await fetch(server.url("/g"))
    assert isinstance(result.error, ProtocolError)


async def test_an_unknown_coding_is_a_failure_not_encoded_bytes_saved(raw_server: Any, lane: str) -> None:
    server = Scripted(raw_server, {"/u": _encoded("compress", b"\x1f\x9d...")})
    result, _ = await fetch(server.url("/u"))
    assert isinstance(result.error, ProtocolError) and "'compress'" in str(result.error)


async def test_only_codings_the_decoder_undoes_are_offered(raw_server: Any, lane: str) -> None:
    server = Scripted(raw_server, {"/e": response("200 OK", [], b"x")})
    result, _ = await fetch(server.url("/e"))
    assert result.ok
    line = next(x for x in server.heads[-1].split(b"\r\n") if x.lower().startswith(b"accept-encoding:"))
    for token in line.split(b":", 1)[1].decode().split(","):
        Decoder(token)  # raises for a coding it cannot undo (zstd, or br without a bounded brotli)


# -- 2. status, reason and version in events and results ------------------------------------


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
async def test_response_received_names_status_reason_and_version(raw_server: Any, lane: str, version: str) -> None:
    server = Scripted(raw_server, {"/v": response("200 Fine Thanks", [], b"body", version=version)})
    result, events = await fetch(server.url("/v"))
    received = [e for e in events if e.phase is Phase.RESPONSE_RECEIVED]
    assert [(e.status, e.reason, e.http_version) for e in received] == [(200, "Fine Thanks", version)]
    assert (result.status, result.reason, result.http_version) == (200, "Fine Thanks", version)


async def test_http2_responses_are_reported_as_http2(asgi_tls_server: ASGITestServer, lane: str) -> None:
    pytest.importorskip("h2")
    result, events = await fetch(asgi_tls_server.url("/bytes/100"), verify=str(asgi_tls_server.ca_path))
    received = [e for e in events if e.phase is Phase.RESPONSE_RECEIVED]
    assert [(e.status, e.reason, e.http_version) for e in received] == [(200, "OK", "HTTP/2")]
    assert (result.status, result.reason, result.http_version) == (200, "OK", "HTTP/2")


# -- 3. ALPN offers h2 first ---------------------------------------------------------------


def _alpn_offered(client_hello: bytes) -> list[bytes] | None:
    """The ALPN protocol names of a TLS ClientHello record, in the client's order."""
    body = client_hello[5 + 4 :]  # record header, handshake header
    at = 2 + 32  # version, random
    at += 1 + body[at]  # session id
    at += 2 + int.from_bytes(body[at : at + 2], "big")  # cipher suites
    at += 1 + body[at]  # compression methods
    end = at + 2 + int.from_bytes(body[at : at + 2], "big")
    at += 2
    while at < end:
        kind, size = int.from_bytes(body[at : at + 2], "big"), int.from_bytes(body[at + 2 : at + 4], "big")
        data = body[at + 4 : at + 4 + size]
        if kind == 16:  # application_layer_protocol_negotiation
            names, i = [], 2
            while i < len(data):
                names.append(data[i + 1 : i + 1 + data[i]])
                i += 1 + data[i]
            return names
        at += 4 + size
    return None


async def test_alpn_offers_h2_before_http11(raw_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("h2")
    direct_lane_without_proxies(monkeypatch)
    offered: list[list[bytes] | None] = []

    def read_hello(conn: socket.socket) -> None:
        head = _recv_exactly(conn, 5)
        record = head + _recv_exactly(conn, int.from_bytes(head[3:5], "big"))
        offered.append(_alpn_offered(record))

    server = raw_server(read_hello)
    result, _ = await fetch(server.url("https", "/"), verify=False, http2=True)
    assert not result.ok  # the server hangs up after the hello
    assert offered and offered[0] == [b"h2", b"http/1.1"]


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = conn.recv(n - len(data))
        if not more:
            break
        data += more
    return data


# -- 4. resuming a file that is already complete --------------------------------------------


async def test_416_for_the_local_size_completes_a_resume(raw_server: Any, lane: str, tmp_path: Path) -> None:
    whole = tmp_path / "whole.bin"
    whole.write_bytes(b"x" * 1000)
    server = Scripted(raw_server, {
        "/f": response("416 Range Not Satisfiable", ["Content-Range: bytes */1000"], b"no"),
        "/other": response("416 Range Not Satisfiable", ["Content-Range: bytes */2000"], b"no"),
    })
    result, _ = await fetch(server.url("/f"), to=whole, resume=True)
    assert result.ok, result.error
    assert result.status == 416 and result.size == 1000
    assert whole.read_bytes() == b"x" * 1000
    assert b"\r\nRange: bytes=1000-\r\n" in server.heads[-1]
    # A 416 that names another size is still an error (the file is not known to be whole).
    other, _ = await fetch(server.url("/other"), to=whole, resume=True)
    assert not other.ok and getattr(other.error, "status", None) == 416
    assert whole.read_bytes() == b"x" * 1000


@pytest.mark.parametrize("size_on_server", [1000, 999])
async def test_416_without_a_size_is_checked_with_head(
    raw_server: Any, lane: str, tmp_path: Path, size_on_server: int
) -> None:
    whole = tmp_path / "whole.bin"
    whole.write_bytes(b"x" * 1000)

    def lighttpd(conn: socket.socket) -> None:  # its 416 states no Content-Range
        while (head := recv_until(conn, b"\r\n\r\n")).endswith(b"\r\n\r\n"):
            if head.startswith(b"HEAD "):
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size_on_server}\r\n\r\n".encode())
            else:
                conn.sendall(response("416 Range Not Satisfiable", ["Content-Type: text/html"], b"<p>416</p>"))

    server = raw_server(lighttpd)
    result, _ = await fetch(server.url("http", "/f"), to=whole, resume=True)
    assert result.ok == (size_on_server == 1000), result.error
    assert whole.read_bytes() == b"x" * 1000


async def test_if_range_goes_with_range_and_a_full_answer_restarts(raw_server: Any, lane: str, tmp_path: Path) -> None:
    partial = tmp_path / "partial.bin"
    partial.write_bytes(b"old!")
    server = Scripted(raw_server, {"/f": response("200 OK", ['ETag: "v2"'], b"new body")})
    result, _ = await fetch(server.url("/f"), to=partial, resume=True, headers={"If-Range": '"v1"'})
    assert result.ok and result.status == 200
    assert partial.read_bytes() == b"new body"  # the validator changed: the whole new body
    head = server.heads[-1]
    assert b"\r\nRange: bytes=4-\r\n" in head and b'\r\nIf-Range: "v1"\r\n' in head


def test_continue_on_a_complete_file_exits_0(raw_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from loader.cli import main

    direct_lane_without_proxies(monkeypatch)
    body = b"complete file" * 100

    def ranges(conn: socket.socket) -> None:
        head = recv_until(conn, b"\r\n\r\n")
        start = int(head.split(b"Range: bytes=")[1].split(b"-")[0]) if b"Range: bytes=" in head else 0
        if start >= len(body):
            conn.sendall(response("416 Range Not Satisfiable", [f"Content-Range: bytes */{len(body)}"]))
        else:
            rest = body[start:]
            conn.sendall(response("206 Partial Content", [f"Content-Range: bytes {start}-{len(body) - 1}/{len(body)}"], rest))

    server = raw_server(ranges)
    target = tmp_path / "file.bin"
    target.write_bytes(body)
    assert main(["get", server.url("http", "/file.bin"), "-o", str(target), "-c", "-q"]) == 0
    assert target.read_bytes() == body


# -- 5. a proxy's CONNECT is told apart --------------------------------------------------


def _tunnel(conn: socket.socket) -> None:
    """A CONNECT proxy: one tunnel per connection, bytes copied both ways."""
    head = recv_until(conn, b"\r\n\r\n")
    host, _, port = head.split(b" ", 2)[1].decode().rpartition(":")
    upstream = socket.create_connection((host, int(port)))
    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
    back.start()
    pump(conn, upstream)
    back.join(5)
    upstream.close()


async def test_a_proxy_connect_is_reported_as_the_proxys(
    raw_server: Any, asgi_tls_server: ASGITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct_lane_without_proxies(monkeypatch)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxy = raw_server(_tunnel)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    url = asgi_tls_server.url("/bytes/10")
    result, events = await fetch(url, verify=str(asgi_tls_server.ca_path))
    assert result.ok, result.error
    target = url.split("/")[2]
    tunnel = f"CONNECT {target} via 127.0.0.1:{proxy.port}"
    tagged = [(e.phase, e.status) for e in events if e.message == tunnel]
    assert tagged == [
        (Phase.SENDING_REQUEST, None), (Phase.REQUEST_SENT, None),
        (Phase.RECEIVING_RESPONSE, None), (Phase.RESPONSE_RECEIVED, 200),
    ]
    own = [e for e in events if e.phase is Phase.RESPONSE_RECEIVED and e.message != tunnel]
    assert [(e.status, e.message) for e in own] == [(200, None)]


# -- 6. deny_private at connect time --------------------------------------------------------


class Listener:
    """A raw server that records whether any byte arrived on each connection."""

    def __init__(self, raw_server: Any) -> None:
        self.received: list[bytes] = []
        self.done = threading.Event()
        self.server: RawServer = raw_server(self._serve)

    def _serve(self, conn: socket.socket) -> None:
        try:
            try:
                data = conn.recv(65536)
            except OSError:  # reset by the client: nothing arrived either
                data = b""
            self.received.append(data)
        finally:
            self.done.set()


@pytest.mark.parametrize(("scheme", "http2"), [("http", None), ("https", None), ("https", False)],
                         ids=["http", "https-h2", "https-fast-transport"])
async def test_deny_private_refuses_before_a_byte_is_sent(
    raw_server: Any, lane: str, scheme: str, http2: bool | None
) -> None:
    listener = Listener(raw_server)
    url = listener.server.url(scheme, "/page")
    result, events = await fetch(url, deny_private=True, verify=False, http2=http2)
    assert isinstance(result.error, PolicyDenied), result.error
    assert url in str(result.error)
    assert await anyio.to_thread.run_sync(listener.done.wait, 10)  # the loop closes the socket
    assert listener.received == [b""]  # connected, then closed without a byte (TLS hello included)
    assert not any(e.phase is Phase.SENDING_REQUEST for e in events)


class _OtherLoopback(RawServer):
    host = "127.0.0.2"


async def test_deny_private_refuses_a_redirect_to_a_private_address(
    raw_server: Any, lane: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every test server is on loopback: here only 127.0.0.1 counts as private.
    real = loader._policy.address_refusal
    monkeypatch.setattr(loader._policy, "address_refusal", lambda a: real(a) if a == "127.0.0.1" else None)
    target = Listener(raw_server)
    redirecting = {"/start": response("302 Found", [f"Location: http://127.0.0.1:{target.server.port}/x"])}

    def serve(conn: socket.socket) -> None:
        head = recv_until(conn, b"\r\n\r\n")
        conn.sendall(redirecting[head.split(b" ", 2)[1].decode()])

    first = _OtherLoopback(serve)
    try:
        result, _ = await fetch(first.url("http", "/start"), deny_private=True)
    finally:
        first.close()
    assert isinstance(result.error, PolicyDenied), result.error
    assert await anyio.to_thread.run_sync(target.done.wait, 10)
    assert target.received == [b""]


# -- 7. server text in messages -----------------------------------------------------------


async def test_a_reason_phrase_cannot_drive_the_terminal(raw_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    direct_lane_without_proxies(monkeypatch)
    server = Scripted(raw_server, {
        "/bad": response("404 Not\x1b]0;pwned\x07 \x1b[2JFound", [], b""),
        "/ok": response("200 Fine\x1b[31m", [], b"body"),
    })
    failed, _ = await fetch(server.url("/bad"))
    message = str(failed.error)
    assert "\x1b" not in message and "\x07" not in message
    assert "Not\\x1b]0;pwned\\x07 \\x1b[2JFound" in message
    ok, _ = await fetch(server.url("/ok"))
    assert ok.reason == "Fine\x1b[31m"  # the result keeps what the server said


# -- the decoder on its own ---------------------------------------------------------------


def _decode(decoder: Decoder, data: bytes, step: int) -> list[bytes]:
    pieces: list[bytes] = []
    for at in range(0, len(data), step):
        pieces.extend(decoder.feed(data[at : at + step]))
    pieces.extend(decoder.finish())
    return pieces


@pytest.mark.parametrize("step", [1, 7, 4096, 1 << 20])
def test_decoder_pieces_never_exceed_the_cap(step: int) -> None:
    packed = gzip.compress(gzip.compress(b"\0" * (4 << 20) + b"tail"))
    pieces = _decode(Decoder("gzip, gzip", chunk=1000, free=1 << 30), packed, step)
    assert max(map(len, pieces)) <= 1000
    assert b"".join(pieces) == b"\0" * (4 << 20) + b"tail"


def test_decoder_stops_a_stacked_bomb_by_ratio() -> None:
    inner = gzip.compress(b"\0" * (8 << 20), 9)
    packed = gzip.compress(inner, 9)
    decoder = Decoder("gzip, gzip", free=1 << 20, ratio=1000)
    with pytest.raises(ValueError, match="expands more than 1000 times"):
        _decode(decoder, packed, 4096)
    assert decoder.bytes_out < 2 << 20  # stopped soon after the free allowance


def test_decoder_accepts_an_empty_body_and_zero_padding() -> None:
    assert _decode(Decoder("gzip"), b"", 10) == []
    assert b"".join(_decode(Decoder("gzip"), gzip.compress(b"a") + b"\0" * 9, 3)) == b"a"
    assert b"".join(_decode(Decoder("identity, gzip, identity"), gzip.compress(b"b"), 3)) == b"b"
