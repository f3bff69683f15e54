"""WARC output (``loader.warc``): real loopback servers, every record read back with warcio.

The records are checked against the bytes the servers sent and received (a scripted raw
server for the exact HTTP bytes), their digests by warcio's reader, and a saved page is
replayed with warcio's own command line (``warcio index``, ``warcio extract``).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import socket
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from support.http_server import GZIP_TEXT, pattern_bytes
from support.raw_server import recv_until

from loader import Loader, PluginContext, SaveError
from loader.cli import EXIT_OK, EXIT_USAGE, main
from loader.warc import SPOOL_SIZE, WarcWriter, surt, warc_name

warcio = pytest.importorskip("warcio")
from warcio.archiveiterator import ArchiveIterator  # noqa: E402

pytestmark = pytest.mark.anyio


def records(path: Path, *, parse: bool = True) -> list[dict[str, Any]]:
    """Every record of a WARC, digests checked by warcio (an error on any mismatch).

    Each as a dict: ``type``, ``headers`` (the WARC headers), ``http`` (warcio's parsed HTTP
    head, or None), ``block`` (with ``parse=False``: the whole block as stored),
    ``payload`` (after content and transfer decoding, as replay gives it).
    """
    found = []
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream, check_digests="raise"):
            found.append({
                "type": record.rec_type,
                "headers": dict(record.rec_headers.headers),
                "http": record.http_headers,
                "payload": record.content_stream().read(),
            })
    if not parse:
        with open(path, "rb") as stream:
            for entry, record in zip(found, ArchiveIterator(stream, no_record_parse=True), strict=True):
                entry["block"] = record.raw_stream.read()
    return found


def of_type(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in found if r["type"] == kind]


class Scripted:
    """A raw HTTP/1.1 server answering each path with exact bytes, keeping each request head."""

    def __init__(self, raw_server: Any, answers: dict[bytes, bytes]) -> None:
        self.answers = answers
        self.heads: list[bytes] = []
        self.server = raw_server(self._serve)

    def url(self, path: str) -> str:
        return self.server.url("http", path)

    def _serve(self, conn: socket.socket) -> None:
        while True:
            head = recv_until(conn, b"\r\n\r\n")
            if not head.endswith(b"\r\n\r\n"):
                return
            self.heads.append(head)
            conn.sendall(self.answers[head.split(b" ", 2)[1]])


ZIPPED = gzip.compress(b"<p>hello</p>" * 50)
#: Odd name case, a repeated header, a reason of its own, a gzip body (stored as gzip).
PLAIN_HEAD = (
    b"HTTP/1.1 200 Fine Thanks\r\nContent-TYPE: text/html\r\nx-odd-CASE: 1\r\n"
    b"X-Dup: a\r\nX-Dup: b\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(ZIPPED)
)
#: Two Set-Cookie lines: such an answer goes through httpx's client (its cookie jar).
COOKIE_HEAD = (
    b"HTTP/1.1 203 Odd But Fine\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
    b"Content-Length: 5\r\n\r\n"
)
#: Chunked: stored as one chunk, the Transfer-Encoding line kept.
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
CHUNKS = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


@pytest.mark.parametrize("direct", ["1", "0"], ids=["direct-lane", "httpx-lane"])
async def test_http_exchanges_are_recorded_as_received(
    raw_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, direct: str
) -> None:
    monkeypatch.setenv("LOADER_HTTP_DIRECT", direct)
    site = Scripted(raw_server, {
        b"/plain": PLAIN_HEAD + ZIPPED, b"/cookies": COOKIE_HEAD + b"hello", b"/chunked": CHUNKED_HEAD + CHUNKS,
    })
    async with Loader(warc=tmp_path / "out", reuse=False) as loader:
        plain = await loader.fetch(site.url("/plain"))
        cookies = await loader.fetch(site.url("/cookies"))
        chunked = await loader.fetch(site.url("/chunked"))
    assert plain.ok and cookies.ok and chunked.ok, (plain.error, cookies.error, chunked.error)
    assert plain.content == b"<p>hello</p>" * 50  # the Result is decoded …
    assert list(plain.raw_headers) == [
        ("Content-TYPE", "text/html"), ("x-odd-CASE", "1"), ("X-Dup", "a"), ("X-Dup", "b"),
        ("Content-Encoding", "gzip"), ("Content-Length", str(len(ZIPPED))),
    ]
    assert list(cookies.raw_headers)[:2] == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    assert cookies.reason == "Odd But Fine" and chunked.content == b"hello world"

    found = records(tmp_path / "out.warc.gz", parse=False)
    assert [r["type"] for r in found] == ["warcinfo"] + ["request", "response"] * 3
    responses = of_type(found, "response")
    # … the record is what came: the head as sent, the body still gzip.
    assert responses[0]["block"] == PLAIN_HEAD + ZIPPED
    assert responses[0]["payload"] == b"<p>hello</p>" * 50  # replay decodes it
    assert responses[1]["block"] == COOKIE_HEAD + b"hello"
    assert responses[2]["block"] == CHUNKED_HEAD + b"b\r\nhello world\r\n0\r\n\r\n"
    assert responses[2]["payload"] == b"hello world"
    assert [r["http"].statusline for r in responses] == ["200 Fine Thanks", "203 Odd But Fine", "200 OK"]
    requests = of_type(found, "request")
    assert [r["block"] for r in requests] == site.heads
    for request, response in zip(requests, responses, strict=True):
        assert request["headers"]["WARC-Concurrent-To"] == response["headers"]["WARC-Record-ID"]
        assert request["headers"]["WARC-Target-URI"] == response["headers"]["WARC-Target-URI"]
        assert response["headers"]["WARC-IP-Address"] == "127.0.0.1"
        assert response["headers"]["WARC-Payload-Digest"].startswith("sha1:")
        assert "WARC-Truncated" not in response["headers"]
    warcinfo = found[0]
    assert all(r["headers"]["WARC-Warcinfo-ID"] == warcinfo["headers"]["WARC-Record-ID"] for r in found[1:])
    assert b"loader-fetch" in warcinfo["payload"] and b"WARC File Format 1.1" in warcinfo["payload"]


async def test_redirects_errors_and_gzip_from_a_real_server(http_server: Any, tmp_path: Path) -> None:
    async with Loader(warc=WarcWriter(tmp_path / "s", cdx=True)) as loader:
        moved = await loader.fetch(http_server.url("/redirect/1"))
        missing = await loader.fetch(http_server.url("/status/404"))
        zipped = await loader.fetch(http_server.url("/gzip"))
    assert moved.ok and not missing.ok and zipped.content == GZIP_TEXT
    found = records(tmp_path / "s.warc.gz")
    responses = of_type(found, "response")
    assert [(r["headers"]["WARC-Target-URI"].split("/", 3)[3], r["http"].get_statuscode()) for r in responses] == [
        ("redirect/1", "302"), ("redirect/0", "200"), ("status/404", "404"), ("gzip", "200"),
    ]
    assert responses[-1]["http"].get_header("Content-Encoding") == "gzip"
    assert responses[-1]["payload"] == GZIP_TEXT
    lines = (tmp_path / "s.cdxj").read_text().splitlines()
    assert lines[0].startswith("!") and lines[1:] == sorted(lines[1:]) and len(lines) == 5
    with open(tmp_path / "s.warc.gz", "rb") as warc:
        for line in lines[1:]:
            key, stamp, text = line.split(" ", 2)
            entry = json.loads(text)
            assert key == surt(entry["url"]) and len(stamp) == 14 and entry["filename"] == "s.warc.gz"
            warc.seek(entry["offset"])
            data = warc.read(entry["length"])
            (record,) = ArchiveIterator(io.BytesIO(data), check_digests="raise")
            assert record.rec_headers.get_header("WARC-Target-URI") == entry["url"]
            assert record.http_headers.get_statuscode() == entry["status"]
            assert record.rec_headers.get_header("WARC-Payload-Digest") == "sha1:" + entry["digest"]


async def test_ftp_and_gopher_items_are_resource_records(
    ftp_server: Any, gopher_server: Any, tmp_path: Path
) -> None:
    ftp_url = ftp_server.url("/site/logo.png")
    gopher_url = gopher_server.url("I", "/pics/bird.png")
    async with Loader(warc=tmp_path / "r") as loader:
        assert (await loader.fetch(ftp_url)).ok
        assert (await loader.fetch(gopher_url)).ok
    found = records(tmp_path / "r.warc.gz")
    resources = of_type(found, "resource")
    assert [r["headers"]["WARC-Target-URI"] for r in resources] == [ftp_url, gopher_url]
    assert resources[0]["payload"] == (ftp_server.root / "site" / "logo.png").read_bytes()
    assert resources[1]["payload"] == (gopher_server.root / "pics" / "bird.png").read_bytes()
    assert all(r["headers"]["Content-Type"] == "image/png" for r in resources)
    assert not of_type(found, "request")


async def test_a_page_gets_a_metadata_record_with_its_manifest(asgi_server: Any, tmp_path: Path) -> None:
    async with Loader(warc=tmp_path / "p") as loader:
        page = await loader.fetch_page(asgi_server.url("/page.html"), output=tmp_path / "site")
    assert page.document.ok and page.manifest is not None and not page.failed
    found = records(tmp_path / "p.warc.gz")
    (metadata,) = of_type(found, "metadata")
    assert metadata["headers"]["Content-Type"] == "application/json"
    assert metadata["payload"] == page.manifest.read_bytes()
    manifest = json.loads(metadata["payload"])
    recorded = {r["headers"]["WARC-Target-URI"] for r in of_type(found, "response")}
    assert recorded == {manifest["page"]["url"]} | {r["url"] for r in manifest["resources"]}
    by_url = {r["headers"]["WARC-Target-URI"]: r["payload"] for r in of_type(found, "response")}
    for resource in page.resources:
        assert by_url[resource.url] == resource.path.read_bytes()


async def test_http2_exchange_is_recorded(asgi_tls_server: Any, tmp_path: Path) -> None:
    pytest.importorskip("h2")
    async with Loader(verify=str(asgi_tls_server.ca_path), http2=True, warc=tmp_path / "h2") as loader:
        result = await loader.fetch(asgi_tls_server.url("/bytes/1000"))
    assert result.ok and result.http_version == "HTTP/2"
    found = records(tmp_path / "h2.warc.gz")
    (request,) = of_type(found, "request")
    (response,) = of_type(found, "response")
    assert response["http"].protocol == "HTTP/2" and response["http"].get_statuscode() == "200"
    assert response["payload"] == pattern_bytes(1000)
    assert response["http"].get_header("content-length") == "1000"  # h2's names, lowercase
    assert response["headers"]["WARC-IP-Address"] == "127.0.0.1"
    assert request["http"].protocol.startswith("GET")


async def test_a_body_cut_short_is_marked_truncated(raw_server: Any, tmp_path: Path) -> None:
    site = Scripted(raw_server, {b"/half": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"})

    def half(conn: socket.socket) -> None:  # the answer, then the connection closes
        recv_until(conn, b"\r\n\r\n")
        conn.sendall(site.answers[b"/half"])

    server = raw_server(half)
    async with Loader(warc=tmp_path / "t", retries=None) as loader:
        result = await loader.fetch(server.url("http", "/half"))
    assert not result.ok
    found = records(tmp_path / "t.warc.gz", parse=False)
    responses = of_type(found, "response")
    assert responses and all(r["headers"]["WARC-Truncated"] == "disconnect" for r in responses)
    assert responses[0]["block"].endswith(b"\r\n\r\nshort")


@pytest.mark.parametrize("route", ["bytes", "chunked"])
async def test_a_huge_body_is_spooled_not_held(http_server: Any, tmp_path: Path, route: str) -> None:
    size = 24 * SPOOL_SIZE
    tracemalloc.start()
    try:
        async with Loader(warc=tmp_path / "big") as loader:
            result = await loader.fetch(http_server.url(f"/{route}/{size}"), to=tmp_path / "big.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok and result.size == size
    assert peak < 6 * SPOOL_SIZE, f"peak {peak} bytes for a {size}-byte body"
    (response,) = of_type(records(tmp_path / "big.warc.gz"), "response")
    assert response["payload"] == (tmp_path / "big.bin").read_bytes() == pattern_bytes(size)
    assert (response["http"].get_header("Transfer-Encoding") == "chunked") == (route == "chunked")


async def test_no_recorder_unless_asked(tmp_path: Path) -> None:
    assert PluginContext().recorder is None
    async with Loader() as loader:
        assert loader.context.recorder is None and loader.warc is None
    async with Loader(warc=tmp_path / "w") as loader:
        assert loader.context.recorder is loader.warc
        assert (tmp_path / "w.warc.gz.part").exists() and not (tmp_path / "w.warc.gz").exists()
    assert (tmp_path / "w.warc.gz").exists() and not (tmp_path / "w.warc.gz.part").exists()


def test_names_and_keys() -> None:
    assert warc_name("crawl") == "crawl.warc.gz"
    assert warc_name("crawl", gzip=False) == "crawl.warc"
    assert warc_name("a.warc") == "a.warc" and warc_name("b.warc.gz", gzip=False) == "b.warc.gz"
    assert surt("http://www.Example.com/a/B?z=1&a=2") == "com,example)/a/b?a=2&z=1"
    assert surt("https://example.com:8443/") == "com,example:8443)/"
    assert surt("http://127.0.0.1:8080/x") == "127.0.0.1:8080)/x"
    assert surt("ftp://ftp.example.org/pub") == "org,example,ftp)/pub"


def test_an_unwritable_target_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SaveError, match="no-such-dir"):
        WarcWriter(tmp_path / "no-such-dir" / "x")


def test_plain_warc_without_compression(tmp_path: Path) -> None:
    with WarcWriter(tmp_path / "plain", gzip=False) as writer:
        assert writer.path.name == "plain.warc"
    data = (tmp_path / "plain.warc").read_bytes()
    assert data.startswith(b"WARC/1.1\r\nWARC-Type: warcinfo")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def warcio_cli(*argv: str) -> bytes:
    """warcio's own command line (the standard tool a reader of the WARC would use)."""
    done = subprocess.run([sys.executable, "-m", "warcio.cli", *argv], capture_output=True, check=True, timeout=60)
    return done.stdout


