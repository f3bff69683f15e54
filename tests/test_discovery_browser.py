"""The browser model of discovery: each rule, its provenance, its options.

``tools/browser_compare.py`` holds the model to headless Chromium on the pages
of ``fixtures/browser``; these tests pin each rule it settled.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from loader import Loader
from loader.cli import EXIT_OK, EXIT_USAGE, main
from loader.discovery import (
    ARCHIVER,
    DEFAULT_BROWSER,
    MAX_DROPPED,
    Browser,
    Discovery,
    discover,
    parse_document,
    parse_kinds,
)
from loader.discovery import html as html_module
from loader.discovery.browser import choose_candidate, media_matches, selector_verdict, source_size
from loader.discovery.srcset import parse_srcset

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "browser"
PAGE = "http://example.test/"
EVERYTHING = parse_kinds("all") | {"meta"}
PHONE = Browser(viewport=(400, 800), dpr=3)


def found(html: str, browser: Browser = DEFAULT_BROWSER, **kwargs: Any) -> list[str]:
    """The names (URL minus the page's) discovery finds in ``html``."""
    return [f.url.removeprefix(PAGE) for f in run(html, browser, **kwargs).found]


def run(html: str, browser: Browser = DEFAULT_BROWSER, **kwargs: Any) -> Discovery:
    kwargs.setdefault("kinds", EVERYTHING)
    return discover(parse_document(html.encode(), PAGE, "text/html"), browser=browser, **kwargs)


def why(result: Discovery) -> dict[str, str]:
    """Each found and dropped name, with its reason."""
    return {f.url.removeprefix(PAGE): f.why for f in [*result.found, *result.dropped]}


# -- media queries -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "desktop", "phone"),
    [
        ("", True, True),
        ("all", True, True),
        ("screen", True, True),
        ("print", False, False),
        ("not print", True, True),
        ("only screen and (max-width: 600px)", False, True),
        ("(min-width: 1000px)", True, False),
        ("(min-width: 62.5em)", True, False),  # 1000px at 16px an em
        ("(width >= 1000px)", True, False),
        ("(400px <= width < 401px)", False, True),
        ("(orientation: portrait)", False, True),
        ("(orientation: landscape)", True, False),
        ("(min-resolution: 2dppx)", False, True),
        ("(-webkit-min-device-pixel-ratio: 2)", False, True),
        ("(min-resolution: 192dpi)", False, True),
        ("(prefers-color-scheme: dark)", False, False),
        ("(prefers-reduced-motion: no-preference)", True, True),
        ("(hover: hover) and (pointer: fine)", True, True),
        ("print, (max-width: 500px)", False, True),
        ("not all and (max-width: 500px)", True, False),
        ("(max-width: 500px) or (min-width: 1200px)", True, True),
        ("(min-aspect-ratio: 16/10)", True, False),
        ("screen and (min-width: 10in)", True, False),  # 960px
    ],
)
def test_media_queries_are_evaluated_for_the_device(query: str, desktop: bool, phone: bool) -> None:
    assert media_matches(query, DEFAULT_BROWSER) is desktop
    assert media_matches(query, PHONE) is phone


@pytest.mark.parametrize(
    "query", ["(min-width: 30foo)", "(scan: interlace)", "screen and (min-width: calc(10px))", "(width >= 1cq)", "((("]
)
def test_media_queries_that_cannot_be_told_are_none(query: str) -> None:
    assert media_matches(query, DEFAULT_BROWSER) is None


def test_an_unknown_condition_does_not_hide_one_that_applies() -> None:
    assert media_matches("(scan: interlace), (min-width: 100px)", DEFAULT_BROWSER) is True
    assert media_matches("print and (scan: interlace)", DEFAULT_BROWSER) is False


