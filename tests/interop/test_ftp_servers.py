"""The FTP plugin against real, independently written servers: proftpd and pure-ftpd.

Each server runs once per module (``ftp_servers.py``), over plain FTP and explicit
FTPS; proftpd keeps its default of requiring the control connection's TLS session
to be resumed on data connections.  The command is run as a user runs it
(``python -m loader``), with ``-k`` over FTPS; the library API trusts the server's
CA through ``Loader(verify=<ca.pem>)``.  Skipped, with the reason, when
``tests/interop/install.sh`` has not been run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.interop import check_event_lines, run_loader, sha256_file, sha256_tree

from interop.ftp_servers import PASSWORD, USER, FtpInterop, ftp_server_running
from loader import Loader, NotFound, Phase, Retries, Timeouts

pytestmark = pytest.mark.anyio

SCHEMES = ["ftp", "ftps"]
#: The page's requisites as ``loader fetch`` saves them, and where each is served.
PAGE = {
    "site/index.html": "site/index.html",
    "site/logo.png": "site/logo.png",
    "site/ding.wav": "site/ding.wav",
    "_pub/media/photo.png": "pub/media/photo.png",
}


@pytest.fixture(scope="module", params=["proftpd", "pure-ftpd"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpInterop]:
    workdir = tmp_path_factory.mktemp(request.param)
    with ftp_server_running(request.param, workdir) as running:
        yield running


@pytest.fixture
def netrc(tmp_path: Path, server: FtpInterop) -> dict[str, str]:
    """The environment for a command that logs in as alice without credentials in URLs."""
    path = tmp_path / "netrc"
    path.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    path.chmod(0o600)
    return {"NETRC": str(path)}


def loader_args(scheme: str) -> list[str]:
    return ["-k"] if scheme == "ftps" else []


def fetch_page(server: FtpInterop, scheme: str, tmp_path: Path, *, login: bool,
               env: dict[str, str] | None = None) -> tuple[Any, Path, Path]:
    out, events = tmp_path / "out", tmp_path / "events.jsonl"
    done = run_loader(
        "fetch", *loader_args(scheme), "-q", "--retries", "0", "-o", str(out), "--events", str(events),
        server.url("/site/index.html", scheme=scheme, login=login), env=env,
    )
    return done, out / f"{scheme}_127.0.0.1_{server.port}", events


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fetch_page_byte_exact(server: FtpInterop, scheme: str, tmp_path: Path,
                               netrc: dict[str, str]) -> None:
    done, site, events = fetch_page(server, scheme, tmp_path, login=False, env=netrc)
    assert done.returncode == 0, (done.stdout, done.stderr, server.log.read_text()[-2000:])
    saved = sha256_tree(site)
    served = sha256_tree(server.root)
    for local, remote in PAGE.items():
        assert saved.get(local) == served[remote], (local, sorted(saved))
    by_request = check_event_lines(events)
    assert len(by_request) == len(PAGE)
    for request_events in by_request.values():
        complete = request_events[-1]
        assert complete["phase"] == "REQUEST_COMPLETE"
        assert complete["status"] == 226, request_events
    manifest = json.loads((site / "site/index.html.manifest.json").read_text())
    statuses = _statuses(manifest)
    assert statuses and set(statuses) == {226}, manifest


def _statuses(value: Any) -> list[int]:
    """Every ``status`` in a manifest, wherever it sits."""
    found: list[int] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "status" and isinstance(item, int):
                found.append(item)
            else:
                found.extend(_statuses(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_statuses(item))
    return found


@pytest.mark.parametrize("scheme", SCHEMES)
def test_page_url_with_credentials_fetches_every_requisite(
    server: FtpInterop, scheme: str, tmp_path: Path
) -> None:
    done, site, events = fetch_page(server, scheme, tmp_path, login=True)
    assert done.returncode == 0, (done.stdout, done.stderr)
    saved = sha256_tree(site)
    served = sha256_tree(server.root)
    assert {local: saved.get(local) for local in PAGE} == {name: served[remote] for name, remote in PAGE.items()}
    check_event_lines(events)
    assert PASSWORD not in events.read_text()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_ftp_ls(server: FtpInterop, scheme: str) -> None:
    done = run_loader("ftp", "ls", *loader_args(scheme), "-q", server.url("/pub/media/", scheme=scheme))
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split("\n")) == sorted(
        ["", "chime.wav", "icon.gif", "notes.txt", "photo.png", "sub/"]
    )
    done = run_loader("ftp", "ls", *loader_args(scheme), "-q", "--json",
                      server.url("/pub/", scheme=scheme))
    records = {r["name"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert records["binary.bin"]["size"] == (server.root / "pub/binary.bin").stat().st_size
    assert records["media"]["type"] == "dir"
    assert "naïve café.txt" in records


@pytest.mark.parametrize("scheme", SCHEMES)
def test_get_and_resume(server: FtpInterop, scheme: str, tmp_path: Path) -> None:
    served = server.root / "pub/binary.bin"
    whole, partial = tmp_path / "whole.bin", tmp_path / "partial.bin"
    url = server.url("/pub/binary.bin", scheme=scheme)
    done = run_loader("ftp", "get", *loader_args(scheme), "-q", url, "-o", str(whole))
    assert done.returncode == 0, done.stderr
    assert sha256_file(whole) == sha256_file(served)
    partial.write_bytes(served.read_bytes()[:50_000])
    done = run_loader("ftp", "get", *loader_args(scheme), "-q", url, "-o", str(partial), "-c")
    assert done.returncode == 0, done.stderr
    assert f"{served.stat().st_size - 50_000} bytes received" in done.stderr
    assert sha256_file(partial) == sha256_file(served)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_mkdir_put_rm_rmdir(server: FtpInterop, scheme: str, tmp_path: Path) -> None:
    local = tmp_path / "upload.bin"
    local.write_bytes(bytes(range(256)) * 1000)
    directory = f"/incoming-{scheme}"
    common = [*loader_args(scheme), "-q"]
    steps = [
        ("mkdir", [server.url(directory, scheme=scheme)]),
        ("put", [str(local), server.url(directory + "/", scheme=scheme)]),
    ]
    for command, args in steps:
        done = run_loader("ftp", command, *common, *args)
        assert done.returncode == 0, (command, done.stderr)
    remote = server.root / directory.lstrip("/") / "upload.bin"
    assert sha256_file(remote) == sha256_file(local)
    for command, path in (("rm", directory + "/upload.bin"), ("rmdir", directory)):
        done = run_loader("ftp", command, *common, server.url(path, scheme=scheme))
        assert done.returncode == 0, (command, done.stderr)
    assert not (server.root / directory.lstrip("/")).exists()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_missing_file_is_not_found(server: FtpInterop, scheme: str, tmp_path: Path) -> None:
    url = server.url("/site/missing.html", scheme=scheme)
    done = run_loader("fetch", *loader_args(scheme), "-q", "--retries", "0", "-o", str(tmp_path), url)
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "550" in done.stderr
    done = run_loader("ftp", "get", *loader_args(scheme), "-q", url, "-o", str(tmp_path / "x"))
    assert done.returncode != 0 and "550" in done.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_library_verified_tls_and_not_found(server: FtpInterop, scheme: str) -> None:
    events: list[Any] = []
    # Timeouts far above a reply's round trip: a handshake deadlock would show as a
    # ConnectTimeout, not as the NotFound asserted below.
    timeouts = Timeouts(connect=30, idle=30, total=60)
    async with Loader(verify=str(server.ca), retries=Retries(attempts=3, backoff=0),
                      timeouts=timeouts) as ld:
        missing = await ld.fetch(server.url("/pub/missing.bin", scheme=scheme),
                                 callback=events.append)
        binary = await ld.fetch(server.url("/pub/binary.bin", scheme=scheme))
        listing = await ld.fetch(server.url("/pub/media/", scheme=scheme))
    assert isinstance(missing.error, NotFound), missing.error
    assert missing.error.status == 550
    assert Phase.RETRY not in [e.phase for e in events]
    assert binary.ok, binary.error
    assert binary.content == (server.root / "pub/binary.bin").read_bytes()
    assert binary.status == 226
    assert listing.ok and listing.status == 226, listing.error
    if scheme == "ftps" and server.name == "proftpd":
        # proftpd (default TLSOptions) accepted the data connections because they
        # resumed the control connection's session, TLS 1.3 tickets included.
        tls_log = (server.log.parent / "proftpd-tls.log").read_text()
        assert "client reused TLS session for data connection" in tls_log
        assert "TLSv1.3 data connection accepted" in tls_log
