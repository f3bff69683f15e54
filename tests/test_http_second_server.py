"""The HTTP plugin against a second server implementation: hypercorn (h11, and h2 over TLS).

The same behaviour the ``http_server`` tests expect from ``http.server`` must hold against
another server's framing, keep-alive and TLS/ALPN handling (see ``support/asgi_server.py``).
Every check reads real bytes, statuses and the server's own request log.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.asgi_server import (
    PAGE_IMAGES,
    PAGE_SOUNDS,
    ASGITestServer,
    image_bytes,
    sound_bytes,
)
from support.http_server import GZIP_TEXT, pattern_bytes

from loader import Event, HTTPStatusError, Limits, Loader, Phase, Retries, hookimpl

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
SIZES = [0, 1, 65536 + 7, 3 * MiB]


def ports(server: ASGITestServer, prefix: str = "") -> list[int]:
    """The client port of each logged request whose target starts with ``prefix``, in order."""
    return [r.client_port for r in server.requests if r.path.startswith(prefix)]


class _Head:
    """A plugin that turns every request into a HEAD (the public API has no method argument)."""

    @hookimpl
    def loader_prepare_request(self, request: Any) -> Any:
        return dataclasses.replace(request, method="HEAD")


# -- the server itself (plain httpx, so a loader bug cannot hide a server bug) ----------


async def test_server_routes_answer_as_documented(asgi_server: ASGITestServer) -> None:
    async with httpx.AsyncClient(base_url=asgi_server.base) as client:
        body = await client.get("/bytes/1000")
        chunked = await client.get("/chunked/1000?chunk=100")
        head = await client.head("/bytes/1000")
        echo = await client.post("/echo", content=b"\x00request body\xff" * 100)
        wrong = await client.post("/bytes/1")
        missing = await client.get("/no-such-route")
        close = await client.get("/close/10")
    assert body.content == pattern_bytes(1000) and body.headers["content-length"] == "1000"
    assert chunked.content == pattern_bytes(1000)
    assert chunked.headers["transfer-encoding"] == "chunked" and "content-length" not in chunked.headers
    assert head.content == b"" and head.headers["content-length"] == "1000"
    assert echo.content == b"\x00request body\xff" * 100 and echo.headers["x-body-length"] == "1400"
    assert (wrong.status_code, missing.status_code) == (405, 404)
    assert close.headers["connection"] == "close" and close.content == pattern_bytes(10)


async def test_tls_server_offers_h2_and_http11(asgi_tls_server: ASGITestServer) -> None:
    pytest.importorskip("h2")
    ca = ssl.create_default_context(cafile=asgi_tls_server.ca_path)
    async with httpx.AsyncClient(verify=ca, http2=True) as h2_client:
        over_h2 = await h2_client.get(asgi_tls_server.url("/bytes/5"))
    async with httpx.AsyncClient(verify=ca) as h1_client:
        over_h1 = await h1_client.get(asgi_tls_server.url("/bytes/5"))
    assert (over_h2.http_version, over_h1.http_version) == ("HTTP/2", "HTTP/1.1")
    assert over_h2.content == over_h1.content == pattern_bytes(5)


# -- plain HTTP/1.1 ---------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_bodies_arrive_intact(asgi_server: ASGITestServer, size: int) -> None:
    asgi_server.reset()
    async with Loader() as loader:
        result = await loader.fetch(asgi_server.url(f"/bytes/{size}"))
    assert result.ok and result.status == 200, result.error
    assert result.size == size and result.content == pattern_bytes(size)
    assert result.headers["content-length"] == str(size)
    assert [(r.method, r.path, r.http_version) for r in asgi_server.requests] == [
        ("GET", f"/bytes/{size}", "1.1")
    ]


@pytest.mark.parametrize(("size", "chunk"), [(1, 1), (100_000, 4096), (3 * MiB, 65536)])
async def test_chunked_bodies_arrive_intact(asgi_server: ASGITestServer, size: int, chunk: int) -> None:
    async with Loader() as loader:
        result = await loader.fetch(asgi_server.url(f"/chunked/{size}?chunk={chunk}"))
    assert result.ok, result.error
    assert result.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in result.headers
    assert result.size == size and result.content == pattern_bytes(size)


async def test_chunked_body_streams_to_a_writer(asgi_server: ASGITestServer) -> None:
    pieces: list[bytes] = []
    async with Loader() as loader:
        result = await loader.fetch(asgi_server.url("/chunked/300000?chunk=1000"), to=pieces.append)
    assert result.ok and result.content is None and result.size == 300000
    assert b"".join(pieces) == pattern_bytes(300000) and len(pieces) > 1


async def test_head_gets_headers_and_no_body(asgi_server: ASGITestServer) -> None:
    asgi_server.reset()
    async with Loader(plugins=[("head", _Head())]) as loader:
        result = await loader.fetch(asgi_server.url("/bytes/1000"))
    assert result.ok and result.status == 200, result.error
    assert result.headers["content-length"] == "1000"
    assert result.content == b"" and result.size == 0
    assert [(r.method, r.path) for r in asgi_server.requests] == [("HEAD", "/bytes/1000")]


@pytest.mark.parametrize("code", [404, 500])
async def test_error_statuses_are_failed_results(asgi_server: ASGITestServer, code: int) -> None:
    asgi_server.reset()
    url = asgi_server.url(f"/status/{code}")
    async with Loader(retries=Retries(attempts=2, backoff=0.01)) as loader:
        result = await loader.fetch(url)
    assert not result.ok and result.status == code
    assert isinstance(result.error, HTTPStatusError) and result.error.status == code
    assert str(result.error).startswith(url) and str(code) in str(result.error)
    assert asgi_server.hits(f"/status/{code}") == result.attempts == 1  # 404/500 are not retried


async def test_redirects_are_followed_and_reported(asgi_server: ASGITestServer) -> None:
    asgi_server.reset()
    events: list[Event] = []
    async with Loader() as loader:
        result = await loader.fetch(asgi_server.url("/redirect/3"), callback=events.append)
    assert result.ok and result.content == b"done" and result.status == 200
    assert result.final_url == asgi_server.url("/redirect/0")
    redirects = [e.new_url for e in events if e.phase is Phase.REDIRECT]
    assert redirects == [asgi_server.url(f"/redirect/{n}") for n in (2, 1, 0)]
    assert [r.path for r in asgi_server.requests] == [f"/redirect/{n}" for n in (3, 2, 1, 0)]


async def test_redirect_and_error_responses_keep_the_connection(asgi_server: ASGITestServer) -> None:
    asgi_server.reset()
    async with Loader() as loader:
        redirected = await loader.fetch(asgi_server.url("/redirect/2?keep"))
        missing = await loader.fetch(asgi_server.url("/status/404?keep"))
        after = await loader.fetch(asgi_server.url("/bytes/3?keep"))
    assert redirected.content == b"done" and missing.status == 404 and after.ok
    assert len(asgi_server.requests) == 5
    assert asgi_server.connections == 1  # small 302/404 bodies are drained, not a reason to close


async def test_cookies_are_kept_across_requests(asgi_server: ASGITestServer) -> None:
    async with Loader() as loader:
        before = await loader.fetch(asgi_server.url("/headers?before"))
        await loader.fetch(asgi_server.url("/set-cookie?flavour=oat&size=2"))
        after = await loader.fetch(asgi_server.url("/headers?after"))
    assert "cookie" not in json.loads(before.content)
    cookies = sorted(json.loads(after.content)["cookie"].split("; "))
    assert cookies == ["flavour=oat", "size=2"]


async def test_gzip_is_decoded(asgi_server: ASGITestServer) -> None:
    async with Loader() as loader:
        result = await loader.fetch(asgi_server.url("/gzip"))
    assert result.ok and result.content == GZIP_TEXT and result.size == len(GZIP_TEXT)
    assert result.headers["content-encoding"] == "gzip"
    assert int(result.headers["content-length"]) == len(gzip.compress(GZIP_TEXT, mtime=0))


async def test_request_headers_reach_the_server(asgi_server: ASGITestServer) -> None:
    asgi_server.reset()
    async with Loader(user_agent="second-server/1") as loader:
        result = await loader.fetch(
            asgi_server.url("/headers"), headers={"X-Probe": "abc 123", "Accept-Language": "la"}
        )
    echoed = json.loads(result.content)
    assert echoed["x-probe"] == "abc 123" and echoed["accept-language"] == "la"
    assert echoed["user-agent"] == "second-server/1"
    (logged,) = asgi_server.requests
    assert logged.headers["x-probe"] == "abc 123"


async def test_many_requests_reuse_few_connections(asgi_server: ASGITestServer) -> None:
    asgi_server.reset()
    sizes = [(i * 997) % 20000 for i in range(200)]
    urls = [asgi_server.url(f"/bytes/{n}?i={i}") for i, n in enumerate(sizes)]
    limits = Limits()
    async with Loader(limits=limits) as loader:
        results = await loader.fetch_all(urls)
    assert [r.url for r in results] == urls
    bad = [(r.url, r.error) for r in results if not r.ok]
    assert not bad
    assert all(r.content == pattern_bytes(n) for r, n in zip(results, sizes, strict=True))
    assert len(asgi_server.requests) == 200
    assert {r.http_version for r in asgi_server.requests} == {"1.1"}
    # Keep-alive: no more connections than requests may run at once to one host.
    assert 1 <= asgi_server.connections <= limits.per_host


async def test_connection_close_is_honoured_and_later_requests_succeed(
    asgi_server: ASGITestServer,
) -> None:
    asgi_server.reset()
    async with Loader() as loader:
        first = await loader.fetch(asgi_server.url("/bytes/10?first"))
        closing = await loader.fetch(asgi_server.url("/close/5000"))
        later = [await loader.fetch(asgi_server.url(f"/bytes/{n}?later")) for n in range(1, 6)]
    assert first.ok and first.content == pattern_bytes(10)
    assert closing.ok and closing.content == pattern_bytes(5000)
    assert closing.headers["connection"] == "close"
    assert all(r.ok and r.content == pattern_bytes(n) for n, r in enumerate(later, 1))
    logged = ports(asgi_server)
    assert len(logged) == 7
    # The closing response was on the kept-alive connection; every later request needed a
    # new one, and they all share it.
    assert logged[0] == logged[1] and logged[1] not in logged[2:]
    assert len(set(logged[2:])) == 1


async def test_concurrent_mix_of_closing_and_kept_alive_responses(
    asgi_server: ASGITestServer,
) -> None:
    asgi_server.reset()
    paths = [f"/close/{1000 + i}" if i % 3 == 0 else f"/bytes/{1000 + i}" for i in range(60)]
    async with Loader() as loader:
        results = await loader.fetch_all(asgi_server.url(p) for p in paths)
    assert [r.ok for r in results] == [True] * 60, [r.error for r in results if not r.ok]
    assert all(r.content == pattern_bytes(1000 + i) for i, r in enumerate(results))
    assert len(asgi_server.requests) == 60
    # No request followed a /close/ response on its connection.
    by_port: dict[int, list[str]] = {}
    for r in asgi_server.requests:
        by_port.setdefault(r.client_port, []).append(r.path)
    for sequence in by_port.values():
        assert all(not p.startswith("/close/") for p in sequence[:-1]), sequence


async def test_whole_page_is_saved_intact(asgi_server: ASGITestServer, tmp_path: Path) -> None:
    asgi_server.reset()
    async with Loader() as loader:
        page = await loader.fetch_page(asgi_server.url("/page.html"), output=tmp_path)
    assert page.ok, [r.error for r in page.failed]
    expected = {f"/img/{i}.png": image_bytes(i) for i in range(PAGE_IMAGES)}
    expected |= {f"/snd/{i}.ogg": sound_bytes(i) for i in range(PAGE_SOUNDS)}
    saved = {r.url.removeprefix(asgi_server.base): r for r in page.resources}
    assert saved.keys() == expected.keys()
    for path, body in expected.items():
        result = saved[path]
        assert result.path is not None and result.path.is_file(), path
        assert result.path.read_bytes() == body, path
        assert result.kind == ("image" if path.startswith("/img/") else "sound")
        assert result.path.is_relative_to(tmp_path)
    assert page.path is not None and page.path.read_bytes().count(b"<img ") == PAGE_IMAGES
    assert sorted(r.path for r in asgi_server.requests) == sorted(["/page.html", *expected])
    assert asgi_server.connections <= Limits().per_host


# -- TLS, HTTP/2 and HTTP/1.1 -----------------------------------------------------------


@pytest.mark.parametrize("size", [0, 65536 + 7, 3 * MiB])
async def test_tls_bodies_arrive_intact(asgi_tls_server: ASGITestServer, size: int) -> None:
    async with Loader(verify=str(asgi_tls_server.ca_path)) as loader:
        plain = await loader.fetch(asgi_tls_server.url(f"/bytes/{size}"))
        chunked = await loader.fetch(asgi_tls_server.url(f"/chunked/{size}?chunk=10000"))
    assert plain.ok and chunked.ok, (plain.error, chunked.error)
    assert plain.content == chunked.content == pattern_bytes(size)
    assert plain.size == chunked.size == size


async def test_tls_uses_http2_when_h2_is_installed(asgi_tls_server: ASGITestServer) -> None:
    pytest.importorskip("h2")
    asgi_tls_server.reset()
    urls = [asgi_tls_server.url(f"/bytes/{i * 1000}?h2") for i in range(30)]
    urls += [asgi_tls_server.url("/redirect/2"), asgi_tls_server.url("/close/77")]
    async with Loader(verify=str(asgi_tls_server.ca_path)) as loader:
        results = await loader.fetch_all(urls)
    assert [r.ok for r in results] == [True] * len(urls), [r.error for r in results if not r.ok]
    assert all(r.content == pattern_bytes(i * 1000) for i, r in enumerate(results[:30]))
    assert results[30].content == b"done" and results[31].content == pattern_bytes(77)
    assert len(asgi_tls_server.requests) == 30 + 3 + 1
    assert asgi_tls_server.http_versions == {"2"}
    assert asgi_tls_server.connections == 1  # HTTP/2 multiplexes every request on one


async def test_tls_with_http2_off_uses_http11(asgi_tls_server: ASGITestServer) -> None:
    asgi_tls_server.reset()
    urls = [asgi_tls_server.url(f"/bytes/{i}?h1") for i in range(20)]
    async with Loader(verify=str(asgi_tls_server.ca_path), http2=False) as loader:
        results = await loader.fetch_all(urls)
        closing = await loader.fetch(asgi_tls_server.url("/close/9?h1"))
        after = await loader.fetch(asgi_tls_server.url("/bytes/9?after"))
    assert all(r.ok and r.content == pattern_bytes(i) for i, r in enumerate(results))
    assert closing.headers["connection"] == "close" and after.content == pattern_bytes(9)
    assert asgi_tls_server.http_versions == {"1.1"}
    assert 1 <= len(set(ports(asgi_tls_server, "/bytes/"))) <= Limits().per_host
    assert ports(asgi_tls_server, "/close/")[0] != ports(asgi_tls_server, "/bytes/9?after")[0]


async def test_tls_without_the_ca_fails_clearly(asgi_tls_server: ASGITestServer) -> None:
    asgi_tls_server.reset()
    url = asgi_tls_server.url("/bytes/10")
    async with Loader(retries=Retries(attempts=3, backoff=0.01)) as loader:
        result = await loader.fetch(url)
    assert not result.ok and result.content is None
    message = str(result.error)
    assert message.startswith(url) and "certificate" in message.lower()
    assert result.attempts == 1  # a bad certificate is not retried
    assert asgi_tls_server.requests == []