# -- sizes and srcset selection ------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "desktop", "phone"),
    [
        (None, 1280, 400),
        ("200px", 200, 200),
        ("(max-width: 600px) 100vw, (max-width: 1000px) 50vw, 33vw", 1280 * 0.33, 400),
        ("(min-width: 70em) 400px, 90vw", 400, 360),
        ("(min-width: 2000px) 10px", 1280, 400),  # nothing applies: 100vw
        ("(max-width: 600px)", 1280, 400),  # a condition without a length is skipped
    ],
)
def test_sizes_give_the_slot_width(sizes: str | None, desktop: float, phone: float) -> None:
    assert source_size(sizes, DEFAULT_BROWSER) == pytest.approx(desktop)
    assert source_size(sizes, PHONE) == pytest.approx(phone)


def test_sizes_that_cannot_be_evaluated_are_none() -> None:
    assert source_size("calc(100vw - 2rem)", DEFAULT_BROWSER) is None
    assert source_size("(scan: interlace) 50vw, 100vw", DEFAULT_BROWSER) is None


def chosen(srcset: str, browser: Browser, sizes: str | None = None) -> str | None:
    candidate, _ = choose_candidate(parse_srcset(srcset), browser, sizes)
    return None if candidate is None else candidate.url


def test_density_descriptors_choose_the_smallest_that_reaches_the_dpr() -> None:
    srcset = "a.png 1x, b.png 2x, c.png 3x"
    assert chosen(srcset, Browser(dpr=1)) == "a.png"
    assert chosen(srcset, Browser(dpr=1.5)) == "b.png"
    assert chosen(srcset, Browser(dpr=2)) == "b.png"
    assert chosen(srcset, Browser(dpr=4)) == "c.png"  # none reaches it: the densest
    assert chosen("a.png 1.5x, b.png 3x", Browser(dpr=1)) == "a.png"
    assert chosen("big.png 2x, small.png 1x, dup.png 1x", Browser(dpr=1)) == "small.png"


def test_width_descriptors_divide_by_the_slot_width() -> None:
    srcset = "w300.jpg 300w, w700.jpg 700w, w1400.jpg 1400w, w2800.jpg 2800w"
    assert chosen(srcset, DEFAULT_BROWSER) == "w1400.jpg"  # 1400/1280 >= 1
    assert chosen(srcset, PHONE) == "w1400.jpg"  # 1400/400 >= 3
    assert chosen(srcset, DEFAULT_BROWSER, "200px") == "w300.jpg"
    assert chosen(srcset, PHONE, "(max-width: 600px) 50vw, 100vw") == "w700.jpg"


def test_a_choice_that_cannot_be_made_is_none_and_says_why() -> None:
    candidate, reason = choose_candidate(parse_srcset("a.jpg 100w, b.jpg 200w"), DEFAULT_BROWSER, "calc(50vw)")
    assert candidate is None and "not evaluated" in reason


# -- img, picture --------------------------------------------------------------------


def test_img_loads_one_candidate_and_src_counts_as_1x() -> None:
    assert found('<img src="s.png" srcset="t.png 2x">') == ["s.png"]
    assert found('<img src="s.png" srcset="t.png 2x">', Browser(dpr=2)) == ["t.png"]
    # An explicit 1x beats src; width descriptors ignore src.
    assert found('<img src="s.png" srcset="one.png 1x, two.png 2x">') == ["one.png"]
    assert found('<img src="s.png" srcset="a.png 500w, b.png 1000w" sizes="500px">') == ["a.png"]


def test_all_candidates_keeps_every_one() -> None:
    html = '<img src="s.png" srcset="a.png 1x, b.png 2x">'
    assert found(html, Browser(all_candidates=True)) == ["s.png", "a.png", "b.png"]
    assert found(html, ARCHIVER) == ["s.png", "a.png", "b.png"]


def test_srcset_with_sizes_that_cannot_be_evaluated_keeps_every_candidate() -> None:
    html = '<img srcset="a.png 500w, b.png 1000w" sizes="calc(100vw - 10px)">'
    assert found(html) == ["a.png", "b.png"]


def test_picture_takes_the_first_source_that_applies() -> None:
    html = (
        "<picture><source type=image/x-unknown srcset=u.img>"
        "<source media='(max-width: 600px)' srcset=narrow.jpg>"
        "<source type=image/webp srcset='w1.webp 1x, w2.webp 2x'>"
        "<source srcset=later.jpg><img src=fallback.jpg></picture>"
    )
    assert found(html) == ["w1.webp"]
    assert found(html, PHONE) == ["narrow.jpg"]
    result = run(html)
    assert why(result)["u.img"] == "picture: type image/x-unknown not decoded"
    assert why(result)["later.jpg"] == "picture: an earlier <source> was chosen"
    assert why(result)["fallback.jpg"] == "picture: an earlier <source> was chosen"


