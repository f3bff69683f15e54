"""loader_scrapy: real Scrapy crawls (``scrapy runspider`` in a subprocess) against loopback
HTTP, FTP and Gopher servers, asserting what the servers saw and what was stored."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from support import plain_http_environ
from support.http_server import HTTPTestServer

pytest.importorskip("scrapy")

from loader_scrapy import REACTOR, files_path  # noqa: E402

SPIDER = '''
import json, os
import scrapy

class TestSpider(scrapy.Spider):
    name = "test"
    start_urls = json.loads(os.environ["SPIDER_START"])
    follow = os.environ.get("SPIDER_FOLLOW") == "1"

    async def start(self):  # filtered as any request is: a link back to a start page is not fetched again
        meta = json.loads(os.environ.get("SPIDER_META", "{}"))
        for url in self.start_urls:
            yield scrapy.Request(url, meta=dict(meta.get(url, {})))

    def parse(self, response):
        text = response.text if isinstance(response, scrapy.http.TextResponse) else None
        yield {
            "url": response.url, "status": response.status, "class": type(response).__name__,
            "content_type": response.headers.get("Content-Type", b"").decode(),
            "flags": response.flags, "text": text, "sha256": __import__("hashlib").sha256(response.body).hexdigest(),
            "set_cookie": [v.decode() for v in response.headers.getlist("Set-Cookie")],
            "content_encoding": response.headers.get("Content-Encoding", b"").decode(),
        }
        if self.follow and text is not None:
            for href in response.css("a::attr(href)").getall():
                yield response.follow(href)

    def closed(self, reason):
        with open(os.environ["SPIDER_STATS"], "w") as f:
            json.dump({k: str(v) for k, v in self.crawler.stats.get_stats().items()}, f)
'''

HANDLER = "loader_scrapy.LoaderDownloadHandler"


def crawl(
    tmp_path: Path, start: list[str], settings: dict[str, Any], *, follow: bool = False,
    meta: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the spider in a subprocess; its items, stats and log."""
    spider = tmp_path / "spider.py"
    spider.write_text(SPIDER)
    items, stats = tmp_path / "items.jsonl", tmp_path / "stats.json"
    items.unlink(missing_ok=True)
    command = [sys.executable, "-m", "scrapy", "runspider", str(spider), "-o", f"{items}:jsonlines",
               "-s", "LOG_LEVEL=INFO", "-s", "TELNETCONSOLE_ENABLED=0"]
    for name, value in settings.items():
        command += ["-s", f"{name}={json.dumps(value) if not isinstance(value, str) else value}"]
    env = plain_http_environ() | {
        "SPIDER_START": json.dumps(start), "SPIDER_STATS": str(stats), "SPIDER_FOLLOW": "1" if follow else "0",
        "SPIDER_META": json.dumps(meta or {}),
    }
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, env=env, cwd=tmp_path)
    lines = items.read_text().splitlines() if items.exists() else []
    return {
        "items": [json.loads(line) for line in lines],
        "stats": json.loads(stats.read_text()) if stats.exists() else {},
        "log": done.stderr, "returncode": done.returncode,
    }


def handlers(*schemes: str) -> dict[str, str]:
    return dict.fromkeys(schemes, HANDLER)


#: Pages of the ``site`` fixture: enough that Scrapy's page downloads and the requisites overlap
#: (with http left to Scrapy's own handler, 10 such pages put 9 requests in flight on a host
#: limited to 3; mapped to the loader's, 3).
PAGES = 8


