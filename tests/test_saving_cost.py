"""The cheap paths of saving (fewer Path objects, syscalls, urlsplit calls) change nothing."""

from __future__ import annotations

import errno
import itertools
import os
import random
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest

import loader._saving as saving
from loader import SaveError
from loader._saving import FileSink, PathAllocator, _split, _split_url, relative_path

TRICKY_URLS = [
    "http://h/a/b.png",
    "https://H.example:8443/a/b?x=1#f",
    "http://h",
    "http://h?q",
    "http://h#f?q",
    "http://h/a?b#c?d",
    "http://h/a#b?c",
    "http://h/?",
    "http://h/#",
    "http://user:pw@h:80/x",
    "http://[::1]:8080/x",
    "http://[::1/x",
    "http://h]/x",
    "HTTP://h/x",
    "Https://h/x",
    "http:/h/x",
    "http:h/x",
    "http:///x",
    "http://h/a b/c",
    " http://h/x",
    "http://h/\tx",
    "http://h/x\n",
    "http://h\r/x",
    "http://h/\x7f",
    "http://h/é",
    "http://hé/x",
    "http://h/%2e%2e/x",
    "http://h//x//y",
    "ftp://h/x",
    "file:///etc/passwd",
    "mailto:a@b",
    "",
    "/relative/x",
]


def _reference(url: str) -> tuple[str, str, str, str] | str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "ValueError"
    return parts.scheme, parts.netloc, parts.path, parts.query


def _mine(url: str) -> tuple[str, str, str, str] | str:
    try:
        return _split_url(url)
    except ValueError:
        return "ValueError"


@pytest.mark.parametrize("url", TRICKY_URLS)
def test_split_url_is_urlsplit(url: str) -> None:
    assert _mine(url) == _reference(url)


def test_split_url_is_urlsplit_on_random_urls() -> None:
    rng = random.Random(20240611)
    alphabet = "hHtTpPsS:/?#[]@%.-_aZ09\t\n\r \x7f\x00é;=&+"
    starts = ["http://", "https://", "HTTP://", "http:/", "http:", "ftp://", " http://", "http:///", "", "h"]
    for _ in range(20000):
        url = rng.choice(starts) + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert _mine(url) == _reference(url), url


@pytest.mark.parametrize(
    "text", ["/a/b/c.png", "/x", "x", "//x", "///x", "a//b", "/a/b/", "/", "", "./x", "a/b/../c", "/a/./b"]
)
def test_split_is_dirname_join_basename(text: str) -> None:
    directory = os.path.dirname(text)
    assert _split(text) == (directory, os.path.join(directory, ""), os.path.basename(text))


def _reference_path_for(root: Path, taken: set[str], url: str, suffix: str, index: str,
                        directories: set[str]) -> Path:
    """PathAllocator.path_for as plain pathlib computes it (the code before the shortcuts),
    for URLs whose directories come before any file of the same name: a file never takes
    a directory's name (index="." names the file after its own directory)."""
    relative = relative_path(url, index=index)
    levels = relative.split("/")[:-1]
    directories.update(str(root / "/".join(levels[: i + 1])).lower() for i in range(len(levels)))
    path = root / relative
    if suffix and not path.name.lower().endswith(suffix):
        path = path.with_name(path.name + suffix)
    candidate, n = path, 1
    while str(candidate).lower() in taken or str(candidate).lower() in directories:
        stem, ext = os.path.splitext(path.name)
        candidate = path.with_name(f"{stem}-{n}{ext}")
        n += 1
    taken.add(str(candidate).lower())
    return candidate


@pytest.mark.parametrize("root", ["/tmp/out", "out", ".", "/"])
@pytest.mark.parametrize(("suffix", "index"), [("", "index.html"), (".html", "index.html"), ("", "."),
                                               ("", "a/b"), ("", "x/."), (".HTML", "Index.HTML")])
