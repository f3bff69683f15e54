"""Discovery in HTML: one fixture page per construct, then a realistic page mixing them."""

from __future__ import annotations

from pathlib import Path

import pytest

from loader.discovery import (
    ARCHIVER,
    DEFAULT_KINDS,
    Discovery,
    Document,
    Found,
    discover,
    parse_document,
    parse_kinds,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discovery"
PAGE_DIR = "http://example.test/dir/"
EVERYTHING = parse_kinds("all") | {"meta"}


def load(name: str, *, kinds: frozenset[str] = EVERYTHING, **kwargs: object) -> Discovery:
    """Discovery of a fixture page; by default every URL it names (the browser model off:
    these tables pin what each construct holds; tests/test_discovery_browser.py pins what
    a browser loads of it)."""
    document = parse_document((FIXTURES / name).read_bytes(), PAGE_DIR + name, "text/html")
    kwargs.setdefault("browser", ARCHIVER)
    return discover(document, kinds=kinds, **kwargs)  # type: ignore[arg-type]


def rows(found: list[Found]) -> list[tuple[str, str, str]]:
    """(url, kind, provenance) of each found resource, in order."""
    return [(f.url, f.kind, f.provenance()) for f in found]


D = PAGE_DIR
R = "http://example.test/"

CONSTRUCTS = {
    "img-src.html": [
        (D + "images/plain.png", "image", "img[src]"),
        (R + "root.gif", "image", "img[src]"),
        ("https://cdn.example.net/hosted.jpg", "image", "img[src]"),
        (D + "upper.png", "image", "img[src]"),
    ],
    "img-srcset.html": [
        (D + "small.jpg", "image", "img[src]"),
        (D + "large.jpg", "image", "img[srcset]"),
        (D + "w400.jpg", "image", "img[srcset]"),
        (D + "w800.jpg", "image", "img[srcset]"),
        (R + "cdn/w_100,h_50/photo.jpg", "image", "img[srcset]"),
        (R + "cdn/w_200,h_100/photo.jpg", "image", "img[srcset]"),
        # "bad.jpg 1q" has an invalid descriptor: browsers drop the candidate.
        (D + "good.jpg", "image", "img[srcset]"),
    ],
    "picture-source.html": [
        (D + "hero.avif", "image", "source[srcset]"),
        (D + "hero@2x.avif", "image", "source[srcset]"),
        (D + "hero.webp", "image", "source[srcset]"),
        (D + "legacy-src.png", "image", "source[src]"),
        (D + "hero.jpg", "image", "img[src]"),
    ],
    "input-image.html": [
        (D + "submit.png", "image", "input[src]"),
        (D + "submit-upper.png", "image", "input[src]"),
    ],
    "link-icons.html": [
        (R + "favicon.ico", "image", "link[href]"),
        (R + "shortcut.ico", "image", "link[href]"),
        (R + "apple.png", "image", "link[href]"),
        (R + "apple-pre.png", "image", "link[href]"),
        (R + "mask.svg", "image", "link[href]"),
        (R + "alternate.png", "image", "link[href]"),
    ],
    "link-preload.html": [
        (R + "hero.jpg", "image", "link[href]"),
        (R + "hero-1x.jpg", "image", "link[imagesrcset]"),
        (R + "hero-2x.jpg", "image", "link[imagesrcset]"),
        (R + "chime.mp3", "sound", "link[href]"),
        (R + "next.png", "image", "link[href]"),
        (R + "intro.mp4", "video", "link[href]"),
        (R + "late.css", "style", "link[href]"),
        (R + "app.js", "script", "link[href]"),
        (R + "font.woff2", "font", "link[href]"),
        (R + "module.js", "script", "link[href]"),
    ],
    "svg-image-use.html": [
        (D + "svg/href.png", "image", "image[href]"),
        (D + "svg/xlink.png", "image", "image[xlink:href]"),
        (D + "svg/sprite.svg", "image", "use[href]"),
        (D + "svg/other-sprite.svg", "image", "use[xlink:href]"),
        (D + "svg/fe.png", "image", "feImage[href]"),
    ],
    "video-poster.html": [(D + "posters/movie.jpg", "image", "video[poster]")],
    "audio-source.html": [
        (D + "sounds/direct.mp3", "sound", "audio[src]"),
        (D + "sounds/song.ogg", "sound", "source[src]"),
        (D + "sounds/song.mp3", "sound", "source[src]"),
    ],
    "video-source.html": [
        (D + "video/direct.mp4", "video", "video[src]"),
        (D + "video/poster.png", "image", "video[poster]"),
        (D + "video/clip.webm", "video", "source[src]"),
        (D + "video/clip.mp4", "video", "source[src]"),
    ],
    "bgsound.html": [(D + "midi/theme.mid", "sound", "bgsound[src]")],
    "embed-object.html": [
        (D + "media/tune.mid", "sound", "embed[src]"),
        (D + "media/anim.swf", "frame", "embed[src]"),
        (D + "media/picture", "image", "embed[src]"),
        (D + "media/drawing.svg", "image", "object[data]"),
        (D + "media/clip.webm", "video", "object[data]"),
        (D + "media/sound.wav", "sound", "object[data]"),
        (D + "media/doc.pdf", "frame", "object[data]"),
        (D + "media/widget", "frame", "object[data]"),
    ],
    "background-attr.html": [
        (D + "tiles/body.gif", "image", "body[background]"),
        (D + "tiles/table.png", "image", "table[background]"),
        (D + "tiles/cell.jpg", "image", "td[background]"),
    ],
    "meta-images.html": [
        ("https://example.test/social/og.png", "meta", "meta[content]"),
        (R + "social/twitter.png", "meta", "meta[content]"),
        (R + "social/itemprop.png", "meta", "meta[content]"),
        (R + "social/image-src.png", "meta", "link[href]"),
        (R + "content.png", "image", "img[src]"),
    ],
    "style-attr.html": [
        (D + "bg/unquoted.png", "image", "div[style]"),
        (D + "bg/double.png", "image", "div[style]"),
        (D + "bg/single.png", "image", "div[style]"),
        (D + "bg/escaped(1).png", "image", "div[style]"),
        (D + "bg/after-comment.png", "image", "div[style]"),
        (D + "bg/set-1x.png", "image", "div[style]"),
        (D + "bg/set-2x.png", "image", "div[style]"),
        (D + "bg/webkit.png", "image", "div[style]"),
        (D + "bg/cursor.cur", "image", "span[style]"),
        (D + "bg/entity.png", "image", "div[style]"),
        # url(#blur) and fill="url(#grad)" point into the document itself.
    ],
    "style-block.html": [
        (D + "css/imported.css", "style", "style[@import]"),
        (D + "block/body.png", "image", "style[url()]"),
        (D + "block/hero.avif", "image", "style[image-set()]"),
        (D + "block/hero.jpg", "image", "style[image-set()]"),
        (D + "block/bullet.gif", "image", "style[url()]"),
        (D + "fonts/demo.woff2", "font", "style[url()]"),
        (D + "fonts/demo.woff", "font", "style[url()]"),
        (D + "block/wide.png", "image", "style[url()]"),
    ],
    "lazy-loading.html": [
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", "image", "img[src]"),
        (D + "lazy/data-src.jpg", "image", "img[data-src]"),
        (D + "lazy/srcset-1x.jpg", "image", "img[data-srcset]"),
        (D + "lazy/srcset-2x.jpg", "image", "img[data-srcset]"),
        (D + "lazy/original.jpg", "image", "img[data-original]"),
        (D + "lazy/lazy-src.jpg", "image", "img[data-lazy-src]"),
        (D + "lazy/lazy-srcset.jpg", "image", "img[data-lazy-srcset]"),
        (D + "lazy/picture.webp", "image", "source[data-srcset]"),
        (D + "lazy/picture.jpg", "image", "img[data-src]"),
        (D + "lazy/bg.jpg", "image", "div[data-bg]"),
        (D + "lazy/background.png", "image", "section[data-background]"),
        (D + "lazy/bgset-small.jpg", "image", "div[data-bgset]"),
        (D + "lazy/bgset-large.jpg", "image", "div[data-bgset]"),
        (D + "lazy/bgset-alt.jpg", "image", "div[data-bgset]"),
        # data-src on a <div> counts when it names an image file ...
        (D + "lazy/slider.png", "image", "div[data-src]"),
        # ... (and "/api/not-an-image" does not).
        (D + "lazy/frame.html", "frame", "iframe[data-src]"),
        (D + "lazy/video.mp4", "video", "video[data-src]"),
        (D + "lazy/poster.jpg", "image", "video[data-poster]"),
        # <noscript> fallbacks are read: we run no scripts.
        (D + "lazy/noscript.jpg", "image", "img[src]"),
    ],
    "base-href.html": [
        ("https://static.example.net/v2/relative.png", "image", "img[src]"),
        ("https://static.example.net/rooted.png", "image", "img[src]"),
        ("https://protocol.example.com/relative.png", "image", "img[src]"),
        ("http://absolute.example.com/a.png", "image", "img[src]"),
        ("https://static.example.net/up.png", "image", "img[src]"),
    ],
    "url-forms.html": [
        (D + "spaced.png", "image", "img[src]"),
        (D + "entity&query.png?a=1&b=2", "image", "img[src]"),
        (D + "fragment.png", "image", "img[src]"),
        (D + "dup.png", "image", "img[src]"),
        ("data:image/png;base64,iVBORw0KGgo=", "image", "img[src]"),
        (D + "linebreak.png", "image", "img[src]"),
        (D + "back/slash.png", "image", "img[src]"),
        ("https://upper.example.com/x.png", "image", "img[src]"),
    ],
    "script-iframe.html": [
        (D + "js/app.js", "script", "script[src]"),
        (D + "js/module.js", "script", "script[src]"),
        (D + "frames/inner.html", "frame", "iframe[src]"),
        # Neither a string inside a script nor <template> content loads anything.
    ],
    "frameset.html": [
        (D + "frames/left.html", "frame", "frame[src]"),
        (D + "frames/right.html", "frame", "frame[src]"),
    ],
    "link-stylesheet.html": [
        (D + "css/main.css", "style", "link[href]"),
        (D + "css/alt.css", "style", "link[href]"),
        (D + "css/imported.css", "style", "style[@import]"),
        (D + "css/second.css", "style", "style[@import]"),
    ],
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTS))
def test_each_construct_is_found_with_its_kind_and_provenance(name: str) -> None:
    assert rows(load(name).found) == CONSTRUCTS[name]