def _png(n: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + f"image {n} ".encode() * 50


@pytest.fixture
def site(tmp_path: Path) -> Any:
    """``PAGES`` pages linking to each other, each with five images of its own and a shared logo,
    served with 50 ms latency by a server of the test's own (its counters are its own)."""
    root = tmp_path / "root"
    (root / "site").mkdir(parents=True)
    (root / "site" / "logo.png").write_bytes(_png(0))
    for page in range(PAGES):
        imgs = "".join(f'<img src="img{page}-{i}.png">' for i in range(5))
        links = "".join(f'<a href="page{p}.html">p{p}</a>' for p in range(PAGES))
        (root / "site" / f"page{page}.html").write_text(
            f'<!doctype html><html><body><img src="logo.png">{imgs}{links}</body></html>')
        for i in range(5):
            (root / "site" / f"img{page}-{i}.png").write_bytes(_png(page * 10 + i + 1))
    with HTTPTestServer(root) as server:
        yield server


def test_files_path_is_files_pipelines_layout(tmp_path: Path) -> None:
    """The store layout is FilesPipeline's own: same name for the same URL."""
    from scrapy import Request
    from scrapy.pipelines.files import FilesPipeline
    from scrapy.utils.test import get_crawler

    crawler = get_crawler(settings_dict={"FILES_STORE": str(tmp_path)})
    pipeline = FilesPipeline.from_crawler(crawler)
    for url in ("http://h/a/logo.png", "http://h/x?y=1", "http://h/img.JPG", "http://h/pic", "gopher://h/Ipics/bird.png",
                "ftp://h/pub/media/icon.gif", "http://h/s.css?v=2"):
        assert files_path(url) == pipeline.file_path(Request(url))


def test_requisites_fetched_once_stored_and_per_host_limit_held(site: HTTPTestServer, tmp_path: Path) -> None:
    store = tmp_path / "files"
    result = crawl(tmp_path, [site.url("/latency/50/site/page0.html")], {
        "DOWNLOAD_HANDLERS": handlers("http", "https"),
        "SPIDER_MIDDLEWARES": {"loader_scrapy.RequisitesMiddleware": 543},
        "FILES_STORE": str(store),
        "CONCURRENT_REQUESTS_PER_DOMAIN": 3,
        "CONCURRENT_REQUESTS": 16,
    }, follow=True)
    assert result["returncode"] == 0, result["log"][-3000:]
    items = result["items"]
    assert sorted(i["url"].rsplit("/", 1)[1] for i in items) == sorted(f"page{p}.html" for p in range(PAGES))
    # Each page once (Scrapy downloaded it; the middleware did not fetch it again), each requisite once.
    for page in range(PAGES):
        assert site.hits(f"/latency/50/site/page{page}.html") == 1
        for i in range(5):
            assert site.hits(f"/latency/50/site/img{page}-{i}.png") == 1
    assert site.hits("/latency/50/site/logo.png") == 1  # shared by every page
    assert len(site.requests) == PAGES + 5 * PAGES + 1
    # One per-host limit: pages and requisites together never above CONCURRENT_REQUESTS_PER_DOMAIN.
    assert 2 <= site.max_concurrent <= 3
    # FilesPipeline's layout, whole files.
    stats = result["stats"]
    assert "Map 'http'" not in result["log"]  # no warning of two limits: http is mapped
    for item in _items_by_page(result):
        files = item["loader_requisites"]
        assert len(files) == 6 and all(f["ok"] for f in files), files
        own = [f for f in files if "logo" not in f["url"]]
        assert all(f["status"] == "downloaded" and f["http_status"] == 200 for f in own)
        for f in files:
            assert f["path"] == files_path(f["url"]) and f["path"].startswith("full/") and f["path"].endswith(".png")
            body = (store / f["path"]).read_bytes()
            assert hashlib.md5(body).hexdigest() == f["checksum"]
            name = f["url"].rsplit("/", 1)[1]
            assert body == (site.root / "site" / name).read_bytes()
        assert {link.rsplit("/", 1)[1] for link in item["loader_links"]} == {f"page{p}.html" for p in range(PAGES)}
    assert sorted(p.name for p in store.iterdir()) == ["full"]  # no staging folder left behind
    assert len(list((store / "full").iterdir())) == 5 * PAGES + 1
    logos = [f["status"] for i in result["items"] for f in i["loader_requisites"] if "logo" in f["url"]]
    # Stored by the first page; a later one finds it in the store ("uptodate": not fetched), one
    # under way at the same time shares the loader's copy of it.
    assert len(logos) == PAGES and set(logos) <= {"downloaded", "uptodate"} and "uptodate" in logos
    assert stats["item_scraped_count"] == str(PAGES)


def _items_by_page(result: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(result["items"], key=lambda i: i["url"])


def test_redirects_errors_and_retries_are_scrapys(http_server: Any, tmp_path: Path) -> None:
    http_server.reset()
    key = uuid.uuid4().hex
    result = crawl(tmp_path, [
        http_server.url("/redirect/2"),
        http_server.url(f"/flaky/{key}/1?status=503"),
        http_server.url("/status/404"),
        http_server.url("/set-cookie?a=1&b=2"),
        http_server.url("/gzip"),
        http_server.url("/headers"),
        http_server.url("/slow?delay=5"),
    ], {"DOWNLOAD_HANDLERS": handlers("http", "https"), "USER_AGENT": "scrapy-test/1"},
        meta={http_server.url("/slow?delay=5"): {"download_timeout": 0.5, "dont_retry": True}})
    assert result["returncode"] == 0, result["log"][-3000:]
    by_path = {i["url"].split(str(http_server.port), 1)[1]: i for i in result["items"]}
    # The handler returned each 3xx; Scrapy's RedirectMiddleware followed it.
    assert by_path["/redirect/0"]["text"] == "done"
    for n in (2, 1, 0):
        assert http_server.hits(f"/redirect/{n}") == 1
    # The 503 came back as a response; Scrapy's RetryMiddleware asked again (the loader did not).
    assert by_path[f"/flaky/{key}/1?status=503"]["text"] == "recovered"
    assert http_server.hits(f"/flaky/{key}/1") == 2
    # The 404 came back as a response: HttpErrorMiddleware dropped it, after one request.
    assert "/status/404" not in by_path and http_server.hits("/status/404") == 1
    assert result["stats"]["downloader/response_status_count/404"] == "1"
    # Two Set-Cookie lines stay two.
    assert by_path["/set-cookie?a=1&b=2"]["set_cookie"] == ["a=1; Path=/", "b=2; Path=/"]
    # The body is handed over decoded, and says so (no Content-Encoding left for HttpCompression).
    gz = by_path["/gzip"]
    assert gz["content_encoding"] == "" and "gzip" not in gz["text"][:0] and gz["text"]
    assert gz["class"] == "TextResponse"
    # Scrapy's request headers are sent, but Accept-Encoding is the loader's (codings it decodes).
    sent = json.loads(by_path["/headers"]["text"])
    assert sent["user-agent"] == "scrapy-test/1"
    assert "zstd" not in sent["accept-encoding"] and "gzip" in sent["accept-encoding"]
    # download_timeout (meta) bounds the request: the timeout Scrapy's RetryMiddleware knows.
    assert "/slow?delay=5" not in by_path
    assert result["stats"]["downloader/exception_type_count/scrapy.exceptions.DownloadTimeoutError"] == "1"
    assert "download_timeout of 0.5s" in result["log"]


@pytest.mark.parametrize("enabled", [True, False])
def test_cookies_are_scrapys(http_server: Any, tmp_path: Path, enabled: bool) -> None:
    """Scrapy's CookiesMiddleware decides what a page's request carries, not the loader's jar."""
    http_server.reset()
    result = crawl(tmp_path, [http_server.url("/set-cookie?c=1"), http_server.url("/headers")], {
        "DOWNLOAD_HANDLERS": handlers("http", "https"), "CONCURRENT_REQUESTS": 1,
        "COOKIES_ENABLED": "1" if enabled else "0",
    })
    assert result["returncode"] == 0, result["log"][-3000:]
    (sent,) = [json.loads(i["text"]) for i in result["items"] if i["url"].endswith("/headers")]
    assert http_server.requests[0].path.startswith("/set-cookie")  # the cookie was set first
    assert sent.get("cookie") == ("c=1" if enabled else None)


def test_connection_failure_is_retried_by_scrapy_with_url_and_cause(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/nothing"
    result = crawl(tmp_path, [url], {"DOWNLOAD_HANDLERS": handlers("http", "https"), "RETRY_TIMES": 2})
    assert result["returncode"] == 0, result["log"][-3000:]
    stats = result["stats"]
    assert stats["retry/count"] == "2"
    assert stats["retry/reason_count/scrapy.exceptions.DownloadConnectionRefusedError"] == "2"
    assert f"127.0.0.1:{port}" in result["log"] and "Gave up retrying" in result["log"]


def test_gopher_and_ftp_through_the_handler(gopher_server: Any, ftp_server: Any, tmp_path: Path) -> None:
    menu, text = gopher_server.url("1", ""), gopher_server.url("0", "about.txt")
    listing, file, missing = ftp_server.url("/pub/"), ftp_server.url("/pub/hello.txt"), ftp_server.url("/pub/nope.txt")
    private = ftp_server.url("/private/secret.txt")  # anonymous may list it, not read it
    result = crawl(tmp_path, [menu, text, listing, file, missing, private], {
        "DOWNLOAD_HANDLERS": handlers("gopher", "gophers", "ftp", "ftps"),
        "HTTPERROR_ALLOW_ALL": "1",
    }, meta={private: {"ftp_user": "bob", "ftp_password": "p@ss:w/rd"}})  # Scrapy's FTP meta keys
    assert result["returncode"] == 0, result["log"][-3000:]
    items = {i["url"]: i for i in result["items"]}
    assert missing in items, result["log"][-3000:]
    assert items[menu]["class"] == "TextResponse" and items[menu]["content_type"] == "text/x-gopher-menu"
    assert items[menu]["flags"] == ["loader:gopher-menu"] and "About this server" in items[menu]["text"]
    assert items[text]["text"] == (gopher_server.root / "about.txt").read_text()
    assert items[listing]["class"] == "TextResponse" and items[listing]["flags"] == ["loader:ftp-listing"]
    names = {json.loads(line)["name"] for line in items[listing]["text"].splitlines()}
    assert {"hello.txt", "media", "binary.bin"} <= names
    served = (ftp_server.root / "pub" / "hello.txt").read_bytes()
    assert items[file]["sha256"] == hashlib.sha256(served).hexdigest()
    assert items[missing]["status"] == 404, result["log"][-3000:]
    served = (ftp_server.root / "private" / "secret.txt").read_bytes()
    assert items[private]["sha256"] == hashlib.sha256(served).hexdigest()


def test_gopher_page_requisites(gopher_server: Any, tmp_path: Path) -> None:
    """A Gopher ``h`` page through the handler, its requisites through the middleware."""
    page_dir = gopher_server.root / f"scrapy-{uuid.uuid4().hex[:8]}"
    page_dir.mkdir()
    (page_dir / "page.html").write_text('<html><body><img src="../pics/dog.png"></body></html>')
    url = gopher_server.url("h", f"/{page_dir.name}/page.html")
    store = tmp_path / "files"
    # The add-on alone: it maps the schemes and, with FILES_STORE, enables the middleware.
    result = crawl(tmp_path, [url], {"ADDONS": {"loader_scrapy.LoaderAddon": 0}, "FILES_STORE": str(store)})
    assert result["returncode"] == 0, result["log"][-3000:]
    assert "Map 'http'" not in result["log"]
    (item,) = result["items"]
    (f,) = item["loader_requisites"]
    assert f["ok"], f
    assert (store / f["path"]).read_bytes() == (gopher_server.root / "pics" / "dog.png").read_bytes()


@pytest.mark.parametrize("how", ["middleware", "addon", "handler"])
def test_non_asyncio_reactor_is_one_error_at_start_up(
    http_server: Any, gopher_server: Any, tmp_path: Path, how: str
) -> None:
    http_server.reset()
    settings: dict[str, Any] = {
        "addon": {"ADDONS": {"loader_scrapy.LoaderAddon": 0}},
        "middleware": {"DOWNLOAD_HANDLERS": handlers("gopher"),
                       "SPIDER_MIDDLEWARES": {"loader_scrapy.RequisitesMiddleware": 543}},
        "handler": {"DOWNLOAD_HANDLERS": handlers("gopher", "http")},
    }[how]
    result = crawl(tmp_path, [http_server.url("/files/http/index.html"), http_server.url("/bytes/10")], {
        "TWISTED_REACTOR": "twisted.internet.selectreactor.SelectReactor",
        "FILES_STORE": str(tmp_path / "files"),
        **settings,
    })
    log = result["log"]
    message = f"set TWISTED_REACTOR = {REACTOR!r}"
    assert message in log
    assert result["items"] == [] and http_server.requests == []  # it stopped before any request
    if how == "handler":  # said once, then the spider closed as it opened
        assert log.count(message) == 1
        assert "loader_scrapy: TWISTED_REACTOR is not asyncio's" in log
    else:  # the crawl did not start
        assert "ReactorError" in log and "Spider opened" not in log


def test_two_limits_are_warned_of(http_server: Any, tmp_path: Path) -> None:
    """Pages by Scrapy's own HTTP handler, requisites by the loader: said once, at start-up."""
    http_server.reset()
    result = crawl(tmp_path, [http_server.url("/bytes/10")], {
        "SPIDER_MIDDLEWARES": {"loader_scrapy.RequisitesMiddleware": 543},
        "FILES_STORE": str(tmp_path / "files"),
    })
    assert result["returncode"] == 0, result["log"][-3000:]
    assert result["log"].count("Map 'http' and 'https' to 'loader_scrapy.LoaderDownloadHandler'") == 1
    assert len(result["items"]) == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX paths")
def test_loader_options_from_settings() -> None:
    from loader_scrapy import loader_options
    from scrapy.settings import Settings

    options = loader_options(Settings({
        "CONCURRENT_REQUESTS_PER_DOMAIN": 4, "CONCURRENT_REQUESTS": 20, "DOWNLOAD_TIMEOUT": 30,
        "DOWNLOAD_MAXSIZE": 0, "RETRY_TIMES": 1, "USER_AGENT": "bot/1", "LOADER_OPTIONS": {"deny_private": True},
    }))
    assert options["limits"].per_host == 4 and options["limits"].total == 20
    assert options["limits"].max_body is None
    assert options["timeouts"].total == 30 and options["retries"].attempts == 2
    assert options["user_agent"] == "bot/1" and options["deny_private"] is True
