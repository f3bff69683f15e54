"""``loader get -c`` and ``loader fetch -c``: interrupted, the partial data stays; the next
``-c`` run continues it (HTTP ``Range``, FTP ``REST``) and the file ends byte-exact.

The HTTP server is a scripted raw socket that honours ``Range``: its first answer sends
part of the body and then waits for the client to hang up, so the test interrupts the
command at a known byte count without any timing.
"""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import plain_http_environ
from support.http_server import pattern_bytes
from support.raw_server import hold, recv_until, send_lines

from loader.cli import EXIT_OK, main

_PATIENCE = 30.0  # a hang guard for polling, not a timing assertion
BODY = pattern_bytes(300_000)
FIRST = 100_000  # bytes the first answer sends before it stalls
ETAG = '"v1"'


class RangeServer:
    """``/`` is a page naming ``/big.bin``; ``/big.bin`` is :data:`BODY`, with ``Range`` support."""

    def __init__(self, raw_server: Any) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.server = raw_server(self.handle)

    def url(self, path: str) -> str:
        return self.server.url("http", path)

    def ranges(self) -> list[str | None]:
        with self.lock:
            return [headers.get("range") for target, headers in self.requests if target == "/big.bin"]

    def handle(self, conn: Any) -> None:
        while head := recv_until(conn, b"\r\n\r\n"):
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {name.strip().lower(): value.strip()
                       for name, _, value in (line.partition(":") for line in lines[1:] if line)}
            with self.lock:
                self.requests.append((target, headers))
            if target == "/":
                page = b'<html><img src="/big.bin"></html>'
                send_lines(conn, ["HTTP/1.1 200 OK", "Content-Type: text/html", f"Content-Length: {len(page)}", ""])
                conn.sendall(page)
                continue
            wanted = headers.get("range", "")
            if wanted.startswith("bytes=") and headers.get("if-range", ETAG) == ETAG:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                send_lines(conn, ["HTTP/1.1 206 Partial Content", "Content-Type: application/octet-stream",
                                  f"ETag: {ETAG}", f"Content-Range: bytes {start}-{len(BODY) - 1}/{len(BODY)}",
                                  f"Content-Length: {len(BODY) - start}", ""])
                conn.sendall(BODY[start:])
                continue
            send_lines(conn, ["HTTP/1.1 200 OK", "Content-Type: application/octet-stream", f"ETag: {ETAG}",
                              f"Content-Length: {len(BODY)}", ""])
            conn.sendall(BODY[:FIRST])
            hold(conn)  # until the interrupted client hangs up
            return


@pytest.fixture
def range_server(raw_server: Any) -> RangeServer:
    return RangeServer(raw_server)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _interrupt_when(proc: subprocess.Popen[str], reached: Any, stop: signal.Signals) -> str:
    deadline = time.monotonic() + _PATIENCE
    while not reached():
        if proc.poll() is not None:
            pytest.fail(f"the command ended (code {proc.returncode}) too soon:\n{proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the first part never arrived")
        time.sleep(0.02)
    proc.send_signal(stop)
    try:
        _, err = proc.communicate(timeout=_PATIENCE)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the command did not stop")
    assert proc.returncode == 128 + stop, err
    assert "Traceback" not in err
    return err


def _spawn(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "loader", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=plain_http_environ())


def run(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    code = main(list(argv), stdout=io.StringIO(), stderr=err)
    return code, err.getvalue()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_get_continue_keeps_the_partial_and_the_next_run_completes_it(
    stop: signal.Signals, range_server: RangeServer, tmp_path: Path
) -> None:
    target = tmp_path / "big.bin"
    partial = tmp_path / "big.bin.part"
    proc = _spawn("get", range_server.url("/big.bin"), "-o", str(target), "-c", "-q")
    err = _interrupt_when(proc, lambda: _size(partial) == FIRST, stop)
    assert "kept for -c" in err
    assert _size(partial) == FIRST and not target.exists()

    code, err = run("get", range_server.url("/big.bin"), "-o", str(target), "-c", "-q")
    assert code == EXIT_OK, err
    assert target.read_bytes() == BODY
    assert not partial.exists()
    assert range_server.ranges() == [None, f"bytes={FIRST}-"]


def test_get_without_continue_leaves_nothing(range_server: RangeServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = _spawn("get", range_server.url("/big.bin"), "-o", str(out / "big.bin"), "-q")
    _interrupt_when(proc, lambda: any(_size(p) == FIRST for p in out.iterdir()), signal.SIGINT)
    assert list(out.iterdir()) == []


def test_fetch_continue_resumes_requisites_and_skips_complete_ones(range_server: RangeServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    site = out / f"127.0.0.1_{range_server.server.port}"
    partial = site / "big.bin.part"
    proc = _spawn("fetch", range_server.url("/"), "-o", str(out), "-c", "--no-progress")
    _interrupt_when(proc, lambda: _size(partial) == FIRST, signal.SIGINT)
    assert _size(partial) == FIRST and not (site / "big.bin").exists()
    assert (site / "index.html").is_file()

    code, err = run("fetch", range_server.url("/"), "-o", str(out), "-c", "-q")
    assert code == EXIT_OK, err
    assert (site / "big.bin").read_bytes() == BODY and not partial.exists()
    assert range_server.ranges() == [None, f"bytes={FIRST}-"]

    code, err = run("fetch", range_server.url("/"), "-o", str(out), "-c", "-q")  # all complete now
    assert code == EXIT_OK, err
    assert range_server.ranges() == [None, f"bytes={FIRST}-"]  # big.bin was not asked for again


def test_get_continue_over_ftp_restarts_where_the_partial_ends(ftp_server: Any, ftp_scratch: str, tmp_path: Path) -> None:
    body = pattern_bytes(200_000, 7)
    (ftp_server.root / ftp_scratch.lstrip("/") / "f.bin").write_bytes(body)
    target = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(body[:50_000])
    events = tmp_path / "events.jsonl"
    code, err = run("get", ftp_server.url(f"{ftp_scratch}/f.bin"), "-o", str(target), "-c", "-q",
                    "--events", str(events))
    assert code == EXIT_OK, err
    assert target.read_bytes() == body
    assert not (tmp_path / "f.bin.part").exists()
    assert '"message": "REST 50000"' in events.read_text()
