"""The CSS scanner, and discovery in stylesheet documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.guards import finishes

from loader.discovery import ARCHIVER, discover, parse_document, parse_kinds
from loader.discovery.css import css_string, find_css_urls, unescape_css

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"


def refs(css: str) -> list[tuple[str, str, str]]:
    return [(r.url, r.kind, r.via) for r in find_css_urls(css)]


@pytest.mark.parametrize(
    ("css", "expected"),
    [
        ("a{background:url(x.png)}", [("x.png", "image", "url()")]),
        ("a{background:url( x.png )}", [("x.png", "image", "url()")]),
        ('a{background:url("x y.png")}', [("x y.png", "image", "url()")]),
        ("a{background:url('x.png')}", [("x.png", "image", "url()")]),
        ("a{background:URL(x.png)}", [("x.png", "image", "url()")]),
        (r"a{background:url(x\(1\).png)}", [("x(1).png", "image", "url()")]),
        (r"a{background:url(\31 23.png)}", [("123.png", "image", "url()")]),
        (r'a{background:url("q\"uote.png")}', [('q"uote.png', "image", "url()")]),
        ('a{background:url("line\\\ncontinued.png")}', [("linecontinued.png", "image", "url()")]),
        ("a{/* url(no.png) */background:url(yes.png)}", [("yes.png", "image", "url()")]),
        (
            "a{background:url(a.png), url(b.png)}",
            [("a.png", "image", "url()"), ("b.png", "image", "url()")],
        ),
        (
            "a{background:url(data:image/png;base64,AAAA)}",
            [("data:image/png;base64,AAAA", "image", "url()")],
        ),
        # Not URLs: strings outside url(), idents containing "url(", bad url tokens, bad strings.
        ('a{content:"url(x.png)"}', []),
        ("a{background:myurl(x.png)}", []),
        ("a{background:url(bad url.png)}", []),
        ('a{background:url("bad\nstring.png")}', []),
        ("a{background:url()}", [("", "image", "url()")]),
    ],
)
def test_url_tokens(css: str, expected: list[tuple[str, str, str]]) -> None:
    assert refs(css) == expected


def test_image_set_strings_and_urls_but_not_types() -> None:
    css = (
        'a{background-image:image-set("one.avif" type("image/avif") 1x, url(two.png) 2x, '
        "url('three.png') 3x); b: -webkit-image-set('w.png' 1x)}"
    )
    assert refs(css) == [
        ("one.avif", "image", "image-set()"),
        ("two.png", "image", "image-set()"),
        ("three.png", "image", "image-set()"),
        ("w.png", "image", "image-set()"),
    ]


def test_imports_namespaces_and_font_faces() -> None:
    css = """
    @import "a.css";
    @import url(b.css) screen;
    @import url("c.css") layer(base);
    @import 'd.css' supports(display: grid);
    @namespace svg url(http://www.w3.org/2000/svg);
    @namespace "http://www.w3.org/1999/xhtml";
    @font-face { font-family: X; src: url(f.woff2) format("woff2"), local(X), url("f.ttf"); }
    body { background: url(after.png) }
    @media print { @font-face { src: url(print.woff) } p { background: url(print.png) } }
    """
    assert refs(css) == [
        ("a.css", "import", "@import"),
        ("b.css", "import", "@import"),
        ("c.css", "import", "@import"),
        ("d.css", "import", "@import"),
        ("f.woff2", "font", "url()"),
        ("f.ttf", "font", "url()"),
        ("after.png", "image", "url()"),
        ("print.woff", "font", "url()"),
        ("print.png", "image", "url()"),
    ]


def test_spans_cover_the_token_to_replace() -> None:
    css = "@import 'i.css'; a{b:url( x.png );c:url(\"y.png\")} d{e:image-set('z.png' 1x)}"
    assert [css[r.start : r.end] for r in find_css_urls(css)] == [
        "'i.css'",
        "url( x.png )",
        '"y.png"',
        "'z.png'",
    ]


def test_unescape_and_serialise() -> None:
    assert unescape_css(r"\41 B\43\\\"") == 'ABC\\"'
    assert unescape_css("\\0 x") == "\ufffdx"
    assert unescape_css("end\\") == "end\ufffd"
    assert css_string('a "b"\\<c>\n') == '"a \\22 b\\22 \\5c \\3c c\\3e \\a "'
    for value in ['a "b"\\<c>\n', "plain/path.png", "ünï"]:
        assert refs(f"x{{y:url({css_string(value)})}}") == [(value, "image", "url()")]


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 1_000_000,
        "url(" * 250_000,
        "(" * 1_000_000,
        "/*" * 500_000,
        '"' * 1_000_000,
        "url(" + "a" * 1_000_000,
        "@" + "a" * 1_000_000,
        "x\\" * 500_000,
        "{" * 1_000_000,
        "}" * 1_000_000,
        "image-set(" * 200_000 + "'a.png'",
        "url(a) " * 150_000,
    ],
    ids=lambda value: f"{value[:12]!r}..{len(value)}",
)
def test_megabyte_stylesheets_scan_in_linear_time(hostile: str) -> None:
    finishes(find_css_urls, hostile)  # a hang guard: quadratic work on a megabyte takes hours


# --- stylesheet documents --------------------------------------------------

CSS_URL = "http://example.test/css/site.css"


def test_stylesheet_document() -> None:
    document = parse_document(
        (FIXTURES / "site.css").read_bytes(), CSS_URL, "text/css; charset=utf-8"
    )
    assert (document.type, document.tree, document.base_url) == ("css", None, CSS_URL)
    # Every URL it names (alone, a browser would still skip the :hover rule's cursor).
    result = discover(document, kinds=parse_kinds("all"), browser=ARCHIVER)
    assert [(f.url, f.kind, f.provenance()) for f in result.found] == [
        ("http://example.test/css/base.css", "style", "css[@import]"),
        ("http://example.test/css/print.css", "style", "css[@import]"),
        ("http://example.test/fonts/serif.woff2", "font", "css[url()]"),
        ("http://example.test/fonts/serif.woff", "font", "css[url()]"),
        ("http://example.test/img/paper.png", "image", "css[url()]"),
        ("http://example.test/img/waves.avif", "image", "css[image-set()]"),
        ("http://example.test/img/waves@2x.png", "image", "css[image-set()]"),
        ("http://example.test/img/pointer.cur", "image", "css[url()]"),
        ("http://example.test/img/icons.svg", "image", "css[url()]"),
        ("data:image/png;base64,iVBORw0KGgo=", "image", "css[url()]"),
    ]
    assert all(f.source == CSS_URL for f in result.found)


def test_stylesheet_images_are_images_and_imports_are_always_stylesheets() -> None:
    document = parse_document((FIXTURES / "site.css").read_bytes(), CSS_URL, "text/css")
    result = discover(document, browser=ARCHIVER)  # every URL, the :hover rule's too
    assert [f.url.rsplit("/", 1)[1] for f in result.found] == [
        "paper.png",
        "waves.avif",
        "waves@2x.png",
        "pointer.cur",
        "icons.svg",
        "png;base64,iVBORw0KGgo=",
    ]
    assert [(f.url, f.provenance()) for f in result.stylesheets] == [
        ("http://example.test/css/base.css", "css[@import]"),
        ("http://example.test/css/print.css", "css[@import]"),
    ]


@pytest.mark.parametrize(
    ("url", "content_type", "expected"),
    [
        ("http://x/a.css", "text/css", "css"),
        ("http://x/a", "TEXT/CSS; charset=utf-8", "css"),
        ("http://x/a.css?v=1", None, "css"),
        ("http://x/a.css", "text/plain", "css"),
        ("http://x/a.css", "text/html", "html"),
        ("http://x/page", None, "html"),
        ("http://x/page.html", "application/octet-stream", "html"),
    ],
)
def test_document_type_from_content_type_or_extension(
    url: str, content_type: str | None, expected: str
) -> None:
    assert parse_document(b"", url, content_type).type == expected


def test_stylesheet_charset() -> None:
    css = '@charset "windows-1251"; a{background:url(фон.png)}'.encode("cp1251")
    result = discover(parse_document(css, CSS_URL, "text/css"))
    assert [f.url for f in result.found] == ["http://example.test/css/фон.png"]
    bom = "\ufeffa{background:url(é.png)}".encode("utf-16-le")
    assert (
        parse_document(b"\xff\xfe" + bom[2:], CSS_URL, "text/css").extra["text"]
        == "a{background:url(é.png)}"
    )
