"""PageResult.links: a page's outgoing links, with provenance, collected always and never fetched."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from support.ftp_server import FtpServerInfo
from support.gopher_server import GopherServer
from support.site import SiteServer, serve_site

from loader import Loader, hookimpl
from loader.discovery import (
    ARCHIVER,
    DEFAULT_BROWSER,
    MAX_LINKS,
    Document,
    Found,
    discover,
    parse_document,
)
from loader.discovery import html as html_module
from loader.discovery.html import parse_html

PAGE = b"""<!doctype html><html><head>
<base href="http://h/base/">
<link rel="next" href="2.html"><link rel="prev" href="0.html">
<link rel="alternate" type="application/rss+xml" href="/feed.xml">
<link rel="alternate stylesheet" href="alt.css">
<link rel="stylesheet" href="main.css"><link rel="icon" href="/favicon.ico">
</head><body>
<a href="a.html">a</a> <a href="a.html#part">a again</a> <a href="#top">here</a>
<map><area href="/area.html"></map>
<iframe src="frame.html"></iframe>
<noscript><a href="noscript.html">no script</a></noscript>
<a href="mailto:me@example.com">mail</a> <a href="javascript:void(0)">js</a> <a>no href</a>
<img src="pic.png">
</body></html>"""


def links_of(content: bytes, url: str = "http://h/dir/page.html", **options: Any) -> list[tuple[str, str, str]]:
    found = discover(parse_document(content, url, "text/html"), **options)
    return [(f.url, f.kind, f.provenance()) for f in found.links]


@pytest.mark.parametrize("browser", [DEFAULT_BROWSER, ARCHIVER], ids=["browser", "archiver"])
def test_html_links_with_provenance(browser: Any) -> None:
    assert links_of(PAGE, browser=browser) == [
        ("http://h/base/2.html", "link", "link[href]"),
        ("http://h/base/0.html", "link", "link[href]"),
        ("http://h/feed.xml", "link", "link[href]"),
        ("http://h/base/a.html", "link", "a[href]"),
        ("http://h/area.html", "link", "area[href]"),
        ("http://h/base/frame.html", "frame", "iframe[src]"),
        # An inert <noscript> loads nothing, but its links are still links.
        ("http://h/base/noscript.html", "link", "a[href]"),
    ]


def test_frameset_frames_are_links_of_kind_frame() -> None:
    page = b"<html><frameset><frame src=left.html><frame src=right.html></frameset></html>"
    assert links_of(page) == [("http://h/dir/left.html", "frame", "frame[src]"),
                              ("http://h/dir/right.html", "frame", "frame[src]")]


def test_links_are_not_requisites_and_duplicates_merge() -> None:
    found = discover(parse_document(PAGE, "http://h/dir/page.html", "text/html"),
                     kinds=frozenset({"image", "style", "frame"}))
    assert {f.url for f in found.found} == {"http://h/base/pic.png", "http://h/base/alt.css",
                                            "http://h/base/main.css", "http://h/favicon.ico",
                                            "http://h/base/frame.html"}
    a = next(f for f in found.links if f.url == "http://h/base/a.html")
    assert a.also == (("a", "href", "http://h/dir/page.html"),)


def test_links_are_capped_and_a_page_in_pieces_gives_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from loader.discovery.pieces import PIECE_TAGS, iter_pieces

    count = 40_000  # 80,000 tags: three pieces
    content = ("<!doctype html><p>" + "".join(f'<a href="/p/{i}">{i}</a>' for i in range(count))).encode()
    assert len(list(iter_pieces(content, "utf-8"))) == -(-2 * count // PIECE_TAGS)
    url = "http://h/"
    text = content.decode()

    def whole_tree() -> Any:
        return discover(Document(url=url, type="html", content=content, base_url=url,
                                 tree=parse_html(text), extra={"text": text}))

    def in_pieces() -> Any:
        document = parse_document(content, url, "text/html")
        assert document.tree is None and document.extra["pieces"]
        return discover(document)

    whole = whole_tree()
    assert len(whole.links) == MAX_LINKS and whole.links_skipped == count - MAX_LINKS
    assert [f.url for f in whole.links][:2] == ["http://h/p/0", "http://h/p/1"]
    monkeypatch.setattr(html_module, "MAX_TREE_TAGS", 1000)  # this page now goes in pieces
    pieces = in_pieces()
    assert pieces.links == whole.links and pieces.links_skipped == whole.links_skipped
    discover_module = importlib.import_module("loader.discovery.discover")  # the module, not the function
    monkeypatch.setattr(discover_module, "MAX_LINKS", count)  # every link, across the pieces' seams
    whole, pieces = whole_tree(), in_pieces()
    assert len(whole.links) == count and pieces.links == whole.links


def test_gopher_and_ftp_links_come_from_their_extractors() -> None:
    from loader_ftp import extract_listing
    from loader_gopher import extract_menu

    menu = b"1Sub\t/sub\th\t70\r\n0Text\t/t.txt\th\t70\r\nIPic\t/p.png\th\t70\r\n.\r\n"
    document = Document(url="gopher://h/1/", type="gopher-menu", content=menu, base_url="gopher://h/1/")
    found = discover(document, extractors=[extract_menu])
    assert [(f.url, f.kind, f.attribute) for f in found.links] == [
        ("gopher://h/1/sub", "link", "1"), ("gopher://h/0/t.txt", "link", "0"),
    ]
    assert [f.url for f in found.found] == ["gopher://h/I/p.png"]
    listing = b'{"name": "d", "type": "dir"}\n{"name": "a.png", "type": "file"}\n'
    document = Document(url="ftp://h/pub/", type="ftp-listing", content=listing, base_url="ftp://h/pub/")
    found = discover(document, extractors=[extract_listing])
    assert [(f.url, f.attribute) for f in found.links] == [("ftp://h/pub/d/", "dir"), ("ftp://h/pub/a.png", "name")]
    assert [f.url for f in found.found] == ["ftp://h/pub/a.png"]


# -- through the loader -----------------------------------------------------------------


@pytest.fixture
def site_server() -> Iterator[SiteServer]:
    with serve_site() as server:
        yield server


@pytest.mark.anyio
async def test_fetch_page_collects_links_and_fetches_none(site_server: SiteServer) -> None:
    site_server.generate(3)
    async with Loader() as loader:
        page = await loader.fetch_page(site_server.url("/p/0.html"))
    base = site_server.url("")
    assert [(f.url, f.kind, f.provenance(), f.source) for f in page.links][:2] == [
        (base + "/p/1.html", "link", "a[href]", base + "/p/0.html"),
        (base + "/p/2.html", "link", "a[href]", base + "/p/0.html"),
    ]
    assert f"http://localhost:{site_server.port}/elsewhere.html" in {f.url for f in page.links}
    assert set(site_server.counts) == {"/p/0.html", "/img/0-0.png", "/img/0-1.png", "/img/shared-0.png"}


@pytest.mark.anyio
async def test_unknown_kinds_raise_naming_the_known_ones(site_server: SiteServer) -> None:
    async with Loader() as loader:
        with pytest.raises(ValueError, match=r"unknown kinds 'link'; known kinds: image, sound.*PageResult.links"):
            await loader.fetch_page(site_server.url("/p/0.html"), kinds=["link"])
        with pytest.raises(ValueError, match=r"unknown kinds 'bogus', 'picture'"):
            await loader.fetch_page(site_server.url("/p/0.html"), kinds=["image", "picture", "bogus"])
    assert not site_server.counts


class Extra:
    """A loader_extract plugin reporting a link, an item of a kind of its own and an image."""

    @hookimpl
    def loader_extract(self, document: Document) -> Iterable[Found] | None:
        if document.type != "html":
            return None
        return [
            Found("/from-plugin.html", "link", "x-plugin", "data-next"),
            Found("/feed.json", "feed", "x-plugin", "data-feed", why="plugin: a feed"),
            Found("/img/0-0.png", "image", "x-plugin", "data-pic"),
        ]


@pytest.mark.anyio
async def test_loader_extract_items_of_any_kind_are_kept(site_server: SiteServer) -> None:
    site_server.generate(1)
    async with Loader(plugins=[Extra()]) as loader:
        page = await loader.fetch_page(site_server.url("/p/0.html"))
    links = {f.url: f for f in page.links}
    base = site_server.url("")
    assert links[base + "/from-plugin.html"].kind == "link"
    assert links[base + "/feed.json"].kind == "feed"
    assert links[base + "/feed.json"].why == "plugin: a feed"
    assert links[base + "/feed.json"].source == base + "/p/0.html"
    assert "/feed.json" not in site_server.counts and "/from-plugin.html" not in site_server.counts
    assert site_server.counts["/img/0-0.png"] == 1  # a requisite kind is fetched, once


@pytest.mark.anyio
async def test_a_gopher_menu_page_has_its_links(gopher_server: GopherServer) -> None:
    async with Loader() as loader:
        page = await loader.fetch_page(gopher_server.url("1", "/"))
    base = f"gopher://127.0.0.1:{gopher_server.port}"
    assert [(f.url, f.attribute) for f in page.links] == [
        (f"{base}/0/about.txt", "0"), (f"{base}/1/docs", "1"), (f"{base}/7/search.pyg", "7"),
        (f"{base}/h/docs/page.html", "h"), ("http://127.0.0.1:9/", "h"),
    ]


@pytest.mark.anyio
async def test_an_ftp_directory_page_has_its_links(ftp_server: FtpServerInfo) -> None:
    async with Loader() as loader:
        page = await loader.fetch_page(ftp_server.url("/pub/media/"))
    base = ftp_server.url("/pub/media/")
    assert {f.url for f in page.links} == {base + name for name in
                                           ("photo.png", "chime.wav", "sub/", "notes.txt", "icon.gif")}
    assert {r.url for r in page.resources} == {base + "photo.png", base + "chime.wav", base + "icon.gif"}
