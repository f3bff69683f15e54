"""Fetching ftp:// URLs through the Loader, against real pyftpdlib servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loader_ftp import FtpHandler, extract_listing, load_listing
from support.ftp_server import FtpServerInfo

from loader import (
    ConnectError,
    Event,
    InvalidURL,
    Loader,
    LoginFailed,
    NotFound,
    PermissionDenied,
    Phase,
    Retries,
    Timeouts,
)
from loader.discovery import Document

pytestmark = pytest.mark.anyio


def make_loader(**options: Any) -> Loader:
    """A loader that fails fast: one attempt, short timeouts."""
    options.setdefault("retries", Retries(attempts=1))
    options.setdefault("timeouts", Timeouts(connect=5, idle=5, total=30))
    return Loader(**options)


class Recorder:
    """A callback that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def phases(self) -> list[Phase]:
        return [e.phase for e in self.events]

    def sent(self) -> list[str]:
        return [e.message or "" for e in self.events if e.phase is Phase.SENDING_REQUEST]

    def replies(self) -> list[int | None]:
        return [e.status for e in self.events if e.phase is Phase.CTL_RESPONSE_RECEIVED]


async def test_text_file_with_exact_event_sequence(ftp_server: FtpServerInfo) -> None:
    url = ftp_server.url("/pub/hello.txt")
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(url, callback=rec, context="ctx-1")
    assert result.ok, result.error
    assert result.content == (ftp_server.root / "pub/hello.txt").read_bytes()
    assert result.size == 47 and result.content_type == "text/plain"
    P = Phase
    assert rec.phases == [
        P.HANDLE_CREATED,
        P.CONNECTING_TO_SERVER,
        P.CONNECTED_TO_SERVER,
        P.CTL_RESPONSE_RECEIVED,  # 220 greeting
        *[P.SENDING_REQUEST, P.REQUEST_SENT, P.CTL_RESPONSE_RECEIVED]
        * 5,  # USER PASS TYPE SIZE EPSV
        P.SENDING_REQUEST,  # RETR
        P.REQUEST_SENT,
        P.RECEIVING_RESPONSE,
        P.CTL_RESPONSE_RECEIVED,  # 125/150
        P.RESPONSE_RECEIVED,
        P.PROGRESS,
        P.CTL_RESPONSE_RECEIVED,  # 226
        P.REQUEST_COMPLETE,
    ]
    assert rec.sent() == [
        "USER anonymous",
        "PASS ****",
        "TYPE I",
        "SIZE pub/hello.txt",
        "EPSV",
        "RETR pub/hello.txt",
    ]
    assert rec.replies() == [220, 331, 230, 200, 213, 229, rec.replies()[6], 226]
    assert rec.replies()[6] in (125, 150)
    assert all(e.context == "ctx-1" for e in rec.events)
    greeting = rec.events[3]
    assert greeting.message == "loader test server ready."
    progress = [e for e in rec.events if e.phase is Phase.PROGRESS]
    assert progress[-1].bytes_done == progress[-1].bytes_total == 47


async def test_binary_file_byte_for_byte_to_disk(ftp_server: FtpServerInfo, tmp_path: Path) -> None:
    target = tmp_path / "copy.bin"
    async with make_loader() as ld:
        result = await ld.fetch(ftp_server.url("/pub/binary.bin"), to=target)
    assert result.ok, result.error
    assert target.read_bytes() == (ftp_server.root / "pub/binary.bin").read_bytes()
    assert result.size == 153600


async def test_names_with_spaces_and_non_ascii(ftp_server: FtpServerInfo) -> None:
    async with make_loader() as ld:
        spaced = await ld.fetch(ftp_server.url("/pub/with%20space.txt"))
        accented = await ld.fetch(ftp_server.url("/pub/na%C3%AFve%20caf%C3%A9.txt"))
    assert spaced.content == b"a file whose name has a space\n"
    assert accented.content == b"non-ASCII name\n"


async def test_absolute_path(ftp_server: FtpServerInfo) -> None:
    async with make_loader() as ld:
        result = await ld.fetch(ftp_server.url("/%2Fpub/hello.txt"))
    assert result.ok and result.content.startswith(b"Hello")  # type: ignore[union-attr]


async def test_ascii_mode_turns_crlf_back_into_lf(ftp_server: FtpServerInfo) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(ftp_server.url("/pub/hello.txt;type=a"), callback=rec)
    assert result.ok, result.error
    assert result.content == (ftp_server.root / "pub/hello.txt").read_bytes()
    assert "TYPE A" in rec.sent()
    assert not any(s.startswith("SIZE") for s in rec.sent())


