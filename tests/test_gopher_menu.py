"""Menu parsing (RFC 1436 directory listings), no I/O: bytes in, items out."""

import pytest
from loader_gopher import (
    MAX_LINE,
    MAX_MENU,
    ItemKind,
    Menu,
    MenuItem,
    MenuParser,
    item_kind,
    menu_limit,
    parse_menu,
)
from loader_gopher._menu import MenuEnd

from loader import ProtocolError

MENU = (
    b"iWelcome!\tfake\t(NULL)\t0\r\n"
    b"0About\t/about.txt\tgopher.example\t70\r\n"
    b"1Sub menu\t/sub\tgopher.example\t7070\r\n"
    b"ICat\t/cat.gif\tother.example\t70\t+\r\n"
    b"7Search\t/search\tgopher.example\t70\r\n"
    b"hWeb\tURL:http://www.example.com/\tgopher.example\t70\r\n"
    b"3Oops\t\terror.host\t1\r\n"
    b".\r\n"
)


def feed_in_chunks(data: bytes, size: int, **kw: object) -> tuple[list[MenuItem], MenuParser]:
    parser = MenuParser(**kw)  # type: ignore[arg-type]
    items: list[MenuItem] = []
    for start in range(0, len(data), size):
        items.extend(parser.feed(data[start : start + size]))
    items.extend(parser.close())
    return items, parser


