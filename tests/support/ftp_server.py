"""Real FTP servers (pyftpdlib) on 127.0.0.1, serving a copy of ``fixtures/ftp/``.

One pyftpdlib I/O loop runs in a daemon thread for the whole test session and
serves several servers, each a differently configured real server:

* ``ftp_server``: a modern server (FEAT, MLSD, EPSV, SIZE, REST).
  Users: ``anonymous`` (read-only; ``private/`` may be listed but not read),
  ``alice`` / ``secret`` (read and write everywhere), ``bob`` / ``p@ss:w/rd``
  (read-only; a password that needs percent-encoding in a URL).
* ``ftp_legacy_server``: an old server behind a NAT: no MLSD/MLST (LIST only),
  no EPSV, and PASV replies that name ``127.0.0.2`` — an address a client must
  not follow (nothing listens there).
* ``ftps_server``: explicit FTPS (``AUTH TLS``, ``PROT P`` required) with a
  self-signed certificate for ``127.0.0.1``/``localhost``; ``ftps_ca`` is the
  certificate's path, to trust it.  Skipped when pyOpenSSL is missing.

All serve the same tree, copied once per session to a temporary directory
(``.root``), so write tests never touch the repository; tests that write use
``ftp_scratch`` (a fresh directory under the root, named per test).
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

__all__ = [
    "ftp_legacy_server",
    "ftp_scratch",
    "ftp_server",
    "ftp_servers",
    "ftps_ca",
    "ftps_server",
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ftp"

USERS = {"alice": "secret", "bob": "p@ss:w/rd"}


@dataclass(frozen=True)
class FtpServerInfo:
    """Where a test FTP server listens and what it serves."""

    host: str
    port: int
    root: Path
    scheme: str = "ftp"

    def url(self, path: str = "/", *, user: str | None = None, password: str | None = None) -> str:
        """``ftp://[user[:password]@]127.0.0.1:PORT`` + ``path`` (credentials percent-encoded)."""
        auth = ""
        if user is not None:
            auth = quote(user, safe="")
            if password is not None:
                auth += ":" + quote(password, safe="")
            auth += "@"
        if not path.startswith("/"):
            path = "/" + path
        return f"{self.scheme}://{auth}{self.host}:{self.port}{path}"

    def alice(self, path: str = "/") -> str:
        """The URL of ``path`` logged in as alice (who may write)."""
        return self.url(path, user="alice", password=USERS["alice"])


class _Servers:
    """The session's pyftpdlib I/O loop, its servers and its thread."""

    def __init__(self, root: Path) -> None:
        from pyftpdlib.ioloop import IOLoop

        self.root = root
        self.ioloop = IOLoop()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.servers: dict[str, FtpServerInfo] = {}

    def authorizer(self) -> object:
        from pyftpdlib.authorizers import DummyAuthorizer

        root = str(self.root)
        auth = DummyAuthorizer()
        auth.add_anonymous(root, perm="elr")
        auth.override_perm("anonymous", str(self.root / "private"), perm="el", recursive=True)
        auth.add_user("alice", USERS["alice"], root, perm="elradfmwMT")
        auth.add_user("bob", USERS["bob"], root, perm="elr")
        return auth

    def add(self, name: str, handler: type, scheme: str = "ftp") -> FtpServerInfo:
        from pyftpdlib.servers import FTPServer

        handler.authorizer = self.authorizer()
        server = FTPServer(("127.0.0.1", 0), handler, ioloop=self.ioloop)
        host, port = server.socket.getsockname()[:2]
        info = FtpServerInfo(host=host, port=port, root=self.root, scheme=scheme)
        self.servers[name] = info
        return info

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ftp-servers", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.ioloop.loop(timeout=0.01, blocking=False)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.ioloop.close()


def _handlers() -> dict[str, type]:
    from pyftpdlib.handlers import FTPHandler

    class Modern(FTPHandler):
        # Tests expect a refused login at once, not after pyftpdlib's 3 s pause.
        auth_failed_timeout = 0
        banner = "loader test server ready."
        timeout = 30

    legacy_cmds = {
        k: v for k, v in FTPHandler.proto_cmds.items() if k not in ("MLSD", "MLST", "EPSV", "EPRT")
    }

    class Legacy(Modern):
        proto_cmds = legacy_cmds
        masquerade_address = "127.0.0.2"
        banner = "old server behind a NAT."

    return {"modern": Modern, "legacy": Legacy}


def _make_certificate(directory: Path) -> Path:
    """A self-signed certificate (and key, in the same PEM) for 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loader test FTPS")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "ftps-cert.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(scope="session")
def ftp_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Servers]:
    pytest.importorskip("pyftpdlib")
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    base = tmp_path_factory.mktemp("ftp")
    root = base / "root"
    shutil.copytree(FIXTURES, root)
    servers = _Servers(root)
    handlers = _handlers()
    servers.add("modern", handlers["modern"])
    servers.add("legacy", handlers["legacy"])
    try:
        from pyftpdlib.handlers import TLS_FTPHandler
    except ImportError:  # pyOpenSSL is missing
        TLS_FTPHandler = None  # noqa: N806
    if TLS_FTPHandler is not None:
        cert = _make_certificate(base)

        class Secure(TLS_FTPHandler):  # type: ignore[misc,valid-type]
            auth_failed_timeout = 0
            certfile = str(cert)
            tls_control_required = True
            tls_data_required = True
            banner = "loader FTPS test server ready."

        servers.add("ftps", Secure, scheme="ftps")
        servers.cert = cert  # type: ignore[attr-defined]
    servers.start()
    yield servers
    servers.close()


@pytest.fixture(scope="session")
def ftp_server(ftp_servers: _Servers) -> FtpServerInfo:
    """A modern FTP server (MLSD, EPSV …) on 127.0.0.1 serving a copy of ``fixtures/ftp``."""
    return ftp_servers.servers["modern"]


@pytest.fixture(scope="session")
def ftp_legacy_server(ftp_servers: _Servers) -> FtpServerInfo:
    """An old server: LIST only, PASV only, and PASV replies naming 127.0.0.2."""
    return ftp_servers.servers["legacy"]


@pytest.fixture(scope="session")
def ftps_server(ftp_servers: _Servers) -> FtpServerInfo:
    """An explicit-FTPS server (TLS required on control and data) with a self-signed certificate."""
    if "ftps" not in ftp_servers.servers:
        pytest.skip("FTPS tests need pyOpenSSL (pyftpdlib's TLS handler)")
    return ftp_servers.servers["ftps"]


@pytest.fixture(scope="session")
def ftps_ca(ftps_server: FtpServerInfo, ftp_servers: _Servers) -> Path:
    """The FTPS server's self-signed certificate, to trust it."""
    return ftp_servers.cert  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def ftp_scratch(ftp_server: FtpServerInfo, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty directory on the servers for one test; yields its server path (``/scratch-…``)."""
    name = f"scratch-{uuid.uuid4().hex[:10]}"
    path = ftp_server.root / name
    path.mkdir()
    yield "/" + name
    shutil.rmtree(path, ignore_errors=True)
