"""Real HTTP-side servers for the interop suite: nginx, lighttpd, tinyproxy, redis.

Each launcher writes a configuration into a temporary directory, starts the
Debian-packaged program in the foreground on 127.0.0.1 (free ports), and stops it
by PID when its context ends (:func:`tests.support.interop.running`).  Logs, PID
files and temporary paths all stay inside that directory, so nothing the packages
installed system-wide is read or written.

The served tree (:func:`build_site`) is the demo page of ``fixtures/demo/http``
without its lines for other servers, a copy of it under ``/auth/`` behind basic
auth, a large random file for ranges and resuming, and a hostile page whose
``<base>`` points at a Redis port.

:class:`WebServerChecks` holds the checks every web server gets; they run the
``loader`` command as a user would (:func:`run_fetch`) or the library, compare
what was saved with the served tree by sha256, check the event grammar, and ask
the server's own access log (tagged per test with :data:`TAG_HEADER`) what went
over the wire: gzip, HTTP/2, a 206 for the second half on resume, the user.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme

from tests.support.interop import (
    ServerProcess,
    check_event_lines,
    free_port,
    require_program,
    run_loader,
    running,
    sha256_file,
    sha256_tree,
    wait_for_port,
)

__all__ = [
    "AUTH_PASSWORD", "AUTH_USER", "BIG_SIZE", "DEMO_FILES", "SAVED_FILES", "REDIS_PORT", "TAG_HEADER", "Access",
    "Certificates", "Fetched", "HttpServer", "WebServerChecks", "assert_same_files",
    "assert_versions", "build_site", "loader_env", "make_certificates", "new_tag",
    "page_directory", "redis_command", "run_fetch", "run_lighttpd", "run_nginx", "run_redis",
    "run_tinyproxy",
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
AUTH_USER = "carol"
AUTH_PASSWORD = "secret"
#: Large enough that a download spans many reads and a resume skips a real part.
BIG_SIZE = 5 * 1024 * 1024
#: Redis's own port: the port policy refuses well-known datastore ports, not random ones.
REDIS_PORT = 6379
LIGHTTPD_MODULES = Path("/usr/lib/lighttpd")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")

MIME_TYPES = {
    ".html": "text/html", ".css": "text/css", ".png": "image/png", ".gif": "image/gif",
    ".wav": "audio/wav", ".txt": "text/plain", ".bin": "application/octet-stream",
}


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA (``ca``: PEM for ``SSL_CERT_FILE``) and a server cert for 127.0.0.1."""

    ca: Path
    chain: Path
    key: Path


@dataclass(frozen=True)
class Access:
    """One line of a server's access log (both servers write the same fields)."""

    protocol: str
    status: int
    method: str
    path: str
    size: int
    range: str
    user: str


def _logged(field: str) -> str:
    """An access-log field, with the servers' "-" for "none" as an empty string."""
    return "" if field == "-" else field


@dataclass
class HttpServer:
    """A running web server: its plain and TLS origins, served tree and access log."""

    name: str
    http: str
    https: str
    root: Path
    access_log: Path
    process: ServerProcess

    def accesses(self, tag: str, *, until: Callable[[list[Access]], bool] = bool,
                 patience: float = 10.0) -> list[Access]:
        """The logged requests that carried ``TAG_HEADER: tag``, once ``until`` holds for them.

        A tag, not a position in the log: lighttpd writes its access log in
        batches, so an earlier test's lines may land after this test began.
        Nothing here measures time; it only waits (up to ``patience`` seconds)
        for lines that must come.
        """
        deadline = time.monotonic() + patience
        while True:
            records = []
            if self.access_log.exists():
                for line in self.access_log.read_text().splitlines():
                    fields = line.split("\t")
                    if len(fields) == 8 and fields[7] == tag:
                        protocol, status, method, path, size, range_, user, _ = fields
                        records.append(Access(protocol, int(status), method, path,
                                              int(size) if size.isdigit() else 0,
                                              _logged(range_), _logged(user)))
            if until(records) or time.monotonic() > deadline:
                return records
            time.sleep(0.05)


