"""FTPS data connections against a scripted server that behaves like proftpd and pure-ftpd:
TLS on the data connection starts only after the transfer command's preliminary reply,
and only a handshake that resumes the control connection's TLS session is accepted."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from loader_ftp import FtpSession

from loader import Loader, NotFound, Phase, Retries, Timeouts

pytestmark = pytest.mark.anyio

FILES = {"f.bin": bytes(range(256)) * 300, "g.bin": b"second file"}


class StrictFtps:
    """One control connection: explicit FTPS, passive mode, session reuse required."""

    def __init__(self, conn: socket.socket, context: ssl.SSLContext, log: list[str]) -> None:
        self.control: socket.socket = conn
        self.context = context
        self.log = log
        self.reader = conn.makefile("rb")
        self.listener: socket.socket | None = None
        self.stored: dict[str, bytes] = {}

    def send(self, line: str) -> None:
        self.control.sendall(line.encode() + b"\r\n")

    def run(self) -> None:
        self.send("220 strict FTPS ready")
        while line := self.reader.readline():
            verb, _, arg = line.decode().rstrip("\r\n").partition(" ")
            verb = verb.upper()
            if verb == "AUTH":
                self.send("234 AUTH TLS ok")
                self.control = self.context.wrap_socket(self.control, server_side=True)
                self.reader = self.control.makefile("rb")
            elif verb == "USER":
                self.send("331 Password required")
            elif verb in ("PASS",):
                self.send("230 Logged in")
            elif verb in ("PBSZ", "PROT", "TYPE"):
                self.send(f"200 {verb} ok")
            elif verb == "SIZE":
                self.send(f"213 {len(FILES[arg])}" if arg in FILES else "550 No such file")
            elif verb == "EPSV":
                self.listener = socket.create_server(("127.0.0.1", 0))
                self.listener.settimeout(10)
                self.send(f"229 Entering Extended Passive Mode (|||{self.listener.getsockname()[1]}|)")
            elif verb in ("RETR", "STOR"):
                self.transfer(verb, arg)
            elif verb == "QUIT":
                self.send("221 Bye")
                return
            else:
                self.send("502 Not implemented")

    def transfer(self, verb: str, arg: str) -> None:
        assert self.listener is not None
        raw, _ = self.listener.accept()
        self.listener.close()
        raw.settimeout(10)
        if verb == "RETR" and arg not in FILES:
            raw.close()
            self.send("550 No such file")
            return
        # Like proftpd: the data connection's TLS starts only once the command came.
        self.send("150 Opening BINARY mode data connection")
        try:
            data = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.log.append(f"handshake failed: {exc}")
            raw.close()
            self.send("425 Unable to build data connection")
            return
        self.log.append(f"{verb} reused={data.session_reused}")
        if not data.session_reused:
            data.close()
            self.send("425 TLS session reuse required")
            return
        with data:
            if verb == "RETR":
                data.sendall(FILES[arg])
                try:
                    data.unwrap()  # close_notify; the client may just close
                except (ssl.SSLError, OSError):
                    pass
            else:
                chunks = []
                while chunk := data.recv(65536):
                    chunks.append(chunk)
                self.stored[arg] = b"".join(chunks)
                self.log.append(f"stored {len(self.stored[arg])}")
        self.send("226 Transfer complete")


@pytest.fixture
def strict_ftps(raw_server: Any, tmp_path: Path) -> tuple[Any, Path, list[str]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    log: list[str] = []
    server = raw_server(lambda conn: StrictFtps(conn, context, log).run())
    return server, ca_path, log


def make_loader(ca: Path) -> Loader:
    # A client that handshakes before sending RETR would wait for the connect timeout.
    return Loader(
        verify=str(ca), retries=Retries(attempts=1), timeouts=Timeouts(connect=3, idle=5, total=20)
    )


async def test_data_tls_starts_after_the_preliminary_reply_and_resumes_the_session(
    strict_ftps: tuple[Any, Path, list[str]],
) -> None:
    server, ca, log = strict_ftps
    async with make_loader(ca) as ld:
        first = await ld.fetch(server.url("ftps", "/f.bin"))
        second = await ld.fetch(server.url("ftps", "/g.bin"))  # a pooled control connection
    assert first.ok, first.error
    assert first.content == FILES["f.bin"] and second.content == FILES["g.bin"]
    assert log == ["RETR reused=True", "RETR reused=True"]
    assert first.status == 226


async def test_a_missing_file_over_ftps_is_not_found_at_once(
    strict_ftps: tuple[Any, Path, list[str]],
) -> None:
    server, ca, log = strict_ftps
    events: list[Any] = []
    async with make_loader(ca) as ld:
        result = await ld.fetch(server.url("ftps", "/missing.bin"), callback=events.append)
    assert isinstance(result.error, NotFound), result.error
    assert "550" in str(result.error)
    assert Phase.RETRY not in [e.phase for e in events]


async def test_upload_over_ftps_resumes_the_session(
    strict_ftps: tuple[Any, Path, list[str]],
) -> None:
    server, ca, log = strict_ftps
    payload = b"upload " * 5000
    async with make_loader(ca) as ld, FtpSession(ld, server.url("ftps", "/")) as ftp:
        assert await ftp.put([payload], "up.bin") == len(payload)
    assert log == ["STOR reused=True", f"stored {len(payload)}"]
