"""What real servers rarely do: a scripted raw-socket FTP server for odd and broken replies."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from loader_ftp import extract_listing, load_listing
from support.raw_server import recv_until, send_lines

from loader import (
    ConnectError,
    Event,
    IdleTimeout,
    Loader,
    NetworkError,
    Phase,
    ProtocolError,
    Retries,
    Timeouts,
)
from loader.discovery import Document

pytestmark = pytest.mark.anyio

Reply = str | list[str] | Callable[["ScriptedFtp", str], Any]

STOP = object()


class ScriptedFtp:
    """One control connection of a scripted FTP server.

    Commands get the reply in ``overrides`` (a line, lines, or a function of
    the server and the argument), else a plausible default.  ``files`` are
    served by RETR/SIZE; ``listings`` answer MLSD/LIST/NLST by verb.
    """

    def __init__(
        self,
        conn: socket.socket,
        *,
        greeting: list[str] | None = None,
        files: dict[str, bytes] | None = None,
        listings: dict[str, bytes] | None = None,
        overrides: dict[str, Reply] | None = None,
        pasv_host: str = "127,0,0,1",
        cut: int | None = None,
        final: str = "226 Transfer complete.",
    ) -> None:
        self.conn = conn
        self.greeting = greeting or ["220 scripted server ready"]
        self.files = files or {}
        self.listings = listings or {}
        self.overrides = overrides or {}
        self.pasv_host = pasv_host
        self.cut = cut
        self.final = final
        self.listener: socket.socket | None = None
        self.received: list[str] = []

    def send(self, *lines: str) -> None:
        send_lines(self.conn, lines)

    def run(self) -> None:
        try:
            self._run()
        finally:
            if self.listener is not None:
                self.listener.close()

    def _run(self) -> None:
        self.send(*self.greeting)
        while True:
            raw = recv_until(self.conn, b"\r\n")
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.received.append(line)
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            reply = self.overrides.get(verb)
            if reply is None:
                method = getattr(self, f"cmd_{verb}", None)
                reply = method if method is not None else "502 Command not implemented."
                if method is not None:
                    reply = lambda _self, a, m=method: m(a)  # noqa: E731
            if callable(reply):
                if reply(self, arg) is STOP:
                    return
            else:
                self.send(*([reply] if isinstance(reply, str) else reply))
            if verb == "QUIT":
                return

    # -- defaults ----------------------------------------------------------------

    def cmd_USER(self, arg: str) -> None:
        self.send("331 Password required.")

    def cmd_PASS(self, arg: str) -> None:
        self.send("230 Logged in.")

    def cmd_TYPE(self, arg: str) -> None:
        self.send(f"200 Type set to {arg}.")

    def cmd_QUIT(self, arg: str) -> None:
        self.send("221 Bye.")

    def cmd_NOOP(self, arg: str) -> None:
        self.send("200 OK.")

    def cmd_PWD(self, arg: str) -> None:
        self.send('257 "/" is the current directory.')

    def cmd_SIZE(self, arg: str) -> None:
        if arg in self.files:
            self.send(f"213 {len(self.files[arg])}")
        else:
            self.send("550 No such file.")

    def _listen(self) -> int:
        if self.listener is not None:
            self.listener.close()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        return int(self.listener.getsockname()[1])

    def cmd_EPSV(self, arg: str) -> None:
        self.send(f"229 Entering Extended Passive Mode (|||{self._listen()}|)")

    def cmd_PASV(self, arg: str) -> None:
        port = self._listen()
        self.send(f"227 Entering Passive Mode ({self.pasv_host},{port // 256},{port % 256}).")

    def _transfer(self, body: bytes) -> None:
        assert self.listener is not None
        data, _ = self.listener.accept()
        self.listener.close()
        self.send("150 Opening BINARY mode data connection.")
        with data:
            data.sendall(body if self.cut is None else body[: self.cut])
        if self.final:
            self.send(self.final)

    def cmd_RETR(self, arg: str) -> None:
        if arg not in self.files:
            self.send("550 No such file.")
            return
        self._transfer(self.files[arg])

    def _listing(self, verb: str) -> None:
        if verb not in self.listings:
            self.send("502 Command not implemented.")
            return
        self._transfer(self.listings[verb])

    def cmd_MLSD(self, arg: str) -> None:
        self._listing("MLSD")

    def cmd_LIST(self, arg: str) -> None:
        self._listing("LIST")

    def cmd_NLST(self, arg: str) -> None:
        self._listing("NLST")


def make_loader(idle: float = 5) -> Loader:
    return Loader(retries=Retries(attempts=1), timeouts=Timeouts(connect=5, idle=idle, total=30))


def scripted(raw_server: Any, **options: Any) -> Any:
    return raw_server(lambda conn: ScriptedFtp(conn, **options).run())


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, phase: Phase) -> list[Event]:
        return [e for e in self.events if e.phase is phase]


async def test_multi_line_replies_are_reported_whole(raw_server: Any) -> None:
    server = scripted(
        raw_server,
        greeting=["220-Welcome.", "   Mirrors: none", "220-Be nice.", "220 Ready."],
        overrides={
            "PASS": ["230-Your quota:", "230-10 GB", " (approximately)", "230 Logged in."],
        },
        files={"f.txt": b"hello"},
    )
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.txt"), callback=rec)
    assert result.ok, result.error
    assert result.content == b"hello"
    replies = rec.of(Phase.CTL_RESPONSE_RECEIVED)
    assert replies[0].status == 220
    assert replies[0].message == "Welcome.\n   Mirrors: none\nBe nice.\nReady."
    assert replies[2].status == 230
    assert replies[2].message == "Your quota:\n10 GB\n (approximately)\nLogged in."


async def test_garbage_greeting_is_a_protocol_error(raw_server: Any) -> None:
    server = scripted(raw_server, greeting=["SSH-2.0-OpenSSH_9.6"])
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.txt"))
    assert isinstance(result.error, ProtocolError)
    assert "not an FTP reply" in str(result.error) and "SSH-2.0" in str(result.error)


async def test_garbage_mid_session(raw_server: Any) -> None:
    server = scripted(raw_server, overrides={"TYPE": "what is this\x00"})
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.txt"))
    assert isinstance(result.error, ProtocolError)


async def test_421_service_closing(raw_server: Any) -> None:
    server = scripted(raw_server, greeting=["421 Too many users, try later."])
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.txt"))
    assert isinstance(result.error, NetworkError)
    assert "421 Too many users" in str(result.error)
    assert result.error.transient


@pytest.mark.parametrize(
    ("cut", "final", "message"),
    [
        (4000, "", "closed the control connection"),  # the server died mid-transfer
        (4000, "426 Connection closed; transfer aborted.", "426"),
        (4000, "226 Transfer complete.", "ended after 4000 of 10000 bytes"),  # a lying server
    ],
)
async def test_server_closing_mid_transfer_leaves_no_file(
    raw_server: Any, tmp_path: Path, cut: int, final: str, message: str
) -> None:
    def session(conn: socket.socket) -> None:
        script = ScriptedFtp(conn, files={"big.bin": bytes(10000)}, cut=cut, final=final)
        if not final:
            script.overrides["RETR"] = lambda s, arg: (s.cmd_RETR(arg), STOP)[1]
        script.run()

    server = raw_server(session)
    target = tmp_path / "big.bin"
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/big.bin"), to=target)
    assert isinstance(result.error, NetworkError)
    assert message in str(result.error)
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a temporary one


async def test_pasv_address_of_another_host_is_not_followed(raw_server: Any) -> None:
    # Nothing listens on 127.0.0.2: following the reply would fail to connect.
    server = scripted(
        raw_server,
        overrides={"EPSV": "500 EPSV not understood."},
        pasv_host="127,0,0,2",
        files={"f.bin": b"\x00\x01\x02" * 1000},
    )
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.bin"), callback=rec)
    assert result.ok, result.error
    assert result.content == b"\x00\x01\x02" * 1000
    (note,) = rec.of(Phase.INTERMEDIATE_RESPONSE)
    assert "ignoring PASV address 127.0.0.2" in (note.message or "")


async def test_nlst_only_server(raw_server: Any) -> None:
    server = scripted(
        raw_server,
        overrides={"FEAT": "500 FEAT not understood."},
        listings={"NLST": b"a.png\r\nsong.mp3\r\nreadme\r\npub/deep.gif\r\n"},
    )
    rec = Recorder()
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/pub/"), callback=rec)
    assert result.ok, result.error
    sent = [e.message for e in rec.of(Phase.SENDING_REQUEST)]
    assert "LIST pub" in sent and "NLST pub" in sent and "MLSD pub" not in sent
    assert [e.name for e in load_listing(result.content or b"")] == [
        "a.png",
        "song.mp3",
        "readme",
        "deep.gif",
    ]
    document = Document(
        url=result.final_url,
        type="ftp-listing",
        content=result.content or b"",
        base_url=result.final_url,
    )
    assert [f.url.rsplit("/", 1)[1] for f in extract_listing(document) if f.kind != "link"] == [
        "a.png",
        "song.mp3",
        "deep.gif",
    ]


async def test_odd_list_formats(raw_server: Any) -> None:
    listing = (
        b"Directory of C:\\ftproot\\pub\r\n"
        b"01-05-23  09:15AM       <DIR>          Media Files\r\n"
        b"12-31-2023  11:59PM                 1234 Photo One.JPG\r\n"
        b"-rw-r--r--   1 ftp  ftp   99 Jan  1  2020 mixed unix.wav\r\n"
        b"total 3\r\n"
    )
    server = scripted(
        raw_server,
        overrides={"FEAT": ["211-Features:", " SIZE", "211 End"]},
        listings={"LIST": listing},
    )
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/pub/"))
    assert result.ok, result.error
    entries = load_listing(result.content or b"")
    assert [(e.name, e.type, e.size) for e in entries] == [
        ("Media Files", "dir", None),
        ("Photo One.JPG", "file", 1234),
        ("mixed unix.wav", "file", 99),
    ]


async def test_mlsd_refused_despite_feat_falls_back_to_list(raw_server: Any) -> None:
    server = scripted(
        raw_server,
        overrides={"FEAT": ["211-Features:", " MLST type*;size*;", "211 End"], "MLSD": "500 no."},
        listings={"LIST": b"-rw-r--r-- 1 a b 5 Jan  1 00:00 x.png\r\n"},
    )
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/"))
    assert [e.name for e in load_listing(result.content or b"")] == ["x.png"]


async def test_refused_data_connection(raw_server: Any, refused_port: int) -> None:
    server = scripted(
        raw_server,
        overrides={"EPSV": f"229 Entering Extended Passive Mode (|||{refused_port}|)"},
        files={"f.txt": b"x"},
    )
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f.txt"))
    assert isinstance(result.error, ConnectError)
    assert f"data connection to 127.0.0.1:{refused_port} failed" in str(result.error)


async def test_silent_server_hits_the_idle_timeout(raw_server: Any) -> None:
    from support.raw_server import hold

    server = scripted(raw_server, overrides={"USER": lambda s, arg: (hold(s.conn, 10), STOP)[1]})
    async with make_loader(idle=0.3) as ld:
        result = await ld.fetch(server.url("ftp", "/f.txt"))
    assert isinstance(result.error, IdleTimeout)
    assert "0.3" in str(result.error)


async def test_dropped_idle_connection_is_replaced(raw_server: Any) -> None:
    seen: list[int] = []

    def session(conn: socket.socket) -> None:
        seen.append(1)
        script = ScriptedFtp(conn, files={"f.txt": b"fresh"})
        if len(seen) == 1:
            # The first connection serves one file, then the server drops it while idle.
            script.overrides["RETR"] = lambda s, arg: (s.cmd_RETR(arg), STOP)[1]
        script.run()

    server = raw_server(session)
    rec = Recorder()
    async with make_loader() as ld:
        first = await ld.fetch(server.url("ftp", "/f.txt"))
        second = await ld.fetch(server.url("ftp", "/f.txt;type=i"), callback=rec)
    assert first.ok and second.ok, (first.error, second.error)
    assert second.content == b"fresh"
    assert server.connections == 2
    assert len(rec.of(Phase.CONNECTING_TO_SERVER)) == 1
    assert Phase.CONNECTION_CLOSED in [e.phase for e in rec.events]


def _skipping_preliminary(script: ScriptedFtp, body: bytes, replies: list[str]) -> None:
    """Answer a transfer with ``replies`` (no 150 first) and the body on the data connection."""
    assert script.listener is not None
    data, _ = script.listener.accept()
    script.listener.close()
    script.send(*replies)
    with data:
        data.sendall(body)


async def test_a_listing_that_skips_its_150_reports_its_226(raw_server: Any) -> None:
    listing = b"-rw-r--r-- 1 a b 5 Jan  1 00:00 x.png\r\n"
    server = scripted(
        raw_server,
        overrides={
            "FEAT": "500 no FEAT.",
            "LIST": lambda s, arg: _skipping_preliminary(s, listing, ["226 Listing follows."]),
        },
    )
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/"))
    assert result.ok, result.error
    assert [e.name for e in load_listing(result.content or b"")] == ["x.png"]
    assert (result.status, result.reason) == (226, "Listing follows.")


async def test_a_150_after_the_226_is_not_taken_for_the_next_reply(raw_server: Any) -> None:
    # A confused server: "226" then "150" for one RETR.  The stray 150 must not answer
    # the next request's first command on a pooled connection.
    server = scripted(
        raw_server,
        files={"f.txt": b"hello"},
        overrides={
            "RETR": lambda s, arg: _skipping_preliminary(
                s, b"hello", ["226 Transfer complete.", "150 Opening data connection."]
            )
        },
    )
    async with make_loader() as ld:
        first = await ld.fetch(server.url("ftp", "/f.txt"))
        second = await ld.fetch(server.url("ftp", "/f.txt;type=i"))  # not a cache hit
    assert (first.content, second.content) == (b"hello", b"hello"), (first.error, second.error)
    assert server.connections == 2  # the first connection was not pooled with a reply pending


async def test_a_preliminary_reply_to_type_is_a_protocol_error(raw_server: Any) -> None:
    server = scripted(raw_server, overrides={"TYPE": "150 Opening data connection."}, files={"f": b"x"})
    async with make_loader() as ld:
        result = await ld.fetch(server.url("ftp", "/f"))
    assert isinstance(result.error, ProtocolError)
    assert "a preliminary reply to TYPE I: 150 Opening data connection." in str(result.error)


async def test_a_failing_final_reply_leaves_the_connection_reusable(raw_server: Any) -> None:
    calls: list[str] = []

    def retr(script: ScriptedFtp, arg: str) -> None:
        calls.append(arg)
        script.final = "451 Local error in processing." if len(calls) == 1 else "226 Done."
        script.cmd_RETR(arg)

    server = scripted(raw_server, files={"f.txt": b"hello"}, overrides={"RETR": retr})
    async with make_loader() as ld:
        first = await ld.fetch(server.url("ftp", "/f.txt"))
        second = await ld.fetch(server.url("ftp", "/f.txt;type=i"))
    assert "451 Local error" in str(first.error)
    assert second.ok and second.content == b"hello", second.error
    # The 451 ended the exchange: the control connection is in step and is reused.
    assert server.connections == 1


async def test_a_command_cancelled_before_its_reply_abandons_the_connection(raw_server: Any) -> None:
    from loader_ftp import FtpSession
    from support.raw_server import hold

    calls: list[str] = []

    def pwd(script: ScriptedFtp, arg: str) -> object:
        calls.append(arg)
        if len(calls) == 1:
            hold(script.conn)  # the reply comes late (here: once the client hung up)
            return STOP
        script.cmd_PWD(arg)
        return None

    server = scripted(raw_server, overrides={"PWD": pwd})
    async with make_loader() as ld:
        async with FtpSession(ld, server.url("ftp", "/")) as ftp:
            with anyio.move_on_after(0.3):
                await ftp.pwd()
            # A late reply to the cancelled PWD must not answer this one.
            assert await ftp.pwd() == "/"
    assert server.connections == 2
