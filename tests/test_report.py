"""The ``--report`` waterfall (``loader._report``) and the CLI's ``--har``/``--report``.

A real load is rendered; headless Chromium (Debian's ``chromium``, installed by
``tests/interop/install.sh``) takes screenshots at 1280 px and at a phone's 390 px
and its DOM dump must hold every row.  Without Chromium those checks skip, saying why.
"""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import struct
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from support import loader_command
from test_har import check_har

from loader import HarCollector, Loader, Retries, har_from
from loader._report import render_report
from loader.cli import main

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    reason = "headless Chromium is not installed (Debian: apt-get install chromium; tests/interop/install.sh does)"
    print(f"skipped: {reason}")
    pytest.skip(reason)


def render(report: Path, tmp_path: Path) -> tuple[str, dict[str, Path]]:
    """The DOM Chromium builds from ``report``, and a screenshot per width."""
    browser = chromium()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    shots = {}
    for name, (width, height) in WIDTHS.items():
        shot = tmp_path / f"{name}.png"
        subprocess.run([*flags, f"--screenshot={shot}", f"--window-size={width},{height}", report.as_uri()],
                       capture_output=True, timeout=120, check=True)
        shots[name] = shot
    return dom.stdout, shots


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def rows_in(dom: str) -> list[str]:
    return [html.unescape(url) for url in re.findall(r'<div class="row(?: failed)?" data-url="([^"]*)"', dom)]


def page_with_images(ftp_server: Any, ftp_scratch: str, urls: list[str]) -> str:
    root = ftp_server.root / ftp_scratch.lstrip("/")
    (root / "page.html").write_text("<!DOCTYPE html><title>t</title>" + "".join(f'<img src="{u}">' for u in urls))
    return ftp_server.url(f"{ftp_scratch}/page.html")


async def load(url: str, tmp_path: Path) -> dict[str, Any]:
    collector = HarCollector()
    async with Loader(retries=Retries(backoff=0.01), plugins=[collector]) as ld:
        page = await ld.fetch_page(url, output=tmp_path / "copy")
    har = har_from([page], collector)
    check_har(har)
    return har


def check_self_contained(text: str) -> None:
    """Nothing a browser would fetch: no script, stylesheet link, image, font or url()."""
    lowered = text.lower()
    for needle in ("<script", "<link", "<img", "<iframe", "@import", "@font-face", "url(", " src="):
        assert needle not in lowered, needle


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_ten_requests_with_a_redirect_a_retry_and_a_failure(
    ftp_server: Any, ftp_scratch: str, http_server: Any, gopher_server: Any, tmp_path: Path
) -> None:
    images = [http_server.url(p) for p in ("/redirect/1", f"/flaky/{uuid.uuid4().hex}/1", "/status/404",
                                           "/files/http/logo.png", "/files/http/pixel.gif")]
    images.append(gopher_server.url("I", "/pics/bird.png"))
    shutil.copy(ftp_server.root / "site" / "logo.png", ftp_server.root / ftp_scratch.lstrip("/") / "x.png")
    images.append(ftp_server.url(f"{ftp_scratch}/x.png"))
    har = await load(page_with_images(ftp_server, ftp_scratch, images), tmp_path)
    entries = har["log"]["entries"]
    assert len(entries) == 10  # the page, seven images, a second hop and a second attempt
    text = render_report(har)
    check_self_contained(text)
    assert rows_in(text) == [e["request"]["url"] for e in entries]  # start order
    assert text.count('<div class="row failed"') == 2  # the 503 attempt and the 404
    assert "HTTP 404" in text and "attempt 2" in text and "redirected" in text
    assert "Bound by " in text and "Lanes" in text and "img[src]" in text
    report = tmp_path / "report.html"
    report.write_text(text)
    dom, shots = render(report, tmp_path)
    assert rows_in(dom) == rows_in(text)
    for name, (width, _height) in WIDTHS.items():
        assert png_size(shots[name])[0] == width


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_thousand_requests(ftp_server: Any, ftp_scratch: str, http_server: Any, tmp_path: Path) -> None:
    images = [http_server.url(f"/bytes/{n}") for n in range(1, 1000)]
    har = await load(page_with_images(ftp_server, ftp_scratch, images), tmp_path)
    assert len(har["log"]["entries"]) == 1000
    text = render_report(har)
    check_self_contained(text)
    assert len(text) < 2_500_000  # about two kilobytes a row, lanes included
    lanes = re.findall(r"connection \d+ · (\d+)</span>", text)
    assert sum(map(int, lanes)) == 1000  # every request in one lane
    (opened,) = re.findall(r"999 requests on (\d+) connections", text)
    assert 1 < int(opened) <= 6  # the per-host limit: at most six connections
    report = tmp_path / "report.html"
    report.write_text(text)
    dom, shots = render(report, tmp_path)
    assert len(rows_in(dom)) == 1000
    assert png_size(shots["phone"])[0] == 390