def loader_env(certs: Certificates, proxy: str | None = None) -> dict[str, str]:
    """The environment for ``run_loader``: the test CA trusted, proxies as asked.

    Every proxy variable is set (empty unless ``proxy``): an empty one counts as
    unset to httpx and to the loader, so a proxy or ``NO_PROXY`` of the machine
    running the tests cannot reroute or exempt 127.0.0.1.
    """
    env = {name: "" for lower in PROXY_VARIABLES for name in (lower, lower.upper())}
    env["SSL_CERT_FILE"] = str(certs.ca)
    if proxy is not None:
        for name in ("http_proxy", "https_proxy"):
            env[name] = env[name.upper()] = proxy
    return env


def make_certificates(directory: Path) -> Certificates:
    """Write a trustme CA and a server certificate for 127.0.0.1 and localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    paths = Certificates(directory / "ca.pem", directory / "server-chain.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(paths.ca))
    server.private_key_pem.write_to_path(str(paths.key))
    with open(paths.chain, "wb") as f:
        for blob in server.cert_chain_pems:
            f.write(blob.bytes())
    return paths


def _demo_page() -> str:
    """The demo page without the lines that name other servers or a missing file.

    Its ``{{ALT}}``/``{{FTP}}``/``{{GOPHER}}`` placeholders belong to the demo
    command, and the deliberately missing image would make every fetch exit 1.
    """
    lines = (FIXTURES / "demo" / "http" / "index.html").read_text().splitlines(keepends=True)
    return "".join(line for line in lines if "{{" not in line and "missing" not in line)


HOSTILE_PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hostile</title>
<base href="gopher://127.0.0.1:{REDIS_PORT}/"></head>
<body>
<!-- Each of these, sent, is a Redis command: a Gopher selector or an HTTP request
     line ends in CRLF. -->
<img src="1FLUSHALL" alt="gopher selector FLUSHALL">
<img src="http://127.0.0.1:{REDIS_PORT}/FLUSHALL" alt="http to the redis port">
</body></html>
"""


def build_site(root: Path) -> Path:
    """Write the served tree into ``root`` (see the module docstring) and return it."""
    demo = FIXTURES / "demo" / "http"
    for area in (root, root / "auth"):
        area.mkdir(parents=True, exist_ok=True)
        for sub in ("css", "img", "sounds"):
            shutil.copytree(demo / sub, area / sub, dirs_exist_ok=True)
        (area / "index.html").write_text(_demo_page())
    # Seeded: a failure reproduces with the same bytes.
    (root / "big.bin").write_bytes(random.Random(20261203).randbytes(BIG_SIZE))
    (root / "hostile.html").write_text(HOSTILE_PAGE)
    return root


def two_free_ports() -> tuple[int, int]:
    """Two different free ports (one free port asked twice may come back twice)."""
    first = free_port()
    while (second := free_port()) == first:
        pass
    return first, second


def _nginx_types() -> str:
    return "\n".join(f"        {mime} {ext[1:]};" for ext, mime in MIME_TYPES.items())