async def test_resume_with_rest(ftp_server: FtpServerInfo, tmp_path: Path) -> None:
    original = (ftp_server.root / "pub/binary.bin").read_bytes()
    target = tmp_path / "partial.bin"
    target.write_bytes(original[:100_000])
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(
            ftp_server.url("/pub/binary.bin"), to=target, resume=True, callback=rec
        )
    assert result.ok, result.error
    assert target.read_bytes() == original
    assert "REST 100000" in rec.sent()
    progress = [e for e in rec.events if e.phase is Phase.PROGRESS]
    assert progress[0].bytes_done > 100_000
    assert progress[-1].bytes_total == len(original)


async def test_resume_of_a_complete_file_transfers_nothing(
    ftp_server: FtpServerInfo, tmp_path: Path
) -> None:
    original = (ftp_server.root / "pub/hello.txt").read_bytes()
    target = tmp_path / "hello.txt"
    target.write_bytes(original)
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(
            ftp_server.url("/pub/hello.txt"), to=target, resume=True, callback=rec
        )
    assert result.ok, result.error
    assert target.read_bytes() == original
    assert not any(s.startswith(("RETR", "REST")) for s in rec.sent())


async def test_connection_is_reused(ftp_server: FtpServerInfo) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        first = await ld.fetch(ftp_server.url("/pub/hello.txt"), callback=rec)
        second = await ld.fetch(ftp_server.url("/pub/media/photo.png"), callback=rec)
    assert first.ok and second.ok
    assert rec.phases.count(Phase.CONNECTING_TO_SERVER) == 1
    assert rec.sent().count("USER anonymous") == 1
    assert rec.sent().count("TYPE I") == 1  # the connection remembers its state


async def test_parallel_transfers_use_parallel_connections(ftp_server: FtpServerInfo) -> None:
    names = ["pub/hello.txt", "pub/binary.bin", "pub/media/photo.png", "pub/media/chime.wav"]
    rec = Recorder()
    async with make_loader() as ld:
        results = await ld.fetch_all([ftp_server.url(n) for n in names], callback=rec)
        handler = ld.handler("ftp")
        assert isinstance(handler, FtpHandler)
        idle = sum(len(conns) for conns in handler._idle.values())
    assert [r.content for r in results] == [(ftp_server.root / n).read_bytes() for n in names]
    connects = rec.phases.count(Phase.CONNECTING_TO_SERVER)
    assert 1 <= connects <= len(names)
    assert idle == connects  # every connection went back to the pool


async def test_user_login_and_percent_encoded_password(ftp_server: FtpServerInfo) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(
            ftp_server.url("/pub/hello.txt", user="bob", password="p@ss:w/rd"), callback=rec
        )
    assert result.ok, result.error
    assert "USER bob" in rec.sent()


async def test_wrong_password(ftp_server: FtpServerInfo) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(
            ftp_server.url("/pub/hello.txt", user="alice", password="wrong-pw"), callback=rec
        )
    assert not result.ok
    assert isinstance(result.error, LoginFailed)
    assert result.error.status == 530
    assert "530" in str(result.error) and "alice" in str(result.error)
    assert "wrong-pw" not in str(result.error)
    assert rec.phases[-1] is Phase.FAILED
    for event in rec.events:
        assert "wrong-pw" not in (event.message or "")


