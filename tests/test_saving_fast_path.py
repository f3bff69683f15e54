"""The cached and shortcut paths of saving give exactly what the plain computations give."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loader._page import _PageRun
from loader._saving import FileSink, PathAllocator, relative_path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # Same raw directory part, different last segments: the directory cache is
        # keyed by the raw text, the last segment is always made safe on its own.
        ("http://h/a/..", "h/a"),
        ("http://h/a/.", "h/a"),
        ("http://h/a/", "h/a/index.html"),
        ("http://h/a/b", "h/a/b"),
        ("http://h/..", "h/index.html"),
        ("http://h", "h/index.html"),
        ("http://h/a%2Fb/c", "h/a_b/c"),
        ("http://h//x//y", "h/x/y"),
        # The host segment is cached by scheme and netloc.
        ("http://H:8080/x", "h_8080/x"),
        ("https://H:8080/x", "h_8080/x"),
        ("ftp://H:8080/x", "ftp_h_8080/x"),
        ("http://h:99999/x", "h/x"),
        ("http://h:0/x", "h/x"),
        ("http://user:pw@h/x", "h/x"),
        ("data:,x", "data/" + relative_path("data:,x").split("/")[1]),
    ],
)
def test_relative_path_with_caches(url: str, expected: str) -> None:
    assert relative_path(url) == expected
    assert relative_path(url) == expected  # and again, from the caches


@pytest.mark.parametrize("root", ["/tmp/out", "out", ".", "/", "out/../other"])
def test_allocated_paths_equal_joining_the_whole_relative_path(root: str) -> None:
    alloc = PathAllocator(Path(root))
    urls = ["http://h/a/b.png", "http://h/a/c.png", "http://h/", "http://h/a/", "http://g:81/a/b.png",
            "http://h/x?q=1", "data:,x"]
    for url in urls:
        path = alloc.path_for(url)
        assert isinstance(path, Path)
        assert path == Path(root) / relative_path(url)
        assert str(path) == str(Path(root) / relative_path(url))
    # Names that clash (case-insensitively, or after decoding) are still told apart.
    assert alloc.path_for("http://h/a/B.png").name == "B-1.png"
    assert alloc.path_for("http://h").name == "index-1.html"
    assert alloc.path_for("http://h/a/%62.png").name == "b-2.png"


def test_temporary_name_is_beside_the_final_name(tmp_path: Path) -> None:
    sink = FileSink("http://h/x", tmp_path / "d" / "x.png")
    assert sink._temporary_name().startswith(f".x.png.part-{os.getpid()}-")
    sink.start(0)
    [temporary] = (tmp_path / "d").iterdir()
    assert temporary.name.startswith(f".x.png.part-{os.getpid()}-")
    sink.abort()
    assert list((tmp_path / "d").iterdir()) == []


@pytest.mark.parametrize("output", ["/tmp/out", "/tmp/out/", "out", ".", "/", "/tmp/a/../out"])
@pytest.mark.parametrize(
    "path",
    ["/tmp/out/h/x.png", "/tmp/out", "/tmp/outside/x", "/tmp/a/../out/h/x", "out/h/x", "h/x", "/h/x", "/tmp/out/a/../x"],
)
def test_manifest_paths_match_relpath(output: str, path: str) -> None:
    run = object.__new__(_PageRun)
    run.output = Path(output)
    assert run._relative_to_output(Path(path)) == os.path.relpath(Path(path), Path(output))