def test_every_fixture_page_has_a_test() -> None:
    pages = {p.name for p in FIXTURES.glob("*.html")} - {"realistic.html"}
    assert pages == set(CONSTRUCTS)


def test_found_records_the_document_it_came_from() -> None:
    found = load("img-src.html").found
    assert {f.source for f in found} == {D + "img-src.html"}
    assert found[0].element == "img" and found[0].attribute == "src"


def test_duplicates_keep_the_first_provenance_and_record_the_others() -> None:
    found = {f.url: f for f in load("url-forms.html").found}
    source = D + "url-forms.html"
    assert found[D + "dup.png"].also == (("img", "srcset", source), ("div", "style", source))
    # Fragments are dropped, so both fragment.png#... are one resource.
    assert found[D + "fragment.png"].also == (("img", "src", source),)
    assert found[D + "spaced.png"].also == ()


def test_linked_stylesheets_are_always_returned_for_discovery() -> None:
    result = load("link-stylesheet.html", kinds=DEFAULT_KINDS)
    assert result.found == []
    assert rows(result.stylesheets) == CONSTRUCTS["link-stylesheet.html"]
    assert result.stylesheets[0].also == (("link", "href", D + "link-stylesheet.html"),)


def test_preloaded_style_is_a_stylesheet_too() -> None:
    result = load("link-preload.html", kinds=DEFAULT_KINDS)
    assert rows(result.stylesheets) == [(R + "late.css", "style", "link[href]")]


