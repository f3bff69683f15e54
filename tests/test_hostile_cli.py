"""The command line against hostile input: text that would drive a terminal, passwords,
unusable output locations, and the limit and policy options.

Everything runs against real servers on 127.0.0.1 (the test HTTP server, scripted raw
sockets); ``main([...])`` with string streams, as a person's terminal would get the text.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.raw_server import recv_until, send_lines

from loader.cli import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main

#: What a terminal would act on or what would reorder the text: none may reach the screen raw.
_HOSTILE = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\u200b")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def assert_safe(text: str) -> None:
    for char in _HOSTILE:
        assert char not in text, f"{char!r} reached the terminal: {text!r}"


def _page_server(raw_server: Any, pages: dict[bytes, tuple[int, bytes]],
                 default: tuple[int, bytes] = (404, b"missing")) -> Any:
    """Answers each request target from ``pages`` (status, HTML body), else ``default``; keep-alive."""

    def handle(conn: Any) -> None:
        while head := recv_until(conn, b"\r\n\r\n"):
            status, body = pages.get(head.split(b" ", 2)[1], default)
            send_lines(conn, [f"HTTP/1.1 {status} X", "Content-Type: text/html",
                              f"Content-Length: {len(body)}", ""])
            conn.sendall(body)

    return raw_server(handle)


# -- what a person reads -----------------------------------------------------------------------


def test_a_url_with_terminal_controls_is_escaped_in_the_error_line(refused_port: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{refused_port}/a\x1b]0;pwned\x07b\u202egnp.exe"
    code, _, err = run("get", url, "-o", str(tmp_path / "x"), "--retries", "0", "-q")
    assert code == EXIT_FAILED
    assert_safe(err)
    assert err.startswith(f"error: http://127.0.0.1:{refused_port}/a\\x1b]0;pwned\\x07b\\u202egnp.exe: ")


def test_a_failure_says_the_url_once_and_the_cause_once(refused_port: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{refused_port}/x"
    code, _, err = run("get", url, "-o", str(tmp_path / "x"), "--retries", "0", "-q")
    assert code == EXIT_FAILED
    line = err.strip()
    assert line.startswith(f"error: {url}: ") and line.count(url) == 1
    cause = line.removeprefix(f"error: {url}: ")
    assert "cannot connect" in cause and cause.count("cannot connect") == 1, line


def test_passwords_are_redacted_in_every_line(http_server: Any, tmp_path: Path) -> None:
    secret = "hunter2-secret"
    ok = http_server.url("/bytes/10").replace("http://", f"http://alice:{secret}@")
    code, _, err = run("get", ok, "-o", str(tmp_path / "b"))  # the ok line and the saved line
    assert code == EXIT_OK and secret not in err and "alice:***@" in err
    missing = http_server.url("/status/404").replace("http://", f"http://alice:{secret}@")
    code, _, err = run("get", missing, "-o", str(tmp_path / "c"), "-q")
    assert code == EXIT_FAILED and secret not in err and "alice:***@" in err
    page = http_server.url("/files/http/index.html").replace("http://", f"http://alice:{secret}@")
    code, _, err = run("fetch", page, "-o", str(tmp_path / "site"))  # progress lines and the summary
    assert code == EXIT_OK, err
    assert secret not in err and f"alice:***@127.0.0.1:{http_server.port}/files/http/index.html: saved to" in err


def test_list_output_escapes_urls_and_redacts_passwords(raw_server: Any) -> None:
    page = (b'<img src="/a\xe2\x80\xaegnp.png"><img src="http://bob:pw-secret@127.0.0.1:1/b.png">'
            b'<img src="/[bold]c[/bold].png">')
    server = _page_server(raw_server, {b"/": (200, page)})
    code, out, err = run("fetch", "--list", server.url("http", "/"))
    assert code == EXIT_OK, err
    assert_safe(out)
    assert "\\u202e" in out and "pw-secret" not in out and "bob:***@" in out
    assert "[bold]c[/bold].png" in out


def test_a_page_failure_line_in_list_mode_is_escaped(raw_server: Any) -> None:
    server = _page_server(raw_server, {})
    code, _, err = run("fetch", "--list", server.url("http", "/x\u202e\x1b[2J"), "--retries", "0")
    assert code == EXIT_FAILED
    assert_safe(err)
    assert "error: " in err and "\\u202e" in err


def test_an_ftp_reply_and_a_gopher_error_item_are_escaped(raw_server: Any, tmp_path: Path) -> None:
    def ftp(conn: Any) -> None:
        conn.sendall(b"220 ready\r\n")
        recv_until(conn)
        conn.sendall("530 \x1b]0;pwned\x07no \u202eentry\r\n".encode())

    def gopher(conn: Any) -> None:
        recv_until(conn)
        conn.sendall("3\x1b[2Jgone\u202e\tfake\t(NULL)\t0\r\n.\r\n".encode())

    for url in (raw_server(ftp).url("ftp", "/f.bin"), raw_server(gopher).url("gopher", "/9/f.bin")):
        code, _, err = run("get", url, "-o", str(tmp_path / "f.bin"), "-q", "--retries", "0")
        assert code == EXIT_FAILED, err
        assert_safe(err)
        assert err.startswith(f"error: {url}: ") and "\\u202e" in err, err


def test_plain_progress_escapes_urls(raw_server: Any, tmp_path: Path) -> None:
    server = _page_server(raw_server, {}, default=(200, b"x"))
    code, _, err = run("get", server.url("http", "/\u202e"), "-o", str(tmp_path / "x"))
    assert code == EXIT_OK, err
    assert_safe(err)
    assert "ok " in err and "\\u202e" in err


def _live_console() -> tuple[Any, io.StringIO]:
    from rich.console import Console

    sink = io.StringIO()
    return Console(file=sink, force_terminal=True, width=200, color_system=None), sink


def _event(phase: Any, url: str, **fields: Any) -> Any:
    from loader import Event

    return Event(phase=phase, request_id=7, parent_id=None, url=url, time=1.0, **fields)


def test_live_display_shows_markup_and_controls_literally() -> None:
    """Server-chosen names are never rich markup: ``[bold]`` shows as typed, ``[/x]`` does not raise."""
    from loader import Phase
    from loader._progress import LiveProgress, Tally

    console, sink = _live_console()
    live = LiveProgress(Tally(), console=console)
    with live:
        base = "http://127.0.0.1:1/img/"
        live.loader_event(_event(Phase.HANDLE_CREATED, base + "[bold]x[red].png"))
        live.loader_event(_event(Phase.PROGRESS, base + "[bold]x[red]\u202e.png", bytes_done=10, bytes_total=100))
        live.loader_event(_event(Phase.RETRY, base + "[/x]\x1b]0;t\x07\u202e.png", attempt=1,
                                 error=RuntimeError("[/y] \x1b[2J reset"), message="[red]again"))
        live.progress.refresh()
    shown = sink.getvalue()
    assert "[bold]x[red]\\u202e.png" in shown  # the bar's label
    assert "[/x]" in shown and "[/y]" in shown and "[red]again" in shown
    for char in ("\x07", "\u202e", "\x1b]0;t", "\x1b[2J"):
        assert char not in shown


def test_messages_above_the_live_display_are_not_markup_or_emoji() -> None:
    from loader.cli import _ConsoleWriter

    console, sink = _live_console()
    _ConsoleWriter(console).write("error: http://h/[/x]:thumbs_up:.png: HTTP 404\n")
    assert "http://h/[/x]:thumbs_up:.png" in sink.getvalue()


def test_the_live_display_on_a_terminal_shows_hostile_names_as_typed(raw_server: Any, tmp_path: Path) -> None:
    """End to end on a pseudo-terminal: rich draws the bars, and neither markup in a URL nor
    a control sequence from one reaches the screen as anything but text."""
    import pty
    import select
    import sys

    from support import plain_http_environ

    server = _page_server(raw_server, {}, default=(200, b"x" * 1000))
    ok = server.url("http", "/img/[bold]x[/x]%1B]0;pwned%07.png")
    main_fd, terminal = pty.openpty()
    env = {**plain_http_environ(), "TERM": "xterm", "COLUMNS": "160"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "loader", "get", ok + "\u202e",
         "-o", str(tmp_path / "a.png")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal, env=env,
    )
    os.close(terminal)
    shown = bytearray()
    while True:
        if not select.select([main_fd], [], [], 30)[0]:  # a hang guard, not a timing assertion
            proc.kill()
            pytest.fail(f"the command hung: {shown.decode(errors='replace')}")
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the command ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_fd)
    assert proc.wait(timeout=30) == EXIT_OK, shown.decode(errors="replace")
    text = shown.decode("utf-8", "replace")
    assert "Traceback" not in text and "MarkupError" not in text
    assert "[bold]x[/x]" in text
    assert "\u202e" not in text and "\\u202e" in text, text


# -- output locations, checked before any request ------------------------------------------------


def _one_error_line(code: int, err: str, *parts: str) -> None:
    assert code == EXIT_USAGE, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for part in parts:
        assert part in lines[0], err
    assert "Traceback" not in err


def _requested(http_server: Any, tag: str) -> bool:
    return any(tag in r.path for r in http_server.requests)


def test_fetch_into_a_file_is_a_usage_error_before_any_request(http_server: Any, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    url = http_server.url("/files/http/index.html?into-a-file")
    code, _, err = run("fetch", url, "-o", str(afile), "-q")
    _one_error_line(code, err, str(afile), "not a directory")
    code, _, err = run("fetch", url, "-o", str(afile / "below"), "-q")
    _one_error_line(code, err, str(afile / "below"), f"{afile} is not a directory")
    assert not _requested(http_server, "into-a-file")
    assert afile.read_text() == "mine"


@contextlib.contextmanager
def _read_only_directory(path: Path) -> Iterator[Path]:
    """A directory nobody may write to, root included (root ignores mode bits: the immutable flag)."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is not available here")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_read_only_output_locations_are_usage_errors(http_server: Any, tmp_path: Path) -> None:
    url = http_server.url("/files/http/index.html?read-only")
    with _read_only_directory(tmp_path / "ro") as ro:
        code, _, err = run("fetch", url, "-o", str(ro), "-q")
        _one_error_line(code, err, str(ro), "not writable")
        code, _, err = run("fetch", url, "-o", str(ro / "new" / "deeper"), "-q")
        _one_error_line(code, err, "not writable")
        code, _, err = run("get", url, "-o", str(ro / "page.html"), "-q")
        _one_error_line(code, err, str(ro / "page.html"), "not writable")
        code, _, err = run("get", url, "-o", str(tmp_path / "p.html"), "--events", str(ro / "e.jsonl"), "-q")
        _one_error_line(code, err, "event log", str(ro / "e.jsonl"), "not writable")
        with contextlib.chdir(ro):  # no -o: the name comes from the URL, in the working directory
            code, _, err = run("get", url, "-q")
        _one_error_line(code, err, str(ro), "index.html", "not writable")
    assert not _requested(http_server, "read-only")
    assert not (tmp_path / "p.html").exists()


