"""``loader gopher ls`` and ``loader gopher search``, through ``loader.cli.main``."""

from __future__ import annotations

import io
import json
from pathlib import Path

from loader_gopher import Menu, parse_menu
from loader_gopher._cli import format_menu
from support.gopher_server import GopherServer

from loader.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_ls(gopher_server: GopherServer) -> None:
    code, out, err = run("gopher", "ls", gopher_server.url("1", "/docs"), "-q")
    assert code == 0, err
    base = f"gopher://{gopher_server.host}:{gopher_server.port}"
    assert out.splitlines() == [
        "          Documents",
        f"0 text    About this server  {base}/0/about.txt",
        f"h html    A web page         {base}/h/docs/page.html",
        f"1 menu    Back to the top    {base}/1/",
    ]


def test_ls_json(gopher_server: GopherServer) -> None:
    code, out, _ = run("gopher", "ls", gopher_server.url("1", "/"), "--json", "--links-only", "-q")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["type"] for r in records] == ["0", "1", "g", "p", "I", "s", ";", "9", "7", "h", "h"]
    assert records[-1]["target"] == "http://127.0.0.1:9/"
    assert records[2]["kind"] == "gif" and records[2]["selector"] == "/pics/cat.gif"


def test_search(gopher_server: GopherServer) -> None:
    code, out, _ = run(
        "gopher", "search", gopher_server.url("7", "/search.pyg"), "pics", "png", "-q"
    )
    assert code == 0
    assert [line.split()[2] for line in out.splitlines()] == ["pics/bird.png", "pics/dog.png"]


def test_failure_exit_code(gopher_server: GopherServer) -> None:
    code, out, err = run(
        "gopher", "ls", gopher_server.url("1", "/nothing/here"), "-q", "--retries", "0"
    )
    assert code == 3 and out == ""
    assert "loader gopher ls:" in err and "/nothing/here" in err


def test_format_menu_without_links() -> None:
    menu = Menu(
        "gopher://h/1", parse_menu(b"iJust words\tfake\t(NULL)\t0\r\n3Oops\t\terror.host\t1\r\n")
    )
    assert format_menu(menu) == ["          Just words", "3 error   Oops"]
    assert format_menu(menu, links_only=True) == []


def test_get_an_image(gopher_server: GopherServer, tmp_path: Path) -> None:
    target = tmp_path / "cat.gif"
    code, _, err = run("get", gopher_server.url("I", "/pics/cat.gif"), "-o", str(target), "-q")
    assert code == 0, err
    assert target.read_bytes() == (gopher_server.root / "pics/cat.gif").read_bytes()


def test_fetch_menu_as_page(gopher_server: GopherServer, tmp_path: Path) -> None:
    code, _, err = run("fetch", gopher_server.url("1", "/"), "-o", str(tmp_path), "-q")
    assert code == 0, err
    saved = {p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for name in ("pics/cat.gif", "pics/dog.png", "pics/bird.png", "sounds/meow.wav"):
        assert (gopher_server.root / name).read_bytes() in saved, name
    assert (gopher_server.root / "files/data.bin").read_bytes() not in saved  # not a requisite