def test_base_href_sets_the_base_url_and_only_the_first_counts() -> None:
    document = parse_document(
        (FIXTURES / "base-href.html").read_bytes(), D + "base-href.html", None
    )
    assert document.base_url == "https://static.example.net/v2/"
    assert discover(document).base_url == "https://static.example.net/v2/"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("/assets/", "http://example.test/assets/"),
        ("sub/", "http://example.test/dir/sub/"),
        ("  //cdn.example.net/x/  ", "http://cdn.example.net/x/"),
        ("javascript:alert(1)", "http://example.test/dir/page.html"),
        ("data:text/html,x", "http://example.test/dir/page.html"),
        ("http://[broken", "http://example.test/dir/page.html"),
    ],
)
def test_base_href_is_resolved_against_the_page(href: str, expected: str) -> None:
    html = f'<base href="{href}"><img src="i.png">'.encode()
    document = parse_document(html, D + "page.html", "text/html")
    assert document.base_url == expected
    assert document.type == "html"
    assert document.tree is not None


def test_default_kinds_are_images_and_sounds() -> None:
    result = load("embed-object.html", kinds=DEFAULT_KINDS)
    assert [(f.url.rsplit("/", 1)[1], f.kind) for f in result.found] == [
        ("tune.mid", "sound"),
        ("picture", "image"),
        ("drawing.svg", "image"),
        ("sound.wav", "sound"),
    ]