def test_get_output_problems_are_usage_errors(http_server: Any, tmp_path: Path) -> None:
    url = http_server.url("/bytes/10?get-output")
    code, _, err = run("get", url, "-o", str(tmp_path / "missing" / "b.bin"), "-q")
    _one_error_line(code, err, str(tmp_path / "missing"), "does not exist")
    assert not _requested(http_server, "get-output")  # checked before the first request
    code, _, err = run("get", url, "-o", str(tmp_path), "-q")  # a directory: saved inside it
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["10"]


def test_events_file_problems_are_usage_errors(http_server: Any, tmp_path: Path) -> None:
    url = http_server.url("/bytes/10?events-file")
    code, _, err = run("get", url, "-o", str(tmp_path / "b"), "--events", str(tmp_path), "-q")
    _one_error_line(code, err, "event log", str(tmp_path), "is a directory")
    code, _, err = run("get", url, "-o", str(tmp_path / "b"), "--events", str(tmp_path / "no" / "e.jsonl"), "-q")
    _one_error_line(code, err, "event log", "does not exist")
    assert not _requested(http_server, "events-file")
    assert list(tmp_path.iterdir()) == []


def test_a_new_output_directory_is_still_made(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("fetch", http_server.url("/files/http/index.html"), "-o", str(tmp_path / "a" / "b"), "-q")
    assert code == EXIT_OK, err
    assert (tmp_path / "a" / "b" / f"127.0.0.1_{http_server.port}").is_dir()


# -- limits and policy options --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "size"), [("123", 123), ("10K", 10 << 10), ("64M", 64 << 20), ("1G", 1 << 30),
                                            ("2k", 2048), ("3MiB", 3 << 20), ("0", None), ("none", None)])