@contextmanager
def run_nginx(tmp: Path, site: Path, certs: Certificates) -> Iterator[HttpServer]:
    """nginx: HTTP/1.1 on one port, TLS with HTTP/2 on another; gzip; ``/auth/`` basic auth."""
    program = require_program("nginx")
    tmp.mkdir(parents=True, exist_ok=True)
    plain, tls = two_free_ports()
    # nginx reads {PLAIN} entries in auth_basic_user_file (its documented scheme list).
    (tmp / "htpasswd").write_text(f"{AUTH_USER}:{{PLAIN}}{AUTH_PASSWORD}\n")
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / temp).mkdir(exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
# Root's workers must read a root-owned temporary tree (ignored when not root).
user root;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    types {{
{_nginx_types()}
    }}
    default_type application/octet-stream;
    # Tab-separated, the same fields as lighttpd's (see Access).
    log_format interop '$server_protocol\t$status\t$request_method\t$request_uri\t$body_bytes_sent\t$http_range\t$remote_user\t$http_x_interop_test';
    access_log {tmp}/access.log interop;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    keepalive_timeout 30;
    gzip on;
    gzip_min_length 1;
    gzip_types text/css;
    server {{
        listen 127.0.0.1:{plain};
        listen 127.0.0.1:{tls} ssl http2;
        server_name localhost;
        ssl_certificate {certs.chain};
        ssl_certificate_key {certs.key};
        root {site};
        location /auth/ {{
            auth_basic "interop";
            auth_basic_user_file {tmp}/htpasswd;
        }}
    }}
}}
""")
    # -e: the error log from the very start, before the config names it (the
    # compiled-in /var/log/nginx/error.log is not writable for a non-root user).
    args = [program, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "error.log"),
            "-g", "daemon off;"]
    with running(args, port=plain, log=tmp / "stdout.log") as process:
        yield HttpServer("nginx", f"http://127.0.0.1:{plain}", f"https://127.0.0.1:{tls}",
                         site, tmp / "access.log", process)


@contextmanager
def run_lighttpd(tmp: Path, site: Path, certs: Certificates) -> Iterator[HttpServer]:
    """lighttpd: HTTP/1.1 and TLS (HTTP/2 by ALPN); mod_deflate gzip; ``/auth/`` basic auth."""
    program = require_program("lighttpd")
    for module, package in (("mod_openssl", "lighttpd-mod-openssl"), ("mod_deflate", "lighttpd-mod-deflate")):
        if not (LIGHTTPD_MODULES / f"{module}.so").is_file():
            pytest.skip(f"lighttpd's {module} is not installed ({package}; run tests/interop/install.sh)")
    tmp.mkdir(parents=True, exist_ok=True)
    plain, tls = two_free_ports()
    (tmp / "users").write_text(f"{AUTH_USER}:{AUTH_PASSWORD}\n")
    (tmp / "deflate").mkdir(exist_ok=True)
    mimes = ", ".join(f'"{ext}" => "{mime}"' for ext, mime in MIME_TYPES.items())
    conf = tmp / "lighttpd.conf"
    conf.write_text(f"""
server.modules = ("mod_openssl", "mod_auth", "mod_authn_file", "mod_deflate", "mod_accesslog")
server.document-root = "{site}"
server.bind = "127.0.0.1"
server.port = {plain}
server.errorlog = "{tmp}/error.log"
accesslog.filename = "{tmp}/access.log"
accesslog.format = "%H\t%s\t%m\t%U\t%b\t%{{Range}}i\t%u\t%{{X-Interop-Test}}i"
server.feature-flags += ("server.h2proto" => "enable")
mimetype.assign = ({mimes})
index-file.names = ("index.html")
deflate.mimetypes = ("text/html", "text/css")
deflate.allowed-encodings = ("gzip")
deflate.cache-dir = "{tmp}/deflate"
auth.backend = "plain"
auth.backend.plain.userfile = "{tmp}/users"
auth.require = ("/auth/" => ("method" => "basic", "realm" => "interop", "require" => "valid-user"))
$SERVER["socket"] == "127.0.0.1:{tls}" {{
    ssl.engine = "enable"
    ssl.pemfile = "{certs.chain}"
    ssl.privkey = "{certs.key}"
}}
""")
    args = [program, "-D", "-f", str(conf)]
    with running(args, port=plain, log=tmp / "stdout.log") as process:
        wait_for_port(tls, process=process.process)
        yield HttpServer("lighttpd", f"http://127.0.0.1:{plain}", f"https://127.0.0.1:{tls}",
                         site, tmp / "access.log", process)


@contextmanager
def run_tinyproxy(tmp: Path) -> Iterator[tuple[str, Path]]:
    """tinyproxy as a forward proxy on 127.0.0.1; yields its URL and its log file."""
    program = require_program("tinyproxy")
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = tmp / "tinyproxy.log"
    conf = tmp / "tinyproxy.conf"
    # No ConnectPort line: CONNECT is allowed to any port (the TLS servers' are random).
    conf.write_text(f"""
