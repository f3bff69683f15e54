"""Saving against hostile pages and interrupted transfers.

Names that hide or reorder (bidi, zero-width, leading dots), Unicode hosts, a name
wanted as both a file and a directory, a directory swapped for a symlink mid-transfer,
permissive umasks, and transfers killed or interrupted half-way.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from support.http_server import HTTPTestServer, pattern_bytes
from support.raw_server import recv_until, send_lines

from loader import Event, Loader, Phase, Retries, SaveError
from loader._saving import (
    Directories,
    FileSink,
    PathAllocator,
    make_directories,
    relative_path,
    safe_segment,
    umask_keeps_file_mode,
    write_file,
)

# Everything that must never survive into a saved name: bidi controls, zero-width and
# other invisible characters, C0/C1 controls, line and paragraph separators.
INVISIBLE = (
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    "\u200b\u200c\u200d\u2060\u2061\u2063\u2064\ufeff\u00ad\u034f\u180e\u3164\ufe0f\U000e0041"
    "\x00\x01\x1b\x7f\x85\x9b\u2028\u2029"
)


def all_names(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*")]


# -- 1. names that hide or reorder ---------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("a\u202eb.png", "a_b.png"),
        ("a%E2%80%AEgnp.exe", "a_gnp.exe"),  # percent-encoded RLO: decoded, then neutralised
        ("in\u200bvisible.png", "in_visible.png"),
        ("\ufeffbom.png", "_bom.png"),
        ("x\u2066y\u2069.png", "x_y_.png"),
        ("c1\x85\x9b.png", "c1__.png"),
        ("tag\U000e0041.png", "tag_.png"),
        (".htaccess", "_.htaccess"),
        ("%2ehtaccess", "_.htaccess"),
        (".git", "_.git"),
        (".._.._x.png", "_.._.._x.png"),
        ("\u200b.hidden", "_.hidden"),  # invisible first: still not hidden
        (" .hidden", "_.hidden"),  # stripped blank first
        ("...", "_"),
        ("a.b.png", "a.b.png"),
        ("ordinary-name_1.png", "ordinary-name_1.png"),
        ("bücher.png", "bücher.png"),  # visible non-ASCII stays readable
    ],
)
def test_names_read_as_they_are_stored(segment: str, expected: str) -> None:
    assert safe_segment(segment) == expected
    assert safe_segment(segment) == expected  # deterministic


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h/.git/config", "h/_.git/config"),
        ("http://h/%2egit/%2Eenv", "h/_.git/_.env"),
        ("http://h/a/.htaccess", "h/a/_.htaccess"),
        ("http://h/x\u202e/a\u200b.png", "h/x_/a_.png"),
        ("http://h/dir/", "h/dir/index.html"),
    ],
)
def test_no_segment_of_a_saved_path_is_hidden(url: str, expected: str) -> None:
    assert relative_path(url) == expected


def test_random_hostile_segments_are_never_hidden_nor_invisible() -> None:
    rng = random.Random(20261203)
    alphabet = INVISIBLE + "./\\%2eE. aZ\u00e9\u4e2d"
    for _ in range(20000):
        segment = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        name = safe_segment(segment)
        assert name == safe_segment(segment)
        if name:
            assert not name.startswith(".") and not any(c in INVISIBLE for c in name), (segment, name)
            assert name not in (".", "..") and "/" not in name and "\\" not in name


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://bücher.example/x.png", "xn--bcher-kva.example/x.png"),
        ("http://BÜCHER.example:8080/x.png", "xn--bcher-kva.example_8080/x.png"),
        ("http://b%C3%BCcher.example/x.png", "xn--bcher-kva.example/x.png"),
        ("ftp://bücher.example/x", "ftp_xn--bcher-kva.example/x"),
        ("http://例え.テスト/x", "xn--r8jz45g.xn--zckzah/x"),
    ],
)
def test_host_directories_are_a_labels(url: str, expected: str) -> None:
    assert relative_path(url) == expected


@pytest.mark.parametrize("host", ["a\u202eb.example", "x\u200by.example", "%E2%80%AEevil", ".hidden", "a..b"])
def test_hosts_idna_rejects_still_get_a_plain_ascii_directory(host: str) -> None:
    directory = relative_path(f"http://{host}/x").split("/")[0]
    assert directory.isascii() and directory.isprintable() and not directory.startswith(".")
    assert directory == relative_path(f"http://{host}/y").split("/")[0]


# -- 2. one name, a file or a directory ----------------------------------------------------


def test_allocator_file_first_then_directory(tmp_path: Path) -> None:
    alloc = PathAllocator(tmp_path)
    assert alloc.path_for("http://h/img") == tmp_path / "h/img"
    assert alloc.path_for("http://h/img/a.png") == tmp_path / "h/img-1/a.png"
    assert alloc.path_for("http://h/img/b/c.png") == tmp_path / "h/img-1/b/c.png"
    # A URL's own /img-1/ is not merged into the renamed directory.
    assert alloc.path_for("http://h/img-1/a.png") == tmp_path / "h/img-1-1/a.png"
    assert alloc.path_for("http://h/img") == tmp_path / "h/img"  # the same every time


def test_allocator_directory_first_then_file(tmp_path: Path) -> None:
    alloc = PathAllocator(tmp_path)
    assert alloc.path_for("http://h/img/a.png") == tmp_path / "h/img/a.png"
    assert alloc.path_for("http://h/IMG") == tmp_path / "h/IMG-1"  # case-insensitive disks too
    assert alloc.path_for("http://h/img/b/c.png") == tmp_path / "h/img/b/c.png"
    assert alloc.path_for("http://h/img/b") == tmp_path / "h/img/b-1"


def _sink_save(url: str, path: Path, root: Path, data: bytes) -> Path:
    sink = FileSink(url, path, root=root)
    sink.start(0)
    sink.write_now(data)
    return sink.commit()


@pytest.mark.parametrize(
    ("order", "file_at", "image_at"),
    [
        # start/commit of the file /img (F) and of /img/a.png (D), in this order
        (["F.start", "F.commit", "D.start", "D.commit"], "h/img", "h/img-1/a.png"),
        (["D.start", "D.commit", "F.start", "F.commit"], "h/img-1", "h/img/a.png"),
        (["F.start", "D.start", "F.commit", "D.commit"], "h/img-1", "h/img/a.png"),
        (["D.start", "F.start", "D.commit", "F.commit"], "h/img-1", "h/img/a.png"),
        (["F.start", "D.start", "D.commit", "F.commit"], "h/img-1", "h/img/a.png"),
    ],
)
def test_two_sinks_wanting_one_name_as_file_and_directory(
    tmp_path: Path, order: list[str], file_at: str, image_at: str
) -> None:
    # No allocator between them (or files of an earlier run): on disk the later comer moves.
    for attempt in range(2):  # deterministic: the same interleaving gives the same names
        root = tmp_path / f"out{attempt}"
        sinks = {
            "F": FileSink("http://h/img", root / "h/img", root=root),
            "D": FileSink("http://h/img/a.png", root / "h/img/a.png", root=root),
        }
        saved = {}
        for step in order:
            who, what = step.split(".")
            if what == "start":
                sinks[who].start(0)
                sinks[who].write_now(who.encode() * 3)
            else:
                saved[who] = sinks[who].commit()
        assert saved == {"F": root / file_at, "D": root / image_at}
        assert saved["F"].read_bytes() == b"FFF" and saved["D"].read_bytes() == b"DDD"
        assert not [n for n in all_names(root) if n.startswith(".")]


@pytest.mark.anyio
async def test_two_concurrent_sinks_both_succeed(tmp_path: Path) -> None:
    # Large chunks go through worker threads: the two bodies really are written at once.
    big = os.urandom(3 * 64 * 1024)
    saved: dict[str, Path] = {}

    async def save(url: str, path: Path) -> None:
        sink = FileSink(url, path, root=tmp_path)
        sink.start(0)
        for i in range(0, len(big), 64 * 1024):
            await sink.write(big[i : i + 64 * 1024])
            await anyio.sleep(0)
        saved[url] = sink.commit()

    async with anyio.create_task_group() as tg:
        tg.start_soon(save, "http://h/img", tmp_path / "h/img")
        tg.start_soon(save, "http://h/img/a.png", tmp_path / "h/img/a.png")
    # Both start before either commits (whichever the scheduler runs first): the image's
    # start makes the directory, so the file, committed later, moves.
    assert saved["http://h/img/a.png"] == tmp_path / "h/img/a.png"
    assert saved["http://h/img"] == tmp_path / "h/img-1"
    assert all(p.read_bytes() == big for p in saved.values())
    assert sorted(all_names(tmp_path)) == ["a.png", "h", "img", "img-1"]


# -- 3. a directory swapped for a symlink during the transfer -----------------------------


@pytest.fixture
def swap(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    root, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (root / "h").mkdir(parents=True)
    elsewhere.mkdir()
    yield root, elsewhere, root / "moved"


def _swap_in_symlink(root: Path, elsewhere: Path, moved: Path) -> None:
    (root / "h").rename(moved)
    (root / "h").symlink_to(elsewhere, target_is_directory=True)


@pytest.mark.parametrize("with_root", [True, False])
def test_abort_after_the_directory_became_a_symlink_removes_our_file(
    swap: tuple[Path, Path, Path], with_root: bool
) -> None:
    root, elsewhere, moved = swap
    sink = FileSink("http://h/x.png", root / "h" / "x.png", root=root if with_root else None)
    sink.start(0)
    sink.write_now(b"partial")
    _swap_in_symlink(root, elsewhere, moved)
    (elsewhere / next(iter(os.listdir(moved)))).write_bytes(b"not ours")  # same name, elsewhere
    sink.abort()
    assert list(moved.iterdir()) == []  # ours is gone, removed where it was made
    assert [p.read_bytes() for p in elsewhere.iterdir()] == [b"not ours"]  # theirs is untouched


def test_commit_after_the_directory_became_a_symlink_fails_and_leaves_nothing(
    swap: tuple[Path, Path, Path],
) -> None:
    root, elsewhere, moved = swap
    sink = FileSink("http://h/x.png", root / "h" / "x.png", root=root)
    sink.start(0)
    sink.write_now(b"body")
    _swap_in_symlink(root, elsewhere, moved)
    with pytest.raises(SaveError, match="replaced during the transfer"):
        sink.commit()
    assert list(moved.iterdir()) == [] and list(elsewhere.iterdir()) == []


def test_a_symlink_made_before_the_transfer_is_refused_when_it_leads_outside(
    swap: tuple[Path, Path, Path],
) -> None:
    root, elsewhere, moved = swap
    _swap_in_symlink(root, elsewhere, moved)
    with pytest.raises(SaveError, match="outside"):
        _sink_save("http://h/x.png", root / "h" / "x.png", root, b"x")
    assert list(elsewhere.iterdir()) == []


def _run_save(url: str, path: Path, root: Path, data: bytes, directories: Directories) -> Path:
    sink = FileSink(url, path, root=root, checked=directories)
    sink.start(0)
    sink.write_now(data)
    return sink.commit()


def test_a_page_runs_sinks_share_one_directory_fd_until_it_closes(tmp_path: Path) -> None:
    directories = Directories()
    for name in ("a", "b", "c"):
        _run_save(f"http://h/{name}", tmp_path / "h" / name, tmp_path, name.encode(), directories)
    assert list(directories.fds) == [str(tmp_path / "h")]
    fd, _ = directories.fds[str(tmp_path / "h")]
    os.fstat(fd)  # open: no sink closed it
    assert sorted(p.read_bytes() for p in (tmp_path / "h").iterdir()) == [b"a", b"b", b"c"]
    directories.close()
    assert directories.fds == {}
    with pytest.raises(OSError):
        os.fstat(fd)
    # After the run's end a sink opens and closes its own, as without a Directories.
    _run_save("http://h/d", tmp_path / "h" / "d", tmp_path, b"d", directories)
    assert directories.fds == {}


def test_a_kept_directory_swapped_for_a_symlink_between_files_saves_nothing_outside(
    swap: tuple[Path, Path, Path],
) -> None:
    root, elsewhere, moved = swap
    directories = Directories()
    _run_save("http://h/a", root / "h" / "a", root, b"a", directories)
    _swap_in_symlink(root, elsewhere, moved)
    # The kept fd still names the directory checked: the commit sees the path changed.
    with pytest.raises(SaveError, match="replaced during the transfer"):
        _run_save("http://h/b", root / "h" / "b", root, b"b", directories)
    assert directories.fds == {}  # forgotten: the next file checks the path again
    with pytest.raises(SaveError, match="outside"):
        _run_save("http://h/c", root / "h" / "c", root, b"c", directories)
    directories.close()
    assert list(elsewhere.iterdir()) == []
    assert [p.name for p in moved.iterdir()] == ["a"]


def test_a_symlinked_directory_inside_the_root_still_works(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "h").symlink_to(tmp_path / "real", target_is_directory=True)
    assert _sink_save("http://h/x", tmp_path / "h" / "x", tmp_path, b"ok").read_bytes() == b"ok"
    assert (tmp_path / "real" / "x").read_bytes() == b"ok"


# -- 4. modes whatever the umask -----------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o077, 0o022])
@pytest.mark.parametrize("with_root", [True, False])
def test_modes_do_not_depend_on_the_umask(tmp_path: Path, umask: int, with_root: bool) -> None:
    old = os.umask(umask)
    try:
        sink = FileSink("http://h/a/b/c.png", tmp_path / "h/a/b/c.png", root=tmp_path if with_root else None)
        sink.start(0)
        path = sink.commit()
        partial = FileSink("http://h/a/p", tmp_path / "h/a/p", resume=True)
        partial.start(0)
        partial.write_now(b"part")
        partial.abort()
    finally:
        os.umask(old)
    for directory in (tmp_path / "h", tmp_path / "h/a", tmp_path / "h/a/b"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755, directory
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "h/a/p.part").stat().st_mode) == 0o644


@pytest.mark.parametrize("umask", [0o000, 0o077, 0o022, 0o133])
def test_a_page_runs_sinks_skip_fchmod_only_when_the_umask_keeps_the_mode(tmp_path: Path, umask: int) -> None:
    """A page's sinks (sharing a Directories) set the mode only when the umask would
    change it: the process's umask is read once, so the test clears that answer."""
    old = os.umask(umask)
    umask_keeps_file_mode.cache_clear()
    try:
        checked = Directories()
        assert checked.mode_kept == (umask & 0o644 == 0)
        paths = []
        for name in ("a.png", "b.png"):
            sink = FileSink(f"http://h/{name}", tmp_path / "h" / name, root=tmp_path, checked=checked)
            sink.start(0)
            sink.write_now(b"x")
            paths.append(sink.commit())
        checked.close()
    finally:
        os.umask(old)
        umask_keeps_file_mode.cache_clear()
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(umask)


