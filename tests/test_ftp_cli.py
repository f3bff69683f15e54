"""``loader ftp …`` subcommands, run through the parser the plugin adds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from loader_ftp import loader_add_commands
from support.ftp_server import FtpServerInfo

from loader import Loader, Retries, Timeouts
from loader.cli import EXIT_FAILED

pytestmark = pytest.mark.anyio


async def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="loader")
    loader_add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    async with Loader(retries=Retries(attempts=1), timeouts=Timeouts(connect=5, idle=5)) as ld:
        return int(await args.run(args, ld))


async def test_ls(ftp_server: FtpServerInfo, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run("ftp", "ls", ftp_server.url("/pub/media/")) == 0
    assert sorted(capsys.readouterr().out.split("\n")) == sorted(
        ["", "chime.wav", "icon.gif", "notes.txt", "photo.png", "sub/"]
    )
    assert await run("ftp", "ls", "-l", ftp_server.url("/pub/media/")) == 0
    long = {line.split()[-1]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert long["photo.png"][:2] == ["file", "73"]
    assert await run("ftp", "ls", "--json", ftp_server.url("/pub/media/")) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"] for r in records} == {
        "chime.wav",
        "icon.gif",
        "notes.txt",
        "photo.png",
        "sub",
    }


async def test_write_commands(
    ftp_server: FtpServerInfo, ftp_scratch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = ftp_server.root / ftp_scratch.lstrip("/")
    base = ftp_server.alice(f"/%2F{ftp_scratch.lstrip('/')}")
    local = tmp_path / "up.txt"
    local.write_bytes(b"uploaded\n")

    assert await run("ftp", "mkdir", base + "/d") == 0
    assert (remote / "d").is_dir()
    assert await run("ftp", "put", str(local), base + "/d/") == 0
    assert (remote / "d/up.txt").read_bytes() == b"uploaded\n"
    assert await run("ftp", "mv", base + "/d/up.txt", "renamed.txt") == 0
    assert (remote / "d/renamed.txt").is_file()
    out = tmp_path / "down.txt"
    assert await run("ftp", "get", base + "/d/renamed.txt", "-o", str(out)) == 0
    assert out.read_bytes() == b"uploaded\n"
    assert await run("ftp", "rm", base + "/d/renamed.txt") == 0
    assert await run("ftp", "rmdir", base + "/d") == 0
    assert list(remote.iterdir()) == []
    assert await run("ftp", "pwd", base + "/") == 0
    assert capsys.readouterr().out.splitlines()[-1] == ftp_scratch


async def test_get_continue(ftp_server: FtpServerInfo, tmp_path: Path) -> None:
    original = (ftp_server.root / "pub/binary.bin").read_bytes()
    out = tmp_path / "binary.bin"
    out.write_bytes(original[:1234])
    assert await run("ftp", "get", ftp_server.url("/pub/binary.bin"), "-o", str(out), "-c") == 0
    assert out.read_bytes() == original


async def test_failures_exit_1_with_the_reply(
    ftp_server: FtpServerInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run("ftp", "rm", ftp_server.url("/pub/hello.txt")) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith(f"error: {ftp_server.url('/pub/hello.txt')}: ") and "550" in err
    assert await run("ftp", "ls", ftp_server.url("/", user="alice", password="not-the-pw")) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "530" in err and "not-the-pw" not in err
    assert await run("ftp", "get", ftp_server.url("/pub/")) == EXIT_FAILED


def test_main_runs_the_ftp_commands(
    ftp_server: FtpServerInfo, ftps_server: FtpServerInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    from loader.cli import main

    assert main(["ftp", "ls", "-q", ftp_server.url("/pub/media/")]) == 0
    assert "photo.png" in capsys.readouterr().out.split()
    # The common options apply: --insecure accepts the self-signed FTPS certificate.
    assert main(["ftp", "pwd", "-q", "--insecure", ftps_server.url("/pub/")]) == 0
    assert capsys.readouterr().out.strip() == "/pub"
    assert main(["ftp", "pwd", "-q", "--retries", "0", ftps_server.url("/")]) == EXIT_FAILED
    assert "certificate" in capsys.readouterr().err