def test_items() -> None:
    items = parse_menu(MENU, host="gopher.example", port=70)
    assert items == [
        MenuItem("i", "Welcome!", "", "", 0),
        MenuItem("0", "About", "/about.txt", "gopher.example", 70),
        MenuItem("1", "Sub menu", "/sub", "gopher.example", 7070),
        MenuItem("I", "Cat", "/cat.gif", "other.example", 70, "+"),
        MenuItem("7", "Search", "/search", "gopher.example", 70),
        MenuItem("h", "Web", "URL:http://www.example.com/", "gopher.example", 70),
        MenuItem("3", "Oops", "", "error.host", 1),
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_byte_by_byte(size: int) -> None:
    items, parser = feed_in_chunks(MENU, size, host="gopher.example")
    assert items == parse_menu(MENU, host="gopher.example")
    assert parser.done and parser.malformed == 0


def test_terminator_ends_the_menu() -> None:
    parser = MenuParser(host="h")
    items = parser.feed(b"0a\t/a\th\t70\r\n.\r\n0after\t/b\th\t70\r\n")
    assert [i.display for i in items] == ["a"]
    assert parser.done
    assert parser.feed(b"0more\t/c\th\t70\r\n") == []
    assert parser.close() == []


def test_terminator_split_across_chunks() -> None:
    items, parser = feed_in_chunks(b"0a\t/a\th\t70\r\n.\r\n1junk\t/j\th\t70\r\n", 1)
    assert [i.display for i in items] == ["a"]


def test_menu_without_terminator() -> None:
    assert [i.selector for i in parse_menu(b"0a\t/a\th\t70\r\n1b\t/b\th\t70\r\n")] == ["/a", "/b"]
    # ... and without a final line end.
    assert [i.selector for i in parse_menu(b"0a\t/a\th\t70\r\n1b\t/b\th\t70")] == ["/a", "/b"]


def test_bare_lf_and_mixed_line_ends() -> None:
    items = parse_menu(b"0a\t/a\th\t70\n1b\t/b\th\t70\r\n9c\t/c\th\t70\n.\n")
    assert [(i.type, i.selector) for i in items] == [("0", "/a"), ("1", "/b"), ("9", "/c")]


def test_missing_fields_default_to_the_menus_server() -> None:
    items = parse_menu(
        b"0only selector\t/a\r\n1no port\t/b\tother\r\n9empty host\t/c\t\t7000\r\n",
        host="me",
        port=7070,
    )
    assert [(i.selector, i.host, i.port) for i in items] == [
        ("/a", "me", 7070),
        ("/b", "other", 7070),
        ("/c", "me", 7000),
    ]


def test_bad_port() -> None:
    parser = MenuParser(host="h", port=70)
    items = parser.feed(b"0a\t/a\th\tseventy\r\n0b\t/b\th\t99999\r\n0c\t/c\th\t 71 \r\n")
    assert [i.port for i in items] == [70, 70, 71]
    assert parser.malformed == 2


def test_lines_without_tabs_are_info() -> None:
    parser = MenuParser(host="h")
    items = parser.feed(
        b"Just some text\r\niAn info line without fields\r\n3An error without fields\r\n"
    )
    assert [(i.type, i.display) for i in items] == [
        ("i", "Just some text"),
        ("i", "An info line without fields"),
        ("3", "An error without fields"),
    ]
    assert parser.malformed == 3
    assert not any(i.fetchable for i in items)


def test_stray_bytes() -> None:
    data = (
        b"\r\n"  # blank line
        b"   \r\n"  # whitespace only
        b"\tno type\t/x\th\t70\r\n"  # empty type/display field
        b"0caf\xc3\xa9 \xff\t/caf\xc3\xa9\xff\th\t70\r\n"  # UTF-8 and a stray byte
        b"0nul\x00\t/n\th\t70\r\n"
    )
    parser = MenuParser(host="h")
    items = parser.feed(data) + parser.close()
    assert [i.display for i in items] == ["caf\xe9 \ufffd", "nul\x00"]
    # The selector keeps its exact bytes, to be sent back as they came.
    assert items[0].selector.encode("utf-8", "surrogateescape") == b"/caf\xc3\xa9\xff"
    assert items[0].url == "gopher://h/0/caf%C3%A9%FF"
    assert parser.malformed == 1


def test_info_lines_drop_their_placeholder_fields() -> None:
    (item,) = parse_menu(b"iHello\tfake\t(NULL)\t0\r\n")
    assert item == MenuItem("i", "Hello", "", "", 0)
    assert item.is_info and not item.fetchable


@pytest.mark.parametrize("size", [1000, 4096, MAX_LINE, 10 * MAX_LINE])
def test_over_long_line_is_an_error(size: int) -> None:
    parser = MenuParser(host="h", url="gopher://h/1/x")
    assert parser.feed(b"0a\t/a\th\t70\r\n") == [MenuItem("0", "a", "/a", "h", 70)]
    line = b"0" + b"x" * (MAX_LINE * 3) + b"\t/long\th\t70\r\n"
    with pytest.raises(ProtocolError, match=f"longer than {MAX_LINE} bytes") as info:
        for start in range(0, len(line), size):
            parser.feed(line[start : start + size])
            # Never more than the cap (and a CR) of the unfinished line is held.
            assert len(parser._buffer) <= MAX_LINE + 1
    assert info.value.url == "gopher://h/1/x"
    assert start < MAX_LINE + size  # refused as soon as the line passed the cap
    assert parser.done and parser.feed(b"0b\t/b\th\t70\r\n") == []


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b""])
@pytest.mark.parametrize("size", [1, 7, MAX_LINE, MAX_LINE + 2])
def test_line_of_exactly_max_line_is_kept(end: bytes, size: int) -> None:
    line = b"0" + b"x" * (MAX_LINE - len(b"0\t/a\th\t70")) + b"\t/a\th\t70"
    assert len(line) == MAX_LINE
    data = line + end + (b".\r\n" if end else b"")
    chunk = size if size > 7 else 4096  # one byte at a time is covered below, on a short menu
    items, _ = feed_in_chunks(data, chunk, host="h")
    assert [i.selector for i in items] == ["/a"]
    with pytest.raises(ProtocolError):
        feed_in_chunks(b"0" + line + end, chunk, host="h")


def test_one_byte_at_a_time() -> None:
    items, parser = feed_in_chunks(MENU, 1, host="gopher.example")
    assert items == parse_menu(MENU, host="gopher.example") and parser.done


def test_parse_menu_refuses_a_long_line_in_a_whole_body() -> None:
    with pytest.raises(ProtocolError, match="gopher://h/1/"):
        parse_menu(b"i" + b"x" * (4 * MAX_LINE) + b"\r\n", url="gopher://h/1/")


def test_gopher_plus_field() -> None:
    (item,) = parse_menu(b"1Plus\t/p\th\t70\t+\r\n")
    assert item.gopher_plus == "+"


def test_urls_and_targets() -> None:
    items = parse_menu(MENU, host="gopher.example", port=70)
    assert [i.url for i in items if i.fetchable] == [
        "gopher://gopher.example/0/about.txt",
        "gopher://gopher.example:7070/1/sub",
        "gopher://other.example/I/cat.gif",
        "gopher://gopher.example/7/search",
        "gopher://gopher.example/hURL:http://www.example.com/",
    ]
    web = items[5]
    assert web.target == "http://www.example.com/"
    assert items[1].target == items[1].url