def test_make_directories_for_the_output_ignores_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        make_directories(tmp_path / "out" / "sub")
        make_directories(tmp_path / "out" / "sub")  # exists already: fine
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out" / "sub").stat().st_mode) == 0o755


# -- 5. interrupted transfers and resuming -------------------------------------------------


def test_an_interrupted_resumable_transfer_keeps_a_visible_partial_and_continues(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    first = FileSink("http://h/file.bin", target, resume=True)
    assert first.resume_offset() == 0
    first.start(0)
    first.remember_response({"ETag": '"v1"', "Last-Modified": "Thu, 03 Dec 2026 10:00:00 GMT"})
    first.write_now(b"hello ")
    first.abort()  # Ctrl-C, a dropped connection …
    assert sorted(all_names(tmp_path)) == ["file.bin.part", "file.bin.part.json"]
    assert not target.exists()

    second = FileSink("http://h/file.bin", target, resume=True)
    assert second.resume_offset() == 6
    assert second.resume_headers() == {"If-Range": '"v1"'}
    second.start(6)
    second.write_now(b"world")
    assert second.commit() == target
    assert target.read_bytes() == b"hello world"
    assert all_names(tmp_path) == ["file.bin"]


def test_a_resumable_transfer_that_wrote_nothing_leaves_nothing(tmp_path: Path) -> None:
    sink = FileSink("http://h/f", tmp_path / "f", resume=True)
    sink.start(0)
    sink.remember_response({"etag": '"x"'})
    sink.abort()
    assert all_names(tmp_path) == []


def test_without_resume_nothing_is_left_and_an_old_partial_is_cleared(tmp_path: Path) -> None:
    (tmp_path / "f.part").write_bytes(b"from an interrupted --continue")
    (tmp_path / "f.part.json").write_text(json.dumps({"url": "http://h/f"}))
    (tmp_path / "g.part").write_bytes(b"the user's own file")
    sink = FileSink("http://h/f", tmp_path / "f")
    sink.start(0)
    sink.write_now(b"x")
    sink.abort()
    assert sorted(all_names(tmp_path)) == ["f.part", "f.part.json", "g.part"]  # an abort takes only its own
    sink.start(0)
    sink.write_now(b"whole")
    sink.commit()
    assert sorted(all_names(tmp_path)) == ["f", "g.part"]
    other = FileSink("http://h/g", tmp_path / "g")  # no record says g.part is ours: kept
    other.start(0)
    other.commit()
    assert sorted(all_names(tmp_path)) == ["f", "g", "g.part"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"ETag": '"strong"'}, {"If-Range": '"strong"'}),
        ({"ETag": 'W/"weak"', "Last-Modified": "Wed, 02 Dec 2026 10:00:00 GMT"},
         {"If-Range": "Wed, 02 Dec 2026 10:00:00 GMT"}),
        ({"etag": 'W/"weak"'}, {}),
        ({}, {}),
    ],
)
def test_if_range_uses_a_strong_validator_only(tmp_path: Path, headers: dict[str, str], expected: dict[str, str]) -> None:
    sink = FileSink("http://h/f", tmp_path / "f", resume=True)
    sink.start(0)
    sink.remember_response(headers)
    sink.write_now(b"abc")
    sink.abort()
    again = FileSink("http://h/f", tmp_path / "f", resume=True)
    assert again.resume_offset() == 3 and again.resume_headers() == expected