def test_picture_without_an_applying_source_loads_the_img() -> None:
    html = "<picture><source media=print srcset=p.jpg><img src=i.jpg srcset='i2.jpg 2x'></picture>"
    assert found(html) == ["i.jpg"]
    assert found(html, Browser(dpr=2)) == ["i2.jpg"]


def test_a_source_of_a_type_some_builds_decode_keeps_the_next_one_too() -> None:
    html = "<picture><source type=image/jxl srcset=a.jxl><source type=image/avif srcset=a.avif><img src=a.jpg></picture>"
    assert found(html) == ["a.jxl", "a.avif"]


def test_lowsrc_is_not_loaded() -> None:
    assert found("<img src=a.png lowsrc=low.png>") == ["a.png"]
    assert found("<img src=a.png lowsrc=low.png>", ARCHIVER) == ["a.png", "low.png"]


# -- noscript ------------------------------------------------------------------------


def test_noscript_is_inert_with_scripting_on() -> None:
    html = (
        "<html><head><noscript><img src=pixel.gif></noscript>"
        "<noscript><link rel=stylesheet href=ns.css></noscript></head>"
        "<body><img src=seen.png><noscript><img src=fallback.png>"
        "<div style='background:url(bg.png)'></div></noscript></body></html>"
    )
    result = run(html)
    assert [f.url.removeprefix(PAGE) for f in result.found] == ["seen.png"]
    assert result.stylesheets == []
    assert why(result)["pixel.gif"] == "noscript: inert with scripting on (--noscript loads it)"
    assert found(html, Browser(scripting=False)) == ["pixel.gif", "ns.css", "seen.png", "fallback.png", "bg.png"]


def test_the_same_image_outside_noscript_is_still_found() -> None:
    html = "<img src=a.png><noscript><img src=a.png></noscript>"
    assert found(html) == ["a.png"]
    html = "<html><head><noscript><img src=a.png></noscript></head><body><img src=a.png></body></html>"
    assert found(html) == ["a.png"]


# -- icons ---------------------------------------------------------------------------


def test_tab_favicons_are_images_the_other_icons_their_own_kind() -> None:
    html = (FIXTURES / "icons.html").read_text()
    images = [f.url.removeprefix(PAGE) for f in run(html).found if f.kind == "image"]
    icons = [f.url.removeprefix(PAGE) for f in run(html).found if f.kind == "icon"]
    assert images == ["i-32.png", "i-16.png", "i-shortcut.ico", "i-body.png"]
    assert icons == ["i-apple-touch.png", "i-apple-180.png", "i-precomposed.png", "i-startup.png",
                     "i-mask.svg", "i-fluid.png", "i-192.png"]
    default = run(html, kinds=parse_kinds(None))
    assert [f.url.removeprefix(PAGE) for f in default.found] == images
    assert why(default)["i-apple-touch.png"].startswith("icon: rel=apple-touch-icon")


def test_a_preload_link_is_not_an_icon() -> None:
    assert found("<link rel=preload as=image href=p.png>", kinds=parse_kinds(None)) == ["p.png"]


# -- lazy attributes -----------------------------------------------------------------


def test_lazy_attributes_count_on_media_elements_when_they_are_urls() -> None:
    html = (
        "<img src=ph.gif data-src=photo.jpg><img data-srcset='s1.jpg 1x, s2.jpg 2x'>"
        "<li data-src=li.jpg></li><div data-original=div.jpg></div>"
        "<img data-src='{\"w\": 1}'><img data-srcset='[\"a.jpg\"]'><div data-bg=bg.jpg></div>"
    )
    result = run(html)
    assert [f.url.removeprefix(PAGE) for f in result.found] == ["ph.gif", "photo.jpg", "s1.jpg", "bg.jpg"]
    reasons = why(result)
    assert reasons["li.jpg"] == "lazy: li[data-src] is not on a media element"
    assert sum("is not a URL" in reason for reason in reasons.values()) == 2
    every = found(html, ARCHIVER)
    assert len(every) == 9 and {"s2.jpg", "li.jpg", "div.jpg"} <= set(every)