def test_meta_images_only_on_request() -> None:
    assert rows(load("meta-images.html", kinds=parse_kinds("all")).found) == [
        (R + "content.png", "image", "img[src]")
    ]
    assert len(load("meta-images.html", kinds=frozenset({"meta"})).found) == 4


def test_kinds_select_what_is_found() -> None:
    result = load("link-preload.html", kinds=parse_kinds("scripts,fonts"))
    assert [f.kind for f in result.found] == ["script", "font", "script"]


# --- the realistic page -----------------------------------------------------

CDN = "https://cdn.gazette.example/"
SITE = "http://example.test/"


def test_realistic_page_default_kinds() -> None:
    result = load("realistic.html", kinds=DEFAULT_KINDS)
    assert rows(result.found) == [
        (SITE + "static/favicon-32.png", "image", "link[href]"),
        (SITE + "static/apple-touch-icon.png", "image", "link[href]"),
        (CDN + "img/harbour-hero-1600.jpg", "image", "link[href]"),
        (SITE + "static/img/masthead-waves.svg", "image", "style[url()]"),
        (SITE + "static/img/masthead-waves-dark.svg", "image", "style[url()]"),
        (SITE + "static/img/paper.png", "image", "body[background]"),
        (SITE + "static/img/logo.svg", "image", "img[src]"),
        (CDN + "img/harbour-hero-800.avif", "image", "source[srcset]"),
        (CDN + "img/harbour-hero-1600.avif", "image", "source[srcset]"),
        (CDN + "img/harbour-hero-800.jpg", "image", "img[src]"),
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", "image", "img[src]"),
        (CDN + "img/regatta.jpg", "image", "img[data-src]"),
        (SITE + "static/img/gallery-bg.jpg", "image", "div[style]"),
        (SITE + "media/gallery/1.jpg", "image", "img[src]"),
        (SITE + "media/gallery/2.jpg", "image", "img[src]"),
        (SITE + "media/gallery/3.jpg", "image", "img[src]"),
        (SITE + "media/audio/foghorn-choir.ogg", "sound", "source[src]"),
        (SITE + "media/audio/foghorn-choir.mp3", "sound", "source[src]"),
        (SITE + "media/video/parade-poster.jpg", "image", "video[poster]"),
        (SITE + "static/icons.svg", "image", "use[href]"),
        (SITE + "static/img/weather/sun.png", "image", "img[src]"),
        (SITE + "static/img/subscribe.png", "image", "input[src]"),
        ("https://pixel.analytics.example.org/p.gif?page=harbour", "image", "img[src]"),
    ]
    assert rows(result.stylesheets) == [(CDN + "css/site.css?v=42", "style", "link[href]")]
    assert result.skipped == 0
    assert result.base_url == D + "realistic.html"
    found = {f.url: f for f in result.found}
    page = D + "realistic.html"
    assert found[CDN + "img/harbour-hero-1600.jpg"].also == (("img", "srcset", page),)
    assert found[CDN + "img/regatta.jpg"].also == (("img", "src", page),)  # the <noscript> copy
    assert found[SITE + "static/img/logo.svg"].also == (("img", "src", page),)