Port {port}
Listen 127.0.0.1
Timeout 60
LogFile "{log}"
LogLevel Info
PidFile "{tmp}/tinyproxy.pid"
MaxClients 50
Allow 127.0.0.1
DisableViaHeader Yes
""")
    args = [program, "-d", "-c", str(conf)]
    with running(args, port=port, log=tmp / "stdout.log"):
        yield f"http://127.0.0.1:{port}", log


@contextmanager
def run_redis(tmp: Path, port: int = REDIS_PORT) -> Iterator[int]:
    """redis-server on 127.0.0.1:``port`` with no persistence; yields the port."""
    program = require_program("redis-server")
    tmp.mkdir(parents=True, exist_ok=True)
    args = [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(tmp), "--daemonize", "no"]
    with running(args, port=port, log=tmp / "redis.log"):
        yield port


def redis_command(port: int, *words: str) -> bytes:
    """Send one command in RESP (Redis's own protocol); return the raw reply.

    A reply is one line (``+OK``, ``-ERR …``, ``:1``, ``$-1`` for nil) or a bulk
    string, ``$LENGTH`` and that many bytes; the replies used here are no other.
    """
    message = f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(message.encode())
        reply = sock.makefile("rb")
        head = reply.readline()
        if head.startswith(b"$") and not head.startswith(b"$-"):
            return head + reply.read(int(head[1:]) + 2)
        return head


# -- running the loader and checking what it saved ---------------------------------

#: The demo page and what its fetch asks for (default kinds: images and sounds), relative
#: to the page's directory; the stylesheet is fetched too, for its url()s.  Not
#: photo-2x.png: a browser at DPR 1 picks photo-1x.png of the srcset.
DEMO_FILES = frozenset({
    "index.html", "sounds/beep.wav", "sounds/chime.wav",
    *(f"img/{name}" for name in ("bg.png", "dot.gif", "favicon.png", "inline.png",
                                 "logo.png", "photo-1x.png", "wide.png")),
})
#: What the fetch saves: those and the stylesheet it downloaded (an offline copy needs it).
SAVED_FILES = DEMO_FILES | {"css/site.css"}


#: A request header both servers log, naming the test that sent the request.
TAG_HEADER = "X-Interop-Test"


def new_tag() -> str:
    """A tag no other request carries (see :func:`run_fetch`)."""
    return uuid.uuid4().hex


@dataclass
class Fetched:
    """One ``loader fetch``/``loader get`` run: its process and what it wrote."""

    process: subprocess.CompletedProcess[str]
    output: Path
    events: Path
    by_request: dict[int, list[dict[str, Any]]]

    def report(self) -> str:
        """The run's output, for assertion messages."""
        return f"exit {self.process.returncode}\n{self.process.stdout}\n{self.process.stderr}"

    def phase(self, name: str) -> list[dict[str, Any]]:
        """Every event of one phase, all requests together."""
        return [e for events in self.by_request.values() for e in events if e["phase"] == name]


def run_fetch(command: str, url: str, output: Path, env: dict[str, str], *extra: str,
              tag: str = "") -> Fetched:
    """``loader COMMAND URL -o OUTPUT --events …`` as a user runs it; events checked for grammar.

    ``tag`` goes out in ``TAG_HEADER`` so the server's access log can be matched to this run.
    """
    events = output.with_name(output.name + ".events")
    if tag:
        extra = ("-H", f"{TAG_HEADER}: {tag}", *extra)
    process = run_loader(command, url, "-o", str(output), "--events", str(events), "-q",
                         *extra, env=env)
    by_request = check_event_lines(events) if events.exists() else {}
    return Fetched(process, output, events, by_request)


def page_directory(output: Path, url: str) -> Path:
    """Where ``loader fetch -o OUTPUT URL`` put the page's host (``HOST_PORT``)."""
    parts = urlsplit(url)
    return output / f"{parts.hostname}_{parts.port}"


def assert_same_files(saved: Path, served: Path, names: frozenset[str]) -> None:
    """Each of ``names`` was saved, byte for byte what the server holds (sha256)."""
    got = {name: digest for name, digest in sha256_tree(saved).items()
           if not name.endswith(".manifest.json")}
    want = {name: sha256_file(served / name) for name in names}
    assert got == want


def assert_versions(fetched: Fetched, version: str) -> None:
    """Every ``RESPONSE_RECEIVED`` names its status and ``version``."""
    received = fetched.phase("RESPONSE_RECEIVED")
    assert received, fetched.report()
    assert [(e["url"], e["status"], e["http_version"]) for e in received] == [
        (e["url"], 200, version) for e in received
    ]


class WebServerChecks:
    """The checks every web server gets, plain and over TLS (HTTP/2 by ALPN).

    A test module subclasses it as ``Test<Server>`` and names its session fixture
    in ``server_fixture``; pytest collects the inherited tests for each server.
    """

    server_fixture: str

    @pytest.fixture
    def server(self, request: pytest.FixtureRequest) -> HttpServer:
        return request.getfixturevalue(self.server_fixture)

    @pytest.fixture(params=["http", "https"])
    def origin(self, request: pytest.FixtureRequest, server: HttpServer) -> str:
        return str(getattr(server, request.param))

    def test_page_and_requisites_are_byte_exact(self, server: HttpServer, origin: str,
                                                env: dict[str, str], tmp_path: Path) -> None:
        tag = new_tag()
        url = origin + "/index.html"
        fetched = run_fetch("fetch", url, tmp_path / "out", env, tag=tag)
        assert fetched.process.returncode == 0, fetched.report()
        assert_same_files(page_directory(fetched.output, url), server.root, SAVED_FILES)
        assert len(fetched.by_request) == len(DEMO_FILES) + 1  # and the stylesheet
        # The page went out gzip-encoded (fewer bytes on the wire than saved): the
        # byte-exact match above is of the decoded body.
        accesses = server.accesses(tag, until=lambda r: len(r) > len(DEMO_FILES))
        page = [a for a in accesses if a.path == "/index.html"]
        assert len(page) == 1 and page[0].status == 200, accesses
        assert 0 < page[0].size < (server.root / "index.html").stat().st_size, page
        wire = "HTTP/2.0" if origin.startswith("https") else "HTTP/1.1"
        assert {a.protocol for a in accesses} == {wire}, accesses

    def test_saved_stylesheet_still_yields_its_images(self, server: HttpServer, origin: str,
                                                      env: dict[str, str], tmp_path: Path) -> None:
        url = origin + "/index.html"
        fetched = run_fetch("fetch", url, tmp_path / "out", env, "--kinds", "image,sound,style")
        assert fetched.process.returncode == 0, fetched.report()
        assert_same_files(page_directory(fetched.output, url), server.root,
                          SAVED_FILES)

    def test_events_carry_status_and_version(self, origin: str, env: dict[str, str],
                                             tmp_path: Path) -> None:
        fetched = run_fetch("fetch", origin + "/index.html", tmp_path / "out", env)
        assert fetched.process.returncode == 0, fetched.report()
        assert_versions(fetched, "HTTP/2" if origin.startswith("https") else "HTTP/1.1")

    @pytest.mark.anyio
    async def test_library_result_names_version(self, origin: str,
                                                certificates: Certificates) -> None:
        from loader import Loader

        async with Loader(verify=str(certificates.ca)) as loader:
            result = await loader.fetch(origin + "/img/logo.png")
        assert result.ok, result.error
        want = "HTTP/2" if origin.startswith("https") else "HTTP/1.1"
        assert (result.status, result.http_version) == (200, want)
        if want == "HTTP/1.1":
            assert result.reason == "OK"  # HTTP/2 has no reason phrase on the wire

    @pytest.mark.anyio
    async def test_library_page_is_byte_exact(self, server: HttpServer, origin: str,
                                              certificates: Certificates, tmp_path: Path) -> None:
        from loader import Loader

        async with Loader(verify=str(certificates.ca)) as loader:
            page = await loader.fetch_page(origin + "/index.html", output=tmp_path)
        assert page.document.ok, page.document.error
        failed = [(r.url, r.error) for r in page.resources if not r.ok]
        assert failed == []
        assert_same_files(page_directory(tmp_path, origin), server.root, SAVED_FILES)

    def test_big_file_is_byte_exact(self, server: HttpServer, origin: str,
                                    env: dict[str, str], tmp_path: Path) -> None:
        fetched = run_fetch("get", origin + "/big.bin", tmp_path / "big.bin", env)
        assert fetched.process.returncode == 0, fetched.report()
        assert sha256_file(fetched.output) == sha256_file(server.root / "big.bin")
        (events,) = fetched.by_request.values()
        assert events[-1]["bytes"] == BIG_SIZE, events[-1]

    def test_continue_fetches_only_the_rest(self, server: HttpServer, origin: str,
                                            env: dict[str, str], tmp_path: Path) -> None:
        target = tmp_path / "big.bin"
        tag = new_tag()
        first = run_fetch("get", origin + "/big.bin", target, env, tag=tag)
        assert first.process.returncode == 0, first.report()
        with open(target, "r+b") as f:
            f.truncate(BIG_SIZE // 2)
        resumed = run_fetch("get", origin + "/big.bin", target, env, "-c", tag=tag)
        assert resumed.process.returncode == 0, resumed.report()
        assert sha256_file(target) == sha256_file(server.root / "big.bin")
        # The server's word that only the second half was sent again.
        accesses = server.accesses(tag, until=lambda r: len(r) >= 2)
        assert [(a.path, a.status, a.range, a.size) for a in accesses] == [
            ("/big.bin", 200, "", BIG_SIZE),
            ("/big.bin", 206, f"bytes={BIG_SIZE // 2}-", BIG_SIZE - BIG_SIZE // 2),
        ]

    def test_continue_on_a_complete_file_succeeds(self, server: HttpServer, origin: str,
                                                  env: dict[str, str], tmp_path: Path) -> None:
        target = tmp_path / "big.bin"
        first = run_fetch("get", origin + "/big.bin", target, env)
        assert first.process.returncode == 0, first.report()
        again = run_fetch("get", origin + "/big.bin", target, env, "-c")
        # nginx's 416 says "Content-Range: bytes */SIZE"; lighttpd 1.4.69's says nothing
        # (the plugin then asks HEAD for the size).
        assert again.process.returncode == 0, again.report()
        assert sha256_file(target) == sha256_file(server.root / "big.bin")

    def test_basic_auth_page_and_requisites(self, server: HttpServer, origin: str,
                                            env: dict[str, str], tmp_path: Path) -> None:
        url = origin.replace("://", f"://{AUTH_USER}:{AUTH_PASSWORD}@") + "/auth/index.html"
        tag = new_tag()
        fetched = run_fetch("fetch", url, tmp_path / "out", env, tag=tag)
        saved = page_directory(fetched.output, origin) / "auth"
        assert fetched.process.returncode == 0, fetched.report()
        assert_same_files(saved, server.root / "auth", SAVED_FILES)
        # The server's word: every request, requisites included, came as carol.
        accesses = server.accesses(tag, until=lambda r: len(r) > len(DEMO_FILES))
        assert {(a.status, a.user) for a in accesses} == {(200, AUTH_USER)}, accesses
        assert len(accesses) == len(DEMO_FILES) + 1

    def test_basic_auth_password_is_not_in_events_or_output(self, origin: str,
                                                              env: dict[str, str],
                                                              tmp_path: Path) -> None:
        url = origin.replace("://", f"://{AUTH_USER}:{AUTH_PASSWORD}@") + "/auth/index.html"
        fetched = run_fetch("fetch", url, tmp_path / "out", env)
        assert fetched.by_request, fetched.report()
        assert AUTH_PASSWORD not in fetched.events.read_text()
        assert AUTH_PASSWORD not in fetched.process.stdout + fetched.process.stderr

    def test_basic_auth_password_is_not_in_the_manifest(self, origin: str, env: dict[str, str],
                                                        tmp_path: Path) -> None:
        url = origin.replace("://", f"://{AUTH_USER}:{AUTH_PASSWORD}@") + "/auth/index.html"
        fetched = run_fetch("fetch", url, tmp_path / "out", env)
        manifests = list(fetched.output.rglob("*.manifest.json"))
        assert manifests, fetched.report()
        for path in manifests:
            assert AUTH_PASSWORD not in path.read_text(), path
