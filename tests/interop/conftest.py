"""Fixtures for the HTTP side of the interop suite: nginx, lighttpd, tinyproxy, redis.

Each server is started once per session, on free ports of 127.0.0.1, with a
configuration generated under pytest's temporary directory, and stopped by PID at
the end.  A program that is not installed skips the tests that need it with the
reason in pytest's summary (``-ra``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The shared checks live in a helper module: let pytest explain their failed asserts.
pytest.register_assert_rewrite("tests.interop.http_servers")

from tests.interop.http_servers import (  # noqa: E402
    Certificates,
    HttpServer,
    build_site,
    loader_env,
    make_certificates,
    run_lighttpd,
    run_nginx,
    run_tinyproxy,
)


@pytest.fixture(scope="session")
def http_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree every web server serves (see ``http_servers.build_site``)."""
    return build_site(tmp_path_factory.mktemp("http-site"))


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A trustme CA and a server certificate for 127.0.0.1."""
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory, http_site: Path,
          certificates: Certificates) -> Iterator[HttpServer]:
    """nginx on 127.0.0.1: HTTP/1.1, and TLS with HTTP/2."""
    with run_nginx(tmp_path_factory.mktemp("nginx"), http_site, certificates) as server:
        yield server


@pytest.fixture(scope="session")
def lighttpd(tmp_path_factory: pytest.TempPathFactory, http_site: Path,
             certificates: Certificates) -> Iterator[HttpServer]:
    """lighttpd on 127.0.0.1: HTTP/1.1, and TLS with HTTP/2."""
    with run_lighttpd(tmp_path_factory.mktemp("lighttpd"), http_site, certificates) as server:
        yield server


@pytest.fixture(scope="session")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A forward proxy on 127.0.0.1: its URL and its log file."""
    with run_tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as proxy:
        yield proxy


@pytest.fixture
def env(certificates: Certificates) -> dict[str, str]:
    """The environment ``run_loader`` needs: the test CA trusted, no proxy."""
    return loader_env(certificates)
