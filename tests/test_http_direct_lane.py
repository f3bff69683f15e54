"""The HTTP plugin's direct lane (``plugins/loader_http/_direct.py``) against httpx's own.

The lane skips httpx's client layer for requests httpx would not change.  The
differential test runs one script of requests (plain, encoded, chunked, errors,
redirects, cookies, user info, odd URLs, resume) through each lane against a
scripted raw server that records every request head byte for byte, and requires
the same bytes on the wire, the same results and the same events.  The unit tests
pin the lane's rules against httpx's parser and header handling.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from loader_http._direct import DirectLane, header_dict, plain_url
from loader_http._transport import _request_head
from support import direct_lane_without_proxies
from support.raw_server import HeadRecorder

from loader import Loader, Retries

pytestmark = pytest.mark.anyio

BODY = b"0123456789" * 300
GZIPPED = gzip.compress(BODY)


def _reply(target: bytes, head: bytes, port: int) -> bytes:
    """The scripted answer to one request (keep-alive unless it says otherwise)."""
    path = target.split(b"?")[0]

    def response(status: str, headers: list[str], body: bytes = b"") -> bytes:
        lines = [f"HTTP/1.1 {status}", *headers, f"Content-Length: {len(body)}", "", ""]
        return "\r\n".join(lines).encode() + body

    if path == b"/gzip":
        return response("200 OK", ["Content-Type: text/plain", "Content-Encoding: gzip"], GZIPPED)
    if path == b"/chunked":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
            b"%x\r\n%s\r\n" % (len(BODY[i : i + 700]), BODY[i : i + 700]) for i in range(0, len(BODY), 700)
        ) + b"0\r\n\r\n"
    if path == b"/missing":
        return response("404 Not Found", ["Retry-After: 7"], b"gone")
    if path == b"/busy":
        return response("503 Service Unavailable", ["Retry-After: 0"], b"busy")
    if path == b"/r1":
        return response("301 Moved Permanently", ["Location: /r2"], b"moved")
    if path == b"/r2":
        return response("302 Found", [f"Location: http://127.0.0.1:{port}/plain#there"])
    if path == b"/loop":
        return response("302 Found", ["Location: /loop"])
    if path == b"/badloc":
        return response("302 Found", ["Location: http://[::1"])
    if path == b"/cookie":
        return response("200 OK", ["Set-Cookie: flavour=oat; Path=/"], b"set")
    if path == b"/cookie-redirect":
        return response("302 Found", ["Set-Cookie: trail=1; Path=/", "Location: /echo"])
    if path == b"/echo":
        return response("200 OK", ["Content-Type: text/plain"], head)
    if path == b"/latin":
        return response("200 OK", ["X-Name: caf\xe9".encode("latin-1").decode("latin-1")], b"latin")
    if path == b"/multi":
        return response("200 OK", ["X-Multi: one", "x-multi: two", "Content-Type: a/b"], b"multi")
    if path == b"/head-only":
        return b"HTTP/1.1 204 No Content\r\n\r\n"
    return response("200 OK", ["Content-Type: application/octet-stream"], BODY + target)


class Recorder(HeadRecorder):
    """A raw keep-alive HTTP/1.1 server that answers from :func:`_reply` and keeps every head."""

    def answer(self, target: bytes, head: bytes) -> bytes:
        return _reply(target, head, self.server.port).replace("é".encode(), b"\xe9")


def _script(rec: Recorder) -> list[str]:
    port = rec.server.port
    return [
        rec.url("/plain"),
        rec.url("/plain?q=1&x=%20y;z=[a]|~"),
        rec.url("/plain#fragment"),
        rec.url("/gzip"),
        rec.url("/chunked"),
        rec.url("/missing"),
        rec.url("/r1"),
        rec.url("/loop"),
        rec.url("/badloc"),
        rec.url("/a/./b/../plain"),  # dot segments: httpx's lane in both runs
        rec.url("/sp ace/é"),  # httpx percent-encodes these
        f"http://LOCALHOST:{port}/Upper",  # httpx lowercases the host
        f"http://127.0.0.1:{port}/%zz%41",
        rec.url("/latin"),
        rec.url("/multi"),
        rec.url("/head-only"),
        f"http://user:secret@127.0.0.1:{port}/echo",  # basic auth from the user info
        rec.url("/echo"),
        rec.url("/cookie"),  # from here the jar has a cookie: httpx's lane
        rec.url("/echo?after"),
        rec.url("/cookie-redirect"),
        "http://999.1.1.1/",  # not an IPv4 address: httpx's error
    ]


def _summary(result: Any) -> tuple[Any, ...]:
    error = None if result.error is None else (type(result.error).__name__, str(result.error))
    headers = {k: v for k, v in (result.headers or {}).items() if k != "date"}
    return (result.ok, result.status, result.final_url, result.content, headers, error)


async def _run_lane(monkeypatch: pytest.MonkeyPatch, rec: Recorder, tmp_path: Path, direct: bool) -> dict[str, Any]:
    monkeypatch.setenv("LOADER_HTTP_DIRECT", "1" if direct else "0")
    rec.heads.clear()
    sends = 0
    real_send = httpx.AsyncClient.send

    async def counting_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal sends
        sends += 1
        return await real_send(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", counting_send)
    phases: list[list[str]] = []
    results = []
    async with Loader(retries=Retries(attempts=1), headers={"X-Extra": "1"}, reuse=False) as loader:
        plain_sends = None
        for url in _script(rec):
            seen: list[str] = []
            result = await loader.fetch(url, callback=lambda e, seen=seen: seen.append(e.phase.name))
            results.append(_summary(result))
            phases.append(seen)
            if url.endswith("/plain#fragment"):
                plain_sends = sends  # the first three are plain
        partial = tmp_path / ("direct" if direct else "httpx") / "resume.bin"
        partial.parent.mkdir()
        partial.write_bytes(BODY[:100])
        resumed = await loader.fetch(rec.url("/resume"), to=partial, resume=True)
        results.append(_summary(resumed))
        assert partial.read_bytes() == BODY + b"/resume"
    monkeypatch.setattr(httpx.AsyncClient, "send", real_send)
    return {"heads": list(rec.heads), "results": results, "phases": phases, "plain_sends": plain_sends, "sends": sends}


async def test_both_lanes_send_the_same_bytes_and_report_the_same(
    raw_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rec = Recorder(raw_server)
    via_httpx = await _run_lane(monkeypatch, rec, tmp_path, direct=False)
    direct = await _run_lane(monkeypatch, rec, tmp_path, direct=True)
    assert direct["heads"] == via_httpx["heads"]
    assert direct["results"] == via_httpx["results"]
    assert direct["phases"] == via_httpx["phases"]
    # The lanes really differ: plain URLs skipped httpx's send, the rest did not.
    assert via_httpx["plain_sends"] == 3
    assert direct["plain_sends"] == 0
    assert 0 < direct["sends"] < via_httpx["sends"]
    # Spot checks of what both did.
    results = dict(zip(_script(rec), direct["results"], strict=False))
    assert results[rec.url("/gzip")][3] == BODY
    assert results[rec.url("/chunked")][3] == BODY
    assert results[rec.url("/missing")][5] == ("HTTPNotFound", f"{rec.url('/missing')}: HTTP 404 Not Found")
    assert results[rec.url("/r1")][2] == rec.url("/plain#there")
    assert results[rec.url("/multi")][4]["x-multi"] == "one, two"
    assert b"cookie" not in results[rec.url("/echo")][3].lower()
    assert b"cookie: flavour=oat" in results[rec.url("/echo?after")][3].lower()
    assert results[rec.url("/cookie-redirect")][3].lower().count(b"cookie:") == 1
    assert b"trail=1" in results[rec.url("/cookie-redirect")][3]


async def test_a_cookie_set_on_the_direct_lane_reaches_the_next_request(
    raw_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADER_HTTP_DIRECT", "1")
    rec = Recorder(raw_server)
    async with Loader() as loader:
        first = await loader.fetch(rec.url("/cookie"))
        echo = await loader.fetch(rec.url("/echo"))
    assert first.ok and first.content == b"set"
    assert echo.ok and b"flavour=oat" in echo.content


async def test_lane_off_by_environment(raw_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADER_HTTP_DIRECT", "0")
    async with Loader() as loader:
        assert loader.handler("http")._direct is None
    monkeypatch.setenv("LOADER_HTTP_DIRECT", "1")
    async with Loader() as loader:
        handler = loader.handler("http")
        handler.client  # noqa: B018 - the client (and the lane) is made on first use
        assert handler._direct is not None


# -- the lane's rules, against httpx itself ------------------------------------------------

ODD = [
    "http://h/", "http://h", "https://h:8443/a?b#c", "http://h:80/x", "https://h:443/", "http://h:0080/",
    "http://h:8080/a/./b", "http://h/a/..", "http://h/.well-known/x", "http://h/a..b/.c", "http://H/",
    "HTTP://h/", "http://h/a b", "http://h/é", "http://u@h/", "http://h/%", "http://h/%zz", "http://h/%41",
    "http://h/?", "http://h/#", "http://h/a?b c", "http://h/{x}", "http://h/a`b", "http://h/a?q`b",
    "http://h/#a`b", "http://h/#a b", "http://1.2.3.4:9/", "http://256.1.1.1/", "http://[::1]/",
    "http://h-.x/", "http://-h/", "http://h./", "http://h:/", "http://h:99999/", "http://h/\t",
    "http://xn--caf-dma.example/", "http://h/a\\b", "http://h/a|b^c", "ftp://h/",
]
ALPHABET = "abz09/.?#%:@[]!$&'()*+,;=-_~ \"<>`{}|\\^é\t"


def _random_urls(n: int) -> list[str]:
    rng = random.Random(6)
    urls = []
    for _ in range(n):
        host = rng.choice(["h", "a.b", "127.0.0.1", "Ab", "x-y.z", "1.2.3"])
        port = rng.choice(["", ":80", ":443", ":8080", ":1", ":065535"])
        tail = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
        urls.append(f"{rng.choice(['http', 'https'])}://{host}{port}/{tail}")
    return urls


def test_plain_urls_are_exactly_what_httpx_makes_of_them() -> None:
    accepted = 0
    for url in ODD + _random_urls(4000):
        parts = plain_url(url)
        if parts is None:
            continue
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:  # a bad IPv4 address: the lane asks httpx (see below)
            assert parts[1][0].isdigit(), url
            continue
        accepted += 1
        scheme, host, port, target = parts
        assert (parsed.scheme, parsed.host, parsed.port, parsed.raw_path) == (scheme, host, port, target), url
        assert str(parsed) == url, url
    assert accepted > 500  # the corpus exercises both answers
    for url in ("http://h/a/./b", "http://h/a/..", "http://H/", "http://h:80/", "http://u@h/", "http://h/a b",
                "http://h/é", "http://[::1]/", "http://h", "ftp://h/", "http://h:/"):
        assert plain_url(url) is None, url
    for url in ("http://h/", "https://h:8443/a?b#c", "http://h/%zz", "http://h/.well-known/x", "http://h/a..b"):
        assert plain_url(url) is not None, url


def test_header_dict_matches_httpx_items() -> None:
    rng = random.Random(7)
    names = [b"Content-Type", b"content-type", b"X-A", b"x-a", b"Set-Cookie", b"ETag"]
    for _ in range(500):
        raw = [(rng.choice(names), rng.choice([b"", b"v", b"a, b", b" x ", b"text/html"]))
               for _ in range(rng.randint(0, 6))]
        assert header_dict(raw) == dict(httpx.Headers(raw).items())
    assert header_dict([(b"X", b"caf\xe9")]) is None


async def test_request_heads_are_httpx_heads(raw_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADER_HTTP_DIRECT", "1")
    rec = Recorder(raw_server)
    async with Loader(headers={"X-Extra": "1", "Accept": "text/html"}, user_agent="probe/1") as loader:
        handler = loader.handler("http")
        client = handler.client
        lane = handler._direct
        assert isinstance(lane, DirectLane)
        assert lane.plan("GET", "http://256.1.1.1/", {}, None) is None  # httpx's error to give
        https = "https://example.org:8443/y#z"
        assert (lane.plan("GET", https, {}, None) is None) == (not lane.transport.serves("https"))
        for url in (rec.url("/a?b=c"), "http://example.org/x", "http://example.org:8443/y#z"):
            for headers in ({}, {"User-Agent": "other", "X-Extra": "1"}, {"Range": "bytes=5-"}):
                plan = lane.plan("GET", url, headers, None)
                assert plan is not None
                origin, how = plan
                expected = client.build_request("GET", url, headers=headers)
                assert how.head == _request_head(expected)[0]
                assert origin == (expected.url.scheme, expected.url.host, expected.url.port or
                                  (443 if expected.url.scheme == "https" else 80))
                assert how.timeouts == expected.extensions["timeout"]
        # A change to the client's own headers is seen at once.
        client.headers["X-Client"] = "later"
        origin, how = lane.plan("GET", rec.url("/a"), {}, None)  # type: ignore[misc]
        assert b"X-Client: later\r\n" in how.head
        # What httpx would change, or a client with more to do, takes httpx's lane.
        assert lane.plan("POST", rec.url("/a"), {}, None) is None
        assert lane.plan("GET", rec.url("/a/../b"), {}, None) is None
        client.cookies.set("k", "v", domain="127.0.0.1")
        assert lane.plan("GET", rec.url("/a"), {}, None) is None
        client.cookies.clear()
        assert lane.plan("GET", rec.url("/a"), {}, None) is not None
        client.auth = ("u", "p")
        assert lane.plan("GET", rec.url("/a"), {}, None) is None


HEADER_NAMES = ["Accept", "accept", "ACCEPT-ENCODING", "User-Agent", "user-agent", "X-A", "x-a", "Host", "host",
                "Connection", "connection", "Range", "Accept-Encoding", "TE", "Cookie", "X-Empty"]
HEADER_VALUES = ["", "v", "text/html", "close", "Close", "keep-alive", "bytes=5-", "a, b", " x ", "probe/1"]


async def test_heads_written_before_the_client_exists_are_httpx_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before httpx's client is built the lane writes heads itself: byte for byte what it would."""
    direct_lane_without_proxies(monkeypatch)
    rng = random.Random(8)
    cases: list[tuple[str, dict[str, str]]] = [("http://127.0.0.1:8/a?b=c", {}), ("http://example.org/x", {})]
    for _ in range(600):
        headers = {rng.choice(HEADER_NAMES): rng.choice(HEADER_VALUES) for _ in range(rng.randint(0, 5))}
        url = rng.choice(["http://h/", "http://example.org:8080/p?q", "http://10.0.0.1/a/b", "https://h:8443/"])
        cases.append((url, headers))
    async with Loader(headers={"X-Extra": "1"}, timeouts=None) as loader:
        handler = loader.handler("http")
        lane = handler._lane()
        assert lane is not None and lane.client is None and handler._client is None
        plans = [(url, headers, lane.plan("GET", url, headers, None)) for url, headers in cases]
        client = handler.client  # built now: its own build_request is the reference
        written = 0
        for url, headers, plan in plans:
            if plan is None:
                assert url.startswith("https") and not lane.transport.serves("https")
                continue
            expected = client.build_request("GET", url, headers=headers)
            head, _chunked, close = _request_head(expected)
            _origin, how = plan
            assert how.head == head, (url, headers)
            assert how.close == close and how.timeouts == expected.extensions["timeout"]
            written += 1
        assert written > 300


def test_default_headers_take_the_places_of_httpxs_own() -> None:
    """The lane's headers replace every default of httpx's client, in httpx's order: a client
    built with them sends exactly them (a new default in httpx would show up here)."""
    from loader_http._direct import default_headers

    ours = default_headers()
    assert [name.lower() for name in httpx.AsyncClient().headers] == [name.lower() for name, _ in ours]
    assert list(httpx.AsyncClient(headers=ours).headers.items()) == [(n.lower(), v) for n, v in ours]
