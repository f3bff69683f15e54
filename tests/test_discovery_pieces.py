"""Huge documents read in pieces find what one whole tree finds (``loader.discovery.pieces``)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import pytest

from loader.discovery import ARCHIVER, discover, parse_document, parse_kinds
from loader.discovery import html as html_module
from loader.discovery.css import find_css_urls
from loader.discovery.encoding import decode_html
from loader.discovery.html import MAX_TREE_TAGS, Slot, iter_slots, parse_html
from loader.discovery.pieces import iter_piece_slots, iter_pieces

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"
EVERYTHING = parse_kinds("all") | {"meta"}
URL = "http://example.test/dir/page.html"
SlotRow = tuple[str, str, str, str, str]


def rows(slots: Iterable[Slot]) -> list[SlotRow]:
    """The slots, a ``<style>`` block's as the URL slots pieces give for a big one."""
    out = []
    for s in slots:
        if s.element == "style" and s.syntax == "css" and not s.attribute:
            for ref in find_css_urls(s.value):
                kind = "style" if ref.kind == "import" else ref.kind
                out.append(("style", ref.via, kind, "url", ref.url))
        else:
            out.append((s.element, s.attribute, s.kind, s.syntax, s.value))
    return out


def tree_slots(content: bytes) -> list[SlotRow]:
    return rows(iter_slots(parse_html(decode_html(content, "text/html")[0])))


def piece_slots(content: bytes, **sizes: int) -> list[SlotRow]:
    return rows(iter_piece_slots(content, "text/html", **sizes))


#: The discovery fixtures and the browser model's (fixtures/browser).
PAGES = sorted(FIXTURES.glob("*.html")) + sorted((FIXTURES.parent / "browser").glob("*.html"))


