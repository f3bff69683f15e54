"""Loader.crawl and ``loader fetch -r``: breadth-first, exact depth and scope, once per URL, resumable."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.ftp_server import FtpServerInfo
from support.gopher_server import GopherServer
from support.site import SiteServer, depth, serve_site

from loader import Event, Loader, Phase
from loader._crawl import fingerprint
from loader._urls import canonical_url
from loader.cli import main

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def site_server() -> Iterator[SiteServer]:
    with serve_site() as server:
        yield server


def page_paths(n: int, level: int | None = None) -> set[str]:
    return {f"/p/{i}.html" for i in range(n) if level is None or depth(i) <= level}


def image_paths(n: int, level: int | None = None, *, images: int = 2, shared: int = 3) -> set[str]:
    pages = [i for i in range(n) if level is None or depth(i) <= level]
    return {f"/img/{i}-{k}.png" for i in pages for k in range(images)} | {
        f"/img/shared-{i % shared}.png" for i in pages
    }


async def crawl_all(loader: Loader, start: str | list[str], **options: Any) -> list[Any]:
    async with loader.crawl(start, **options) as pages:
        return [page async for page in pages]


async def test_every_page_and_requisite_exactly_once(site_server: SiteServer) -> None:
    site_server.generate(40)
    async with Loader() as loader:
        pages = await crawl_all(loader, site_server.url("/p/0.html"), level=None, concurrency=6)
    assert {p.url.split(str(site_server.port), 1)[1] for p in pages} == page_paths(40)
    assert all(p.ok for p in pages)
    expected = page_paths(40) | image_paths(40)
    # Every page and requisite once, by the server's count: links back home and up, links
    # with fragments, links to a page's own picture and shared images asked for by many
    # pages at once are not asked for again; the other host is never visited.
    assert set(site_server.counts) == expected
    assert set(site_server.counts.values()) == {1}


@pytest.mark.parametrize("level", [0, 1, 3])
async def test_depth_is_exact(site_server: SiteServer, level: int) -> None:
    site_server.generate(40)
    async with Loader() as loader:
        pages = await crawl_all(loader, site_server.url("/p/0.html"), level=level)
    assert {p.url.rsplit("/", 1)[1] for p in pages} == {p.rsplit("/", 1)[1] for p in page_paths(40, level)}
    assert {p for p in site_server.counts if p.startswith("/p/")} == page_paths(40, level)
    assert set(site_server.counts.values()) == {1}


async def test_breadth_first_order(site_server: SiteServer) -> None:
    site_server.generate(31)
    async with Loader() as loader:
        pages = await crawl_all(loader, site_server.url("/p/0.html"), level=None, concurrency=1)
    depths = [depth(int(p.url.rsplit("/", 1)[1].split(".")[0])) for p in pages]
    assert depths == sorted(depths) and depths[-1] == 4


async def test_in_flight_dedupe_under_concurrency(site_server: SiteServer) -> None:
    # Every page links to every other: with 16 pages at once and slow answers, the
    # same URL is found many times while its first request is under way.
    site = {}
    for i in range(24):
        links = "".join(f'<a href="/m/{j}.html">{j}</a>' for j in range(24))
        body = f"<title>{i}</title>{links}<img src=/img/shared.png><img src=/img/{i % 4}.png>"
        site[f"/m/{i}.html"] = ("text/html", body.encode())
    for name in ("shared", "0", "1", "2", "3"):
        site[f"/img/{name}.png"] = ("image/png", b"\x89PNG\r\n\x1a\n")
    site_server.site.update(site)
    site_server.delay = 0.02
    async with Loader() as loader:
        pages = await crawl_all(loader, site_server.url("/m/0.html"), level=None, concurrency=16)
    assert len(pages) == 24
    assert site_server.counts["/img/shared.png"] == 1
    assert set(site_server.counts.values()) == {1}
    assert site_server.most_in_flight > 1  # the pages did overlap


async def test_scope_hosts_regexes_and_no_parent(site_server: SiteServer) -> None:
    site_server.site.update({
        "/docs/start.html": ("text/html", b'<a href="sub/a.html">a</a><a href="/top.html">up</a>'
                                          b'<a href="/other/b.html">b</a><a href="sub/skip-me.html">s</a>'
                                          b'<a href="mailto:x@example.com">mail</a>'),
        "/docs/sub/a.html": ("text/html", b"a"),
        "/docs/sub/skip-me.html": ("text/html", b"s"),
        "/top.html": ("text/html", b"top"),
        "/other/b.html": ("text/html", b"b"),
    })
    start = site_server.url("/docs/start.html")
    async with Loader() as loader:
        await crawl_all(loader, start, no_parent=True)
    assert set(site_server.counts) == {"/docs/start.html", "/docs/sub/a.html", "/docs/sub/skip-me.html"}
    site_server.reset()
    async with Loader() as loader:  # a new loader: one would reuse what it fetched
        await crawl_all(loader, start, reject=r"skip-me", accept=r"\.html$")
    assert set(site_server.counts) == {"/docs/start.html", "/docs/sub/a.html", "/top.html", "/other/b.html"}


async def test_other_hosts_only_with_span_hosts_and_within_domains(site_server: SiteServer) -> None:
    site_server.generate(3)
    start = site_server.url("/p/0.html")
    elsewhere = f"http://localhost:{site_server.port}/elsewhere.html"
    async with Loader() as loader:
        pages = await crawl_all(loader, start, level=1)
        assert elsewhere not in {p.url for p in pages}
        pages = await crawl_all(loader, start, level=1, span_hosts=True, domains=["example.org"])
        assert elsewhere not in {p.url for p in pages}
        pages = await crawl_all(loader, start, level=1, span_hosts=True)
        assert elsewhere in {p.url for p in pages}  # tried (it may fail: localhost may be ::1)


async def test_awaitable_policy_gets_depth_and_the_crawl(site_server: SiteServer) -> None:
    site_server.generate(15)
    asked: list[tuple[str, int]] = []

    async def policy(url: str, link_depth: int, crawl: Any) -> bool:
        await anyio.sleep(0)  # a policy may await (a database, robots.txt ...)
        assert crawl.seen >= 1 and crawl.pages >= 0
        asked.append((url.rsplit("/", 1)[1], link_depth))
        return not url.endswith("/p/2.html")

    async with Loader() as loader:
        async with loader.crawl(site_server.url("/p/0.html"), level=None, policy=policy) as crawl:
            pages = [p async for p in crawl]
        assert crawl.refused == 1
    urls = {p.url.rsplit("/", 1)[1] for p in pages}
    assert "2.html" not in urls and "5.html" not in urls and "1.html" in urls  # 5 lies below 2
    assert ("1.html", 1) in asked and ("3.html", 2) in asked
    assert len(asked) == len({u for u, _ in asked})  # each link once


async def test_politeness_seam_is_asked_and_entered(site_server: SiteServer) -> None:
    site_server.generate(7)
    turns: list[str] = []

    class Polite:
        async def allowed(self, url: str) -> bool:
            return not url.endswith("/p/1.html")

        @contextlib.asynccontextmanager
        async def turn(self, url: str) -> AsyncIterator[None]:
            turns.append(url)
            yield

    async with Loader() as loader:
        async with loader.crawl(site_server.url("/p/0.html"), level=None, politeness=Polite()) as crawl:
            pages = [p async for p in crawl]
        assert crawl.denied == 1
    assert sorted(turns) == sorted(p.url for p in pages)
    assert "/p/1.html" not in site_server.counts and "/p/3.html" not in site_server.counts
    assert "/p/2.html" in site_server.counts


async def test_max_pages_and_bad_options(site_server: SiteServer) -> None:
    site_server.generate(20)
    async with Loader() as loader:
        pages = await crawl_all(loader, site_server.url("/p/0.html"), level=None, max_pages=5, concurrency=2)
        assert len(pages) == 5
        with pytest.raises(ValueError, match="link"):
            loader.crawl(site_server.url("/p/0.html"), kinds=["image", "link"])
        with pytest.raises(ValueError, match="level"):
            loader.crawl(site_server.url("/p/0.html"), level=-1)


async def test_leaving_early_stops_the_crawl(site_server: SiteServer) -> None:
    site_server.generate(60)
    async with Loader() as loader:
        async with loader.crawl(site_server.url("/p/0.html"), level=None, concurrency=2) as pages:
            async for _ in pages:
                break
    assert sum(site_server.counts[p] for p in page_paths(60)) < 10


async def test_state_file_resumes_without_fetching_done_pages(site_server: SiteServer, tmp_path: Path) -> None:
    site_server.generate(15)
    state = tmp_path / "crawl.sqlite"
    start = site_server.url("/p/0.html")
    async with Loader() as loader:
        first = await crawl_all(loader, start, level=None, max_pages=6, state=state, concurrency=2)
    assert len(first) == 6
    site_server.reset()
    async with Loader() as loader:
        async with loader.crawl(start, level=None, state=state) as crawl:
            second = [p async for p in crawl]
        assert crawl.resumed == 6
    assert {p.url for p in first}.isdisjoint(p.url for p in second)
    assert {p.url for p in first} | {p.url for p in second} == {site_server.url(p) for p in page_paths(15)}
    assert not any(site_server.counts[p.url.split(str(site_server.port), 1)[1]] for p in first)


async def test_gopher_menu_tree(gopher_server: GopherServer) -> None:
    requests: Counter[str] = Counter()

    def count(event: Event) -> None:
        if event.phase is Phase.HANDLE_CREATED:
            requests[event.url] += 1

    start = gopher_server.url("1", "/")
    async with Loader() as loader:
        pages = await crawl_all(loader, start, level=None, callback=count)
    urls = {p.url for p in pages}
    base = f"gopher://127.0.0.1:{gopher_server.port}"
    # Menus (1), text (0), HTML (h) and search (7) items are links; "Back to the top" and
    # the second "About" name URLs already seen; the h item to http://127.0.0.1:9/ is on
    # the same host, so in scope (it fails: nothing listens there).
    assert urls == {f"{base}/1/", f"{base}/0/about.txt", f"{base}/1/docs", f"{base}/h/docs/page.html",
                    f"{base}/7/search.pyg", "http://127.0.0.1:9/"}
    assert f"{base}/9/files/data.bin" not in requests  # type 9 is neither a link nor a requisite
    requisites = {r.url for p in pages for r in p.resources}
    assert {f"{base}/g/pics/cat.gif", f"{base}/p/pics/dog.png", f"{base}/I/pics/bird.png"} <= requisites
    assert set(requests.values()) == {1}, requests


async def test_ftp_tree(ftp_server: FtpServerInfo) -> None:
    requests: Counter[str] = Counter()

    def count(event: Event) -> None:
        if event.phase is Phase.HANDLE_CREATED:
            requests[event.url] += 1

    async with Loader() as loader:
        pages = await crawl_all(loader, ftp_server.url("/pub/"), level=None, callback=count)
    base = ftp_server.url("/pub/")
    urls = {p.url for p in pages}
    assert {base + "media/", base + "media/sub/", base + "hello.txt", base + "media/notes.txt"} <= urls
    requisites = {r.url for p in pages for r in p.resources}
    assert {base + "media/photo.png", base + "media/chime.wav", base + "media/sub/deep.png"} <= requisites
    assert not requisites & urls  # a requisite is not fetched again as a page
    assert set(requests.values()) == {1}, requests
    assert all(p.ok for p in pages)


# -- the command line ---------------------------------------------------------------


def test_cli_crawl_saves_pages_and_converts_links_between_them(site_server: SiteServer, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    site_server.generate(7)
    out = tmp_path / "out"
    code = main(["fetch", "-r", "-l", "inf", "--convert-links", "--json", "-q", "-o", str(out),
                 site_server.url("/p/0.html")])
    assert code == 0
    summary = __import__("json").loads(capsys.readouterr().out)
    assert summary["crawl"]["pages"] == 7 and summary["crawl"]["failures"] == 0
    assert summary["crawl"]["resources"] == 7 * 3  # per page: a shared image counts on each
    saved = out / f"127.0.0.1_{site_server.port}"
    page = (saved / "p" / "3.html").read_text()
    assert 'href="1.html"' in page  # the absolute link up, now to the local copy
    assert f"http://localhost:{site_server.port}/elsewhere.html" in page  # not saved: left absolute
    assert 'src="../img/3-0.png"' in page
    assert set(site_server.counts.values()) == {1}


def test_cli_crawl_quiet_prints_no_line_a_page(site_server: SiteServer, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """-q on a long crawl: its summary, not one line per page (a worker's log stays small)."""
    site_server.generate(5)
    args = ["fetch", "-r", "-l", "inf", "--no-progress", "-o", str(tmp_path / "out"), site_server.url("/p/0.html")]
    assert main(args) == 0
    loud = capsys.readouterr().err
    assert loud.count("queued] ") == 5 and "crawled 5 pages" in loud
    assert main([*args, "-q"]) == 0
    quiet = capsys.readouterr().err
    assert "queued] " not in quiet and quiet.strip().startswith("crawled 5 pages"), quiet


def test_cli_crawl_options_need_r(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "--state", str(tmp_path / "s"), "http://127.0.0.1:9/"]) == 2
    assert "--state go with -r" in capsys.readouterr().err
    assert main(["fetch", "-r", "--list", "http://127.0.0.1:9/"]) == 2
    assert "--list is for single pages" in capsys.readouterr().err
    assert main(["fetch", "-r", "-l", "-1", "http://127.0.0.1:9/"]) == 2
    assert "must be at least 0" in capsys.readouterr().err
    assert main(["fetch", "-r", "--accept-regex", "(", "http://127.0.0.1:9/"]) == 2
    assert "invalid regular expression" in capsys.readouterr().err


