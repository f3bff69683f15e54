"""Gopher URLs (RFC 4266): parsing and building, no I/O."""

import pytest
from loader_gopher import MAX_SELECTOR, GopherURL, check_selector, format_url, parse_url

from loader import InvalidURL


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("gopher://example.org", GopherURL(host="example.org")),
        ("gopher://example.org/", GopherURL(host="example.org")),
        ("gopher://Example.ORG:7070/1/", GopherURL(host="example.org", port=7070, selector="/")),
        ("gopher://h/0/about.txt", GopherURL(host="h", type="0", selector="/about.txt")),
        (
            "gopher://h/Ipics/cat%20one.gif",
            GopherURL(host="h", type="I", selector="pics/cat one.gif"),
        ),
        ("gopher://h/1", GopherURL(host="h", type="1", selector="")),
        (
            "gopher://h/7/search%09cats%20and%20dogs",
            GopherURL(host="h", type="7", selector="/search", search="cats and dogs"),
        ),
        (
            "gopher://h/7/s%09terms%09%2B",
            GopherURL(host="h", type="7", selector="/s", search="terms", gopher_plus="+"),
        ),
        ("gopher://h/1/a?b=c", GopherURL(host="h", selector="/a?b=c")),
        ("gopher://h/1/frag#ment", GopherURL(host="h", selector="/frag")),
        ("gophers://h/9/x.bin", GopherURL(host="h", type="9", selector="/x.bin", secure=True)),
        ("gopher://[::1]:70/1/", GopherURL(host="::1", selector="/")),
        (
            "gopher://h/hURL:http://example.com/",
            GopherURL(host="h", type="h", selector="URL:http://example.com/"),
        ),
    ],
)
def test_parse(url: str, expected: GopherURL) -> None:
    assert parse_url(url) == expected


def test_selector_keeps_any_byte() -> None:
    target = parse_url("gopher://h/0/caf%C3%A9/%FF%01")
    assert target.selector.encode("utf-8", "surrogateescape") == b"/caf\xc3\xa9/\xff\x01"
    assert target.request_line() == b"/caf\xc3\xa9/\xff\x01\r\n"
    assert parse_url(target.url) == target


def test_request_line() -> None:
    assert parse_url("gopher://h/").request_line() == b"\r\n"
    assert parse_url("gopher://h/1/docs").request_line() == b"/docs\r\n"
    assert parse_url("gopher://h/7/s%09a%20b").request_line() == b"/s\ta b\r\n"
    assert parse_url("gopher://h/7/s%09%09%2B").request_line() == b"/s\t\t+\r\n"


@pytest.mark.parametrize(
    "target",
    [
        GopherURL(host="h"),
        GopherURL(host="h", port=7070, type="I", selector="/pics/a b#c?.gif"),
        GopherURL(host="h", type="7", selector="/s", search="x y%z"),
        GopherURL(host="::1", port=7000, type="0", selector="/a"),
        GopherURL(host="h", type="9", selector="/%41", secure=True),
    ],
)
def test_round_trip(target: GopherURL) -> None:
    assert parse_url(target.url) == target
    assert str(target) == target.url


def test_format() -> None:
    assert format_url("h", 70, "1", "") == "gopher://h/1"
    assert format_url("h", 7070, "I", "/a b.gif") == "gopher://h:7070/I/a%20b.gif"
    assert format_url("::1", 70, "0", "/x", secure=True) == "gophers://[::1]/0/x"
    assert format_url("h", 70, "7", "/s", search="q") == "gopher://h/7/s%09q"
    assert format_url("h", 70, "h", "URL:http://e.org/") == "gopher://h/hURL:http://e.org/"


def test_with_search() -> None:
    target = parse_url("gopher://h/1/search").with_search("a b")
    assert (target.type, target.search) == ("7", "a b")
    assert target.url == "gopher://h/7/search%09a%20b"


@pytest.mark.parametrize(
    "url",
    [
        "http://h/1/",
        "gopher:/h/1",
        "gopher:///1/",
        "gopher://h:0/",
        "gopher://h:99999/",
        "gopher://h:x/",
        "gopher://user@h/1/",
        "gopher://[::1/1/",
        "gopher://h/%31/",
    ],
)
def test_invalid(url: str) -> None:
    with pytest.raises(InvalidURL) as info:
        parse_url(url)
    assert info.value.url == url


@pytest.mark.parametrize(
    "url",
    [
        "gopher://h/0/a%0Db",
        "gopher://h/0/a%0ab",
        "gopher://h/0/a\rb",
        "gopher://h/0/a\nb",
        "gopher://h/0/a\tb",
        "gopher://h/7/s%09a%0D%0Ab",
        "gopher://h/7/s%09a%09b%0Ac",
        "gopher://h/0/a%00b",
        "gopher://h/7/s%09a%00b",
        "gopher://h/7/s%09a%09b%00",
    ],
)
def test_cr_lf_tab_nul_rejected(url: str) -> None:
    with pytest.raises(InvalidURL, match="must not contain|raw"):
        parse_url(url)


def test_check_selector() -> None:
    check_selector("/fine selector")
    check_selector("/" + "x" * (MAX_SELECTOR - 1))
    check_selector("é" * (MAX_SELECTOR // 2))
    for bad in ("a\rb", "a\nb", "a\tb", "a\x00b", "/" + "x" * MAX_SELECTOR, "é" * 2049):
        with pytest.raises(InvalidURL):
            check_selector(bad)
    for terms in ("a\tb", "a\x00b", "x" * (MAX_SELECTOR + 1)):
        with pytest.raises(InvalidURL) as info:
            parse_url("gopher://h/7/s").with_search(terms)
        assert info.value.url == "gopher://h/7/s"


@pytest.mark.parametrize("part", ["0/", "7/s%09", "7/s%09%09"])
def test_over_long_selector_rejected(part: str) -> None:
    url = f"gopher://h/{part}" + "%41" * (MAX_SELECTOR + 1)
    with pytest.raises(InvalidURL, match=f"more than the {MAX_SELECTOR}") as info:
        parse_url(url)
    assert info.value.url == url
