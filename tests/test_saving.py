"""Safe names and atomic files: nothing outside the output directory, nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from loader import SaveError
from loader._saving import FileSink, PathAllocator, local_path, relative_path, safe_segment


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.org/img/a.png", "example.org/img/a.png"),
        ("http://example.org:8080/a.png", "example.org_8080/a.png"),
        ("http://example.org/", "example.org/index.html"),
        ("http://example.org", "example.org/index.html"),
        ("http://example.org/dir/", "example.org/dir/index.html"),
        ("ftp://example.org/pub/x.wav", "ftp_example.org/pub/x.wav"),
        ("http://EXAMPLE.org/A.PNG", "example.org/A.PNG"),
    ],
)
def test_relative_paths(url: str, expected: str) -> None:
    assert relative_path(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://h/../../etc/passwd",
        "http://h/%2e%2e/%2e%2e/etc/passwd",
        "http://h/%2E%2E%2F%2E%2E%2Fetc/passwd",
        "http://h/..%5c..%5cwindows/win.ini",
        "http://h/a\\..\\..\\b",
        "http://h//etc/passwd",
        "http://h/%00nul/x%0d%0a.png",
        "http://h/.../..../x",
        "http://../../x",
    ],
)
def test_hostile_paths_stay_inside(tmp_path: Path, url: str) -> None:
    path = local_path(url, tmp_path)
    assert os.path.realpath(path).startswith(str(tmp_path.resolve()) + os.sep)
    assert "\x00" not in str(path) and "\r" not in str(path) and "\n" not in str(path)
    assert ".." not in path.relative_to(tmp_path).parts


def test_queries_become_distinct_safe_names() -> None:
    a = relative_path("http://h/img.png?w=100")
    b = relative_path("http://h/img.png?w=200")
    assert a != b and a.endswith(".png") and "?" not in a


def test_reserved_and_long_names() -> None:
    assert safe_segment("CON.txt") == "_CON.txt"
    assert safe_segment("nul") == "_nul"
    long = safe_segment("x" * 1000 + ".png")
    assert len(long.encode()) <= 150 and long.endswith(".png")
    assert safe_segment("a<b>c:d|e?f*g") == "a_b_c_d_e_f_g"
    assert safe_segment("trailing. ") == "trailing"


def test_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "out"
    outside = tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "h").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SaveError, match="outside"):
        local_path("http://h/x.png", root)


def test_symlink_at_the_final_name_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    root = tmp_path / "out"
    (root / "h").mkdir(parents=True)
    (root / "h" / "x.png").symlink_to(victim)

    async def save() -> Path:
        sink = FileSink("http://h/x.png", root / "h" / "x.png", root=root)
        sink.start(0)
        await sink.write(b"new")
        return sink.commit()

    path = anyio.run(save)
    assert victim.read_text() == "keep me"
    assert not path.is_symlink() and path.read_bytes() == b"new"


def test_allocator_gives_each_url_its_own_path(tmp_path: Path) -> None:
    alloc = PathAllocator(tmp_path)
    a = alloc.path_for("http://h/a/b.png")
    b = alloc.path_for("http://h/a/B.png")  # same name on a case-insensitive disk
    c = alloc.path_for("http://h/a/%62.png")  # decodes to b.png as well
    assert len({a, b, c}) == 3
    assert alloc.path_for("http://h/a/b.png") == a


def test_failed_transfer_leaves_nothing(tmp_path: Path) -> None:
    async def fail() -> None:
        sink = FileSink("http://h/x", tmp_path / "x")
        sink.start(0)
        await sink.write(b"partial")
        assert list(tmp_path.iterdir())[0].name.startswith(".x.part-")
        sink.abort()

    anyio.run(fail)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("policy", "expected"), [("overwrite", ["f.txt"]), ("unique", ["f-1.txt", "f.txt"])])
def test_exists_policies(tmp_path: Path, policy: str, expected: list[str]) -> None:
    (tmp_path / "f.txt").write_text("old")

    async def save() -> Path:
        sink = FileSink("http://h/f.txt", tmp_path / "f.txt", exists=policy)  # type: ignore[arg-type]
        sink.start(0)
        await sink.write(b"new")
        return sink.commit()

    path = anyio.run(save)
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    assert path.read_text() == "new"
    assert FileSink("u", tmp_path / "f.txt", exists="skip").should_skip()


def test_resume_keeps_the_partial_bytes(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello ")

    async def resume() -> None:
        sink = FileSink("u", tmp_path / "f", resume=True)
        offset = sink.resume_offset()
        sink.start(offset)
        await sink.write(b"world")
        sink.commit()

    anyio.run(resume)
    assert (tmp_path / "f").read_bytes() == b"hello world"


def test_a_taken_temporary_name_is_skipped_not_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools
    import os

    import loader._saving as saving

    monkeypatch.setattr(saving, "_TMP_IDS", itertools.count(7))
    planted = tmp_path / f".x.part-{os.getpid()}-7"
    planted.write_bytes(b"someone else's")

    async def save() -> Path:
        sink = FileSink("http://h/x", tmp_path / "x", root=tmp_path)
        sink.start(0)
        await sink.write(b"mine")
        return sink.commit()

    assert anyio.run(save).read_bytes() == b"mine"
    assert planted.read_bytes() == b"someone else's"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_large_chunks_are_written_from_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    # Small chunks are written in place; large ones off the event loop's thread, in order,
    # still counted against the size limit.
    import threading

    from loader import SizeLimitExceeded
    from loader._saving import THREAD_WRITE_MIN

    writers: list[bool] = []
    real_write = os.write

    def spy(fd: int, data: object) -> int:
        writers.append(threading.current_thread() is threading.main_thread())
        return real_write(fd, data)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "write", spy)
    chunks = [b"a" * 10, bytes(range(256)) * (THREAD_WRITE_MIN // 256 + 1), b"b" * 10, b"c" * THREAD_WRITE_MIN]

    async def main() -> Path:
        sink = FileSink("http://h/big", tmp_path / "big")
        sink.start(0)
        for chunk in chunks:
            await sink.write(chunk)
        limited = FileSink("http://h/limited", tmp_path / "limited", max_body=THREAD_WRITE_MIN)
        limited.start(0)
        with pytest.raises(SizeLimitExceeded):
            await limited.write(b"x" * (THREAD_WRITE_MIN + 1))
        limited.abort()
        return sink.commit()

    path = anyio.run(main, backend=backend)
    assert path.read_bytes() == b"".join(chunks)
    assert writers == [True, False, True, False]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big"]
