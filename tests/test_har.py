"""HAR 1.2 export (``loader.har``): real loads over HTTP, FTP and Gopher, checked against
the HAR 1.2 schema (``har_schema.json``), read back with haralyzer, timings summed."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from loader import Event, HarCollector, Loader, Phase, Retries, har_from, write_har

jsonschema = pytest.importorskip("jsonschema")
haralyzer = pytest.importorskip("haralyzer")

SCHEMA = json.loads((Path(__file__).parent / "har_schema.json").read_text())
SUMMED = ("blocked", "dns", "connect", "send", "wait", "receive")  # ssl is inside connect


def check_har(har: dict[str, Any]) -> None:
    """Valid HAR 1.2, readable by haralyzer, every entry's timings adding up to its time."""
    jsonschema.Draft202012Validator(SCHEMA).validate(har)
    parser = haralyzer.HarParser(json.loads(json.dumps(har)))
    ids = [p["id"] for p in har["log"]["pages"]]
    loose = any("pageref" not in e for e in har["log"]["entries"])  # haralyzer's page "unknown"
    assert [p.page_id for p in parser.pages] == ids + ["unknown"] * loose
    for page in parser.pages:
        assert page.entries == [e for e in har["log"]["entries"] if e.get("pageref", "unknown") == page.page_id]
    for entry in har["log"]["entries"]:
        timings = entry["timings"]
        assert sum(timings[k] for k in SUMMED if timings[k] != -1) == pytest.approx(entry["time"], abs=1e-6)
        if timings["ssl"] != -1:
            assert timings["connect"] >= timings["ssl"]
        if "connection" in entry and timings["connect"] == -1:
            assert timings["dns"] == -1 or entry["_protocol"] != "http"  # no connection, no name to find


def entries_of(har: dict[str, Any], fragment: str) -> list[dict[str, Any]]:
    return [e for e in har["log"]["entries"] if fragment in e["request"]["url"]]


@pytest.fixture
def mixed_page(ftp_server: Any, ftp_scratch: str, http_server: Any, gopher_server: Any) -> dict[str, str]:
    """An HTML page on FTP whose images are on HTTP (a redirect, a retry, a 404), FTP and Gopher."""
    key = uuid.uuid4().hex[:8]
    urls = {
        "redirect": http_server.url("/redirect/1"),
        "flaky": http_server.url(f"/flaky/{key}/1"),
        "missing": http_server.url("/status/404"),
        "logo": http_server.url("/files/http/logo.png"),
        "ftp": ftp_server.url(f"{ftp_scratch}/local.png"),
        "gopher": gopher_server.url("I", "/pics/bird.png"),
    }
    root = ftp_server.root / ftp_scratch.lstrip("/")
    shutil.copy(ftp_server.root / "site" / "logo.png", root / "local.png")
    images = "".join(f'<img src="{url}">' for url in urls.values())
    (root / "page.html").write_text(f"<!DOCTYPE html><title>t</title>{images}")
    urls["page"] = ftp_server.alice(f"{ftp_scratch}/page.html")
    return urls


async def load(urls: list[str], tmp_path: Path, **kwargs: Any) -> tuple[HarCollector, list[Any]]:
    collector = HarCollector()
    async with Loader(retries=Retries(backoff=0.01), plugins=[collector], **kwargs) as ld:
        pages = [await ld.fetch_page(url, output=tmp_path / str(n)) for n, url in enumerate(urls)]
    return collector, pages


@pytest.mark.anyio
async def test_pages_over_three_protocols_make_a_valid_har(
    mixed_page: dict[str, str], http_server: Any, gopher_server: Any, tmp_path: Path
) -> None:
    collector, pages = await load(
        [mixed_page["page"], http_server.url("/files/http/index.html"), gopher_server.url("1", "/")], tmp_path
    )
    har = har_from(pages, collector)
    check_har(har)
    log = har["log"]
    assert log["creator"]["name"] == "loader" and log["creator"]["version"]
    assert [p["title"] for p in log["pages"]] == [p.document.url for p in pages]
    for page, har_page in zip(pages, log["pages"], strict=True):
        mine = [e for e in log["entries"] if e["pageref"] == har_page["id"]]
        hops = sum(len({e["_hop"] for e in mine if e["_request_id"] == r.request_id}) for r in page.resources)
        assert {e["_request_id"] for e in mine} == {r.request_id for r in (page.document, *page.resources)}
        assert len(mine) >= 1 + hops
        timings = har_page["pageTimings"]
        assert 0 <= timings["onContentLoad"] <= timings["onLoad"]
    assert {e["_protocol"] for e in log["entries"]} == {"ftp", "http", "gopher"}
    # The page's URL carried alice's password: nowhere in the log.
    text = json.dumps(har)
    assert "secret" not in text and "alice:***@" in log["pages"][0]["title"]
    starts = [e["startedDateTime"] for e in log["entries"]]
    assert starts == sorted(starts)