def test_a_partial_of_another_url_is_started_over(tmp_path: Path) -> None:
    (tmp_path / "f.part").write_bytes(b"other")
    (tmp_path / "f.part.json").write_text(json.dumps({"url": "http://elsewhere/f", "etag": '"e"'}))
    sink = FileSink("http://h/f", tmp_path / "f", resume=True)
    assert sink.resume_offset() == 0 and sink.resume_headers() == {}
    sink.start(0)
    sink.write_now(b"mine")
    assert sink.commit().read_bytes() == b"mine"
    assert all_names(tmp_path) == ["f"]


def test_a_finished_file_is_continued_like_wget_c_without_touching_it_until_complete(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello ")
    sink = FileSink("http://h/f", tmp_path / "f", resume=True)
    assert sink.resume_offset() == 6 and sink.resume_headers() == {}
    sink.start(6)
    sink.write_now(b"wor")
    sink.abort()
    assert (tmp_path / "f").read_bytes() == b"hello "  # untouched …
    assert (tmp_path / "f.part").read_bytes() == b"hello wor"  # … the copy goes on
    sink = FileSink("http://h/f", tmp_path / "f", resume=True)
    sink.start(sink.resume_offset())
    sink.write_now(b"ld")
    assert sink.commit().read_bytes() == b"hello world"


def test_two_transfers_never_append_to_one_partial(tmp_path: Path) -> None:
    a = FileSink("http://h/f", tmp_path / "f", resume=True)
    a.start(0)
    a.write_now(b"a")
    b = FileSink("http://h/f", tmp_path / "f", resume=True)
    with pytest.raises(SaveError, match="being written by another transfer"):
        b.start(0)
    assert (tmp_path / "f.part").read_bytes() == b"a"
    a.write_now(b"b")
    assert a.commit().read_bytes() == b"ab"


def test_a_fifo_planted_as_the_partial_does_not_block(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "f.part")
    sink = FileSink("http://h/f", tmp_path / "f", resume=True)
    with pytest.raises(SaveError):
        sink.start(0)


_KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from loader._saving import FileSink
    sink = FileSink("http://h/big.bin", Path(sys.argv[1]), resume=sys.argv[2] == "resume")
    sink.start(0)
    sink.remember_response({"ETag": '"k1"'})
    sink.write_now(b"0123456789")
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _killed_run(target: Path, mode: str) -> int:
    proc = subprocess.run([sys.executable, "-c", _KILLED, str(target), mode], check=False)
    assert proc.returncode == -signal.SIGKILL
    return proc.returncode


def test_a_killed_run_leaves_a_temporary_that_the_next_sink_removes(tmp_path: Path) -> None:
    _killed_run(tmp_path / "big.bin", "plain")
    [left] = all_names(tmp_path)
    assert left.startswith(".big.bin.part-")
    # A live process's temporary (this one's parent's, and our own) is never touched.
    live = [f".other.part-{os.getppid()}-1", f".mine.part-{os.getpid()}-99999"]
    for name in live:
        (tmp_path / name).write_bytes(b"live")
    write_file("http://h/next", tmp_path / "next", b"n")
    assert sorted(all_names(tmp_path)) == sorted([*live, "next"])


def test_a_killed_resumable_run_is_continued(tmp_path: Path) -> None:
    _killed_run(tmp_path / "big.bin", "resume")
    assert sorted(all_names(tmp_path)) == ["big.bin.part", "big.bin.part.json"]
    sink = FileSink("http://h/big.bin", tmp_path / "big.bin", resume=True)
    assert sink.resume_offset() == 10 and sink.resume_headers() == {"If-Range": '"k1"'}
    sink.start(10)
    sink.write_now(b"abc")
    assert sink.commit().read_bytes() == b"0123456789abc"
    assert all_names(tmp_path) == ["big.bin"]


def _range_server(body: bytes, drop_after: int, seen: list[str]):  # type: ignore[no-untyped-def]
    """A script: the first GET gets ``drop_after`` bytes of ``body`` then a hang-up; a
    GET with ``Range: bytes=N-`` gets a 206 of the rest."""

    def handle(conn: socket.socket) -> None:
        head = recv_until(conn, b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        ranges = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("range:")]
        if_range = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("if-range:")]
        seen.append((ranges[0] if ranges else "") + (f" if-range {if_range[0]}" if if_range else ""))
        if ranges:
            start = int(ranges[0].removeprefix("bytes=").rstrip("-"))
            send_lines(conn, ["HTTP/1.1 206 Partial Content", f"Content-Length: {len(body) - start}",
                              f"Content-Range: bytes {start}-{len(body) - 1}/{len(body)}",
                              'ETag: "r1"', "Connection: close", ""])
            conn.sendall(body[start:])
        else:
            send_lines(conn, ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", 'ETag: "r1"', "Connection: close", ""])
            conn.sendall(body[:drop_after])

    return handle


@pytest.mark.anyio
async def test_resume_over_http_continues_with_a_range(raw_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = bytes(range(256)) * 40
    seen: list[str] = []
    server = raw_server(_range_server(body, 4000, seen))
    target = tmp_path / "file.bin"
    async with Loader(retries=Retries(attempts=1)) as loader:
        first = await loader.fetch(server.url("http", "/file.bin"), to=target, resume=True)
        assert not first.ok
        # The partial, and beside it the validator that makes the next request conditional.
        assert all_names(tmp_path) == ["file.bin.part", "file.bin.part.json"]
        assert (tmp_path / "file.bin.part").read_bytes() == body[:4000]
        second = await loader.fetch(server.url("http", "/file.bin"), to=target, resume=True)
    assert second.ok and second.path == target and target.read_bytes() == body
    assert seen == ["", 'bytes=4000- if-range "r1"']
    assert all_names(tmp_path) == ["file.bin"]


@pytest.mark.anyio
async def test_without_resume_an_interrupted_http_transfer_leaves_nothing(raw_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    server = raw_server(_range_server(b"x" * 10000, 4000, seen))
    async with Loader(retries=Retries(attempts=1)) as loader:
        result = await loader.fetch(server.url("http", "/file.bin"), to=tmp_path / "file.bin")
    assert not result.ok and all_names(tmp_path) == []


@pytest.mark.anyio
async def test_resume_over_ftp_continues_with_rest(ftp_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The partial holds bytes the server's file does not: kept only if REST was used.
    whole = (Path(__file__).parents[1] / "fixtures/ftp/pub/binary.bin").read_bytes()
    target = tmp_path / "binary.bin"
    (tmp_path / "binary.bin.part").write_bytes(b"\xee" * 100)
    async with Loader() as loader:
        result = await loader.fetch(ftp_server.url("/pub/binary.bin"), to=target, resume=True)
    assert result.ok, result.error
    assert target.read_bytes() == b"\xee" * 100 + whole[100:]
    assert all_names(tmp_path) == ["binary.bin"]


@pytest.mark.anyio
@pytest.mark.parametrize("resume", [True, False])
async def test_a_cancelled_transfer_keeps_its_partial_only_when_resuming(
    http_server: HTTPTestServer, tmp_path: Path, resume: bool
) -> None:
    # Ctrl-C reaches a transfer as a cancellation: the core aborts the sink.
    def cancel_after_bytes(event: Event) -> None:
        if event.phase is Phase.PROGRESS and (event.bytes_done or 0) >= 3000:
            event.cancel()

    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/stall?after=3000"), to=tmp_path / "file.bin",
                                    resume=resume, callback=cancel_after_bytes)
    assert not result.ok
    if resume:
        assert all_names(tmp_path) == ["file.bin.part", "file.bin.part.json"]
        assert (tmp_path / "file.bin.part").read_bytes() == pattern_bytes(3000)
        url = http_server.url("/stall?after=3000")
        assert FileSink(url, tmp_path / "file.bin", resume=True).resume_offset() == 3000
        assert FileSink("http://other/", tmp_path / "file.bin", resume=True).resume_offset() == 0
    else:
        assert all_names(tmp_path) == []


# -- 6. the exists policy for whole bodies -------------------------------------------------


def test_write_file_follows_the_exists_policy(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("old")
    assert write_file("u", tmp_path / "index.html", b"new", exists="skip").read_text() == "old"
    unique = write_file("u", tmp_path / "index.html", b"new", exists="unique")
    assert unique.name == "index-1.html" and unique.read_text() == "new"
    assert (tmp_path / "index.html").read_text() == "old"
    assert write_file("u", tmp_path / "index.html", b"newer").read_text() == "newer"


def test_skip_never_takes_a_directory_for_the_file(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    assert not FileSink("u", tmp_path / "img", exists="skip").should_skip()


# -- 7. a hostile page, end to end ---------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def hostile_site(tmp_path: Path) -> Iterator[HTTPTestServer]:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / ".git").mkdir()
    (site / ".htaccess").write_bytes(b"deny from all\n")
    (site / "a\u202eb.png").write_bytes(PNG + b"rlo")
    (site / "z\u200bw.png").write_bytes(PNG + b"zw")
    (site / ".git" / "config").write_bytes(b"[core]\n")
    (site / "img" / "index.html").write_bytes(b"the file /img")
    (site / "img" / "a.png").write_bytes(PNG + b"img/a")
    images = {
        "file-first": ["/files/img", "/files/img/a.png"],
        "directory-first": ["/files/img/a.png", "/files/img"],
    }
    for name, order in images.items():
        srcs = ["/files/.htaccess", "/files/a%E2%80%AEb.png", "/files/z%E2%80%8Bw.png", "/files/.git/config", *order]
        tags = "".join(f'<img src="{src}">' for src in srcs)
        (site / f"{name}.html").write_text(f"<!doctype html><title>t</title>{tags}", encoding="utf-8")
    with HTTPTestServer(root=site) as server:
        yield server


@pytest.mark.anyio
@pytest.mark.parametrize(("page", "file_at", "image_at"), [
    ("file-first", "files/img", "files/img-1/a.png"),
    ("directory-first", "files/img-1", "files/img/a.png"),
])
async def test_a_hostile_page_is_saved_inside_with_no_hidden_or_invisible_names(
    hostile_site: HTTPTestServer, tmp_path: Path, page: str, file_at: str, image_at: str
) -> None:
    out = tmp_path / "out"
    async with Loader() as loader:
        result = await loader.fetch_page(hostile_site.url(f"/files/{page}.html"), output=out)
    assert result.ok, [str(r.error) for r in result.failed]
    assert len(result.resources) == 6
    real_out = os.path.realpath(out)
    for saved in out.rglob("*"):
        assert os.path.realpath(saved).startswith(real_out + os.sep)
        assert not saved.name.startswith("."), saved
        assert not any(c in INVISIBLE for c in saved.name), saved
    host = out / f"127.0.0.1_{hostile_site.port}"
    by_url = {r.url.rsplit("/files", 1)[1]: r.path for r in result.resources}
    assert by_url["/.htaccess"] == host / "files/_.htaccess"
    assert by_url["/a%E2%80%AEb.png"] == host / "files/a_b.png"
    assert by_url["/z%E2%80%8Bw.png"] == host / "files/z_w.png"
    assert by_url["/.git/config"] == host / "files/_.git/config"
    assert by_url["/img"] == host / file_at and (host / file_at).read_bytes() == b"the file /img"
    assert by_url["/img/a.png"] == host / image_at and (host / image_at).read_bytes() == PNG + b"img/a"
    manifest = json.loads(result.manifest.read_text())
    assert {r["path"] for r in manifest["resources"]} >= {f"127.0.0.1_{hostile_site.port}/{file_at}"}
