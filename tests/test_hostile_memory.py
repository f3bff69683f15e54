"""Memory stays bounded while hostile bodies stream: measured on a real ``loader fetch``.

Each test runs the command in a subprocess against the scripted raw-socket server
and reads the child's own peak RSS from ``os.wait4`` (``ru_maxrss``), compared with
the same command on an empty page.  These are memory budgets, not timings.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from support.raw_server import recv_until

MIB = 1 << 20


def peak_rss(args: list[str], cwd: Path) -> tuple[int, int, str]:
    """``(exit code, peak RSS in MiB, stderr)`` of ``python -m loader ARGS``."""
    child = subprocess.Popen([sys.executable, "-m", "loader", *args], cwd=cwd,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    err = child.stderr.read().decode(errors="replace")  # EOF when the child ends
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, usage.ru_maxrss // 1024, err


def _page(conn: socket.socket, body: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (len(body), body))


def _endless(conn: socket.socket, content_type: bytes, piece: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nConnection: close\r\n\r\n")
    while True:  # until the client hangs up
        conn.sendall(piece)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> int:
    from support.raw_server import RawServer

    server = RawServer(lambda conn: (recv_until(conn, b"\r\n\r\n"), _page(conn, b"<p>empty</p>")))
    try:
        out = tmp_path_factory.mktemp("baseline")
        code, rss, err = peak_rss(["fetch", server.url("http", "/"), "-o", str(out), "-q"], out)
    finally:
        server.close()
    assert code == 0, err
    return rss


def test_an_endless_page_stops_at_the_page_cap_within_budget(raw_server: Any, tmp_path: Path, baseline: int) -> None:
    server = raw_server(lambda conn: (recv_until(conn, b"\r\n\r\n"),
                                      _endless(conn, b"text/html", b"<p>" + b"x" * (MIB - 3))))
    code, rss, err = peak_rss(["fetch", server.url("http", "/p.html"), "-o", str(tmp_path), "-q"], tmp_path)
    assert code == 3 and "Traceback" not in err
    assert "page cap of 64 MiB" in err and server.url("http", "/p.html") in err
    assert rss - baseline < 128, (rss, baseline)  # the 64 MiB cap, held once, plus slack
    assert list(tmp_path.iterdir()) == []


def test_an_endless_requisite_stops_at_max_filesize_within_budget(raw_server: Any, tmp_path: Path,
                                                                   baseline: int) -> None:
    def handler(conn: socket.socket) -> None:
        request = recv_until(conn, b"\r\n\r\n")
        if request.startswith(b"GET /p.html"):
            _page(conn, b'<img src="/big.png">')
        else:
            _endless(conn, b"image/png", bytes(MIB))

    server = raw_server(handler)
    code, rss, err = peak_rss(["fetch", server.url("http", "/p.html"), "-o", str(tmp_path),
                               "--max-filesize", "200M", "-q"], tmp_path)
    assert code == 1 and "Traceback" not in err  # the page arrived, its one image failed
    assert "200 MiB" in err and "--max-filesize" in err and server.url("http", "/big.png") in err
    assert rss - baseline < 64, (rss, baseline)  # streamed to disk: nothing like 200 MiB held
    saved = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert "big.png" not in saved and not [n for n in saved if ".part" in n]


def test_a_gzip_bomb_requisite_is_decoded_within_budget(raw_server: Any, tmp_path: Path, baseline: int) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(compressor.compress(bytes(MIB)) for _ in range(512)) + compressor.flush()  # 512 MiB

    def handler(conn: socket.socket) -> None:
        request = recv_until(conn, b"\r\n\r\n")
        if request.startswith(b"GET /p.html"):
            _page(conn, b'<img src="/bomb.png">')
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Encoding: gzip\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(bomb), bomb))

    server = raw_server(handler)
    code, rss, err = peak_rss(["fetch", server.url("http", "/p.html"), "-o", str(tmp_path),
                               "--max-filesize", "100M", "-q"], tmp_path)
    assert code == 1 and "Traceback" not in err
    assert "100 MiB" in err and server.url("http", "/bomb.png") in err
    assert rss - baseline < 64, (rss, baseline)