@pytest.mark.anyio
async def test_redirect_retry_and_failure_are_the_entries_a_browser_shows(
    mixed_page: dict[str, str], tmp_path: Path
) -> None:
    collector, pages = await load([mixed_page["page"]], tmp_path)
    har = har_from(pages, collector)
    check_har(har)
    first, second = entries_of(har, "/redirect/")
    assert (first["response"]["status"], second["response"]["status"]) == (302, 200)
    assert first["response"]["redirectURL"] == second["request"]["url"] == mixed_page["redirect"][:-1] + "0"
    assert first["_request_id"] == second["_request_id"] and (first["_hop"], second["_hop"]) == (0, 1)
    assert second["startedDateTime"] >= first["startedDateTime"]
    failed, recovered = entries_of(har, "/flaky/")
    assert (failed["_attempt"], recovered["_attempt"]) == (1, 2)
    assert failed["_attempts"] == recovered["_attempts"] == 2
    assert failed["response"]["status"] == 503 and "503" in failed["_error"]
    assert recovered["response"]["status"] == 200 and "_error" not in recovered
    assert recovered["response"]["content"]["size"] == len(b"recovered")
    (missing,) = entries_of(har, "/status/404")
    assert missing["response"]["status"] == 404 and mixed_page["missing"] in missing["_error"]
    (found,) = entries_of(har, "/files/http/logo.png")
    assert found["_found_by"] == "img[src]" and found["_kind"] == "image"
    assert found["_found_in"] == pages[0].document.url
    assert found["response"]["content"] == {"size": 75, "mimeType": "image/png"}


@pytest.mark.anyio
async def test_ftp_control_replies_and_gopher_entries(mixed_page: dict[str, str], tmp_path: Path) -> None:
    collector, pages = await load([mixed_page["page"]], tmp_path)
    har = har_from(pages, collector)
    (page,) = entries_of(har, "/page.html")
    replies = [r["status"] for r in page["_ftp"]]
    assert replies[0] == 220 and 230 in replies and replies[-1] == 226  # greeting, login, transfer done
    assert page["response"]["status"] == 226 and page["response"]["statusText"]  # the final reply, not 150
    assert page["response"]["httpVersion"] == page["request"]["httpVersion"] == "FTP"
    assert page["_kind"] == "document" and page["serverIPAddress"] == "127.0.0.1"
    (gopher,) = entries_of(har, "/pics/bird.png")
    assert gopher["_protocol"] == "gopher" and "_ftp" not in gopher
    assert gopher["response"]["content"]["size"] == len(Path("fixtures/gopher/pics/bird.png").read_bytes())
    codes = [code for code, _name, _at in gopher["_phases"]]
    assert codes[0] == Phase.HANDLE_CREATED and codes[-1] == Phase.REQUEST_COMPLETE
    assert Phase.CONNECTED_TO_SERVER in codes and gopher["timings"]["connect"] >= 0