def test_sizes_take_binary_units(text: str, size: int | None) -> None:
    from loader.cli import build_parser, make_loader

    args = build_parser().parse_args(["get", "http://x/", "--max-filesize", text, "--max-page-size", text])
    loader = make_loader(args)
    assert loader.limits.max_body == size and loader.limits.max_page == size


def test_size_and_port_errors_name_the_value_not_a_function() -> None:
    for argv, says in [
        (["get", "http://x/", "--max-filesize", "abc"], "invalid size: 'abc'"),
        (["get", "http://x/", "--max-page-size", "-5"], "invalid size: '-5'"),
        (["get", "http://x/", "--allow-port", "http"], "invalid port: 'http'"),
        (["get", "http://x/", "--allow-port", "70000"], "invalid port: '70000'"),
        (["get", "http://x/", "--jobs", "many"], "invalid number: 'many'"),
        (["get", "http://x/", "--timeout", "soon"], "invalid number of seconds: 'soon'"),
    ]:
        code, _, err = run(*argv)
        assert code == EXIT_USAGE and says in err, err
        assert "_size" not in err and "_port" not in err and "_seconds" not in err and "_positive_int" not in err


def test_max_filesize_defaults_to_1g_for_fetch_and_none_for_get() -> None:
    from loader.cli import build_parser, make_loader

    parser = build_parser()
    assert make_loader(parser.parse_args(["fetch", "http://x/"])).limits.max_body == 1 << 30
    assert make_loader(parser.parse_args(["get", "http://x/"])).limits.max_body is None
    assert make_loader(parser.parse_args(["get", "http://x/"])).limits.max_page == 64 << 20
    policy = make_loader(parser.parse_args(["get", "http://x/", "--deny-private", "--allow-port", "25",
                                            "--allow-port", "6000"]))
    assert policy.deny_private is True and policy.allow_ports == {25, 6000}