# -- inline styles -------------------------------------------------------------------


def test_inline_backgrounds_of_hidden_elements_are_skipped() -> None:
    html = (FIXTURES / "hidden.html").read_text()
    assert found(html) == ["h-visible.png", "h-visibility.png", "h-img-in-none.png",
                           "h-img-in-hidden.png", "h-opacity.png"]
    assert why(run(html))["h-none.png"] == "style: <div> is hidden (display:none)"


# -- CSS rules -----------------------------------------------------------------------


def test_style_rules_load_only_what_could_apply() -> None:
    html = (FIXTURES / "css-rules.html").read_text()
    result = run(html)
    names = [f.url.removeprefix(PAGE) for f in result.found if f.kind == "image"]
    for loaded in ("c-hero.png", "c-current.png", "c-before.png", "c-bullet.png", "c-first.png",
                   "c-border.png", "c-mask.svg", "c-weird.png"):
        assert loaded in names
    for skipped in ("c-absent.png", "c-hover.png", "c-focus.png", "c-unused.png", "c-hero-small.png",
                    "c-nested-no.png", "c-print.png", "c-portrait.png", "c-dark.png", "c-logo-2x.png",
                    "c-style-print.png"):
        assert skipped not in names
    reasons = why(result)
    assert reasons["c-hero.png"] == "css: rule matched .hero"
    assert reasons["c-absent.png"] == "css: rule .absent matches no element"
    assert reasons["c-hover.png"] == "css: rule .button:hover applies only under :hover/:focus/:active"
    assert reasons["c-hero-small.png"] == "css: @media (max-width: 600px) does not apply at 1280x800 dpr 1"
    assert "c-portrait.png" in found(html, PHONE)
    assert "c-logo-2x.png" in found(html, PHONE)


@pytest.mark.parametrize(
    ("selectors", "keep"),
    [
        (".a", True),
        (".a::before", True),
        (".a:after", True),
        ("p::first-line, .zz", True),
        (".zz", False),
        (".a:hover", False),
        (".zz, .a:focus-within", False),
        ("div:not(:hover)", True),
        (".a:-webkit-any(.b)", True),  # lexbor cannot parse it: kept
        ("a:visited", False),
        ("[", True),
    ],
)
def test_selector_verdicts(selectors: str, keep: bool) -> None:
    from loader.discovery.decide import tree_matcher
    from loader.discovery.html import parse_html

    match = tree_matcher(parse_html("<div class=a><p>x</p></div>"))
    assert selector_verdict(selectors, match)[0] is keep


def test_a_linked_stylesheet_is_matched_against_its_page() -> None:
    page = parse_document(b"<div class=linked></div>", PAGE, "text/html")
    sheet = parse_document((FIXTURES / "rules.css").read_bytes(), PAGE + "rules.css", "text/css")
    with_page = [f.url.removeprefix(PAGE) for f in discover(sheet, page=page).found]
    assert with_page == ["s-linked.png", "s-border.png"]
    # Without its page only @media decides.
    alone = [f.url.removeprefix(PAGE) for f in discover(sheet).found]
    assert alone == ["s-linked.png", "s-absent.png", "s-border.png"]
    assert "s-hover.png" not in alone
    assert [f.url.removeprefix(PAGE) for f in discover(sheet, browser=ARCHIVER).found] == [
        "s-linked.png", "s-absent.png", "s-hover.png", "s-phone.png", "s-border.png"
    ]


def test_a_page_in_pieces_keeps_rules_whose_selectors_need_the_whole_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    html = b"<style>.x{background:url(x.png)} .x:hover{background:url(h.png)}</style><p>no x here</p>"
    assert found(html.decode()) == []
    monkeypatch.setattr(html_module, "MAX_TREE_TAGS", 0)
    result = discover(parse_document(html, PAGE, "text/html"))
    assert [f.url.removeprefix(PAGE) for f in result.found] == ["x.png"]
    assert "not evaluated" in result.found[0].why


