"""proftpd and pure-ftpd on 127.0.0.1 for the FTP interop tests, configured per test run.

``tests/interop/install-ftp.sh`` unpacks both (they conflict as packages) under
``/opt/loader-interop/<package>``; each runs in the foreground as root with a
configuration generated in a temporary directory, serving a copy of
``fixtures/ftp`` as the home of one user, ``alice`` / ``secret`` (a virtual
user: proftpd's ``AuthUserFile``, pure-ftpd's ``pure-pw`` database) mapped to
``nobody``, so the daemons drop root as soon as she logs in.  Both offer
explicit FTPS (``AUTH TLS``) with a certificate from a ``trustme`` CA; proftpd
keeps its default ``TLSOptions``, i.e. data connections must resume the
control connection's TLS session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.interop import UNPACKED, ServerProcess, free_port, require_program

__all__ = ["FIXTURES", "PASSWORD", "USER", "FtpInterop", "ftp_server_running"]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ftp"
USER = "alice"
PASSWORD = "secret"

_PROFTPD = UNPACKED / "proftpd-core"
_PUREFTPD = UNPACKED / "pure-ftpd"


@dataclass(frozen=True)
class FtpInterop:
    """A running server: where it listens, what it serves, the CA that signed its certificate."""

    name: str
    port: int
    root: Path
    ca: Path
    log: Path

    def url(self, path: str = "/", *, scheme: str = "ftp", login: bool = True) -> str:
        """``ftp(s)://alice:secret@127.0.0.1:PORT/path`` (``login=False``: without credentials)."""
        auth = f"{USER}:{PASSWORD}@" if login else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/{path.lstrip('/')}"


def _served_tree() -> Path:
    """A copy of fixtures/ftp that the unprivileged user the servers switch to may write.

    pytest's tmp_path lives under a 0700 directory of root's; this one is
    world-traversable and owned by ``nobody``.
    """
    base = Path(tempfile.mkdtemp(prefix="loader-ftp-interop-"))
    base.chmod(0o755)
    root = base / "home"
    shutil.copytree(FIXTURES, root)
    nobody = pwd.getpwnam("nobody")
    for path in [root, *root.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    return root


def _certificate(workdir: Path) -> tuple[Path, Path, Path]:
    """``(ca.pem, cert.pem, key.pem)`` from a fresh trustme CA, for 127.0.0.1 and localhost."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path, cert_path, key_path = workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def _password_hash(password: str) -> str:
    return subprocess.run(
        ["openssl", "passwd", "-6", password], capture_output=True, text=True, check=True
    ).stdout.strip()


def _passive_range() -> tuple[int, int]:
    # Ports near one that was just free; the servers try the next one when one is taken.
    start = free_port()
    start = min(start, 65535 - 40)
    return start, start + 40


@contextmanager
def proftpd(workdir: Path) -> Iterator[FtpInterop]:
    """proftpd with mod_tls (session reuse required on data connections, its default)."""
    program = require_program("proftpd", _PROFTPD / "usr/sbin/proftpd")
    modules = _PROFTPD / "usr/lib/proftpd"
    root = _served_tree()
    ca, cert, key = _certificate(workdir)
    nobody = pwd.getpwnam("nobody")
    passwd = workdir / "ftpd.passwd"
    passwd.write_text(
        f"{USER}:{_password_hash(PASSWORD)}:{nobody.pw_uid}:{nobody.pw_gid}::{root}:/bin/sh\n"
    )
    group = workdir / "ftpd.group"
    group.write_text(f"nogroup:x:{nobody.pw_gid}:\n")
    for path in (passwd, group):
        path.chmod(0o600)
    port = free_port()
    low, high = _passive_range()
    log = workdir / "proftpd.log"
    config = workdir / "proftpd.conf"
    config.write_text(
        f"""
ModulePath {modules}
LoadModule mod_tls.c
ServerType standalone
ServerName "loader interop proftpd"
DefaultServer on
DefaultAddress 127.0.0.1
SocketBindTight on
UseIPv6 off
Port {port}
PassivePorts {low} {high}
User nobody
Group nogroup
PidFile {workdir}/proftpd.pid
ScoreboardFile {workdir}/proftpd.scoreboard
DelayTable none
WtmpLog off
UseReverseDNS off
SystemLog {log}
TransferLog none
AuthOrder mod_auth_file.c
AuthUserFile {passwd}
AuthGroupFile {group}
RequireValidShell off
DefaultRoot ~
AllowOverwrite on
MaxInstances 60
<Limit SITE_CHMOD>
  DenyAll
</Limit>
TLSEngine on
TLSLog {workdir}/proftpd-tls.log
TLSProtocol TLSv1.2 TLSv1.3
TLSRequired off
TLSRSACertificateFile {cert}
TLSRSACertificateKeyFile {key}
TLSVerifyClient off
TLSSessionCache internal:
"""
    )
    server = ServerProcess([program, "-n", "-q", "-c", str(config)], port=port, log=log)
    try:
        yield FtpInterop("proftpd", port, root, ca, log)
    finally:
        server.stop()
        shutil.rmtree(root.parent, ignore_errors=True)


@contextmanager
def pureftpd(workdir: Path) -> Iterator[FtpInterop]:
    """pure-ftpd with a virtual user (pure-pw) and TLS offered (``-Y 1``)."""
    program = require_program("pure-ftpd", _PUREFTPD / "usr/sbin/pure-ftpd")
    pure_pw = require_program("pure-pw", _PUREFTPD / "usr/bin/pure-pw")
    root = _served_tree()
    ca, cert, key = _certificate(workdir)
    nobody = pwd.getpwnam("nobody")
    users, database = workdir / "pureftpd.passwd", workdir / "pureftpd.pdb"
    subprocess.run(
        [pure_pw, "useradd", USER, "-f", str(users),
         "-u", str(nobody.pw_uid), "-g", str(nobody.pw_gid), "-d", str(root)],
        input=f"{PASSWORD}\n{PASSWORD}\n", capture_output=True, text=True, check=True,
    )
    # pure-pw hashes with libsodium's argon2, seconds per login on a busy machine;
    # a SHA-512 crypt hash (which pure-ftpd checks with crypt()) takes milliseconds.
    fields = users.read_text().rstrip("\n").split(":")
    fields[1] = _password_hash(PASSWORD)
    users.write_text(":".join(fields) + "\n")
    subprocess.run(
        [pure_pw, "mkdb", str(database), "-f", str(users)],
        capture_output=True, text=True, check=True,
    )
    port = free_port()
    low, high = _passive_range()
    log = workdir / "pure-ftpd.log"
    server = ServerProcess(
        [
            program,
            "-S", f"127.0.0.1,{port}",
            "-l", f"puredb:{database}",
            "-E",  # no anonymous logins
            "-A",  # every user chrooted to their home
            "-H",  # no reverse DNS
            "-p", f"{low}:{high}",
            "-Y", "1",  # TLS offered, plain FTP allowed
            "-2", f"{cert},{key}",
            "-u", "1",  # virtual users may map to any non-root uid
            "-c", "60",
            "-C", "60",
        ],
        port=port,
        log=log,
    )
    try:
        yield FtpInterop("pure-ftpd", port, root, ca, log)
    finally:
        server.stop()
        shutil.rmtree(root.parent, ignore_errors=True)


SERVERS = {"proftpd": proftpd, "pure-ftpd": pureftpd}


@contextmanager
def ftp_server_running(name: str, workdir: Path) -> Iterator[FtpInterop]:
    """Start the named server (``proftpd`` or ``pure-ftpd``) for the block."""
    with SERVERS[name](workdir) as server:
        yield server
