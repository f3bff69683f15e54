"""Hostile markup never crashes discovery (nor makes it quadratic: these would run for minutes)."""

from __future__ import annotations

import random

import pytest

from loader.discovery import discover, parse_document, parse_kinds, rewrite_html
from loader.discovery.html import MAX_DEPTH, limit_nesting

URL = "http://example.test/"
EVERYTHING = parse_kinds("all") | {"meta"}


def run(content: bytes, *, content_type: str | None = "text/html", **kwargs: object):
    # No wall-clock limit (the machine is shared); a quadratic parse of these
    # documents would take minutes, which the run itself shows.
    return discover(parse_document(content, URL, content_type), kinds=EVERYTHING, **kwargs)  # type: ignore[arg-type]


NESTED = {
    "div": b"<div>" * 100_000 + b'<img src="deep.png">' + b"</div>" * 100_000,
    "div unclosed, with styles": b'<div style="background:url(bg.png)">' * 100_000
    + b'<img src="deep.png">',
    "section": b"<section>" * 100_000 + b'<img src="deep.png">',
    "ul": b"<ul>" * 100_000 + b'<img src="deep.png">',
    "span then div": b"<span>" * 100_000 + b"<div>" * 100_000 + b'<img src="deep.png">',
    "span then stray end tags": b"<span>" * 100_000 + b"</div>" * 100_000 + b'<img src="deep.png">',
    "formatting": b"<b><i><u>" * 40_000 + b'<img src="deep.png">',
    "table": b"<table><tr><td>" * 40_000 + b'<img src="deep.png">',
    "svg": b"<svg>" + b"<g>" * 100_000 + b'<image href="deep.png"/>',
    "list items": b"<ul><li>" * 50_000 + b'<img src="deep.png">',
    "custom elements then divs": b"<x-a>" * 100_000
    + b"<div></div>" * 100_000
    + b'<img src="deep.png">',
}


@pytest.mark.parametrize("name", sorted(NESTED))
def test_deep_nesting(name: str) -> None:
    result = run(NESTED[name])
    assert URL + "deep.png" in [f.url for f in result.found]


def test_flattened_elements_keep_their_urls_and_names() -> None:
    html = b"<div>" * (MAX_DEPTH + 5) + b'<video poster="p.jpg"></video><table background="t.gif">'
    result = run(html)
    assert [(f.url, f.provenance()) for f in result.found] == [
        (URL + "p.jpg", "video[poster]"),
        (URL + "t.gif", "table[background]"),
    ]


def test_shallow_documents_are_not_touched() -> None:
    page = (
        "<p>" + "<div><img src=x.png></div>" * 5_000 + "<svg>" + '<path d="M0"/>' * 2_000 + "</svg>"
    )
    assert limit_nesting(page) is page or limit_nesting(page) == page
    unclosed = (
        "<p>para" * 5_000 + "<li>item" * 5_000 + "<td>cell" * 5_000 + "<a href=x>link" * 5_000
    )
    assert limit_nesting(unclosed) == unclosed
    scripts = "<script>" + "'<div>' + " * 5_000 + "</script>"
    assert limit_nesting(scripts) == scripts


def test_a_million_images_are_capped_and_counted() -> None:
    html = b"<html><body>" + b"".join(b'<img src="/i/%d.png">' % i for i in range(1_000_000))
    result = run(html, max_found=1000)
    assert len(result.found) == 1000
    assert result.found[-1].url == URL + "i/999.png"
    assert result.skipped == 999_000


@pytest.mark.parametrize(
    "html",
    [
        b'<img src="' + b"a" * 1_000_000 + b'.png">',
        b'<img srcset="' + b"a.png 1x, " * 100_000 + b'">',
        b'<img srcset="' + b"a" * 1_000_000 + b'">',
        b'<div style="' + b"background:url(x.png);" * 50_000 + b'"></div>',
        b'<div style="' + b"(" * 1_000_000 + b'"></div>',
        b'<img src="data:image/png;base64,' + b"A" * 1_000_000 + b'">',
        b"<style>" + b"url(" * 250_000 + b"</style>",
        b'<div title="' + b"&amp;" * 200_000 + b'" class="' + b"x " * 300_000 + b'">',
        b"<img " + b'a="b" ' * 100_000 + b'src="many-attributes.png">',
        b'<meta charset="' + b"x" * 1_000_000 + b'">',
    ],
    ids=[
        "src",
        "srcset candidates",
        "srcset url",
        "style",
        "style parens",
        "data url",
        "style block",
        "entities",
        "attribute count",
        "charset",
    ],
)
def test_megabyte_attributes(html: bytes) -> None:
    run(html)


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00<\x00i\x00m\x00g",  # UTF-16 BOM, truncated
        b"<img src='\xff\xfe\xfd.png'><img src='\xc3('>",
        b"<img src='a\x00b.png'>\x00\x00<\x00img src=x.png>",
        b"\x00" * 100_000,
        b'<meta charset="utf-8"><img src="\xed\xa0\x80.png">',  # an encoded surrogate
        b"<img src=x.png" + b"\x80" * 1000,
        b"",
        b"<",
        b"<!--",
        b"<![CDATA[",
        b"<plaintext><img src=no.png>",
        b"<!doctype html><html><base href><img src>",
        b'<base href="http://[::1"><img src="x.png">',
        b"<svg><use href='#'/><use xlink:href=' '/></svg>",
    ],
    ids=lambda value: f"{value[:16]!r}..{len(value)}",
)
def test_broken_bytes_never_crash(content: bytes) -> None:
    result = run(content)
    for found in result.found:
        assert "\x00" not in found.url
    rewrite_html(parse_document(content, URL, "text/html"), {f.url: "x" for f in result.found})


def test_random_markup_never_crashes() -> None:
    rng = random.Random(20240601)
    pieces = [
        b"<img src=",
        b"<div style='",
        b"url(",
        b"image-set(",
        b"'",
        b'"',
        b">",
        b"</",
        b"<!--",
        b"-->",
        b"<svg>",
        b"<use href=#",
        b"<source srcset=",
        b" 1x,",
        b",",
        b"<style>",
        b"</style>",
        b"@import ",
        b"<base href=",
        b"//",
        b"\\",
        b"\x00",
        b"\xff",
        b"&amp;",
        b"&#0;",
        b"<picture>",
        b"<video poster=",
        b"javascript:",
        b"data:",
        b"#",
        b"?",
        b"<table background=",
        b"<template>",
        b"<noscript>",
    ]
    for _ in range(300):
        content = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 60)))
        for content_type in ("text/html", "text/css"):
            document = parse_document(content, URL, content_type)
            result = discover(document, kinds=EVERYTHING, max_found=5)
            assert len(result.found) <= 5
            if document.type == "html":
                rewrite_html(document, {f.url: "local" for f in result.found})


def test_rewrite_of_a_deep_document_finishes() -> None:
    html = NESTED["div unclosed, with styles"]
    document = parse_document(html, URL, "text/html")
    out = rewrite_html(
        document, {URL + "bg.png": "local/bg.png", URL + "deep.png": "local/deep.png"}
    )
    assert b"local/deep.png" in out and b"local/bg.png" in out