# -- audio and video -----------------------------------------------------------------


def test_media_elements_play_the_first_source_they_know() -> None:
    html = (
        "<audio><source src=a.ogg type=audio/ogg><source src=a.mp3 type=audio/mpeg></audio>"
        "<audio><source src=b.xyz type=audio/x-unknown><source src=b.mp3></audio>"
        "<audio src=c.wav><source src=c.mp3></audio>"
    )
    assert found(html) == ["a.ogg", "b.xyz", "b.mp3", "c.wav"]
    assert found(html, Browser(all_candidates=True)) == ["a.ogg", "a.mp3", "b.xyz", "b.mp3", "c.wav", "c.mp3"]


# -- provenance ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.html")))
def test_every_found_and_dropped_item_says_why(name: str) -> None:
    result = run((FIXTURES / name).read_text())
    assert result.found
    assert all(f.why for f in [*result.found, *result.dropped])
    assert not {f.url for f in result.found} & {f.url for f in result.dropped}


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.html")))
def test_the_model_finds_a_subset_of_what_the_page_names(name: str) -> None:
    html = (FIXTURES / name).read_text()
    every = set(found(html, ARCHIVER))
    assert set(found(html)) <= every
    assert set(found(html, Browser(all_candidates=True, scripting=False))) <= every


def test_dropped_items_are_bounded() -> None:
    html = "".join(f"<div data-src=d{i}.jpg></div>" for i in range(MAX_DROPPED + 50))
    assert len(run(html).dropped) == MAX_DROPPED


# -- the command and the library -----------------------------------------------------


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_fetch_list_explain_prints_why_and_what_was_skipped(http_server: Any) -> None:
    url = http_server.url("/files/browser/srcset-density.html")
    code, out, _ = cli("fetch", "--list", "--explain", url)
    assert code == EXIT_OK
    rows = [line.split("\t") for line in out.splitlines()]
    kept = {Path(r[1]).name: r[3] for r in rows if r[0] != "skipped"}
    skipped = {Path(r[1]).name: r[3] for r in rows if r[0] == "skipped"}
    assert kept["d-src.png"] == "srcset: chose src (1x)"
    assert kept["d-one.png"] == "srcset: chose 1x for dpr 1"
    assert skipped["d-2x.png"] == "srcset: 2x not chosen for dpr 1"
    assert skipped["d-fallback.png"] == "srcset: a srcset candidate was chosen over src"


def test_fetch_device_options_change_the_choice(http_server: Any) -> None:
    url = http_server.url("/files/browser/srcset-density.html")
    names = lambda out: {Path(line.split("\t")[1]).name for line in out.splitlines()}  # noqa: E731
    _, default, _ = cli("fetch", "--list", url)
    _, retina, _ = cli("fetch", "--list", "--dpr", "2", url)
    _, every, _ = cli("fetch", "--list", "--all-candidates", url)
    assert "d-src.png" in default and "d-2x.png" not in names(default)
    assert "d-2x.png" in names(retina) and "d-src.png" not in names(retina)
    assert names(default) | names(retina) <= names(every)
    url = http_server.url("/files/browser/srcset-width.html")
    _, wide, _ = cli("fetch", "--list", url)
    _, narrow, _ = cli("fetch", "--list", "--viewport", "500x900", url)
    assert "w-1400.jpg" in names(wide) and "w-700.jpg" in names(narrow)
    url = http_server.url("/files/browser/noscript.html")
    _, scripted, _ = cli("fetch", "--list", url)
    _, unscripted, _ = cli("fetch", "--list", "--noscript", url)
    assert names(scripted) == {"n-visible.png"}
    assert {"n-pixel.gif", "n-fallback.png", "n-sound.wav"} <= names(unscripted)
    url = http_server.url("/files/browser/icons.html")
    _, icons, _ = cli("fetch", "--list", "--kinds", "icon", url)
    assert "i-apple-touch.png" in names(icons) and "i-body.png" not in names(icons)


