"""Requests with a body: ``Loader.fetch(method=…, content=…)`` against the real test server.

The server (``/echo``, and every route for any method) reads the body as it streams
and records its length and SHA-256, so each test checks the exact bytes received.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.raw_server import recv_until, send_lines

from loader import Event, Loader, Phase, RedirectError, Request, Retries, UnsupportedScheme
from loader._upload import CHUNK, RequestContent

pytestmark = pytest.mark.anyio


class RecordingFile(io.FileIO):
    """A real file that remembers the size of every read (the client must read in chunks)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "rb")
        self.reads: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        return super().read(size)


def _pattern(n: int) -> bytes:
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def _echo(result: Any) -> dict[str, Any]:
    assert result.ok, result.error
    return json.loads(result.content)


async def test_bytes_are_posted_exactly_with_their_length(http_server: Any) -> None:
    body = b"a=1&b=two\x00\xff"
    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/echo"), method="POST", content=body)
    echo = _echo(result)
    assert echo["method"] == "POST" and echo["length"] == len(body)
    assert echo["sha256"] == hashlib.sha256(body).hexdigest()
    assert echo["content_length"] == str(len(body)) and echo["transfer_encoding"] is None


async def test_a_large_file_is_streamed_in_chunks_with_sending_progress(
    http_server: Any, tmp_path: Path
) -> None:
    size = 20 << 20
    data = _pattern(size)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    events: list[Event] = []
    with RecordingFile(source) as file:
        async with Loader() as loader:
            result = await loader.fetch(
                http_server.url("/echo"), method="PUT", content=file, callback=events.append
            )
        reads = file.reads
    echo = _echo(result)
    assert echo["length"] == size and echo["sha256"] == hashlib.sha256(data).hexdigest()
    assert echo["content_length"] == str(size)
    # Never read whole: every read asked for at most one chunk.
    assert reads and max(reads) <= CHUNK and -1 not in reads
    phases = [e.phase for e in events]
    sending = [e for e in events if e.phase is Phase.PROGRESS and e.message == "sending"]
    done = [e.bytes_done for e in sending]
    assert len(sending) >= size // CHUNK
    assert done == sorted(done) and done[-1] == size
    assert {e.bytes_total for e in sending} == {size}
    # Sending comes between the request's start and its end, before the response.
    first, last = events.index(sending[0]), events.index(sending[-1])
    assert phases.index(Phase.SENDING_REQUEST) < first and last < phases.index(Phase.REQUEST_SENT)
    answer = [e for e in events if e.phase is Phase.PROGRESS and e.message is None]
    assert answer and events.index(answer[0]) > phases.index(Phase.RESPONSE_RECEIVED)


async def test_a_path_is_put_with_its_length(http_server: Any, tmp_path: Path) -> None:
    source = tmp_path / "file.txt"
    source.write_bytes(b"x" * 100_000)
    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/echo"), method="PUT", content=source)
    echo = _echo(result)
    assert (echo["method"], echo["length"], echo["content_length"]) == ("PUT", 100_000, "100000")


async def test_an_async_iterator_is_sent_chunked(http_server: Any) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([65 + i]) * 70_000

    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/echo"), method="POST", content=parts())
    echo = _echo(result)
    expected = b"".join(bytes([65 + i]) * 70_000 for i in range(5))
    assert echo["length"] == len(expected) and echo["sha256"] == hashlib.sha256(expected).hexdigest()
    assert echo["transfer_encoding"] == "chunked"


