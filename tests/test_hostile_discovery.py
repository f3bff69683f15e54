"""Huge and hostile documents: discovery's memory follows its caps, not the document.

The budgets are peak RSS growth (``VmHWM``) of ``parse_document`` + ``discover``
in a fresh interpreter, on 16 MiB documents: a quarter of the page cap, so a
quarter of the 256 MiB the whole cap may cost (``benchmarks/memory.py`` runs
the full 64 MiB).  Before pieces, 8 MiB of identical ``<img>`` grew ~340 MiB.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.raw_server import recv_until

from loader import Limits, Loader
from loader.discovery import discover, parse_document
from loader.discovery.discover import MAX_ALSO

SIZE = 16 << 20
BUDGET_MIB = 64

# Builds the document without a peak of its own, then measures discovery alone.
PROBE = textwrap.dedent(
    """
    import gc, json, sys
    from loader.discovery import discover, parse_document, parse_kinds

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) // 1024

    kind, size = sys.argv[1], int(sys.argv[2])
    warm = b"<style>a{b:url(c.png)}</style><img src=x.png srcset='y.png 1x'><div style='b:url(z)'>"
    discover(parse_document(warm, "http://e.test/", "text/html"))
    buf = bytearray(b"<!doctype html><html><head>")
    i = 0
    if kind == "identical":
        buf += b"<body>" + b"<img src=a.png>" * (size // 15)
    elif kind == "distinct":
        buf += b"<body>"
        while len(buf) < size:
            buf += b'<img src="/i/%d.png">\\n' % i
            i += 1
    elif kind == "text between":
        buf += b"<body>" + b"<img src=a.png>word " * (size // 20)
    elif kind == "nested":
        buf += b"<body>" + b"<div>" * (size // 11) + b"<img src=deep.png>" + b"</div>" * (size // 11)
    elif kind == "style":
        buf += b"<style>"
        while len(buf) < size:
            buf += b".c%d{background:url(/s/%d.png)}" % (i, i)
            i += 1
        buf += b"</style>"
    content = bytes(buf)
    del buf
    gc.collect()
    base = status("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # peak RSS starts again from here
    except OSError:
        pass
    result = discover(parse_document(content, "http://e.test/", "text/html"), max_found=2000)
    print(json.dumps({"growth": status("VmHWM") - base, "found": len(result.found),
                      "skipped": result.skipped, "also": [len(f.also) for f in result.found[:1]]}))
    """
)


def probe(kind: str, size: int = SIZE) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, kind, str(size)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/self/status")
@pytest.mark.parametrize(
    ("kind", "found", "skipped"),
    [
        ("identical", 1, 0),
        ("text between", 1, 0),
        ("distinct", 2000, None),
        ("nested", 1, 0),
        ("style", 2000, None),
    ],
)
def test_peak_memory_of_a_huge_page_stays_in_budget(kind: str, found: int, skipped: int | None) -> None:
    result = probe(kind)
    assert result["growth"] < BUDGET_MIB, result
    assert result["found"] == found
    if skipped is None:
        assert result["skipped"] > 100_000  # every distinct one left out is counted
    else:
        assert result["skipped"] == skipped


def test_a_million_identical_images_keep_a_few_provenances() -> None:
    page = b"<body>" + b"<img src=a.png>" * 1_000_000
    result = discover(parse_document(page, "http://e.test/", "text/html"))
    assert [f.url for f in result.found] == ["http://e.test/a.png"]
    assert len(result.found[0].also) == MAX_ALSO


def test_skipped_counts_distinct_urls_of_both_lists() -> None:
    sheets = b"".join(b"<link rel=stylesheet href=/s%d.css>" % i for i in range(300))
    images = b"".join(b"<img src=/i%d.png>" % (i % 500) for i in range(200_000))
    result = discover(
        parse_document(sheets + images + sheets, "http://e.test/", "text/html"),
        kinds=frozenset({"image", "style"}),
        max_found=100,
    )
    assert len(result.found) == 100 and len(result.stylesheets) == 100
    # 300 sheets + 500 images, 100 found of the first 100 sheets: 700 left out.
    assert result.skipped == 700


def serve_page(page: bytes):  # type: ignore[no-untyped-def]
    def handler(conn: socket.socket) -> None:
        while True:
            head = recv_until(conn, b"\r\n\r\n")
            if not head:
                return
            path = head.split(b" ", 2)[1]
            if path == b"/":
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(page)
                    + page
                )
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 3\r\n\r\npng")

    return handler


@pytest.mark.anyio
async def test_the_manifest_of_a_million_image_page_stays_small(raw_server: Any, tmp_path: Path) -> None:
    page = b"<body>" + b"<img src=a.png>" * 1_000_000 + b"".join(b"<img src=/d/%d.png>" % i for i in range(3000))
    server = raw_server(serve_page(page))
    async with Loader(limits=Limits(per_page=50)) as loader:
        result = await loader.fetch_page(server.url("http", "/"), output=tmp_path)
    assert result.manifest is not None
    manifest = json.loads(result.manifest.read_text())
    assert result.manifest.stat().st_size < 64 << 10
    assert len(manifest["resources"]) == 50
    assert len(manifest["resources"][0]["found_by"]) == 1 + MAX_ALSO
    assert result.skipped == 3001 - 50
    assert any("per-page cap" in w for w in result.warnings)


@pytest.mark.anyio
async def test_a_page_over_the_parse_cap_says_so(raw_server: Any, tmp_path: Path) -> None:
    page = b"<body>" + b"<img src=a.png>" * 1000
    server = raw_server(serve_page(page))
    async with Loader(limits=Limits(max_page=4096)) as loader:
        result = await loader.fetch_page(server.url("http", "/"), output=tmp_path)
    assert result.found == () and result.resources == ()
    # Discovery has no cap of its own (pieces keep any size bounded): the core's
    # max_page stops the page as it arrives, and the result names the cap.
    assert not result.document.ok
    assert "page cap of 4 KiB" in str(result.document.error)
