"""Directory listings in every shape servers send, and the listing extractor."""

from __future__ import annotations

import pytest
from loader_ftp import (
    Entry,
    directory_base,
    dump_listing,
    extract_listing,
    kind_for_name,
    load_listing,
    parse_list,
    parse_list_line,
    parse_mlsd,
    parse_nlst,
)

from loader.discovery import Document


def test_mlsd() -> None:
    raw = (
        b"type=cdir;modify=20240101120000; .\r\n"
        b"type=pdir;modify=20240101120000; ..\r\n"
        b"type=file;size=1234;modify=20240102030405.123;perm=r; photo.png\r\n"
        b"Type=dir;Modify=20240101000000; sub dir\r\n"
        b"type=OS.unix=slink:/target;size=7; link\r\n"
        b"size=5; untyped\r\n"
        b"type=file;size=3;  leading spaces.txt\r\n"
    )
    assert parse_mlsd(raw) == [
        Entry("photo.png", "file", 1234, "2024-01-02T03:04:05Z"),
        Entry("sub dir", "dir", None, "2024-01-01T00:00:00Z"),
        Entry("link", "link", 7),
        Entry("untyped", None, 5),
        Entry(" leading spaces.txt", "file", 3),
    ]


UNIX = b"""\
total 24
drwxr-xr-x    2 ftp      ftp          4096 Mar 01 12:00 .
drwxr-xr-x    5 ftp      ftp          4096 Mar 01 12:00 ..
-rw-r--r--    1 ftp      ftp        153600 Jan  5  2023 binary.bin
-rw-r--r--    1 1000     1000           47 Nov 21 14:28 hello world.txt
drwxr-xr-x    3 ftp      ftp          4096 Nov 21 14:28 media
lrwxrwxrwx    1 ftp      ftp            11 Nov 21 14:28 latest -> media/a.png
-rw-r--r--+   1 owner    staff          10 Feb 29 09:05 acl.png
-rw-r--r--    1 nogroup               2048 Dec 31 23:59 no group.wav
crw-rw-rw-    1 root     root       1,   3 Jan  1  1970 null
"""


def test_unix_list() -> None:
    entries = parse_list(UNIX)
    assert entries[:6] == [
        Entry("binary.bin", "file", 153600, "Jan 5 2023"),
        Entry("hello world.txt", "file", 47, "Nov 21 14:28"),
        Entry("media", "dir", None, "Nov 21 14:28"),
        Entry("latest", "link", None, "Nov 21 14:28", target="media/a.png"),
        Entry("acl.png", "file", 10, "Feb 29 09:05"),
        Entry("no group.wav", "file", 2048, "Dec 31 23:59"),
    ]
    assert entries[6].name == "null" and entries[6].type == "other"


DOS = b"""\
01-05-23  09:15AM       <DIR>          Media Files
12-31-2023  11:59PM              153600 binary.bin
02-29-24  01:00PM                   12 two  spaces.png
"""


def test_dos_iis_list() -> None:
    assert parse_list(DOS) == [
        Entry("Media Files", "dir", None, "01-05-23 09:15AM"),
        Entry("binary.bin", "file", 153600, "12-31-2023 11:59PM"),
        Entry("two  spaces.png", "file", 12, "02-29-24 01:00PM"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Directory listing of /pub follows",  # a heading: not a name
        "total 0",
        ".",
        "..",
        "   ",
    ],
)
def test_lines_that_are_not_entries(line: str) -> None:
    assert parse_list_line(line) is None


def test_bare_names_in_a_list_reply() -> None:
    # Some servers answer LIST like NLST.
    assert parse_list(b"a.png\r\nsub/b.wav\r\n") == [Entry("a.png"), Entry("b.wav")]


def test_nlst() -> None:
    assert parse_nlst(b"a.png\r\npub/b.wav\r\n.\r\nname with space.mp3\r\ndir/\r\n") == [
        Entry("a.png"),
        Entry("b.wav"),
        Entry("name with space.mp3"),
        Entry("dir"),
    ]


def test_listing_body_round_trip() -> None:
    entries = [
        Entry("a.png", "file", 3, "2024-01-01T00:00:00Z"),
        Entry('caf\u00e9 "q".wav', "file"),
        Entry("sub", "dir"),
        Entry("l", "link", target="a.png"),
        Entry("bare"),
    ]
    body = dump_listing(entries)
    assert body.count(b"\n") == 5
    assert (
        body.splitlines()[0]
        == b'{"name": "a.png", "type": "file", "size": 3, "modified": "2024-01-01T00:00:00Z"}'
    )
    assert load_listing(body + b"not json\n[1]\n") == entries


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.PNG", "image"),
        ("b.jpeg", "image"),
        ("c.svg", "image"),
        ("d.wav", "sound"),
        ("e.mp3", "sound"),
        ("f.ogg", "sound"),
        ("g.mp4", "video"),
        ("h.css", "style"),
        ("readme.txt", None),
        ("png", None),
        (".png", None),
        ("archive.tar.gz", None),
    ],
)
def test_kind_for_name(name: str, kind: str | None) -> None:
    assert kind_for_name(name) == kind


def test_extractor_finds_requisites_by_extension() -> None:
    entries = [
        Entry("photo.png", "file"),
        Entry("chime.wav", "file"),
        Entry("notes.txt", "file"),
        Entry("pics.png", "dir"),  # a directory named like an image is not one
        Entry("a b;c.gif"),  # NLST: type unknown, the name decides
        Entry("latest.jpg", "link", target="photo.png"),
    ]
    document = Document(
        url="ftp://u:p@h/pub/media;type=d",
        type="ftp-listing",
        content=dump_listing(entries),
        base_url="ftp://u:p@h/pub/media;type=d",
    )
    found = [f for f in extract_listing(document) if f.kind != "link"]
    assert [(f.url, f.kind, f.element, f.attribute) for f in found] == [
        ("ftp://u:p@h/pub/media/photo.png", "image", "ftp-listing", "name"),
        ("ftp://u:p@h/pub/media/chime.wav", "sound", "ftp-listing", "name"),
        ("ftp://u:p@h/pub/media/a%20b%3Bc.gif", "image", "ftp-listing", "name"),
        ("ftp://u:p@h/pub/media/latest.jpg", "image", "ftp-listing", "name"),
    ]
    assert all(f.source == document.url for f in found)
    # Every entry is an outgoing link too; a directory's ends in "/".
    links = [(f.url, f.attribute) for f in extract_listing(document) if f.kind == "link"]
    assert links == [
        ("ftp://u:p@h/pub/media/photo.png", "name"),
        ("ftp://u:p@h/pub/media/chime.wav", "name"),
        ("ftp://u:p@h/pub/media/notes.txt", "name"),
        ("ftp://u:p@h/pub/media/pics.png/", "dir"),
        ("ftp://u:p@h/pub/media/a%20b%3Bc.gif", "name"),
        ("ftp://u:p@h/pub/media/latest.jpg", "name"),
    ]


def test_directory_base() -> None:
    assert directory_base("ftp://h/pub") == "ftp://h/pub/"
    assert directory_base("ftp://h/pub/") == "ftp://h/pub/"
    assert directory_base("ftp://h/pub;type=d") == "ftp://h/pub/"