def test_cli_fetch_writes_a_warc_that_warcio_replays(asgi_server: Any, tmp_path: Path) -> None:
    url = asgi_server.url("/page.html")
    name = tmp_path / "saved"
    code, _, err = run("fetch", url, "-o", str(tmp_path / "site"), "-q", "--warc-file", str(name), "--warc-cdx")
    assert code == EXIT_OK, err
    index = [json.loads(line) for line in warcio_cli("index", str(name) + ".warc.gz").splitlines()]
    page = next(e for e in index if e.get("warc-target-uri") == url and e["warc-type"] == "response")
    replayed = warcio_cli("extract", "--payload", str(name) + ".warc.gz", page["offset"])
    saved = next((tmp_path / "site").rglob("page.html"))
    assert replayed == saved.read_bytes()
    cdx = (tmp_path / "saved.cdxj").read_text().splitlines()[1:]
    assert {json.loads(line.split(" ", 2)[2])["url"] for line in cdx} == {
        e["warc-target-uri"] for e in index if e["warc-type"] == "response"
    }
    assert {e["warc-type"] for e in index} == {"warcinfo", "request", "response", "metadata"}
    checked = warcio_cli("check", "-v", str(name) + ".warc.gz").decode()
    assert checked.count("digest pass") == len(index) and "fail" not in checked


