"""What a person sees: the command on a pseudo-terminal, its screen rebuilt from the bytes
rich wrote (cursor moves and line erasures applied), and the plain lines of a pipe.

The counts are defined once (``loader._progress.Count``): a *file* is each request of the
run, the page included; skipped files are not transferred bytes.  Every line that counts
(the live overall line, the plain ``[n/m]`` lines, the page line, ``done:``) must agree.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from typing import Any

import pytest
from support import plain_http_environ
from support.raw_server import hold, recv_until, send_lines

from loader.cli import EXIT_INTERRUPTED, EXIT_PARTIAL

COLUMNS = 150

#: A hang guard for reading the terminal, not a timing assertion.
_GUARD = 30.0


class Screen:
    """A small terminal: enough of VT100 for what rich's live display writes.

    Printable text, CR, LF, cursor up/down/column (``CSI n A/B/G``), erase in line and
    below (``CSI K``/``J``); colours, cursor visibility and OSC strings change nothing
    here.  Lines scrolled off are kept, so the whole session can be read.
    """

    _CSI = re.compile(rb"\x1b\[([0-9;?]*)([@-~])")
    _OSC = re.compile(rb"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")

    def __init__(self, width: int = COLUMNS) -> None:
        self.width = width
        self.lines: list[list[str]] = [[]]
        self.row = 0
        self.col = 0

    def feed(self, data: bytes) -> None:
        text = data
        i = 0
        while i < len(text):
            byte = text[i]
            if byte == 0x1B:
                match = self._CSI.match(text, i)
                if match is not None:
                    self._control(match[1].decode(), match[2].decode())
                    i = match.end()
                    continue
                osc = self._OSC.match(text, i)
                i = osc.end() if osc is not None else i + 2
                continue
            if byte == 0x0D:
                self.col = 0
            elif byte == 0x0A:
                self._down(1)
            elif byte >= 0x20:
                # A whole UTF-8 character: its lead byte says how long it is.
                length = 1 if byte < 0xC0 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
                self._put(text[i:i + length].decode("utf-8", "replace"))
                i += length
                continue
            i += 1

    def _down(self, n: int) -> None:
        self.row += n
        while len(self.lines) <= self.row:
            self.lines.append([])

    def _put(self, char: str) -> None:
        if self.col >= self.width:
            self.col = 0
            self._down(1)
        line = self.lines[self.row]
        line.extend(" " * (self.col + 1 - len(line)))
        line[self.col] = char
        self.col += 1

    def _control(self, params: str, final: str) -> None:
        n = int(params) if params.isdigit() else 1
        if final == "A":
            self.row = max(0, self.row - n)
        elif final == "B":
            self._down(n)
        elif final == "G":
            self.col = n - 1
        elif final == "K":
            line = self.lines[self.row]
            if params in ("", "0"):
                del line[self.col:]
            elif params == "2":
                line.clear()
        elif final == "J":
            del self.lines[self.row + 1:]
            del self.lines[self.row][self.col:]

    def text(self) -> list[str]:
        """The screen's lines, trailing spaces and empty last lines dropped."""
        shown = ["".join(line).rstrip() for line in self.lines]
        while shown and not shown[-1]:
            shown.pop()
        return shown


class Terminal:
    """The ``loader`` command with its stderr on a pseudo-terminal of :data:`COLUMNS` columns."""

    def __init__(self, *argv: str) -> None:
        main_fd, terminal = os.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, COLUMNS, 0, 0))
        env = {**plain_http_environ(), "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": "50"}
        for name in ("NO_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE"):  # rich reads these before the terminal
            env.pop(name, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loader", *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal, env=env, cwd=Path.home(),
        )
        os.close(terminal)
        self.fd = main_fd
        self.raw = bytearray()
        self.screen = Screen()

    def read_until(self, wanted: bytes | None) -> None:
        """Read what the command shows until ``wanted`` appears (``None``: until it ends)."""
        while wanted is None or wanted not in self.raw:
            if not select.select([self.fd], [], [], _GUARD)[0]:
                self.proc.kill()
                pytest.fail(f"the command hung: {self.raw.decode(errors='replace')}")
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the command ended and closed the terminal
                chunk = b""
            if not chunk:
                if wanted is not None:
                    pytest.fail(f"{wanted!r} never shown: {self.raw.decode(errors='replace')}")
                return
            self.raw += chunk
            self.screen.feed(chunk)

    def finish(self) -> tuple[int, list[str]]:
        self.read_until(None)
        os.close(self.fd)
        return self.proc.wait(timeout=_GUARD), self.screen.text()


def _site(raw_server: Any, *, hang: threading.Event | None = None) -> Any:
    """A page of five images, one missing, one a stylesheet's; with ``hang``, one image never ends."""
    page = (b'<html><link rel="stylesheet" href="/s.css">'
            + b"".join(b'<img src="/i%d.png">' % n for n in range(4)) + b'<img src="/missing.png"></html>')
    bodies = {b"/": (200, "text/html", page), b"/s.css": (200, "text/css", b"body{background:url(/bg.png)}")}
    for n in range(4):
        bodies[b"/i%d.png" % n] = (200, "image/png", bytes(range(256)) * (n + 1) * 40)
    bodies[b"/bg.png"] = (200, "image/png", b"x" * 3000)

    def handle(conn: Any) -> None:
        while head := recv_until(conn, b"\r\n\r\n"):
            target = head.split(b" ", 2)[1]
            if hang is not None and target == b"/i3.png":
                send_lines(conn, ["HTTP/1.1 200 OK", "Content-Type: image/png", "Content-Length: 100000", ""])
                conn.sendall(b"y" * 1000)
                hang.set()
                hold(conn)
                return
            status, ctype, body = bodies.get(target, (404, "text/plain", b"missing"))
            send_lines(conn, [f"HTTP/1.1 {status} X", f"Content-Type: {ctype}", f"Content-Length: {len(body)}", ""])
            conn.sendall(body)

    return raw_server(handle)