def test_text_from_servers_is_escaped() -> None:
    har = har_from()
    har["log"]["entries"] = [{
        "startedDateTime": "2026-01-01T00:00:00.000+00:00", "time": 3.0,
        "request": {"method": "GET", "url": "http://h/<b>x</b>", "httpVersion": "HTTP/1.1", "cookies": [],
                    "headers": [], "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [],
                     "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {}, "timings": {"blocked": 1, "dns": -1, "connect": -1, "ssl": -1, "send": 0, "wait": 2, "receive": 0},
        "_error": "<script>alert(1)</script>", "_kind": "<i>image</i>",
    }]
    text = render_report(har)
    check_self_contained(text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;i&gt;image&lt;/i&gt;" in text
    assert "Requests outside any page" in text


def test_fetch_writes_har_and_report(http_server: Any, tmp_path: Path) -> None:
    err = io.StringIO()
    har_path, report_path = tmp_path / "load.har", tmp_path / "load.html"
    code = main(["fetch", "-q", "-o", str(tmp_path / "out"), "--har", str(har_path), "--report", str(report_path),
                 http_server.url("/files/http/index.html")], stdout=io.StringIO(), stderr=err)
    assert code == 0, err.getvalue()
    har = json.loads(har_path.read_text())
    check_har(har)
    assert len(har["log"]["entries"]) == 5 and har["log"]["pages"][0]["title"].endswith("/index.html")
    assert rows_in(report_path.read_text()) == [e["request"]["url"] for e in har["log"]["entries"]]
    assert f"HAR: {har_path}" in err.getvalue() and f"report: {report_path}" in err.getvalue()


def test_fetch_says_when_the_har_cannot_be_written(http_server: Any, tmp_path: Path) -> None:
    err = io.StringIO()
    blocked = tmp_path / "a-directory"
    blocked.mkdir()
    code = main(["fetch", "-q", "-o", str(tmp_path / "out"), "--har", str(blocked),
                 http_server.url("/files/http/hello.txt")], stdout=io.StringIO(), stderr=err)
    assert code == 3
    assert f"cannot write the HAR {blocked}" in err.getvalue()


def test_demo_writes_both_and_says_where(tmp_path: Path) -> None:
    # A process of its own: the demo's Gopher server is configured process-wide.
    proc = subprocess.run([loader_command(), "demo", "-o", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    har_path, report = tmp_path / "demo.har", tmp_path / "demo-report.html"
    check_har(json.loads(har_path.read_text()))
    assert str(har_path.resolve()) in proc.stderr and str(report.resolve()) in proc.stderr
    assert "missing.png" in report.read_text()


def made_entry(url: str, size: int, **timings: float) -> dict[str, Any]:
    parts = {"blocked": 0, "dns": -1, "connect": -1, "ssl": -1, "send": 0, "wait": 0, "receive": 0, **timings}
    return {
        "startedDateTime": "2026-01-01T00:00:00.000+00:00",
        "time": sum(v for k, v in parts.items() if v > 0 and k != "ssl"),
        "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "cookies": [], "headers": [],
                    "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [],
                     "content": {"size": size, "mimeType": ""}, "redirectURL": "", "headersSize": -1, "bodySize": size},
        "cache": {}, "timings": parts, "connection": "1",
    }


@pytest.mark.parametrize(("size", "timings", "verdict"), [
    (100, {"wait": 90, "receive": 10}, "Bound by latency."),
    (50 << 20, {"wait": 10, "receive": 900}, "Bound by bandwidth."),
    (100, {"wait": 10, "receive": 900}, "Bound by receiving, though slowly"),
])
def test_the_verdict_weighs_round_trips_against_bodies(size: int, timings: dict[str, float], verdict: str) -> None:
    har = har_from()
    har["log"]["entries"] = [made_entry("http://h/a", size, **timings)]
    check_har(har)
    text = render_report(har)
    assert verdict in text
    assert sum(verdict in text for verdict in ("Bound by latency", "Bound by bandwidth", "Bound by receiving")) == 1