@pytest.mark.parametrize(
    "argv",
    [("--viewport", "1280"), ("--viewport", "0x10"), ("--dpr", "zero"), ("--dpr", "0"), ("--explain",)],
)
def test_bad_device_options_are_usage_errors(http_server: Any, argv: tuple[str, ...]) -> None:
    code, _, err = cli("fetch", *argv, http_server.url("/files/browser/icons.html"))
    assert code == EXIT_USAGE
    assert err


@pytest.mark.anyio
async def test_fetch_page_takes_the_browser(http_server: Any) -> None:
    url = http_server.url("/files/browser/picture.html")
    async with Loader() as loader:
        default = await loader.fetch_page(url, list_only=True)
        phone = await loader.fetch_page(url, list_only=True, browser=Browser(viewport=(500, 900), dpr=3))
    assert "p-wide-1x.jpg" in {Path(f.url).name for f in default.found}
    assert "p-narrow.jpg" in {Path(f.url).name for f in phone.found}
    assert {Path(f.url).name for f in default.dropped} >= {"p-narrow.jpg", "p-print.jpg"}
    assert all(f.why for f in default.dropped)


def test_a_later_declaration_of_the_same_selector_overrides_an_earlier_one() -> None:
    html = (
        "<style>.card { background: url(base.png) }"
        " @media (max-width: 600px) { .card { background-image: url(small.png) } }"
        " @media (scan: interlace) { .card { background: url(unknown.png) } }"
        " .card { list-style: url(bullet.png); background: url(a.png), url(b.png) }"
        " .other, .card { background: url(other.png) }</style><div class=card></div>"
    )
    # The last plain .card background surely applies: it wins over every earlier one
    # (both of its images load); .other, .card is another selector text.
    assert found(html) == ["bullet.png", "a.png", "b.png", "other.png"]
    assert why(run(html))["base.png"] == "css: background overridden by a later .card rule"
    assert found(html, PHONE) == ["bullet.png", "a.png", "b.png", "other.png"]
    # Without it, the phone's max-width rule wins over base.png; the (scan) rule may
    # not apply, so it overrides nothing.
    html = html.replace(" .card { list-style: url(bullet.png); background: url(a.png), url(b.png) }", "")
    assert found(html) == ["base.png", "unknown.png", "other.png"]
    assert found(html, PHONE) == ["small.png", "unknown.png", "other.png"]


def test_hostile_pictures_and_stylesheets_stay_bounded_and_keep_what_they_cannot_decide() -> None:
    from loader.discovery.decide import tree_matcher
    from loader.discovery.html import parse_html

    # The chosen <source> lies further back than the walk looks: the img is kept.
    html = "<picture><source srcset=a.png>" + "<source media=print srcset=p.png>" * 70 + "<img src=i.png></picture>"
    assert found(html) == ["a.png", "i.png"]
    html = "<picture><source srcset=a.png>" + "<source media=print srcset=p.png>" * 10 + "<img src=i.png></picture>"
    assert found(html) == ["a.png"]
    # A big tree allows fewer selector evaluations; past them every selector is kept.
    match = tree_matcher(parse_html("<p class=a>"), elements=10**9)
    assert [match(f".zz{i}") for i in range(100)] == [False] * 100
    assert match(".zz-more") is None
    assert match(".zz1") is False  # answers already given stay


def test_image_set_loads_one_candidate() -> None:
    html = (
        "<div style='background-image: image-set(url(a1.png) 1x, \"a2.png\" 2x)'></div>"
        "<style>div { background: -webkit-image-set(url(b1.png) 1x, url(b3.png) 288dpi),"
        " image-set(url(c.avif) type('image/avif'), url(c.png) type('image/png')) }</style>"
    )
    assert found(html) == ["a1.png", "b1.png", "c.avif", "c.png"]
    assert found(html, Browser(dpr=2)) == ["a2.png", "b3.png", "c.avif", "c.png"]
    assert found(html, Browser(all_candidates=True)) == ["a1.png", "a2.png", "b1.png", "b3.png", "c.avif", "c.png"]
    assert why(run(html))["a2.png"] == "css: image-set 2x not chosen for dpr 1"
