"""--convert-links: rewritten documents re-discover the local paths."""

from __future__ import annotations

from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from loader.discovery import (
    ARCHIVER,
    discover,
    parse_document,
    parse_kinds,
    rewrite_css,
    rewrite_html,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"
EVERYTHING = parse_kinds("all") | {"meta"}
SAVED = "file:///saved/page.html"


def local_name(index: int, url: str) -> str:
    return f"files/{index}-" + url.rsplit("/", 1)[-1].replace("?", "%3F")


def test_every_found_resource_of_every_fixture_is_relinked() -> None:
    for path in sorted(FIXTURES.glob("*.html")):
        url = "http://example.test/dir/" + path.name
        document = parse_document(path.read_bytes(), url, "text/html")
        found = discover(document, kinds=EVERYTHING).found
        mapping = {
            f.url: local_name(i, f.url)
            for i, f in enumerate(found)
            if not f.url.startswith("data:")
        }
        out = rewrite_html(document, mapping)
        assert LexborHTMLParser(out.decode()).root is not None
        again = discover(parse_document(out, SAVED, "text/html"), kinds=EVERYTHING).found
        expected = [
            (
                f.url if f.url.startswith("data:") else "file:///saved/" + mapping[f.url],
                f.kind,
                f.provenance(),
            )
            for f in found
        ]
        assert [(f.url, f.kind, f.provenance()) for f in again] == expected, path.name


def test_only_mapped_urls_change_and_descriptors_stay() -> None:
    html = (
        b'<img src="a.png" srcset="a.png 1x, b.png 2x,c.png 3x" alt="x">'
        b'<img src="keep.png"><div style="background:url(bg.png); color:red"></div>'
        b'<img data-srcset="lazy.png 100w, other.png 200w">'
    )
    document = parse_document(html, "http://example.test/", "text/html")
    mapping = {
        "http://example.test/a.png": "img/a.png",
        "http://example.test/c.png": "img/c.png",
        "http://example.test/bg.png": "img/bg.png",
        "http://example.test/lazy.png": "img/lazy.png",
    }
    out = rewrite_html(document, mapping).decode()
    assert '<img src="img/a.png" srcset="img/a.png 1x, b.png 2x,img/c.png 3x" alt="x">' in out
    assert '<img src="keep.png">' in out
    assert 'style="background:url(&quot;img/bg.png&quot;); color:red"' in out
    assert 'data-srcset="img/lazy.png 100w, other.png 200w"' in out


def test_style_blocks_keep_fragments_and_escape_what_could_end_the_element() -> None:
    html = (
        b"<style>@import 'theme.css'; a{background:url(sprite.svg#icon)} b{c:url(x.png)}</style>"
        b'<svg><use href="sprite.svg#other"/></svg>'
    )
    document = parse_document(html, "http://example.test/", "text/html")
    mapping = {
        "http://example.test/theme.css": "css/theme.css",
        "http://example.test/sprite.svg": "img/sprite.svg",
        "http://example.test/x.png": "img/</style>.png",
    }
    out = rewrite_html(document, mapping).decode()
    assert (
        '@import "css/theme.css"; a{background:url("img/sprite.svg#icon")} b{c:url("img/\\3c /style\\3e .png")}'
        in out
    )
    assert '<use href="img/sprite.svg#other">' in out
    # Every URL the rewritten page names (the b{} rule matches no element: a browser skips it).
    again = discover(parse_document(out.encode(), SAVED, "text/html"), kinds=EVERYTHING, browser=ARCHIVER)
    assert [f.url for f in again.found] == [
        "file:///saved/css/theme.css",
        "file:///saved/img/sprite.svg",
        "file:///saved/img/</style>.png",
    ]


def test_base_href_is_dropped_and_what_relied_on_it_made_absolute() -> None:
    html = (
        b'<head><base href="https://cdn.example.net/v2/"></head>'
        b'<img src="a.png"><img src="not-saved.png"><a href="page2.html">next</a>'
        b'<a href="#top">top</a><a href="javascript:void(0)">js</a><form action="/search"></form>'
    )
    document = parse_document(html, "http://example.test/dir/page.html", "text/html")
    out = rewrite_html(document, {"https://cdn.example.net/v2/a.png": "files/a.png"}).decode()
    assert "<base>" in out and 'cdn.example.net/v2/"' not in out
    assert '<img src="files/a.png">' in out
    assert '<img src="https://cdn.example.net/v2/not-saved.png">' in out
    assert '<a href="https://cdn.example.net/v2/page2.html">' in out
    assert '<a href="#top">' in out and '<a href="javascript:void(0)">' in out
    assert '<form action="https://cdn.example.net/search">' in out


def test_without_base_unmapped_references_are_untouched() -> None:
    html = b'<img src="not-saved.png"><a href="page2.html">next</a>'
    document = parse_document(html, "http://example.test/dir/page.html", "text/html")
    out = rewrite_html(document, {}).decode()
    assert '<img src="not-saved.png">' in out and '<a href="page2.html">' in out


def test_output_is_utf8_and_says_so() -> None:
    html = '<html><head><meta charset="windows-1251"><title>Привет</title></head><img src="a.png">'.encode(
        "cp1251"
    )
    document = parse_document(html, "http://example.test/", None)
    out = rewrite_html(document, {})
    assert '<meta charset="utf-8">' in out.decode("utf-8")
    assert "Привет" in out.decode("utf-8")
    assert parse_document(out, SAVED, None).extra["encoding"] == "utf-8"

    legacy = '<meta http-equiv="content-type" content="text/html; charset=koi8-r"><p>Ж'.encode(
        "koi8-r"
    )
    out = rewrite_html(parse_document(legacy, "http://example.test/", None), {}).decode()
    assert 'content="text/html; charset=utf-8"' in out and "Ж" in out

    bare = "<p>é".encode("latin-1")
    out = rewrite_html(
        parse_document(bare, "http://example.test/", "text/html; charset=latin-1"), {}
    ).decode()
    assert out.startswith('<html><head><meta charset="utf-8">') and "é" in out


def test_rewrite_does_not_touch_the_document() -> None:
    document = parse_document(b'<img src="a.png">', "http://example.test/", "text/html")
    before = document.tree.html
    rewrite_html(document, {"http://example.test/a.png": "b.png"})
    assert document.tree.html == before


def test_template_content_survives() -> None:
    html = b'<template><img src="t.png"></template><img src="a.png">'
    document = parse_document(html, "http://example.test/", "text/html")
    out = rewrite_html(document, {"http://example.test/a.png": "b.png"}).decode()
    assert '<template><img src="t.png"></template>' in out and '<img src="b.png">' in out


def test_srcset_local_paths_are_kept_whole() -> None:
    document = parse_document(
        b'<img srcset="a.png 1x, b.png 2x">', "http://example.test/", "text/html"
    )
    out = rewrite_html(document, {"http://example.test/a.png": "my files/a,.png"}).decode()
    assert 'srcset="my%20files/a,.png 1x, b.png 2x"' in out
    # Every candidate (a browser at DPR 1 would load a.png only).
    again = discover(parse_document(out.encode(), SAVED, None), browser=ARCHIVER).found
    assert [f.url for f in again] == ["file:///saved/my%20files/a,.png", "file:///saved/b.png"]
    out = rewrite_html(document, {"http://example.test/a.png": "a,"}).decode()
    assert 'srcset="a%2C 1x, b.png 2x"' in out


def test_rewrite_css() -> None:
    css = (
        '@charset "utf-8"; @import url(base.css); @import "print.css" print;\n'
        "@font-face { src: url('../fonts/a.woff2') format('woff2') }\n"
        "body { background: url( ../img/bg.png ) , image-set('../img/x.png' 1x, url(\"../img/y.png\") 2x); }\n"
        "/* url(../img/bg.png) */ .keep { background: url(../img/keep.png) }\n"
    )
    mapping = {
        "http://example.test/css/base.css": "base.css",
        "http://example.test/css/print.css": "print.css",
        "http://example.test/fonts/a.woff2": "../fonts/a.woff2",
        "http://example.test/img/bg.png": "../img/bg.png",
        "http://example.test/img/x.png": "../img/x 1.png",
        "http://example.test/img/y.png": "../img/y.png",
    }
    out = rewrite_css(css, "http://example.test/css/site.css", mapping)
    assert out == (
        '@charset "utf-8"; @import url("base.css"); @import "print.css" print;\n'
        "@font-face { src: url(\"../fonts/a.woff2\") format('woff2') }\n"
        'body { background: url("../img/bg.png") , image-set("../img/x 1.png" 1x, url("../img/y.png") 2x); }\n'
        "/* url(../img/bg.png) */ .keep { background: url(../img/keep.png) }\n"
    )
    assert rewrite_css(css, "http://example.test/css/site.css", {}) == css
    absolutized = rewrite_css(
        ".k{background:url(../img/keep.png)}",
        "http://example.test/css/site.css",
        {},
        absolutize=True,
    )
    assert absolutized == '.k{background:url("http://example.test/img/keep.png")}'


def test_rewritten_stylesheets_declare_utf8() -> None:
    css = '@charset "windows-1251"; a{background:url(фон.png)}'
    document_text = css  # as discovery decoded it
    out = rewrite_css(
        document_text, "http://example.test/s.css", {"http://example.test/фон.png": "img/фон.png"}
    )
    assert out == '@charset "utf-8"; a{background:url("img/фон.png")}'
    assert rewrite_css("\ufeffa{}", "http://example.test/s.css", {}) == "a{}"
