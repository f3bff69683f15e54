"""tinyproxy as a forward proxy: ``HTTP_PROXY``/``HTTPS_PROXY`` pages, big files, CONNECT.

The proxy is Debian's tinyproxy on 127.0.0.1; behind it the nginx of this session.
Every proxy variable of the machine running the tests is overridden (``loader_env``),
so a ``NO_PROXY`` that exempts 127.0.0.1 cannot make the requests go around it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.interop.http_servers import (
    BIG_SIZE,
    DEMO_FILES,
    SAVED_FILES,
    Certificates,
    HttpServer,
    assert_same_files,
    loader_env,
    new_tag,
    page_directory,
    run_fetch,
)
from tests.support.interop import sha256_file


def proxy_requests(log: Path, pattern: str, count: int, patience: float = 10.0) -> list[str]:
    """The request lines tinyproxy logged that match ``pattern`` (waits for ``count`` of them)."""
    deadline = time.monotonic() + patience
    while True:
        found = re.findall(r"Request \(file descriptor \d+\): (.*)", log.read_text())
        lines = [line for line in found if re.search(pattern, line)]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.fixture
def proxied(tinyproxy: tuple[str, Path], certificates: Certificates) -> dict[str, str]:
    return loader_env(certificates, proxy=tinyproxy[0])


def test_page_through_the_proxy(nginx: HttpServer, tinyproxy: tuple[str, Path],
                                proxied: dict[str, str], tmp_path: Path) -> None:
    tag = new_tag()
    url = nginx.http + "/index.html"
    fetched = run_fetch("fetch", url, tmp_path / "out", proxied, tag=tag)
    assert fetched.process.returncode == 0, fetched.report()
    assert_same_files(page_directory(fetched.output, url), nginx.root, SAVED_FILES)
    # An absolute-form request line for each resource, page and stylesheet included:
    # they went through the proxy, not around it.
    origin = re.escape(nginx.http)
    lines = proxy_requests(tinyproxy[1], f"^GET {origin}/", len(DEMO_FILES) + 1)
    wanted = {f"/{name}" for name in DEMO_FILES} | {"/css/site.css"}
    assert {line.split()[1][len(nginx.http):] for line in lines} >= wanted
    assert {e["http_version"] for e in fetched.phase("RESPONSE_RECEIVED")} == {"HTTP/1.1"}
    assert len(nginx.accesses(tag, until=lambda r: len(r) > len(DEMO_FILES))) == len(DEMO_FILES) + 1


def test_big_file_through_the_proxy(nginx: HttpServer, tinyproxy: tuple[str, Path],
                                    proxied: dict[str, str], tmp_path: Path) -> None:
    fetched = run_fetch("get", nginx.http + "/big.bin", tmp_path / "big.bin", proxied)
    assert fetched.process.returncode == 0, fetched.report()
    assert sha256_file(fetched.output) == sha256_file(nginx.root / "big.bin")
    (events,) = fetched.by_request.values()
    assert events[-1]["bytes"] == BIG_SIZE
    assert proxy_requests(tinyproxy[1], f"^GET {re.escape(nginx.http)}/big.bin ", 1)


def test_https_page_through_connect(nginx: HttpServer, tinyproxy: tuple[str, Path],
                                    proxied: dict[str, str], tmp_path: Path) -> None:
    tag = new_tag()
    url = nginx.https + "/index.html"
    fetched = run_fetch("fetch", url, tmp_path / "out", proxied, tag=tag)
    assert fetched.process.returncode == 0, fetched.report()
    assert_same_files(page_directory(fetched.output, url), nginx.root, SAVED_FILES)
    authority = nginx.https.removeprefix("https://")
    assert proxy_requests(tinyproxy[1], f"^CONNECT {re.escape(authority)} ", 1)
    # TLS ran end to end inside the tunnel, ALPN included: nginx itself served every
    # request, over HTTP/2.
    accesses = nginx.accesses(tag, until=lambda r: len(r) > len(DEMO_FILES))
    assert len(accesses) == len(DEMO_FILES) + 1
    assert {(a.status, a.protocol) for a in accesses} == {(200, "HTTP/2.0")}
    # The plugin reports the proxy's answer to CONNECT as a response of its own,
    # told apart by its message; every other response is nginx's.
    received = fetched.phase("RESPONSE_RECEIVED")
    tunnels = [e for e in received if (e["message"] or "").startswith("CONNECT ")]
    assert tunnels and {e["status"] for e in tunnels} == {200}, tunnels
    assert {e["http_version"] for e in received if e not in tunnels} == {"HTTP/2"}