@pytest.mark.anyio
@pytest.mark.parametrize("direct", ["1", "0"])  # the direct lane, httpx's client
async def test_http_headers_as_sent_and_received_and_reused_connections(
    http_server: Any, tmp_path: Path, direct: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADER_HTTP_DIRECT", direct)
    collector, pages = await load([http_server.url("/files/http/index.html")], tmp_path)
    har = har_from(pages, collector)
    check_har(har)
    entries = har["log"]["entries"]
    page = entries[0]
    sent = [h["name"] for h in page["request"]["headers"]]
    assert sent == ["Host", "Accept", "Accept-Encoding", "Connection", "User-Agent"]  # as written, in order
    received = {h["name"]: h["value"] for h in page["response"]["headers"]}
    assert received["Content-Type"] == "text/html; charset=utf-8" and received["Content-Length"] == "327"
    assert page["request"]["httpVersion"] == page["response"]["httpVersion"] == "HTTP/1.1"
    raw_head = "GET /files/http/index.html HTTP/1.1\r\n" + "".join(
        f"{h['name']}: {h['value']}\r\n" for h in page["request"]["headers"]) + "\r\n"
    assert page["request"]["headersSize"] == len(raw_head)
    assert page["response"]["bodySize"] == page["response"]["content"]["size"] == 327
    assert page["timings"]["connect"] >= 0 and page["timings"]["ssl"] == -1
    assert page["serverIPAddress"] == "127.0.0.1"
    # Four requisites over at most the page's connection and new ones: some reused one.
    opened = {e["connection"] for e in entries if e["timings"]["connect"] != -1}
    reused = [e for e in entries if e["timings"]["connect"] == -1]
    assert reused, "a keep-alive connection should have carried a second request"
    assert all(e["connection"] in opened and e["timings"]["dns"] == -1 for e in reused)
    assert len({e["connection"] for e in entries}) == len(opened)


@pytest.mark.anyio
async def test_http2_over_tls_has_ssl_time(asgi_tls_server: Any, tmp_path: Path) -> None:
    pytest.importorskip("h2")
    collector = HarCollector()
    async with Loader(verify=str(asgi_tls_server.ca_path), http2=True, plugins=[collector]) as ld:
        result = await ld.fetch(asgi_tls_server.url("/bytes/100"))
    assert result.ok and result.http_version == "HTTP/2"
    har = collector.har()
    check_har(har)
    (entry,) = har["log"]["entries"]
    assert entry["response"]["httpVersion"] == "HTTP/2" and entry["response"]["headersSize"] == -1
    assert entry["timings"]["ssl"] >= 0 and entry["timings"]["connect"] >= entry["timings"]["ssl"]
    assert {h["name"] for h in entry["response"]["headers"]} >= {"content-length"}
    assert har["log"]["pages"][0]["title"] == entry["request"]["url"]  # no pages given: each root is one


def test_timings_split_at_the_phases_and_sum_exactly() -> None:
    """Pure logic: hand-made events with known times (a reused connection, then a new one)."""
    collector = HarCollector()
    t0 = 1_700_000_000.0

    def emit(rid: int, phase: Phase, at_ms: float, **data: Any) -> None:
        collector.loader_event(Event(request_id=rid, parent_id=None, url="https://h.test/x", phase=phase,
                                     time=t0 + at_ms / 1000, **data))

    emit(1, Phase.HANDLE_CREATED, 0)
    emit(1, Phase.RESOLVING_NAME, 2)  # blocked 2
    emit(1, Phase.NAME_RESOLVED, 5)  # dns 3 + 1 (until connecting)
    emit(1, Phase.CONNECTING_TO_SERVER, 6)
    emit(1, Phase.CONNECTED_TO_SERVER, 10, message="10.0.0.1:443")  # connect 4, then TLS
    emit(1, Phase.SENDING_REQUEST, 17)  # ssl 7
    emit(1, Phase.REQUEST_SENT, 18)  # send 1
    emit(1, Phase.RECEIVING_RESPONSE, 18)
    emit(1, Phase.RESPONSE_RECEIVED, 48, status=200)  # wait 30
    for ms in (49, 50, 60):
        emit(1, Phase.PROGRESS, ms, bytes_done=ms)
    emit(1, Phase.REQUEST_COMPLETE, 70, bytes_done=60)  # receive 22
    emit(2, Phase.HANDLE_CREATED, 71)
    emit(2, Phase.SENDING_REQUEST, 75)  # blocked 4, the connection of request 1, free again
    emit(2, Phase.REQUEST_SENT, 75.5)
    emit(2, Phase.RESPONSE_RECEIVED, 80, status=200)
    emit(2, Phase.REQUEST_COMPLETE, 81, bytes_done=1)
    first, second = collector.har()["log"]["entries"]
    assert first["timings"] == {"blocked": 2, "dns": 4, "connect": 11, "ssl": 7, "send": 1, "wait": 30, "receive": 22}
    assert first["time"] == 70 and first["serverIPAddress"] == "10.0.0.1"
    assert second["timings"] == {"blocked": 4, "dns": -1, "connect": -1, "ssl": -1, "send": 0.5, "wait": 4.5,
                                 "receive": 1}
    assert second["connection"] == first["connection"] == "1" and second["serverIPAddress"] == "10.0.0.1"
    assert [p[0] for p in first["_phases"]].count(int(Phase.PROGRESS)) == 1  # a body's chunks: one


def test_requests_past_the_cap_are_counted_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("loader.har.MAX_REQUESTS", 3)
    collector = HarCollector()
    for rid in range(1, 6):
        collector.loader_event(Event(request_id=rid, parent_id=None, url=f"http://h/{rid}",
                                     phase=Phase.HANDLE_CREATED, time=1.0))
    log = collector.har()["log"]
    assert len(log["entries"]) == 3 and collector.dropped == 2 and "2 requests" in log["comment"]


def test_write_har_is_atomic_json(tmp_path: Path) -> None:
    har = har_from()
    path = write_har(tmp_path / "x.har", har)
    assert json.loads(path.read_text()) == har and sorted(p.name for p in tmp_path.iterdir()) == ["x.har"]
    check_har(har)


@pytest.mark.anyio
async def test_loader_har_writes_every_request_when_it_closes(http_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "all.har"
    async with Loader(har=path) as ld:
        page = await ld.fetch_page(http_server.url("/files/http/index.html"), output=tmp_path / "copy")
        result = await ld.fetch(http_server.url("/redirect/1"))
        assert not path.exists()
    har = json.loads(path.read_text())
    check_har(har)
    entries = har["log"]["entries"]
    assert {e["_request_id"] for e in entries} == {r.request_id for r in (page.document, *page.resources, result)}
    assert [p["title"] for p in har["log"]["pages"]] == [page.document.url, result.url]
    assert len(entries) == 1 + len(page.resources) + 2  # the redirect: two exchanges