def test_max_filesize_stops_a_large_get(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("get", http_server.url("/bytes/300000"), "-o", str(tmp_path / "b"), "--max-filesize", "100K", "-q")
    assert code == EXIT_FAILED and "error: " in err
    assert list(tmp_path.iterdir()) == []
    code, _, err = run("get", http_server.url("/bytes/300000"), "-o", str(tmp_path / "b"), "--max-filesize", "1M", "-q")
    assert code == EXIT_OK and (tmp_path / "b").stat().st_size == 300000


def test_max_filesize_caps_a_page_requisite(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("fetch", http_server.url("/files/http/index.html"), "-o", str(tmp_path), "-q",
                       "--max-filesize", "100")
    assert code in (EXIT_PARTIAL, EXIT_FAILED), err
    assert "error: " in err


def test_max_page_size_caps_the_document(http_server: Any, tmp_path: Path) -> None:
    code, _, err = run("fetch", http_server.url("/files/http/index.html"), "-o", str(tmp_path), "-q",
                       "--max-page-size", "10", "--retries", "0")
    assert code == EXIT_FAILED, err
    assert f"error: {http_server.url('/files/http/index.html')}: " in err


def test_deny_private_refuses_loopback_with_a_clear_line(http_server: Any, tmp_path: Path) -> None:
    url = http_server.url("/bytes/10?deny-private")
    code, _, err = run("get", url, "-o", str(tmp_path / "b"), "--deny-private", "-q", "--retries", "0")
    assert code == EXIT_FAILED
    assert err.startswith(f"error: {url}: ") and err.count("\n") == 1, err
    assert not _requested(http_server, "deny-private")


def test_allow_port_lets_a_page_reach_a_blocked_port(raw_server: Any, tmp_path: Path) -> None:
    """A page may not send a request line to another protocol's port (25: SMTP) unless allowed."""
    page = b'<img src="http://127.0.0.1:25/x.png">'
    server = _page_server(raw_server, {b"/": (200, page)})
    code, _, err = run("fetch", server.url("http", "/"), "-o", str(tmp_path / "a"), "-q", "--retries", "0")
    assert code == EXIT_PARTIAL and "error: http://127.0.0.1:25/x.png: " in err and "port 25" in err, err
    code, _, err = run("fetch", server.url("http", "/"), "-o", str(tmp_path / "b"), "-q", "--retries", "0",
                       "--allow-port", "25")
    assert "error: http://127.0.0.1:25/x.png: " in err and "port 25 belongs" not in err, err


def test_get_into_a_fifo_writes_through_it_and_keeps_it(http_server: Any, tmp_path: Path) -> None:
    """``-o /dev/null`` or ``-o FIFO``: the atomic rename of a download replaced the special file
    with a plain one (as root, /dev/null itself); it is written into as a stream instead."""
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = bytearray()

    def read() -> None:
        with open(fifo, "rb") as reader:
            received.extend(reader.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    code, _, err = run("get", http_server.url("/bytes/70000"), "-o", str(fifo))
    reader.join(30)
    assert code == EXIT_OK, err
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert len(received) == 70000 and f"70000 bytes saved to {fifo}" in err