def test_realistic_page_everything() -> None:
    result = load("realistic.html")
    extra = {(f.url, f.kind) for f in result.found} - {
        (f.url, f.kind) for f in load("realistic.html", kinds=DEFAULT_KINDS).found
    }
    assert extra == {
        (CDN + "social/harbour-card.jpg", "meta"),
        (CDN + "css/site.css?v=42", "style"),
        (SITE + "static/fonts/serif.woff2", "font"),
        ("https://analytics.example.org/tag.js", "script"),
        (SITE + "media/video/parade.webm", "video"),
        ("https://maps.example.com/embed?q=harbour", "frame"),
        (SITE + "static/js/site.js", "script"),
    }


# --- max_found and extractors ----------------------------------------------


def test_max_found_caps_and_counts_what_it_skipped() -> None:
    html = b"".join(b'<img src="/i/%d.png">' % i for i in range(50)) + b'<img src="/i/3.png">'
    document = parse_document(html, "http://example.test/", "text/html")
    result = discover(document, max_found=10)
    assert [f.url for f in result.found] == [f"http://example.test/i/{i}.png" for i in range(10)]
    assert result.skipped == 40
    # A duplicate of a kept resource is not skipped: it is recorded.
    assert result.found[3].also == (("img", "src", "http://example.test/"),)


def test_extractors_run_after_built_ins_and_are_resolved_and_deduplicated() -> None:
    html = b'<div class="zoom" data-zoom-image="big.jpg"></div><img src="small.jpg">'
    document = parse_document(html, "http://example.test/dir/page.html", "text/html")
    seen: list[Document] = []

    def zoom(doc: Document) -> list[Found]:
        seen.append(doc)
        return [
            Found(node.attributes["data-zoom-image"], "image", "div", "data-zoom-image")
            for node in doc.tree.css("[data-zoom-image]")
        ] + [Found("small.jpg", "image", "x", "y"), Found("/song.mp3", "sound", "x", "z")]

    result = discover(document, extractors=[zoom, lambda doc: None])
    assert seen == [document]
    assert rows(result.found) == [
        (D + "small.jpg", "image", "img[src]"),
        (D + "big.jpg", "image", "div[data-zoom-image]"),
        (R + "song.mp3", "sound", "x[z]"),
    ]
    assert result.found[0].also == (("x", "y", D + "page.html"),)
    assert result.found[1].source == D + "page.html"
    assert result.errors == []


def test_a_failing_extractor_is_recorded_and_the_rest_kept() -> None:
    document = parse_document(b'<img src="a.png">', "http://example.test/", "text/html")

    def broken(doc: Document) -> list[Found]:
        raise RuntimeError("plugin bug")

    def half(doc: Document):  # noqa: ANN202 - a generator that fails midway
        yield Found("b.png", "image", "x", "y")
        raise ValueError("midway")

    result = discover(document, extractors=[broken, half])
    assert [f.url for f in result.found] == [
        "http://example.test/a.png",
        "http://example.test/b.png",
    ]
    assert [type(e) for e in result.errors] == [RuntimeError, ValueError]


def test_extractor_items_of_unknown_kind_or_bad_url_are_ignored() -> None:
    document = parse_document(b"", "http://example.test/", "text/html")
    result = discover(
        document,
        extractors=[
            lambda doc: [
                Found("a.png", "nonsense", "x", "y"),
                Found("javascript:x", "image", "x", "y"),
            ]
        ],
    )
    assert result.found == [] and result.errors == []


def test_documents_of_other_types_use_only_extractors() -> None:
    menu = Document(
        url="gopher://g.example/1/",
        type="gopher-menu",
        content=b"",
        base_url="gopher://g.example/1/",
    )
    result = discover(menu, extractors=[lambda doc: [Found("/I/pic.gif", "image", "menu", "I")]])
    assert rows(result.found) == [("gopher://g.example/I/pic.gif", "image", "menu[I]")]


def test_a_document_built_without_a_tree_is_parsed() -> None:
    document = Document(
        url="http://example.test/",
        type="html",
        content=b'<img src="x.png">',
        base_url="http://example.test/",
    )
    assert [f.url for f in discover(document).found] == ["http://example.test/x.png"]
