"""Interop with gophernicus, Debian's Gopher server, run as Debian runs it: one process per connection.

Debian starts gophernicus from inetd or a systemd socket with the connection as
its stdin and stdout.  The fixture does the same with a small accept loop on a
free port of 127.0.0.1, serving a copy of ``fixtures/gopher/`` (a gophermap
with text, menu, image, sound, video and binary items).  The loader runs as a
user would (``python -m loader``); what it saves is compared byte for byte with
the files served, and its ``--events`` file is held to the event grammar
(Gopher has no status: ``need_status=False``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.interop import check_event_lines, require_program, run_loader, sha256_file, sha256_tree

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gopher"

#: The menu's requisites (images and sounds, the default kinds) and the items that are not.
REQUISITES = ("pics/cat.gif", "pics/dog.png", "pics/bird.png", "sounds/meow.wav")
NOT_REQUISITES = ("files/data.bin", "video/clip.mp4", "about.txt")


@dataclass
class Gophernicus:
    """A running gophernicus: where it listens and the tree it serves."""

    port: int
    root: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def url(self, item: str, selector: str = "") -> str:
        return f"gopher://127.0.0.1:{self.port}/{item}{selector}"

    def raw(self, selector: str) -> bytes:
        """What the server answers to ``selector``, read with a plain socket."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(selector.encode() + b"\r\n")
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
        return b"".join(chunks)


def _serve(listener: socket.socket, args: list[str], server: Gophernicus,
           stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        with conn:
            conn.setblocking(True)
            # The child gets the socket as stdin/stdout, as inetd hands it over.
            process = subprocess.Popen(args, stdin=conn, stdout=conn, stderr=subprocess.DEVNULL)
        server.processes.append(process)


@pytest.fixture(scope="module")
def gophernicus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gophernicus]:
    program = require_program("gophernicus")
    root = tmp_path_factory.mktemp("gophernicus") / "gopher"
    shutil.copytree(FIXTURES, root)
    (root / "search.pyg").unlink()  # pygopherd's search script: nothing for gophernicus to run
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # lets the loop see the stop flag
    port = int(listener.getsockname()[1])
    args = [
        program, "-h", "127.0.0.1", "-p", str(port), "-r", str(root),
        # No virtual hosts, shared memory, syslog, scripts or user directories:
        # one tree, nothing outside the test's directory; -nr because tests may run as root.
        "-nv", "-nm", "-ns", "-nx", "-nu", "-nr",
    ]
    server = Gophernicus(port=port, root=root)
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(listener, args, server, stop), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for process in server.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def test_fetch_menu_page_saves_requisites_byte_exact(gophernicus: Gophernicus, tmp_path: Path) -> None:
    out, events = tmp_path / "out", tmp_path / "events.jsonl"
    done = run_loader("fetch", gophernicus.url("1", "/"), "-o", str(out), "--events", str(events),
                      "--no-progress")
    assert done.returncode == 0, done.stderr
    saved = sha256_tree(out)
    digests = set(saved.values())
    for name in REQUISITES:
        assert sha256_file(gophernicus.root / name) in digests, (name, saved)
    for name in NOT_REQUISITES:
        assert sha256_file(gophernicus.root / name) not in digests, name
    # The menu itself, saved as the server sent it.
    menu = gophernicus.raw("")
    assert b"Gophernicus" in menu  # the server's own footer: it really is gophernicus talking
    assert hashlib.sha256(menu).hexdigest() in digests
    by_request = check_event_lines(events, need_status=False)
    assert len(by_request) == 1 + len(REQUISITES)
    finals = [e[-1]["phase"] for e in by_request.values()]
    assert finals == ["REQUEST_COMPLETE"] * len(finals)


def test_gopher_ls(gophernicus: Gophernicus) -> None:
    done = run_loader("gopher", "ls", gophernicus.url("1", "/"), "-q")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].strip() == "Welcome to the loader test hole."
    base = f"gopher://127.0.0.1:{gophernicus.port}"
    for kind, display, target in [
        ("0 text", "About this server", f"{base}/0/about.txt"),
        ("1 menu", "Documents", f"{base}/1/docs"),
        ("g gif", "A GIF cat", f"{base}/g/pics/cat.gif"),
        ("s sound", "A short beep", f"{base}/s/sounds/meow.wav"),
        ("9 binary", "Random bytes", f"{base}/9/files/data.bin"),
        ("h html", "An external site", "http://127.0.0.1:9/"),
    ]:
        line = next(line for line in lines if display in line)
        assert line.split()[:2] == kind.split() and line.split()[-1] == target, line


def test_gopher_ls_json_sub_menu(gophernicus: Gophernicus) -> None:
    done = run_loader("gopher", "ls", gophernicus.url("1", "/docs"), "--json", "--links-only", "-q")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert ("0", "/about.txt") in {(r["type"], r["selector"]) for r in records}
    assert all(r["port"] == gophernicus.port for r in records if r["host"] == "127.0.0.1")


@pytest.mark.parametrize(("item", "name"), [("9", "files/data.bin"), ("I", "pics/bird.png"),
                                            ("h", "docs/page.html")])
def test_get_item_byte_exact(gophernicus: Gophernicus, tmp_path: Path, item: str, name: str) -> None:
    target = tmp_path / "item"
    done = run_loader("get", gophernicus.url(item, "/" + name), "-o", str(target), "-q")
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == (gophernicus.root / name).read_bytes()


def test_get_text_item(gophernicus: Gophernicus, tmp_path: Path) -> None:
    # gophernicus sends text with CRLF line ends (RFC 1436), no dot-stuffing needed here.
    target = tmp_path / "about.txt"
    done = run_loader("get", gophernicus.url("0", "/about.txt"), "-o", str(target), "-q")
    assert done.returncode == 0, done.stderr
    sent = gophernicus.raw("/about.txt")
    assert target.read_bytes() == sent
    assert sent == (gophernicus.root / "about.txt").read_bytes().replace(b"\n", b"\r\n")


@pytest.mark.parametrize("selector", ["/no/such/menu/", "/no/such/menu"])
def test_missing_menu_is_a_clear_error(gophernicus: Gophernicus, selector: str) -> None:
    url = gophernicus.url("1", selector)
    done = run_loader("gopher", "ls", url, "-q", "--retries", "0")
    assert done.returncode == 3 and done.stdout == ""
    assert url in done.stderr and "not found" in done.stderr.lower(), done.stderr


@pytest.mark.parametrize("selector", ["/no/such/menu/", "/no/such/menu"])
def test_missing_selector_fails_the_get(gophernicus: Gophernicus, tmp_path: Path,
                                        selector: str) -> None:
    # Without the trailing "/" gophernicus answers in plain text, not with an error item.
    url = gophernicus.url("1", selector)
    done = run_loader("get", url, "-o", str(tmp_path / "x"), "-q", "--retries", "0")
    assert done.returncode != 0
    assert "not found" in done.stderr.lower(), done.stderr
    assert not (tmp_path / "x").exists()