def _done_count(state: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(state, timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM done").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


def _done_fingerprints(state: Path) -> set[int]:
    with contextlib.closing(sqlite3.connect(state, timeout=5)) as db:
        return {fp for (fp,) in db.execute("SELECT fp FROM done")}


def test_resume_after_sigkill_mid_crawl(site_server: SiteServer, tmp_path: Path) -> None:
    site_server.generate(40)
    site_server.delay = 0.03  # slow enough that the kill lands mid-crawl
    state, out = tmp_path / "crawl.sqlite", tmp_path / "out"
    argv = [sys.executable, "-m", "loader", "fetch", "-r", "-l", "inf", "-q", "--state", str(state),
            "-o", str(out), site_server.url("/p/0.html")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
        while _done_count(state) < 8 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = _done_fingerprints(state)
    assert 8 <= len(done) < 40
    by_fp = {fingerprint(canonical_url(site_server.url(p))): p for p in page_paths(40)}
    done_pages = {by_fp[fp] for fp in done if fp in by_fp}
    assert len(done_pages) == len(done)
    time.sleep(0.1)  # let the server finish counting requests already received
    before = Counter(site_server.counts)
    site_server.delay = 0
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    # Nothing that had completed is fetched again: not the pages, nor their own images.
    for path in done_pages:
        i = path.rsplit("/", 1)[1].split(".")[0]
        for again in (path, f"/img/{i}-0.png", f"/img/{i}-1.png"):
            assert site_server.counts[again] == before[again] == 1, again
    # And the crawl is whole: every page done, each saved.
    assert len(_done_fingerprints(state)) == 40
    saved = out / f"127.0.0.1_{site_server.port}" / "p"
    assert {f.name for f in saved.glob("*.html")} == {p.rsplit("/", 1)[1] for p in page_paths(40)}


@pytest.mark.parametrize("no_robots", [False, True])
def test_cli_crawl_honours_robots_txt_unless_told_not_to(site_server: SiteServer, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         no_robots: bool) -> None:
    site_server.generate(7)
    site_server.site["/robots.txt"] = ("text/plain", b"User-agent: *\nDisallow: /p/2.html\n")
    args = ["fetch", "-r", "-l", "inf", "--json", "-q", "-o", str(tmp_path / "out"), site_server.url("/p/0.html")]
    code = main(args[:2] + (["--no-robots"] if no_robots else []) + args[2:])
    assert code == 0
    summary = __import__("json").loads(capsys.readouterr().out)
    if no_robots:
        assert site_server.counts["/robots.txt"] == 0 and site_server.counts["/p/2.html"] == 1
        assert summary["crawl"]["pages"] == 7
    else:  # read once; the page it disallows (and what only it links to: 5, 6) never asked for
        assert site_server.counts["/robots.txt"] == 1 and site_server.counts["/p/2.html"] == 0
        assert site_server.counts["/p/5.html"] == 0 and summary["crawl"]["pages"] == 4
