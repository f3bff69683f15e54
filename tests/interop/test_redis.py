"""A hostile page must not make the loader talk to a real Redis.

``<base href="gopher://127.0.0.1:6379/">`` turns ``<img src="1FLUSHALL">`` into a
Gopher request whose selector line, ``FLUSHALL\\r\\n``, is a Redis command; an
``http://127.0.0.1:6379/`` image would send an HTTP request line the same way.
Debian's redis-server runs on its real port (the port policy refuses well-known
datastore ports, not random ones), holds a key, and must still hold it, having
accepted no connection but the test's own, after the page was fetched.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.http_servers import REDIS_PORT, HttpServer, redis_command, run_fetch, run_redis

HOSTILE = (f"gopher://127.0.0.1:{REDIS_PORT}/1FLUSHALL", f"http://127.0.0.1:{REDIS_PORT}/FLUSHALL")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """redis-server on 127.0.0.1:6379 holding the key ``canary``."""
    if not port_is_free(REDIS_PORT):
        pytest.skip(f"127.0.0.1:{REDIS_PORT} is taken: the hostile-page test needs Redis's own port")
    with run_redis(tmp_path_factory.mktemp("redis")) as port:
        assert redis_command(port, "SET", "canary", "still here") == b"+OK\r\n"
        yield port


def connections_received(port: int) -> int:
    """Redis's count of accepted connections (this query's own included)."""
    info = redis_command(port, "INFO", "stats").decode()
    for line in info.splitlines():
        if line.startswith("total_connections_received:"):
            return int(line.split(":", 1)[1])
    raise AssertionError(f"no connection count in INFO stats: {info!r}")


def test_hostile_page_sends_nothing_to_redis(nginx: HttpServer, redis: int,
                                             env: dict[str, str], tmp_path: Path) -> None:
    before = connections_received(redis)
    fetched = run_fetch("fetch", nginx.http + "/hostile.html", tmp_path / "out", env)
    after = connections_received(redis)

    assert after == before + 1, "the loader connected to Redis"
    assert redis_command(redis, "GET", "canary") == b"$10\r\nstill here\r\n"
    # Both requisites failed, by policy: exit 1 is "some resources failed".
    assert fetched.process.returncode == 1, fetched.report()
    failed = {e["url"]: e["error"] for e in fetched.phase("FAILED")}
    assert set(failed) == set(HOSTILE), fetched.report()
    for error in failed.values():
        assert "blocked port" in error, failed
    (manifest,) = fetched.output.rglob("hostile.html.manifest.json")
    entries = {r["url"]: r for r in json.loads(manifest.read_text())["resources"]}
    assert {url: (entries[url]["ok"], "blocked port" in entries[url]["error"]) for url in HOSTILE} == {
        url: (False, True) for url in HOSTILE
    }
    assert "blocked port" in fetched.process.stderr + fetched.process.stdout


@pytest.mark.anyio
async def test_hostile_page_is_refused_by_policy_in_the_library(nginx: HttpServer, redis: int) -> None:
    from loader import Loader, PolicyDenied

    before = connections_received(redis)
    async with Loader() as loader:
        page = await loader.fetch_page(nginx.http + "/hostile.html")
    assert connections_received(redis) == before + 1, "the loader connected to Redis"
    assert page.document.ok, page.document.error
    refused = {r.url: type(r.error) for r in page.resources}
    assert refused == {url: PolicyDenied for url in HOSTILE}
