"""Hostile FTP servers, scripted on raw sockets: what a server sends must not make the
client read without end, buffer without bound, or write control characters to a terminal."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from loader_ftp import LineSplitter
from test_ftp_faults import STOP, Recorder, ScriptedFtp, make_loader, scripted

from loader import NetworkError, Phase, ProtocolError
from loader.cli import EXIT_FAILED, EXIT_OK, main

pytestmark = pytest.mark.anyio

MLST = ["211-Features:", " MLST type*;size*;modify*;", " SIZE", "211 End"]


def _endless(script: ScriptedFtp, line: bytes) -> None:
    """Answer the transfer command with ``line`` repeated until the client hangs up."""
    assert script.listener is not None
    data, _ = script.listener.accept()
    script.listener.close()
    script.send("150 Here it comes.")
    block = line * max(1, 65536 // len(line))
    with data:
        try:
            while True:
                data.sendall(block)
        except OSError:
            pass  # the client gave up: what the test wants


async def test_more_bytes_than_size_announced_is_an_error(
    raw_server: Any, tmp_path: Path
) -> None:
    server = scripted(
        raw_server, files={"f.bin": bytes(10_000)}, overrides={"SIZE": "213 100"}
    )
    target = tmp_path / "f.bin"
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.bin"), to=target)
    assert isinstance(result.error, ProtocolError)
    assert "more than the 100 bytes SIZE announced" in str(result.error)
    assert str(result.error).startswith(server.url("ftp", "/f.bin"))
    assert list(tmp_path.iterdir()) == []


async def test_a_body_without_end_stops_at_the_announced_size(raw_server: Any) -> None:
    def session(conn: socket.socket) -> None:
        script = ScriptedFtp(conn, files={"f.bin": b""}, overrides={"SIZE": "213 5000"})
        script.overrides["RETR"] = lambda s, arg: (_endless(s, b"x" * 1000), STOP)[1]
        script.run()

    server = raw_server(session)
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.bin"), callback=rec)
    assert isinstance(result.error, ProtocolError)
    assert "more than the 5000 bytes SIZE announced" in str(result.error)
    # Nothing past the announced size was handed on.
    assert all((e.bytes_done or 0) <= 5000 for e in rec.of(Phase.PROGRESS))


@pytest.mark.parametrize(
    "options",
    [
        {"greeting": ["220 Welcome\x00\x1b[2J"]},
        {"greeting": ["220-Welcome", " mirr\x00r", "220 Ready"]},
        {"overrides": {"PASS": "230 Logged\x00in."}},
    ],
    ids=["banner", "multi-line banner", "reply"],
)
async def test_a_nul_in_the_banner_or_a_reply_is_a_protocol_error(
    raw_server: Any, options: dict[str, Any]
) -> None:
    server = scripted(raw_server, files={"f.txt": b"x"}, **options)
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.txt"))
    assert isinstance(result.error, ProtocolError)
    assert "NUL byte in a reply" in str(result.error)
    assert server.url("ftp", "/f.txt") in str(result.error)


@pytest.mark.parametrize("verb", ["MLSD", "LIST", "NLST"])
async def test_an_overlong_listing_line_is_an_error(raw_server: Any, verb: str) -> None:
    line = b"type=file;size=1; " if verb == "MLSD" else b""
    listing = b"a.png\r\n" if verb == "NLST" else b""
    listing += line + b"n" * 100_000 + b".png\r\n"
    server = scripted(
        raw_server,
        overrides={"FEAT": MLST if verb == "MLSD" else "500 no FEAT."},
        listings={verb: listing},
    )
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/pub/"))
    assert isinstance(result.error, ProtocolError)
    assert f"{verb}: listing line longer than" in str(result.error)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"x" * 4096, "MLSD: listing line longer than"),  # one line, never ended
        (b"type=file;size=1; a.png\r\n", "MLSD reply has more than 100000 entries"),
    ],
    ids=["endless line", "endless lines"],
)
async def test_an_endless_listing_is_bounded(raw_server: Any, line: bytes, message: str) -> None:
    def session(conn: socket.socket) -> None:
        script = ScriptedFtp(conn, overrides={"FEAT": MLST})
        script.overrides["MLSD"] = lambda s, arg: (_endless(s, line), STOP)[1]
        script.run()

    server = raw_server(session)
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/pub/"))
    assert isinstance(result.error, ProtocolError)
    assert message in str(result.error)


def test_the_line_splitter_holds_one_partial_line_at_most() -> None:
    splitter = LineSplitter(max_line=100)
    assert splitter.feed(b"a\r\nb") == ["a"]
    assert splitter.feed(b"c\n\n  \r\nd") == ["bc"]
    assert splitter.flush() == ["d"]
    for _ in range(10):  # 1000 bytes of one line, fed in pieces: refused past 100
        try:
            splitter.feed(b"y" * 30)
        except ProtocolError as exc:
            assert "longer than 100 bytes" in str(exc)
            break
    else:
        pytest.fail("an endless line was buffered")


HOSTILE_NAMES = b"type=file;size=3; \x1b]0;owned\x07\x1b[31mred.png\r\ntype=file;size=1; \xe2\x80\xaegnp.exe\r\n"


def _hostile_listing_server(raw_server: Any) -> Any:
    return scripted(raw_server, overrides={"FEAT": MLST}, listings={"MLSD": HOSTILE_NAMES})


@pytest.mark.parametrize("flags", [[], ["-l"], ["--json"]])
def test_ftp_ls_escapes_what_the_server_names(
    raw_server: Any, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    server = _hostile_listing_server(raw_server)
    assert main(["ftp", "ls", "-q", *flags, server.url("ftp", "/pub/")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    if flags == ["--json"]:
        import json

        names = [json.loads(line)["name"] for line in out.splitlines()]
        assert names == ["\x1b]0;owned\x07\x1b[31mred.png", "\u202egnp.exe"]
    else:
        assert "\\x1b[31mred.png" in out and "\\u202egnp.exe" in out


def test_ftp_errors_escape_the_server_reply(
    raw_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server = scripted(raw_server, overrides={"DELE": "550 \x1b[2J\u202eno such file"})
    url = server.url("ftp", "/f.txt")
    assert main(["ftp", "rm", "-q", "--retries", "0", url]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"error: {url}: ")
    assert "\x1b" not in err and "\u202e" not in err and "\\x1b[2J" in err


def test_ftp_put_errors_name_the_url(
    raw_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "up.txt"
    local.write_bytes(b"data")
    server = scripted(raw_server, overrides={"STOR": "553 Not allowed: \x1b[31mquota"})
    url = server.url("ftp", "/up.txt")
    assert main(["ftp", "put", "-q", "--retries", "0", str(local), url]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"error: {url}: ") and "553" in err and "\x1b" not in err


async def test_a_lying_size_on_resume_is_still_checked(raw_server: Any, tmp_path: Path) -> None:
    # REST 10 of a file SIZE calls 20 bytes: 10 are due, the server sends 30.
    def session(conn: socket.socket) -> None:
        script = ScriptedFtp(conn, files={"f.bin": bytes(30)}, overrides={"SIZE": "213 20"})
        script.overrides["REST"] = "350 Restarting."
        script.run()

    server = raw_server(session)
    target = tmp_path / "f.bin"
    target.write_bytes(bytes(10))
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.bin"), to=target, resume=True)
    assert isinstance(result.error, (ProtocolError, NetworkError))
    assert "more than the 10 bytes SIZE announced" in str(result.error)