def test_cli_get_and_crawl_with_warc_file(asgi_server: Any, tmp_path: Path) -> None:
    code, _, err = run("get", asgi_server.url("/bytes/300"), "-o", str(tmp_path / "b"), "-q",
                       "--warc-file", str(tmp_path / "one"), "--no-warc-compression")
    assert code == EXIT_OK, err
    (response,) = of_type(records(tmp_path / "one.warc"), "response")
    assert response["payload"] == pattern_bytes(300)
    code, _, err = run("fetch", "-r", "-l", "1", asgi_server.url("/page.html"), "-o", str(tmp_path / "crawl"),
                       "-q", "--no-robots", "--warc-file", str(tmp_path / "crawl"))
    assert code == EXIT_OK, err
    found = records(tmp_path / "crawl.warc.gz")
    assert of_type(found, "metadata") and len(of_type(found, "response")) >= 1 + 20 + 3


def test_recording_keeps_threads_apart(tmp_path: Path) -> None:
    """Records written from several threads at once stay whole (the writer holds a lock)."""
    writer = WarcWriter(tmp_path / "threads")

    def record(i: int) -> None:
        recording = writer.begin(f"ftp://h.test/{i}", resource=True, content_type="text/plain")
        for _ in range(50):
            recording.write(b"%d," % i)
        recording.close()

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    resources = of_type(records(tmp_path / "threads.warc.gz"), "resource")
    assert sorted(r["payload"] for r in resources) == sorted(b"%d," % i * 50 for i in range(8))
    assert os.listdir(tmp_path) == ["threads.warc.gz"]


def test_the_digest_check_catches_a_changed_byte(http_server: Any, tmp_path: Path) -> None:
    """The reader above would notice a wrong digest: one byte of a body changed fails it."""
    code, _, err = run("get", http_server.url("/bytes/500"), "-o", str(tmp_path / "b"), "-q",
                       "--warc-file", str(tmp_path / "x"), "--no-warc-compression")
    assert code == EXIT_OK, err
    path = tmp_path / "x.warc"
    data = path.read_bytes()
    at = data.index(pattern_bytes(500))
    path.write_bytes(data[:at + 7] + bytes([data[at + 7] ^ 1]) + data[at + 8:])
    with pytest.raises(warcio.exceptions.ArchiveLoadFailed, match="digest"):
        records(path)


def test_cli_refuses_an_unwritable_warc_file_before_any_request(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("get", http_server.url("/files/http/hello.txt"), "-o", str(tmp_path / "h"),
                       "--warc-file", str(tmp_path / "missing" / "w"))
    assert code == EXIT_USAGE
    assert f"error: cannot write the WARC file {tmp_path / 'missing' / 'w.warc.gz'}" in err
    assert list(tmp_path.iterdir()) == []
