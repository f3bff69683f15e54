"""``loader get``'s file names, as wget chooses them: the URL's last segment, else
``index.html``; ``-o DIR`` (an existing directory) saves inside it under that name."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from support.raw_server import recv_until, send_lines

from loader._usage import get_target
from loader.cli import EXIT_OK, main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def any_path(raw_server: Any) -> Any:
    """Answers every request target with a small body naming it."""

    def handle(conn: Any) -> None:
        while head := recv_until(conn, b"\r\n\r\n"):
            body = b"target " + head.split(b" ", 2)[1]
            send_lines(conn, ["HTTP/1.1 200 OK", "Content-Type: text/html", f"Content-Length: {len(body)}", ""])
            conn.sendall(body)

    return raw_server(handle)


@pytest.mark.parametrize(("url", "name"), [
    ("http://h/img/", "index.html"),
    ("http://h:8765", "index.html"),
    ("http://h:8765/", "index.html"),
    ("http://h/a/b.png?x=1", "b.png"),
    ("http://h/a%20b.txt", "a b.txt"),
    ("ftp://h/pub/", "index.html"),
    ("gopher://h/0/notes.txt", "notes.txt"),
])
def test_the_name_is_the_last_segment_or_index_html(url: str, name: str) -> None:
    assert get_target(url, None) == name


def test_a_directory_url_is_saved_as_index_html(any_path: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("get", any_path.url("http", "/img/"), "-q")
    assert code == EXIT_OK, err
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]
    assert (tmp_path / "index.html").read_bytes() == b"target /img/"


def test_a_bare_host_and_port_is_saved_as_index_html(any_path: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("get", f"http://127.0.0.1:{any_path.port}", "-q")
    assert code == EXIT_OK, err
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


def test_o_an_existing_directory_saves_inside_it(any_path: Any, tmp_path: Path) -> None:
    into = tmp_path / "into"
    into.mkdir()
    code, _, err = run("get", any_path.url("http", "/pics/cat.png"), "-o", str(into))
    assert code == EXIT_OK, err
    assert (into / "cat.png").read_bytes() == b"target /pics/cat.png"
    assert f"saved to {into / 'cat.png'}" in err
