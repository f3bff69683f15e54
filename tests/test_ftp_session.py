"""FtpSession: every WinINet FTP operation, each an operation with the caller's context."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from loader_ftp import FtpSession
from support.ftp_server import FtpServerInfo

from loader import Event, InvalidURL, Loader, NotFound, PermissionDenied, Phase, Retries, Timeouts

pytestmark = pytest.mark.anyio


def make_loader() -> Loader:
    return Loader(retries=Retries(attempts=1), timeouts=Timeouts(connect=5, idle=5, total=30))


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def by_request(self) -> dict[int, list[Event]]:
        out: dict[int, list[Event]] = {}
        for event in self.events:
            out.setdefault(event.request_id, []).append(event)
        return out


async def test_directory_and_file_operations(ftp_server: FtpServerInfo, ftp_scratch: str) -> None:
    local_dir = ftp_server.root / ftp_scratch.lstrip("/")
    rec = Recorder()
    async with make_loader() as ld:
        async with FtpSession(ld, ftp_server.alice(), callback=rec, context="job") as ftp:
            assert await ftp.pwd() == "/"
            assert await ftp.cwd(ftp_scratch) == ftp_scratch
            assert await ftp.pwd() == ftp_scratch
            created = await ftp.mkdir("new dir")
            assert created == f"{ftp_scratch}/new dir"
            assert (local_dir / "new dir").is_dir()

            sent = await ftp.put(io.BytesIO(b"x" * 200_000), "new dir/upload.bin")
            assert sent == 200_000
            assert (local_dir / "new dir/upload.bin").read_bytes() == b"x" * 200_000
            assert await ftp.size("new dir/upload.bin") == 200_000

            await ftp.put([b"more"], "new dir/upload.bin", append=True)
            assert (local_dir / "new dir/upload.bin").stat().st_size == 200_004

            await ftp.rename("new dir/upload.bin", "renamed.bin")
            assert (local_dir / "renamed.bin").is_file()
            assert not (local_dir / "new dir/upload.bin").exists()

            entries = {e.name: e for e in await ftp.list()}
            assert entries["renamed.bin"].type == "file" and entries["renamed.bin"].size == 200_004
            assert entries["new dir"].type == "dir"

            await ftp.delete("renamed.bin")
            await ftp.rmdir("new dir")
            assert list(local_dir.iterdir()) == []
    requests = rec.by_request()
    # connect + 11 operations, each its own request from HANDLE_CREATED to REQUEST_COMPLETE.
    assert len(requests) == 12
    for events in requests.values():
        assert events[0].phase is Phase.HANDLE_CREATED
        assert events[-1].phase is Phase.REQUEST_COMPLETE
        assert all(e.context == "job" for e in events)
        assert all("secret" not in e.url for e in events)
    connect_events = next(iter(requests.values()))
    assert Phase.CONNECTED_TO_SERVER in [e.phase for e in connect_events]
    mkdir_events = [
        evs for evs in requests.values() if any(e.message == "MKD new dir" for e in evs)
    ]
    assert len(mkdir_events) == 1
    assert mkdir_events[0][0].url == ftp_server.url(
        f"/%2F{ftp_scratch.lstrip('/')}/new%20dir/", user="alice"
    )
    assert [e.status for e in mkdir_events[0] if e.phase is Phase.CTL_RESPONSE_RECEIVED] == [257]


async def test_put_streams_a_local_file_and_get_downloads_it(
    ftp_server: FtpServerInfo, ftp_scratch: str, tmp_path: Path
) -> None:
    source = ftp_server.root / "pub/binary.bin"
    rec = Recorder()
    async with make_loader() as ld, FtpSession(ld, ftp_server.alice()) as ftp:
        sent = await ftp.put(source, f"{ftp_scratch}/copy.bin", callback=rec, context="up")
        assert sent == source.stat().st_size
        progress = [e for e in rec.events if e.phase is Phase.PROGRESS]
        assert len(progress) > 1  # streamed in chunks, not in one piece
        assert progress[-1].bytes_done == progress[-1].bytes_total == sent
        assert all(e.context == "up" for e in rec.events)

        target = tmp_path / "down.bin"
        received = await ftp.get(f"{ftp_scratch}/copy.bin", target)
        assert received == sent
        assert target.read_bytes() == source.read_bytes()
        assert [p.name for p in tmp_path.iterdir()] == ["down.bin"]  # no temporary file left

        # Resume: cut the local copy short, then continue it.
        target.write_bytes(source.read_bytes()[:5000])
        received = await ftp.get(f"{ftp_scratch}/copy.bin", target, resume=True)
        assert received == sent - 5000
        assert target.read_bytes() == source.read_bytes()


async def test_async_iterable_source(ftp_server: FtpServerInfo, ftp_scratch: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([65 + i]) * 1000

    async with make_loader() as ld, FtpSession(ld, ftp_server.alice()) as ftp:
        assert await ftp.put(chunks(), f"{ftp_scratch}/gen.txt") == 5000
    data = (ftp_server.root / ftp_scratch.lstrip("/") / "gen.txt").read_bytes()
    assert data == b"A" * 1000 + b"B" * 1000 + b"C" * 1000 + b"D" * 1000 + b"E" * 1000


async def test_open_streams_a_file(ftp_server: FtpServerInfo) -> None:
    rec = Recorder()
    original = (ftp_server.root / "pub/binary.bin").read_bytes()
    async with make_loader() as ld, FtpSession(ld, ftp_server.url("/")) as ftp:
        async with ftp.open("pub/binary.bin", callback=rec) as remote:
            assert remote.size == len(original)
            data = b"".join([chunk async for chunk in remote])
        assert data == original
        async with ftp.open("pub/binary.bin", offset=150_000) as remote:
            assert remote.offset == 150_000
            assert await remote.read() == original[150_000:]
        # Leaving early abandons the transfer; the session carries on with a new connection.
        async with ftp.open("pub/binary.bin") as remote:
            async for _chunk in remote:
                break
        assert await ftp.pwd() == "/"
    assert rec.events[-1].phase is Phase.REQUEST_COMPLETE
    assert [e for e in rec.events if e.phase is Phase.PROGRESS][-1].bytes_done == len(original)


async def test_list_with_pattern_and_wildcard(ftp_server: FtpServerInfo) -> None:
    async with make_loader() as ld, FtpSession(ld, ftp_server.url("/")) as ftp:
        pngs = await ftp.list("pub/media", pattern="*.png")
        wild = await ftp.list("pub/media/*.wav")
        everything = await ftp.list("pub/media/")
    assert [e.name for e in pngs] == ["photo.png"]
    assert [e.name for e in wild] == ["chime.wav"]
    assert len(everything) == 5


async def test_session_opened_on_a_directory_url(ftp_server: FtpServerInfo) -> None:
    async with make_loader() as ld, FtpSession(ld, ftp_server.url("/pub/media/")) as ftp:
        assert await ftp.pwd() == "/pub/media"
        assert {e.name for e in await ftp.list()} >= {"photo.png", "sub"}


async def test_errors(ftp_server: FtpServerInfo, tmp_path: Path) -> None:
    rec = Recorder()
    async with make_loader() as ld, FtpSession(ld, ftp_server.url("/"), callback=rec) as ftp:
        with pytest.raises(PermissionDenied, match="550"):
            await ftp.mkdir("anonymous-may-not")
        with pytest.raises(PermissionDenied):
            await ftp.delete("pub/hello.txt")
        with pytest.raises(NotFound, match="550"):
            await ftp.cwd("no/such/dir")
        with pytest.raises(NotFound):
            await ftp.get("pub/missing.bin", tmp_path / "missing.bin")
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(InvalidURL):
            await ftp.delete("a\r\nDELE pub/hello.txt")
        # The session survives its failed operations.
        assert await ftp.pwd() == "/"
    assert (ftp_server.root / "pub/hello.txt").exists()
    failed = [e for e in rec.events if e.phase is Phase.FAILED]
    assert len(failed) == 4  # the CR/LF one never became an operation
    assert isinstance(failed[0].error, PermissionDenied)


async def test_session_reuses_pooled_connections(ftp_server: FtpServerInfo) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        first = await ld.fetch(ftp_server.url("/pub/hello.txt"), callback=rec)
        assert first.ok
        async with FtpSession(ld, ftp_server.url("/"), callback=rec) as ftp:
            await ftp.pwd()
        second = await ld.fetch(ftp_server.url("/pub/hello.txt;type=i"), callback=rec)
        assert second.ok
    assert [e.phase for e in rec.events].count(Phase.CONNECTING_TO_SERVER) == 1


async def test_requires_the_ftp_handler(ftp_server: FtpServerInfo) -> None:
    class Other:
        def handler(self, scheme: str) -> Any:
            return object()

    with pytest.raises(TypeError):
        FtpSession(Other(), ftp_server.url("/"))


async def test_ftps_upload_and_download(
    ftp_server: FtpServerInfo, ftps_server: FtpServerInfo, ftp_scratch: str
) -> None:
    # Both servers serve the same tree, so the scratch directory exists on the FTPS one too.
    payload = bytes(range(256)) * 400
    async with Loader(verify=False) as ld, FtpSession(ld, ftps_server.alice()) as ftp:
        assert await ftp.put([payload[:50_000], payload[50_000:]], f"{ftp_scratch}/tls.bin") == len(
            payload
        )
        async with ftp.open(f"{ftp_scratch}/tls.bin") as remote:
            assert await remote.read() == payload
        assert {e.name for e in await ftp.list(ftp_scratch)} == {"tls.bin"}
    assert (ftp_server.root / ftp_scratch.lstrip("/") / "tls.bin").read_bytes() == payload


async def test_put_reports_the_bytes_stored(ftp_server: FtpServerInfo, ftp_scratch: str) -> None:
    events: list[Event] = []
    payload = b"p" * 70_000
    async with Loader() as ld, FtpSession(ld, ftp_server.alice()) as ftp:
        await ftp.put([payload], f"{ftp_scratch}/counted.bin", callback=events.append)
    complete = [e for e in events if e.phase is Phase.REQUEST_COMPLETE]
    assert [(e.bytes_done, e.bytes_total) for e in complete] == [(70_000, 70_000)]
