"""Peak memory of the ``loader`` command on huge and hostile answers (run by hand).

Starts a raw HTTP/1.1 server on 127.0.0.1 in a thread of this process, then runs
``python -m loader fetch URL -o TMPDIR`` (or ``loader get URL -o -``, its output
thrown away) in a subprocess per scenario, and reports each one's exit code, peak
RSS (``ru_maxrss`` of that child alone, from ``os.wait4`` in a small launcher process), its growth over an
empty page's run, and the wall time:

=================  ===============================================================
scenario           what the server answers
=================  ===============================================================
baseline           an empty page
endless-requisite  a page whose one image is an endless chunked body (the default
                   ``--max-filesize`` of ``fetch`` stops it)
get-big            ``loader get`` of a 10 GiB body with a Content-Length, to stdout
gzip-page          a page that is a gzip bomb: a few MiB expanding to 10 GiB of zeros
                   (the page cap stops it)
gzip-requisite     a page whose image is that bomb
endless-page       a page that never ends (the page cap stops it)
million-elements   a page of 1,000,000 distinct ``<img>`` (~24 MiB); its images
                   are tiny, and 1000 of them (the per-page cap) are fetched
=================  ===============================================================

    python benchmarks/memory.py              # 10 GiB bodies: several minutes
    python benchmarks/memory.py --quick      # 1 GiB bodies, 256 MiB --max-filesize
    python benchmarks/memory.py --only gzip-page,endless-page --timeout 120

The bomb is compressed once and kept in the system's temporary directory.  Other
people's fixes (the HTTP decoder, the core's caps) change these figures: the script
only runs and reports; a scenario that runs past ``--timeout`` is killed and shown
as such.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ZEROS = bytes(1 << 20)
GIB = 1 << 30


# --------------------------------------------------------------------------- server


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed; cached in the temporary directory."""
    path = Path(tempfile.gettempdir()) / f"loader-memory-bomb-{size}.gz"
    if path.exists():
        return path.read_bytes()
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(ZEROS) for _ in range(size // len(ZEROS))]
    parts.append(compressor.compress(bytes(size % len(ZEROS))))
    parts.append(compressor.flush())
    data = b"".join(parts)
    path.write_bytes(data)
    return data


def million_page(count: int = 1_000_000) -> bytes:
    buf = bytearray(b"<!doctype html><html><head><title>a million</title></head><body>\n")
    for i in range(count):
        buf += b'<img src="/i/%d.png">\n' % i
    return bytes(buf)


def head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


class Server:
    """HTTP/1.1 on 127.0.0.1, a thread per connection, keep-alive; routes below."""

    def __init__(self, *, big: int, bomb: bytes, million: bytes) -> None:
        self.big = big
        self.bomb = bomb
        self.million = million
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            with conn:
                while True:
                    while b"\r\n\r\n" not in buffer:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                    request, _, buffer = buffer.partition(b"\r\n\r\n")
                    path = request.split(b" ", 2)[1].decode("latin-1")
                    self._answer(conn, path)
        except OSError:
            return  # the client hung up: the cap did its work

    def _answer(self, conn: socket.socket, path: str) -> None:
        html = {"Content-Type": "text/html"}
        png = {"Content-Type": "image/png"}
        if path == "/empty":
            body = b"<!doctype html><html><body></body></html>"
            conn.sendall(head("200 OK", {**html, "Content-Length": str(len(body))}) + body)
        elif path.startswith("/with/"):
            body = b'<!doctype html><html><body><img src="/%s"></body></html>' % path[6:].encode()
            conn.sendall(head("200 OK", {**html, "Content-Length": str(len(body))}) + body)
        elif path == "/endless.png":
            conn.sendall(head("200 OK", {**png, "Transfer-Encoding": "chunked"}))
            self._endless(conn, b"%x\r\n" % len(ZEROS) + ZEROS + b"\r\n")
        elif path == "/endless.html":
            conn.sendall(head("200 OK", {**html, "Transfer-Encoding": "chunked"}))
            text = b"<p>more text, and no end</p>\n" * 2000
            self._endless(conn, b"%x\r\n" % len(text) + text + b"\r\n")
        elif path == "/big.bin":
            conn.sendall(head("200 OK", {"Content-Type": "application/octet-stream",
                                         "Content-Length": str(self.big)}))
            left = self.big
            while left:
                n = min(left, len(ZEROS))
                conn.sendall(ZEROS[:n] if n < len(ZEROS) else ZEROS)
                left -= n
        elif path in ("/bomb.html", "/bomb.png"):
            ctype = html if path.endswith(".html") else png
            conn.sendall(head("200 OK", {**ctype, "Content-Encoding": "gzip",
                                         "Content-Length": str(len(self.bomb))}) + self.bomb)
        elif path == "/million.html":
            conn.sendall(head("200 OK", {**html, "Content-Length": str(len(self.million))}) + self.million)
        elif path.startswith("/i/"):
            body = b"\x89PNG\r\n\x1a\n"
            conn.sendall(head("200 OK", {**png, "Content-Length": str(len(body))}) + body)
        else:
            conn.sendall(head("404 Not Found", {"Content-Length": "0"}))

    @staticmethod
    def _endless(conn: socket.socket, chunk: bytes) -> None:
        while True:
            conn.sendall(chunk)


# --------------------------------------------------------------------------- runs


@dataclass
class Row:
    scenario: str
    code: int | str
    peak_mib: float
    wall: float


# Runs each command and reports its rusage.  A process of its own, small: Linux
# counts the memory of the process a child was forked from (and, through vfork,
# spawned from) into the child's ru_maxrss, so children of this process, which
# holds the bomb and the big page, would all report at least its size.
LAUNCHER = """
import json, os, signal, subprocess, sys, threading, time
for line in sys.stdin:
    args, timeout = json.loads(line)
    start = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code == -signal.SIGKILL and wall >= timeout:
        code = "timeout"
    print(json.dumps([code, usage.ru_maxrss / 1024, wall]), flush=True)
"""


class Launcher:
    """Runs ``python -m loader ARGS`` from the small launcher process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, args: list[str], timeout: float) -> tuple[int | str, float, float]:
        """(exit code or "timeout", peak RSS MiB, wall seconds); ru_maxrss is KiB on Linux."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([[sys.executable, "-m", "loader", *args], timeout]) + "\n")
        self.proc.stdin.flush()
        code, peak, wall = json.loads(self.proc.stdout.readline())
        return code, peak, wall

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def scenarios(server: Server, quick: bool) -> Iterator[tuple[str, Callable[[Path], list[str]]]]:
    cap = ["--max-filesize", "256M"] if quick else []
    common = ["-q", "--retries", "0"]

    def fetch(path: str, *extra: str) -> Callable[[Path], list[str]]:
        return lambda out: ["fetch", server.url(path), "-o", str(out), *common, *extra]

    yield "baseline", fetch("/empty")
    yield "endless-requisite", fetch("/with/endless.png", *cap)
    yield "get-big", lambda out: ["get", server.url("/big.bin"), "-o", "-", *common]
    yield "gzip-page", fetch("/bomb.html", *cap)
    yield "gzip-requisite", fetch("/with/bomb.png", *cap)
    yield "endless-page", fetch("/endless.html")
    yield "million-elements", fetch("/million.html")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 GiB bodies and bomb, --max-filesize 256M on fetch")
    parser.add_argument("--only", help="comma-separated scenarios (baseline always runs)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds before a scenario is killed (default 600)")
    options = parser.parse_args(argv)
    size = GIB if options.quick else 10 * GIB
    print(f"preparing: a {size / GIB:.0f} GiB gzip bomb (cached), a 1M-element page", flush=True)
    launcher = Launcher()
    server = Server(big=size, bomb=gzip_bomb(size), million=million_page())
    wanted = None if not options.only else {"baseline", *options.only.split(",")}
    rows: list[Row] = []
    print(f"{'scenario':<20} {'exit':>7} {'peak MiB':>9} {'growth':>8} {'wall s':>8}", flush=True)
    for name, make_args in scenarios(server, options.quick):
        if wanted is not None and name not in wanted:
            continue
        with tempfile.TemporaryDirectory(prefix="loader-memory-") as tmp:
            code, peak, wall = launcher.run(make_args(Path(tmp)), options.timeout)
        rows.append(Row(name, code, peak, wall))
        growth = peak - rows[0].peak_mib
        print(f"{name:<20} {code!s:>7} {peak:9.1f} {growth:+8.1f} {wall:8.1f}", flush=True)
    server.listener.close()
    launcher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