def test_secure_menu_items_on_the_same_server_stay_secure() -> None:
    items = parse_menu(
        b"0here\t/a\th\t7000\r\n0elsewhere\t/b\tother\t7000\r\n0other port\t/c\th\t70\r\n0no host\t/d\r\n",
        host="h",
        port=7000,
        secure=True,
    )
    assert [i.url.split(":")[0] for i in items] == ["gophers", "gopher", "gopher", "gophers"]


@pytest.mark.parametrize(
    ("item_type", "kind"),
    [
        ("0", ItemKind.TEXT),
        ("1", ItemKind.MENU),
        ("3", ItemKind.ERROR),
        ("7", ItemKind.SEARCH),
        ("9", ItemKind.BINARY),
        ("g", ItemKind.GIF),
        ("I", ItemKind.IMAGE),
        ("p", ItemKind.PNG),
        ("s", ItemKind.SOUND),
        (";", ItemKind.VIDEO),
        ("d", ItemKind.DOCUMENT),
        ("h", ItemKind.HTML),
        ("i", ItemKind.INFO),
        ("8", ItemKind.TELNET),
        ("Z", ItemKind.UNKNOWN),
        ("\x00", ItemKind.UNKNOWN),
    ],
)
def test_kinds(item_type: str, kind: ItemKind) -> None:
    assert item_kind(item_type) is kind
    assert str(kind) == kind.value


def test_unknown_types_are_still_items() -> None:
    (item,) = parse_menu(b"Zsomething new\t/z\th\t70\r\n")
    assert item.kind is ItemKind.UNKNOWN
    assert item.fetchable and item.url == "gopher://h/Z/z"


def test_sessions_are_not_fetchable() -> None:
    items = parse_menu(b"8Telnet\tuser\th\t23\r\nTTN3270\t\th\t23\r\n2CSO\t\th\t105\r\n")
    assert not any(i.fetchable for i in items)


def test_menu_object() -> None:
    menu = Menu("gopher://gopher.example/1", parse_menu(MENU, host="gopher.example"))
    assert len(menu) == 7 and menu[0].is_info
    assert [i.type for i in menu.links] == ["0", "1", "I", "7", "h"]
    assert [i.display for i in menu.errors] == ["Oops"]
    assert list(menu) == list(menu.items)
    assert "7 items" in repr(menu)


def test_huge_menu_parses() -> None:
    # No timing assertion (shared, noisy machine): ~0.2 s for these 100k items here.
    lines = b"".join(b"I%d\t/pics/%d.gif\th\t70\r\n" % (n, n) for n in range(100_000))
    items, _ = feed_in_chunks(lines + b".\r\n", 65536, host="h")
    assert len(items) == 100_000 and items[-1].selector == "/pics/99999.gif"


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        (b"0a\t/a\th\t70\r\n.\r\nafter", b"0a\t/a\th\t70\r\n.\r\n"),
        (b"0a\t/a\th\t70\n.\nafter\n.\n", b"0a\t/a\th\t70\n.\n"),
        (b".\r\n0after\t/b\th\t70\r\n", b".\r\n"),
        (b"0a.\t/a.\th\t70\r\n.x\r\n", b"0a.\t/a.\th\t70\r\n.x\r\n"),  # no "." line
        (b"0a\t/a\th\t70\r\n.", b"0a\t/a\th\t70\r\n."),  # not ended yet
    ],
)
def test_menu_end_at_every_split(data: bytes, kept: bytes) -> None:
    for size in (1, 2, 3, 4, 5, len(data)):
        for first in range(len(data) + 1):
            end = MenuEnd()
            pieces = [data[:first]] + [data[i : i + size] for i in range(first, len(data), size)]
            out = b"".join(end.feed(piece) for piece in pieces)
            assert out == kept, (size, first)
            assert end.done == (kept != data or data.endswith((b".\r\n", b".\n")))


def test_menu_limit_without_limits_is_max_menu() -> None:
    # A handler built without a loader (``GopherHandler()``) has no Limits to ask.
    assert menu_limit(None) == MAX_MENU