def test_allocator_matches_plain_pathlib(root: str, suffix: str, index: str) -> None:
    alloc = PathAllocator(Path(root))
    taken: set[str] = set()
    directories: set[str] = set()
    urls = ["http://h/a/b.png", "http://h/a/B.PNG", "http://h/", "http://h/a/", "http://h", "http://h/a/%62.png",
            "http://g:81/a/b.png", "http://h/x?q=1", "data:,x", "http://h/a/b.html", "http://h/a/b.png"]
    given: dict[str, Path] = {}
    for url in urls:
        if url not in given:
            given[url] = _reference_path_for(Path(root), taken, url, suffix, index, directories)
        path = alloc.path_for(url, suffix=suffix, index=index)
        assert isinstance(path, Path)
        assert path == given[url] and str(path) == str(given[url])


def _save(path: Path, data: bytes, **kwargs: object) -> Path:
    sink = FileSink("http://h/x", path, **kwargs)  # type: ignore[arg-type]
    sink.start(0)
    sink.write_now(data)
    return sink.commit()


def test_missing_directories_are_made_without_a_root(tmp_path: Path) -> None:
    # No root: the directory is made only when opening the temporary file says it is missing.
    path = tmp_path / "a" / "b" / "c.png"
    assert _save(path, b"x") == path and path.read_bytes() == b"x"
    assert _save(path, b"y") == path and path.read_bytes() == b"y"  # and it exists now
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.png"]


@pytest.mark.parametrize(("where", "code"), [("f", errno.EEXIST), ("f/sub", errno.ENOTDIR)])
def test_a_file_in_the_way_of_the_directory_fails_as_mkdir_does(tmp_path: Path, where: str, code: int) -> None:
    # Without a root the path is the caller's own: it is not renamed.
    (tmp_path / "f").write_text("in the way")
    path = tmp_path / where / "x.png"
    with pytest.raises(SaveError, match=f"cannot write .*: {os.strerror(code)}$"):
        _save(path, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    assert (tmp_path / "f").read_text() == "in the way"


@pytest.mark.parametrize("where", ["f", "f/sub"])
def test_under_a_root_a_file_in_the_way_moves_the_directory(tmp_path: Path, where: str) -> None:
    (tmp_path / "f").write_text("in the way")
    saved = _save(tmp_path / where / "x.png", b"x", root=tmp_path)
    assert saved == tmp_path / where.replace("f", "f-1", 1) / "x.png" and saved.read_bytes() == b"x"
    assert (tmp_path / "f").read_text() == "in the way"


def test_a_symlinked_directory_leading_outside_creates_nothing(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "h").symlink_to(elsewhere, target_is_directory=True)
    checked: set[object] = set()
    for path in (root / "h" / "x.png", root / "h" / "sub" / "y.png"):
        with pytest.raises(SaveError, match="outside"):
            _save(path, b"x", root=root, checked=checked)
    assert list(elsewhere.iterdir()) == [] and checked == set()
    # A directory inside is checked once and remembered; the next file there skips the check.
    assert _save(root / "d" / "a", b"1", root=root, checked=checked).read_bytes() == b"1"
    assert len(checked) == 1
    assert _save(root / "d" / "b", b"2", root=root, checked=checked).read_bytes() == b"2"


def test_when_no_temporary_name_is_free_nothing_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every name tried is someone else's, and so is the next one: start() gives up and
    # removes none of them (only a name the sink itself created is ever unlinked).
    monkeypatch.setattr(saving, "_TMP_IDS", itertools.count(7))
    planted = [tmp_path / f".x.part-{os.getpid()}-{n}" for n in range(7, 7 + 101)]
    for p in planted:
        p.write_bytes(b"theirs")
    sink = FileSink("http://h/x", tmp_path / "x", root=tmp_path)
    with pytest.raises(SaveError, match="no free temporary name"):
        sink.start(0)
    assert all(p.read_bytes() == b"theirs" for p in planted)
    assert not (tmp_path / "x").exists()


def test_empty_and_short_written_bodies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _save(tmp_path / "empty", b"").read_bytes() == b""
    real_write = os.write

    def short(fd: int, data: bytes) -> int:  # at most 3 bytes a call
        return real_write(fd, bytes(memoryview(data)[:3]))

    monkeypatch.setattr(os, "write", short)

    async def save() -> Path:
        sink = FileSink("http://h/y", tmp_path / "y")
        sink.start(0)
        await sink.write(b"hello world")
        return sink.commit()

    assert anyio.run(save).read_bytes() == b"hello world"