@pytest.mark.parametrize("path", PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("tags", [1, 2, 3, 5, 13])
def test_fixture_pages_cut_anywhere_give_the_same_slots(path: Path, tags: int) -> None:
    content = path.read_bytes()
    # big_style=1: every <style> block is scanned on its own too.
    assert piece_slots(content, tags=tags, big_style=1) == tree_slots(content)
    assert piece_slots(content, tags=tags) == tree_slots(content)


# Well-formed markup of the constructs discovery reads, nested at random.
LEAVES = [
    "<img src=a{n}.png>",
    "<img srcset='s{n}.png 1x, t{n}.png 2x' alt='x > y'>",
    "<input type=image src=in{n}.png>",
    "<link rel=stylesheet href=l{n}.css>",
    "<link rel=icon href=i{n}.ico>",
    "<meta property=og:image content=og{n}.png>",
    "<embed src=e{n}.png>",
    "<iframe src=f{n}.html></iframe>",
    "<script src=j{n}.js></script>",
    "<script>document.write('<img src=no{n}.png>')</script>",
    "<textarea><img src=no{n}.png></textarea>",
    "<title>t<img src=no{n}.png></title>",
    "<!-- <img src=no{n}.png> -->",
    "<style>.c{n} {{ background: url(st{n}.png) }} /* <img src=no{n}.png> */</style>",
    "<video poster=p{n}.jpg><source src=v{n}.mp4></video>",
    "<audio><source src=m{n}.mp3></audio>",
    "<picture><source srcset=ps{n}.webp><img src=pi{n}.png></picture>",
    "<svg><image href=si{n}.png /><use href='#i'/><use href=u{n}.svg#x /></svg>",
    "<object data=o{n}.png></object>",
    "<template><img src=no{n}.png><script>'</template>'</script></template>",
    "<select><option>x<img src=sel{n}.png></select>",
    "<table background=t{n}.png><tr><td background=c{n}.png>x</td><td>y</td></tr></table>",
    "<div data-bg='url(bg{n}.png)' style='background:url(ds{n}.png)'></div>",
    "<img data-src=lazy{n}.jpg src=blank.gif>",
    "text & more {n} ",
    "<br><hr>",
]
CONTAINERS = [
    ("<div>", "</div>"),
    ("<section class=s>", "</section>"),
    ("<p>", "</p>"),
    ("<ul><li>", "</li></ul>"),
    ("<table><tr><td background=cell.png>", "</td></tr></table>"),
    ("<noscript>", "</noscript>"),
    ("<span><b>", "</b></span>"),
    ("<svg><foreignObject>", "</foreignObject></svg>"),
    ("<picture>", "</picture>"),
    ("<video>", "</video>"),
]


def random_page(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randrange(1, 8)):
        n = rng.randrange(1000)
        if depth < 6 and rng.random() < 0.35:
            start, end = rng.choice(CONTAINERS)
            parts.append(start + random_page(rng, depth + 1) + end)
        else:
            parts.append(rng.choice(LEAVES).format(n=n))
    return "".join(parts)


@pytest.mark.parametrize("seed", range(40))
def test_random_pages_cut_anywhere_give_the_same_slots(seed: int) -> None:
    rng = random.Random(seed)
    content = ("<!doctype html><html><head><title>x</title></head><body>" + random_page(rng)).encode()
    expected = tree_slots(content)
    for tags in (1, 2, 3, 7, 50):
        assert piece_slots(content, tags=tags, big_style=rng.choice([1, 1 << 16])) == expected, tags


@pytest.mark.parametrize("path", PAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_big_page_goes_to_pieces_and_finds_what_the_tree_finds(
    monkeypatch: pytest.MonkeyPatch, path: Path
) -> None:
    page = path.read_bytes()
    whole = discover(parse_document(page, URL, "text/html"), kinds=EVERYTHING, browser=ARCHIVER)
    model = discover(parse_document(page, URL, "text/html"), kinds=EVERYTHING)
    monkeypatch.setattr(html_module, "MAX_TREE_TAGS", 0)
    document = parse_document(page, URL, "text/html")
    assert document.tree is None and document.extra["pieces"]
    assert discover(document, kinds=EVERYTHING, browser=ARCHIVER) == whole
    # The browser model in pieces: what needs the whole tree (a selector's match)
    # is kept, and says so; everything else is decided as on one tree.
    pieces = discover(document, kinds=EVERYTHING)
    by_url = {f.url: f for f in pieces.found}
    assert {f.url for f in model.found} <= by_url.keys()
    for url in by_url.keys() - {f.url for f in model.found}:
        assert "not evaluated" in by_url[url].why or "pieces" in by_url[url].why, by_url[url]


def test_base_href_is_found_in_a_later_piece() -> None:
    filler = b"<img src=i.png>" * (MAX_TREE_TAGS + 10)
    page = b"<!-- <base href=http://wrong.test/> -->" + filler + b'<base href="http://cdn.test/x/"><img src=late.png>'
    document = parse_document(page, URL, "text/html")
    assert document.tree is None
    assert document.base_url == "http://cdn.test/x/"
    urls = [f.url for f in discover(document).found]
    assert urls == ["http://cdn.test/x/i.png", "http://cdn.test/x/late.png"]


def test_utf16_documents_are_cut_between_characters() -> None:
    text = "<meta charset=utf-16><img src=\u00e9t\u00e9.png>" + "<img src=\U0001f600.png>" * (MAX_TREE_TAGS + 5)
    document = parse_document(b"\xff\xfe" + text.encode("utf-16-le"), URL, None)
    assert document.tree is None
    assert [f.url for f in discover(document).found] == [
        "http://example.test/dir/\u00e9t\u00e9.png",
        "http://example.test/dir/\U0001f600.png",
    ]


def test_template_and_raw_text_contents_do_not_make_pieces() -> None:
    # A piece of a few tags would hold tens of thousands here if they counted.
    page = b"<template>" + b"<img src=no.png>" * 50_000 + b"</template><img src=yes.png>"
    page += b"<textarea>" + b"<img src=no.png>" * 50_000 + b"</textarea><img src=also.png>"
    pieces = list(iter_pieces(page, "utf-8", tags=4))
    assert max(len(p.html or "") for p in pieces) < 200
    assert piece_slots(page, tags=4) == tree_slots(page)


def test_a_big_style_block_is_scanned_without_lexbor() -> None:
    css = b"".join(b".c%d{background:url(s%d.png)}" % (i, i) for i in range(5_000))
    page = b"<p><style>" + css + b"</style><img src=after.png>"
    pieces = list(iter_pieces(page, "utf-8", big_style=1024))
    assert [p.css is not None for p in pieces] == [False, True, False]
    assert piece_slots(page, big_style=1024) == tree_slots(page)


# Every construct of the CSS scanner, and "}" where it does not end a rule.
STYLE_RULES = [
    '@import "i{n}.css";',
    "@import url(j{n}.css) screen;",
    '@namespace svg url(http://www.w3.org/2000/svg);',
    "@font-face {{ font-family: f{n}; src: url(f{n}.woff2) format('woff2'), url(\"g{n}.woff\"); }}",
    ".a{n} {{ background: url(a{n}.png) }}",
    ".b{n} {{ background-image: image-set('b{n}.png' 1x, url(c{n}.png) 2x) }}",
    ".c{n}::after {{ content: '}}'; background: url( 'q{n}.png' ) }}",
    "/* }} url(no{n}.png) */",
    ".d{n} {{ background: url(weird}}{n}.png) }}",
    "@media (min-width: 1px) {{ .e{n} {{ cursor: url(e{n}.cur), auto }} }}",
    # A block inside @font-face: a part may begin after its "}", still in the font face.
    "@font-face {{ font-family: k{n}; x {{ }} src: url(k{n}.ttf) }}",
    '.f{n} {{ content: "unclosed\n; background: url(bad{n}.png) }}',
    ".g{n} {{ mask: url(\\67 {n}.svg) }}",
    ".h{n} {{ background: url(\U0001f600{n}.png) }}",
]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("part", [1, 40, 500])
def test_a_big_style_block_cut_in_parts_gives_the_same_references(seed: int, part: int) -> None:
    rng = random.Random(seed)
    css = "".join(rng.choice(STYLE_RULES).format(n=n) for n in range(300))
    page = ("<p><style>" + css + "</style><img src=after.png>").encode()
    pieces = list(iter_pieces(page, "utf-8", size=part, big_style=1))
    assert sum(p.css is not None for p in pieces) > (2 if part < 100 else 1)
    assert piece_slots(page, size=part, big_style=1) == tree_slots(page)


@pytest.mark.parametrize("between", [b"", b"\n", b" \r\n\t", b"text", b"<!-- c -->"])
def test_pieces_stay_small_whatever_lies_between_tags(between: bytes) -> None:
    page = b"<body>" + (b'<img src="a.png">' + between) * 100_000
    pieces = list(iter_pieces(page, "utf-8", tags=1000))
    assert len(pieces) > 50
    assert max(len(p.html or "") for p in pieces) < 1000 * (17 + len(between)) + 100


SOUP = [
    b"<img src=a.png>", b"<div style='background:url(d.png)'>", b"</div>", b"<table>", b"<tr>",
    b"<td background=c.png>", b"</table>", b"<picture>", b"<source srcset=s.png>", b"<video>",
    b"<svg>", b"</svg>", b"<math>", b"<foreignObject>", b"<image href=i.png>", b"<template>",
    b"</template>", b"<script>", b"</script>", b"<style>", b"</style>", b"a{b:url(st.png)}", b"}",
    b"/*", b"<textarea>", b"<title>", b"<!--", b"-->", b"<frameset>", b"<frame src=f.html>",
    b"<plaintext>", b"<!doctype html>", b"<?x>", b"<", b">", b"'", b'"', b"\x00", b"\xff",
    b"\xf0\x9f\x98\x80", b"<base href=http://b.test/>", b"<svg/>", b"</",
]


@pytest.mark.parametrize("seed", range(20))
def test_tag_soup_in_pieces_never_crashes(seed: int) -> None:
    # Pieces match one tree only for well-formed markup; soup must still be safe.
    rng = random.Random(seed)
    for _ in range(20):
        page = b"".join(rng.choice(SOUP) for _ in range(rng.randrange(1, 80)))
        for tags in (1, 3):
            for piece in iter_pieces(page, "utf-8", tags=tags, size=rng.choice([1, 64]), big_style=8):
                assert (piece.html is None) != (piece.css is None)
            slots = piece_slots(page, tags=tags, big_style=8)
            assert all(isinstance(row[4], str) for row in slots)