async def test_netrc_credentials(
    ftp_server: FtpServerInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {ftp_server.host} login bob password p@ss:w/rd\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(ftp_server.url("/pub/hello.txt"), callback=rec)
    assert result.ok, result.error
    assert "USER bob" in rec.sent()


async def test_missing_file(ftp_server: FtpServerInfo) -> None:
    url = ftp_server.url("/pub/missing.txt", user="alice", password="secret")
    async with make_loader() as ld:
        result = await ld.fetch(url)
    assert isinstance(result.error, NotFound)
    assert result.error.status == 550
    text = str(result.error)
    assert "550" in text and "missing.txt" in text
    assert "secret" not in text and result.error.url == ftp_server.url(
        "/pub/missing.txt", user="alice"
    )


async def test_permission_denied(ftp_server: FtpServerInfo) -> None:
    async with make_loader() as ld:
        result = await ld.fetch(ftp_server.url("/private/secret.txt"))
    assert isinstance(result.error, PermissionDenied)
    assert "Not enough privileges" in str(result.error)


async def test_cr_lf_in_path_is_refused_before_connecting(raw_server: Any) -> None:
    server = raw_server(lambda conn: None)
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/a%0D%0ADELE%20b"))
    assert isinstance(result.error, InvalidURL)
    assert server.connections == 0


async def test_directory_listing_mlsd(ftp_server: FtpServerInfo) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(ftp_server.url("/pub/media/"), callback=rec)
    assert result.ok, result.error
    assert result.document == "ftp-listing"
    assert any(s.startswith("MLSD") for s in rec.sent())
    entries = {e.name: e for e in load_listing(result.content or b"")}
    assert set(entries) == {"photo.png", "icon.gif", "chime.wav", "notes.txt", "sub"}
    assert entries["sub"].type == "dir"
    assert entries["photo.png"].size == (ftp_server.root / "pub/media/photo.png").stat().st_size
    document = Document(
        url=result.final_url,
        type="ftp-listing",
        content=result.content or b"",
        base_url=result.final_url,
    )
    found = {f.url: f.kind for f in extract_listing(document) if f.kind != "link"}
    base = ftp_server.url("/pub/media/")
    assert found == {
        base + "photo.png": "image",
        base + "icon.gif": "image",
        base + "chime.wav": "sound",
    }


async def test_directory_without_slash_redirects_to_listing(ftp_server: FtpServerInfo) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(ftp_server.url("/pub/media"), callback=rec)
    assert result.ok, result.error
    assert result.final_url == ftp_server.url("/pub/media/")
    assert Phase.REDIRECT in rec.phases
    assert result.document == "ftp-listing"


async def test_type_d_lists(ftp_server: FtpServerInfo) -> None:
    async with make_loader() as ld:
        result = await ld.fetch(ftp_server.url("/pub;type=d"))
    names = {e.name for e in load_listing(result.content or b"")}
    assert {"hello.txt", "binary.bin", "media"} <= names


async def test_legacy_server_list_pasv_and_foreign_pasv_address(
    ftp_legacy_server: FtpServerInfo,
) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        listing = await ld.fetch(ftp_legacy_server.url("/pub/media/"), callback=rec)
        file = await ld.fetch(ftp_legacy_server.url("/pub/binary.bin"), callback=rec)
    assert listing.ok, listing.error
    assert file.ok, file.error
    assert file.content == (ftp_legacy_server.root / "pub/binary.bin").read_bytes()
    sent = rec.sent()
    assert "EPSV" in sent and "PASV" in sent and any(s.startswith("LIST") for s in sent)
    assert sent.count("EPSV") == 1  # refused once, never asked again on that connection
    ignored = [e for e in rec.events if e.phase is Phase.INTERMEDIATE_RESPONSE]
    assert ignored and "127.0.0.2" in (ignored[0].message or "")
    names = {e.name: e.type for e in load_listing(listing.content or b"")}
    assert names == {
        "photo.png": "file",
        "icon.gif": "file",
        "chime.wav": "file",
        "notes.txt": "file",
        "sub": "dir",
    }


async def test_html_page_over_ftp(ftp_server: FtpServerInfo, tmp_path: Path) -> None:
    async with make_loader() as ld:
        single = await ld.fetch(ftp_server.url("/site/index.html"))
        page = await ld.fetch_page(ftp_server.url("/site/index.html"), output=tmp_path)
    assert single.content_type == "text/html"
    assert single.document == "html"
    assert page.ok, page.failed
    fetched = sorted(r.url for r in page.resources)
    assert fetched == sorted(
        [
            ftp_server.url("/site/logo.png"),
            ftp_server.url("/site/ding.wav"),
            ftp_server.url("/%2Fpub/media/photo.png"),
        ]
    )
    by_url = {r.url: r for r in page.resources}
    logo = by_url[ftp_server.url("/site/logo.png")]
    assert logo.path is not None
    assert logo.path.read_bytes() == (ftp_server.root / "site/logo.png").read_bytes()


async def test_directory_is_a_page(ftp_server: FtpServerInfo, tmp_path: Path) -> None:
    async with make_loader() as ld:
        page = await ld.fetch_page(ftp_server.url("/pub/media/"), output=tmp_path)
    assert page.ok, page.failed
    assert sorted(r.url.rsplit("/", 1)[1] for r in page.resources) == [
        "chime.wav",
        "icon.gif",
        "photo.png",
    ]
    for result in page.resources:
        name = result.url.rsplit("/", 1)[1]
        assert result.path is not None
        assert result.path.read_bytes() == (ftp_server.root / "pub/media" / name).read_bytes()


async def test_ftps_verified_with_trusted_certificate(
    ftps_server: FtpServerInfo, ftps_ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ftps_ca))
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(ftps_server.url("/pub/binary.bin"), callback=rec)
        listing = await ld.fetch(ftps_server.url("/pub/"), callback=rec)
    assert result.ok, result.error
    assert result.content == (ftps_server.root / "pub/binary.bin").read_bytes()
    assert listing.ok, listing.error
    sent = rec.sent()
    assert sent[:5] == ["AUTH TLS", "USER anonymous", "PASS ****", "PBSZ 0", "PROT P"]


