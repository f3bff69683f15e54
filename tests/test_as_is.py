"""``Loader.fetch(as_is=True)``: the answer as the server gave it, for a crawler's download handler.

A 3xx or an error status is an ``ok`` result with its status, headers and body; no
redirect is followed; one attempt; neither the reuse memory nor a request in flight
answers it.  Both HTTP lanes (the direct lane, httpx's client) are covered.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from support import direct_lane_without_proxies

from loader import Loader, Phase, Retries

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["direct", "httpx"])
def lane(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test on the direct lane and on httpx's client (``LOADER_HTTP_DIRECT=0``)."""
    direct_lane_without_proxies(monkeypatch)
    if request.param == "httpx":
        monkeypatch.setenv("LOADER_HTTP_DIRECT", "0")
    return str(request.param)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_error_status_is_a_result_with_its_body(http_server: Any, lane: str) -> None:
    http_server.reset()
    async with Loader() as loader:
        plain = await loader.fetch(http_server.url("/status/404"))
        result = await loader.fetch(http_server.url("/status/404"), as_is=True)
    assert not plain.ok and plain.status == 404  # without as_is: a failure, as before
    assert result.ok and result.error is None
    assert result.status == 404
    assert result.content == b"status 404\n"
    assert result.headers["content-length"] == str(len(b"status 404\n"))


async def test_redirect_is_returned_not_followed(http_server: Any, lane: str) -> None:
    http_server.reset()
    events: list[Any] = []
    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/redirect/2"), as_is=True, callback=events.append)
    assert result.ok and result.status == 302
    assert result.headers["location"] == "/redirect/1"
    assert result.content == b"redirecting\n"
    assert result.final_url == http_server.url("/redirect/2")
    assert http_server.hits("/redirect/2") == 1
    assert http_server.hits("/redirect/1") == 0  # not followed
    assert not [e for e in events if e.phase is Phase.REDIRECT]


async def test_redirect_with_set_cookie_is_returned_too(http_server: Any, lane: str) -> None:
    """A Set-Cookie in a 3xx hands the direct lane's answer to httpx: still not followed."""
    http_server.reset()
    target = http_server.url("/set-cookie?a=1")
    async with Loader() as loader:
        result = await loader.fetch(
            http_server.url(f"/redirect-to?url={target}&status=301"), as_is=True
        )
    assert result.ok and result.status == 301
    assert result.headers["location"] == target
    assert http_server.hits("/set-cookie") == 0


async def test_one_attempt_only(http_server: Any, lane: str) -> None:
    http_server.reset()
    key = uuid.uuid4().hex
    async with Loader(retries=Retries(attempts=3, backoff=0.01)) as loader:
        result = await loader.fetch(http_server.url(f"/flaky/{key}/2?status=503"), as_is=True)
    assert result.ok and result.status == 503 and result.attempts == 1
    assert http_server.hits(f"/flaky/{key}/2") == 1


async def test_reuse_memory_does_not_answer(http_server: Any, lane: str) -> None:
    http_server.reset()
    url = http_server.url("/bytes/100")
    async with Loader() as loader:
        first = await loader.fetch(url)
        again = await loader.fetch(url)  # from the loader's memory
        as_is = await loader.fetch(url, as_is=True)
    assert first.ok and again.completed_synchronously
    assert as_is.ok and not as_is.completed_synchronously and as_is.content == first.content
    assert http_server.hits("/bytes/100") == 2


async def test_cookies_are_the_callers(http_server: Any, lane: str) -> None:
    """The loader's jar fills as ever, but an as_is request carries only the caller's cookies
    (a crawler's cookie middleware decides, COOKIES_ENABLED=False included)."""
    import json

    async with Loader() as loader:
        await loader.fetch(http_server.url("/set-cookie?jar=1"))
        plain = await loader.fetch(http_server.url("/headers"))
        bare = await loader.fetch(http_server.url("/headers"), as_is=True)
        own = await loader.fetch(http_server.url("/headers"), as_is=True, headers={"Cookie": "mine=2"})
    assert json.loads(plain.text).get("cookie") == "jar=1"  # without as_is: the jar's, as before
    assert "cookie" not in json.loads(bare.text)
    assert json.loads(own.text)["cookie"] == "mine=2"


async def test_transport_failure_is_still_a_failed_result(lane: str) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with Loader(retries=Retries(attempts=3, backoff=0.01)) as loader:
        result = await loader.fetch(f"http://127.0.0.1:{port}/", as_is=True)
    assert not result.ok and result.attempts == 1
    assert f"127.0.0.1:{port}" in str(result.error)