_OVERALL = re.compile(r"^(files \d+/\d+.*|interrupted: .*)$")


def _unwrapped(rows: list[str]) -> str:
    """Rows of the screen as one text: a full row was wrapped mid-word (how far depends on
    the temporary path's length), so it joins the next without a space."""
    return "".join(row if len(row) == COLUMNS else row + " " for row in rows)


def _overall_lines(screen: list[str]) -> list[str]:
    return [line for line in screen if _OVERALL.match(line)]


def test_the_live_display_ends_with_the_summary_and_counts_that_agree(raw_server: Any, tmp_path: Path) -> None:
    server = _site(raw_server)
    term = Terminal("fetch", server.url("http", "/"), "-o", str(tmp_path))
    code, screen = term.finish()
    shown = "\n".join(screen)
    assert code == EXIT_PARTIAL, shown
    assert "Traceback" not in shown
    # The page, the stylesheet, its image, four images and the missing one: 8 files.
    overall = _overall_lines(screen)
    assert len(overall) == 1, shown  # no stale "files 7/8" left above the final line
    assert overall[0].startswith("files 8/8 (1 failed)"), shown
    assert "/?" not in overall[0] and "?/" not in overall[0], shown  # the bar learned its total
    # The page line is wider than the terminal: read it with its wrapped rows joined.
    start = next(i for i, line in enumerate(screen) if ": saved to " in line)
    page_line = _unwrapped(screen[start:start + 3])
    assert "8 files: 7 ok, 1 failed;" in page_line, shown
    assert screen[-1].startswith("done: 8 files: 7 ok, 1 failed;"), shown  # not erased by the display
    transferred = re.search(r"; (\d+) bytes transferred", screen[-1])
    assert transferred and re.search(rf";\s+{transferred[1]} bytes transferred", page_line), shown


def test_after_ctrl_c_the_display_says_interrupted(raw_server: Any, tmp_path: Path) -> None:
    hang = threading.Event()
    server = _site(raw_server, hang=hang)
    term = Terminal("fetch", server.url("http", "/"), "-o", str(tmp_path))
    assert hang.wait(_GUARD), "the hanging image was never requested"
    term.read_until(b"i3.png")  # its bar is on the screen: the run is under way
    term.proc.send_signal(signal.SIGINT)
    code, screen = term.finish()
    shown = "\n".join(screen)
    assert code == EXIT_INTERRUPTED, shown
    overall = _overall_lines(screen)
    assert len(overall) == 1 and overall[0].startswith("interrupted: "), shown
    done = re.match(r"interrupted: (\d+) of (\d+) files done", overall[0])
    assert done and int(done[1]) < int(done[2]), shown  # never "8/8", which reads as success
    assert not any(line.startswith("done:") for line in screen), shown
    assert screen[-1] == "interrupted by SIGINT; partial files were removed", shown


def test_plain_lines_count_every_file_once(raw_server: Any, tmp_path: Path) -> None:
    """Not a terminal: one ``[n/m]`` line per file, failures included, n counting up by one."""
    server = _site(raw_server)
    proc = subprocess.run(
        [sys.executable, "-m", "loader", "fetch", server.url("http", "/"), "-o", str(tmp_path)],
        capture_output=True, text=True, env=plain_http_environ(), timeout=_GUARD, check=False, cwd=Path.home(),
    )
    assert proc.returncode == EXIT_PARTIAL, proc.stderr
    numbers = [int(m[1]) for m in re.finditer(r"^\[(\d+)/\d+\] ", proc.stderr, re.MULTILINE)]
    assert numbers == list(range(1, 9)), proc.stderr
    assert re.search(r"^\[\d+/\d+\] failed http://\S+/missing.png: HTTP 404", proc.stderr, re.MULTILINE), proc.stderr
    assert "8 files: 7 ok, 1 failed;" in proc.stderr and "done: 8 files: 7 ok, 1 failed;" in proc.stderr


def test_a_crawl_shows_pages_done_and_queued_on_the_live_line(tmp_path: Path) -> None:
    from support.site import serve_site

    with serve_site() as site:
        site.generate(7)
        term = Terminal("fetch", "-r", "-l", "inf", "-o", str(tmp_path), site.url("/p/0.html"))
        code, screen = term.finish()
    shown = "\n".join(screen)
    assert code == 0, shown
    assert "Traceback" not in shown
    # The final overall line leads with the crawl's own counts, then the files.
    overall = [line for line in screen if line.startswith("pages ")]
    assert len(overall) == 1, shown
    assert overall[0].startswith("pages 7 done, 0 queued; files 28/28 (4 reused) "), shown
    # Each page's line still prints above the display, numbered as it completes.
    assert sum("done, " in line and ": saved to " in line for line in screen) == 7, shown
    assert any(line.startswith("crawled 7 pages, 21 resources, ") for line in screen), shown
    assert screen[-1].startswith("done: 28 files: 24 ok, 4 reused;"), shown  # robots.txt is no file
