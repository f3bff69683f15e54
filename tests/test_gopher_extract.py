"""A gopher menu is a page: its images and sounds are requisites (no I/O)."""

import pytest
from loader_gopher import MAX_LINE, extract_menu, loader_extract

from loader import ProtocolError
from loader.discovery import Document, Found

URL = "gopher://h:7070/1/"

MENU = (
    b"iPictures and sounds\tfake\t(NULL)\t0\r\n"
    b"gA GIF\t/cat.gif\th\t7070\r\n"
    b"pA PNG\t/dog png.png\th\t7070\r\n"
    b"IA JPEG elsewhere\t/bird.jpg\tother.example\t70\r\n"
    b"sA sound\t/meow.wav\th\t7070\r\n"
    b";A video\t/clip.mp4\th\t7070\r\n"
    b"IAn image on the web\tURL:https://cdn.example/pic.png\th\t7070\r\n"
    b"0Text is not a requisite\t/a.txt\th\t7070\r\n"
    b"1Nor a menu\t/sub\th\t7070\r\n"
    b"9Nor a binary\t/x.bin\th\t7070\r\n"
    b"hNor a link\tURL:http://example.com/\th\t7070\r\n"
    b"3Error\t\terror.host\t1\r\n"
    b".\r\n"
)


def document(content: bytes, url: str = URL) -> Document:
    return Document(
        url=url,
        type="gopher-menu",
        content=content,
        base_url=url,
        content_type="text/x-gopher-menu",
    )


def requisites(found: list[Found]) -> list[Found]:
    return [f for f in found if f.kind != "link"]


def test_images_sounds_and_videos() -> None:
    assert requisites(extract_menu(document(MENU))) == [
        Found("gopher://h:7070/g/cat.gif", "image", "gopher-menu", "g", URL),
        Found("gopher://h:7070/p/dog%20png.png", "image", "gopher-menu", "p", URL),
        Found("gopher://other.example/I/bird.jpg", "image", "gopher-menu", "I", URL),
        Found("gopher://h:7070/s/meow.wav", "sound", "gopher-menu", "s", URL),
        Found("gopher://h:7070/;/clip.mp4", "video", "gopher-menu", ";", URL),
        Found("https://cdn.example/pic.png", "image", "gopher-menu", "I", URL),
    ]


def test_menus_text_html_and_search_items_are_links() -> None:
    menu = MENU.replace(b".\r\n", b"7Search\t/find\th\t7070\r\n.\r\n")
    links = [f for f in extract_menu(document(menu)) if f.kind == "link"]
    assert [(f.url, f.attribute) for f in links] == [
        ("gopher://h:7070/0/a.txt", "0"),
        ("gopher://h:7070/1/sub", "1"),
        ("http://example.com/", "h"),
        ("gopher://h:7070/7/find", "7"),
    ]


def test_secure_menu() -> None:
    found = requisites(extract_menu(document(MENU, "gophers://h:7070/1/")))
    assert [f.url.split("://")[0] for f in found] == [
        "gophers",
        "gophers",
        "gopher",
        "gophers",
        "gophers",
        "https",
    ]


def test_hook_only_answers_for_menus() -> None:
    assert loader_extract(document(MENU)) == extract_menu(document(MENU))
    html = Document(url="http://h/", type="html", content=b"<img src=a.png>", base_url="http://h/")
    assert loader_extract(html) is None


def test_broken_menu() -> None:
    content = (
        b"garbage line\r\n"
        b"\tno type\r\n"
        b"gok\t/ok.gif\r\n"
        b"Ibad host\t/x.png\th\xffst\t70\r\n"
        b"Ispace host\t/y.png\tmy host\t70\r\n"
        b"strunc"
    )
    assert [f.url for f in extract_menu(document(content))] == ["gopher://h:7070/g/ok.gif"]


def test_huge_menu_extracts() -> None:
    content = (
        b"".join(b"I%d\t/pics/%d.gif\th\t7070\r\n" % (n, n) for n in range(100_000)) + b".\r\n"
    )
    found = extract_menu(document(content))
    assert len(found) == 100_000 and found[-1].url == "gopher://h:7070/I/pics/99999.gif"


def test_over_long_line_fails_extraction_naming_the_menu() -> None:
    with pytest.raises(ProtocolError, match="gopher://h:7070/1/"):
        extract_menu(document(b"I" + b"x" * (MAX_LINE + 1) + b"\t/a.gif\th\t70\r\n"))
