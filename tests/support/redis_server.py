"""A real ``redis-server`` on 127.0.0.1 for the shared-crawl tests (Debian's package).

``tests/interop/install-http.sh`` installs it (``.ci/run`` runs that script); outside
CI a machine without it skips these tests, saying so; in CI (``CI`` set) a missing
server is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .interop import free_port, running

__all__ = ["RedisServer", "redis_server", "serve_redis"]


class RedisServer:
    """A running server: ``url(crawl)`` for ``--frontier`` (a ``redis`` client for the rest)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, crawl: str = "test", **query: object) -> str:
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        return f"redis://127.0.0.1:{self.port}/0?crawl={crawl}{extra}"


def _program() -> str:
    for candidate in (shutil.which("redis-server"), "/usr/bin/redis-server", "/usr/sbin/redis-server"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    if os.environ.get("CI"):
        pytest.fail("redis-server is missing: tests/interop/install-http.sh installs it")
    pytest.skip("redis-server is not installed (run tests/interop/install-http.sh)")


@contextlib.contextmanager
def serve_redis(tmp: Path) -> Iterator[RedisServer]:
    """redis-server on a free loopback port, no persistence, stopped on leaving."""
    program = _program()
    port = free_port()
    args = [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp), "--daemonize", "no"]
    with running(args, port=port, log=tmp / "redis.log"):
        yield RedisServer(port)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for a test module."""
    with serve_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