async def test_ftps_refuses_an_untrusted_certificate(ftps_server: FtpServerInfo) -> None:
    rec = Recorder()
    # Retries allowed: a rejected certificate is final all the same (as over HTTP).
    async with make_loader(retries=Retries(attempts=3, backoff=0)) as ld:
        result = await ld.fetch(ftps_server.url("/pub/hello.txt"), callback=rec)
    assert isinstance(result.error, ConnectError)
    assert "certificate" in str(result.error)
    assert not result.error.transient
    assert Phase.RETRY not in rec.phases
    assert rec.phases.count(Phase.CONNECTING_TO_SERVER) == 1


async def test_complete_reports_the_final_reply_not_the_preliminary(
    ftp_server: FtpServerInfo,
) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(ftp_server.url("/pub/binary.bin"), callback=rec)
    assert result.ok, result.error
    (received,) = [e for e in rec.events if e.phase is Phase.RESPONSE_RECEIVED]
    assert received.status in (125, 150)  # the preliminary reply, when it came
    (complete,) = [e for e in rec.events if e.phase is Phase.REQUEST_COMPLETE]
    assert complete.status == 226 and result.status == 226
    assert result.reason is not None and "transfer complete" in result.reason.lower()


async def test_ftps_without_verification(ftps_server: FtpServerInfo) -> None:
    async with make_loader(verify=False) as ld:
        result = await ld.fetch(ftps_server.url("/pub/hello.txt", user="alice", password="secret"))
    assert result.ok, result.error
    assert result.content == (ftps_server.root / "pub/hello.txt").read_bytes()


async def test_cancel_mid_transfer_discards_the_connection(ftp_server: FtpServerInfo) -> None:
    from loader import RequestCancelled

    def cancel_on_progress(event: Event) -> None:
        if event.phase is Phase.PROGRESS:
            event.cancel()

    rec = Recorder()
    async with make_loader() as ld:
        cancelled = await ld.fetch(ftp_server.url("/pub/binary.bin"), callback=cancel_on_progress)
        again = await ld.fetch(ftp_server.url("/pub/binary.bin"), callback=rec)
    assert isinstance(cancelled.error, RequestCancelled)
    assert again.ok, again.error
    assert again.content == (ftp_server.root / "pub/binary.bin").read_bytes()
    # The abandoned connection was closed, not pooled: the retry logs in afresh.
    assert Phase.CONNECTING_TO_SERVER in rec.phases


async def test_registered_through_the_entry_point() -> None:
    async with make_loader() as ld:
        schemes = ld.schemes()
        assert schemes["ftp"] == schemes["ftps"] == "ftp"
        assert isinstance(ld.handler("ftps"), FtpHandler)


async def test_host_name_is_resolved_and_reported(ftp_server: FtpServerInfo) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(f"ftp://localhost:{ftp_server.port}/pub/hello.txt", callback=rec)
    assert result.ok, result.error
    assert rec.phases[1:5] == [
        Phase.RESOLVING_NAME,
        Phase.NAME_RESOLVED,
        Phase.CONNECTING_TO_SERVER,
        Phase.CONNECTED_TO_SERVER,
    ]
    assert rec.events[1].message == "localhost"


async def test_pool_closing_a_connection_is_not_reported_to_the_request(
    ftp_server: FtpServerInfo,
) -> None:
    rec = Recorder()
    async with make_loader() as ld:
        handler = ld.handler("ftp")
        assert isinstance(handler, FtpHandler)
        handler.max_idle = 0  # every connection is closed when its request ends
        result = await ld.fetch(ftp_server.url("/pub/hello.txt"), callback=rec)
        other = await ld.fetch(ftp_server.url("/pub/media/notes.txt"), callback=rec)
    assert result.ok and other.ok, (result.error, other.error)
    assert rec.phases.count(Phase.REQUEST_COMPLETE) == 2
    assert rec.phases[-1] is Phase.REQUEST_COMPLETE
    assert Phase.CLOSING_CONNECTION not in rec.phases
    assert 221 not in [e.status for e in rec.events]
    assert "QUIT" not in rec.sent()