async def test_the_standard_transport_streams_bodies_too(
    http_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADER_HTTP_TRANSPORT", "httpcore")
    data = _pattern(3 * CHUNK + 5)
    events: list[Event] = []
    async with Loader() as loader:
        result = await loader.fetch(
            http_server.url("/echo"), method="POST", content=io.BytesIO(data), callback=events.append
        )
    assert _echo(result)["sha256"] == hashlib.sha256(data).hexdigest()
    assert [e.bytes_done for e in events if e.message == "sending"][-1] == len(data)


async def test_a_get_with_a_body_does_not_take_the_direct_lane(http_server: Any) -> None:
    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/echo"), content=b"query")
    echo = _echo(result)
    assert (echo["method"], echo["body"]) == ("GET", "query")


async def test_a_post_is_not_retried_on_503(http_server: Any, anyio_backend: str) -> None:
    async with Loader(retries=Retries(attempts=3, backoff=0)) as loader:
        result = await loader.fetch(http_server.url(f"/flaky/post-once-{anyio_backend}/1"), method="POST", content=b"order=1")
    assert not result.ok and result.status == 503 and result.attempts == 1
    assert http_server.hits(f"/flaky/post-once-{anyio_backend}/1") == 1


async def test_a_post_is_retried_when_asked(http_server: Any, anyio_backend: str) -> None:
    retries = Retries(attempts=3, backoff=0, non_idempotent=True)
    async with Loader(retries=retries) as loader:
        result = await loader.fetch(http_server.url(f"/flaky/post-asked-{anyio_backend}/1"), method="POST", content=b"order=1")
    assert result.ok and result.content == b"recovered" and result.attempts == 2
    assert [b[2] for b in http_server.bodies if b[1] == f"/flaky/post-asked-{anyio_backend}/1"] == [7, 7]


async def test_a_put_is_retried_and_its_file_sent_again_whole(http_server: Any, anyio_backend: str, tmp_path: Path) -> None:
    source = tmp_path / "put.bin"
    source.write_bytes(_pattern(CHUNK * 2 + 1))
    async with Loader(retries=Retries(attempts=3, backoff=0)) as loader:
        with source.open("rb") as file:
            result = await loader.fetch(http_server.url(f"/flaky/put-twice-{anyio_backend}/1"), method="PUT", content=file)
    assert result.ok and result.attempts == 2
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert [b[3] for b in http_server.bodies if b[1] == f"/flaky/put-twice-{anyio_backend}/1"] == [digest, digest]


async def test_a_body_read_once_is_never_retried(http_server: Any, anyio_backend: str) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"once"

    retries = Retries(attempts=3, backoff=0, non_idempotent=True)
    async with Loader(retries=retries) as loader:
        result = await loader.fetch(http_server.url(f"/flaky/stream-once-{anyio_backend}/1"), method="PUT", content=parts())
    assert not result.ok and result.status == 503 and result.attempts == 1
    assert http_server.hits(f"/flaky/stream-once-{anyio_backend}/1") == 1


@pytest.mark.parametrize("status", [301, 302, 303])
async def test_a_post_redirected_becomes_a_get_without_the_body(http_server: Any, status: int) -> None:
    async with Loader() as loader:
        result = await loader.fetch(
            http_server.url(f"/redirect-to?url=/echo&status={status}"), method="POST", content=b"form=1"
        )
    echo = _echo(result)
    assert (echo["method"], echo["length"], echo["content_length"]) == ("GET", 0, None)


@pytest.mark.parametrize("status", [307, 308])
async def test_307_and_308_send_a_replayable_body_again(http_server: Any, status: int) -> None:
    async with Loader() as loader:
        result = await loader.fetch(
            http_server.url(f"/redirect-to?url=/echo&status={status}"), method="POST", content=b"form=1"
        )
    echo = _echo(result)
    assert (echo["method"], echo["body"]) == ("POST", "form=1")


async def test_307_with_a_streamed_body_fails_clearly(http_server: Any) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"streamed"

    url = http_server.url("/redirect-to?url=/echo&status=307")
    http_server.reset()
    async with Loader() as loader:
        result = await loader.fetch(url, method="POST", content=parts())
    assert not result.ok and isinstance(result.error, RedirectError)
    assert "cannot be read twice" in str(result.error) and url in str(result.error)
    assert http_server.hits("/echo") == 0


async def test_requests_with_a_body_are_never_answered_from_memory(http_server: Any) -> None:
    url = http_server.url("/echo")
    http_server.reset()
    async with Loader() as loader:
        first = await loader.fetch(url, method="POST", content=b"1")
        second = await loader.fetch(url, method="POST", content=b"22")
        get = await loader.fetch(url)
        again = await loader.fetch(url, method="DELETE")
    assert [_echo(r)["length"] for r in (first, second, get)] == [1, 2, 0]
    assert _echo(again)["method"] == "DELETE"
    assert not any(r.completed_synchronously for r in (first, second, get, again))
    assert http_server.hits("/echo") == 4


async def test_a_file_that_shrinks_while_sent_fails_naming_it(http_server: Any, tmp_path: Path) -> None:
    source = tmp_path / "shrinks.bin"
    source.write_bytes(b"x" * 200_000)
    content = RequestContent.of(source)  # its length is taken now
    source.write_bytes(b"x" * 1000)
    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/echo"), method="PUT", content=content)
    assert not result.ok
    assert "cannot read the request body" in str(result.error) and "shrank" in str(result.error)


async def test_a_plugin_that_cannot_send_bodies_refuses_them() -> None:
    async with Loader() as loader:
        result = await loader.fetch("gopher://127.0.0.1:1/0file", method="POST", content=b"x")
        deleted = await loader.fetch("gopher://127.0.0.1:1/0file", method="DELETE")
    assert isinstance(result.error, UnsupportedScheme) and result.attempts == 1
    assert "cannot send a request body" in str(result.error) and "gopher://127.0.0.1:1/0file" in str(result.error)
    assert "cannot send the DELETE method" in str(deleted.error)


async def test_an_ftp_put_stores_the_body_streamed(ftp_server: Any, ftp_scratch: str, tmp_path: Path) -> None:
    data = _pattern(5 * CHUNK + 3)
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    events: list[Event] = []
    url = ftp_server.alice(f"{ftp_scratch}/stored.bin")
    async with Loader() as loader:
        result = await loader.fetch(url, method="PUT", content=source, callback=events.append)
    assert result.ok and result.status == 226 and result.size == 0, result.error
    assert (ftp_server.root / ftp_scratch.lstrip("/") / "stored.bin").read_bytes() == data
    sending = [e.bytes_done for e in events if e.phase is Phase.PROGRESS and e.message == "sending"]
    assert sending == sorted(sending) and sending[-1] == len(data) and len(sending) > 1


async def test_ftp_refuses_other_methods_and_directories(ftp_server: Any, ftp_scratch: str) -> None:
    async with Loader() as loader:
        post = await loader.fetch(ftp_server.alice(f"{ftp_scratch}/x"), method="POST", content=b"x")
        into_directory = await loader.fetch(ftp_server.alice(f"{ftp_scratch}/"), method="PUT", content=b"x")
    assert "only store a body with PUT" in str(post.error)
    assert "needs a file name in the URL" in str(into_directory.error)
    assert list((ftp_server.root / ftp_scratch.lstrip("/")).iterdir()) == []


async def test_bad_methods_and_contents_are_refused_before_any_request() -> None:
    async with Loader() as loader:
        with pytest.raises(ValueError, match="invalid request method"):
            await loader.fetch("http://127.0.0.1:1/", method="GET /x HTTP/1.1\r\nX:")
        with pytest.raises(TypeError, match="encode the text"):
            await loader.fetch("http://127.0.0.1:1/", method="POST", content="text")
        with pytest.raises(ValueError, match="resume continues a download"):
            await loader.fetch("http://127.0.0.1:1/", to="x", resume=True, method="POST", content=b"x")


def test_requests_say_whether_they_may_be_repeated() -> None:
    assert Request(url="http://x/", method="PUT").idempotent
    assert not Request(url="http://x/", method="POST").idempotent
    assert Request(url="http://x/", content=b"x").replayable

    async def parts() -> AsyncIterator[bytes]:
        yield b""

    streamed = Request(url="http://x/", content=parts())
    assert isinstance(streamed.content, RequestContent) and not streamed.replayable
    assert streamed.with_headers(a="b").content is streamed.content


async def test_an_answer_sent_before_the_body_was_read_is_reported(raw_server: Any) -> None:
    """A server that refuses a body at once (413) and closes: its answer, not a broken pipe."""
    import socket
    import time

    def refuse(conn: socket.socket) -> None:
        recv_until(conn, b"\r\n\r\n")
        send_lines(conn, ["HTTP/1.1 413 Payload Too Large", "Content-Length: 9", "Connection: close", ""])
        conn.sendall(b"too large")
        conn.shutdown(socket.SHUT_WR)
        time.sleep(0.2)  # not a timing assertion: the answer should have arrived before the reset

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * CHUNK

    server = raw_server(refuse)
    async with Loader() as loader:
        result = await loader.fetch(server.url("http", "/upload"), method="POST", content=endless())
    assert not result.ok and result.status == 413, result.error
    assert "HTTP 413" in str(result.error)


@pytest.mark.parametrize("http2", [True, False])
async def test_bodies_stream_over_tls_to_hypercorn(asgi_tls_server: Any, tmp_path: Path, http2: bool) -> None:
    """The second, independent server (hypercorn): HTTP/2 and HTTP/1.1 over TLS, streamed."""
    if http2:
        pytest.importorskip("h2")
    data = _pattern(4 * CHUNK + 11)
    source = tmp_path / "tls.bin"
    source.write_bytes(data)
    events: list[Event] = []
    async with Loader(verify=str(asgi_tls_server.ca_path), http2=http2) as loader:
        result = await loader.fetch(
            asgi_tls_server.url("/echo"), method="POST", content=source, callback=events.append
        )
    assert result.ok and result.content == data, result.error
    assert result.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    sending = [e.bytes_done for e in events if e.phase is Phase.PROGRESS and e.message == "sending"]
    assert sending[-1] == len(data) and len(sending) > 1
