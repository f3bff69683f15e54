"""Gopher servers for the tests, on 127.0.0.1.

``gopher_server``
    A real server, `pygopherd <https://pypi.org/project/pygopherd/>`_ 3.x, in a
    thread, serving a copy of ``fixtures/gopher/`` (Bucktooth ``gophermap``
    files for menus, ``search.pyg`` for the type-7 search).  When ``trustme``
    is installed the same port also speaks TLS (pygopherd sniffs the
    handshake), with a certificate for 127.0.0.1 from a throwaway CA whose
    PEM file is ``server.ca_file``.
``gopher_script_server``
    A factory for scripted raw-socket servers, for the faults a well-behaved
    server never commits: ``start(respond)`` calls ``respond(request_line,
    sock)`` for each connection, and ``reply(data)`` builds a ``respond`` that
    sends fixed bytes.

pygopherd keeps module-global state (its logger, handler list and root), so
one server per test session is started, and the copy it serves is its own.
"""

from __future__ import annotations

import shutil
import socket
import socketserver
import ssl
import stat
import struct
import threading
from collections.abc import Callable, Iterator
from configparser import ConfigParser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["gopher_script_server", "gopher_server"]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gopher"

_CONFIG = {
    "pygopherd": {
        "servertype": "ThreadingTCPServer",
        "interface": "127.0.0.1",
        "port": "0",
        "servername": "127.0.0.1",
        "usechroot": "no",
        "detach": "no",
        "tracebacks": "no",
        "abstract_entries": "never",
        "abstract_headers": "no",
    },
    "logger": {"logmethod": "none"},
    "GopherEntry": {
        "defaultmimetype": "text/plain",
        "mapping": repr(
            [
                ["text/html", "h"],
                ["text/.*", "0"],
                ["image/gif", "g"],
                ["image/.*", "I"],
                ["audio/.*", "s"],
                ["application/gopher-menu", "1"],
                [".*", "9"],
            ]
        ),
        "eaexts": "{}",
    },
    "protocols.ProtocolMultiplexer": {
        "protocols": "[rfc1436.SecureGopherProtocol, rfc1436.GopherProtocol]"
    },
    "handlers.HandlerMultiplexer": {
        "handlers": "[pyg.PYGHandler, gophermap.BuckGophermapHandler, dir.DirHandler, file.FileHandler]"
    },
    # DirHandler pickles a listing cache into the directory it lists; point it
    # at a folder that does not exist so that nothing is ever written.
    "handlers.dir.DirHandler": {
        "cachetime": "0",
        "cachefile": "no-such-folder/.cache",
        "ignorepatt": r"/\.|/gophermap$|\.pyc$",
    },
}


@dataclass
class GopherServer:
    """A running server: where it listens, what it serves, and how to reach it over TLS."""

    host: str
    port: int
    root: Path
    ca_file: Path | None = None
    ca: Any = None  # the trustme.CA, when TLS is on

    def url(self, item: str = "1", selector: str = "", *, secure: bool = False) -> str:
        """``gopher://127.0.0.1:PORT/<item><selector>`` (selector used as given, already encoded)."""
        scheme = "gophers" if secure else "gopher"
        return f"{scheme}://{self.host}:{self.port}/{item}{selector}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's throwaway CA."""
        if self.ca_file is None:
            pytest.skip("trustme is not installed: no TLS for the gopher server")
        return ssl.create_default_context(cafile=str(self.ca_file))


def _copy_tree(dest: Path) -> Path:
    root = dest / "gopher"
    shutil.copytree(FIXTURES, root)
    script = root / "search.pyg"
    # pygopherd runs only executable .pyg files; a checkout may have lost the bit.
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return root


def _tls(tmp: Path) -> tuple[ssl.SSLContext | None, Any, Path | None]:
    try:
        import trustme
    except ImportError:
        return None, None, None
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp / "gopher-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca, ca_file


def _ensure_pyg_handler(config: ConfigParser) -> None:
    """Make sure the process-wide handler list runs ``.pyg`` scripts (our search).

    pygopherd reads its handler list from the first server's config into a
    module global; another pygopherd in this process (the demo's) may have
    set it without the PYG handler.  Adding it keeps both working.
    """
    from pygopherd.handlers import HandlerMultiplexer
    from pygopherd.handlers.pyg import PYGHandler

    HandlerMultiplexer.init_default_handlers(config)
    handlers = HandlerMultiplexer.handlers or []
    if PYGHandler not in handlers:
        HandlerMultiplexer.handlers = [PYGHandler, *handlers]


@pytest.fixture(scope="session")
def gopher_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GopherServer]:
    """pygopherd serving a copy of ``fixtures/gopher/`` on 127.0.0.1 (plain and TLS on one port)."""
    pytest.importorskip("pygopherd", reason="the gopher tests need pygopherd (a test dependency)")
    import pygopherd.fileext
    from pygopherd import GopherExceptions, initialization, logger

    tmp = tmp_path_factory.mktemp("gopher-server")
    root = _copy_tree(tmp)
    config = ConfigParser()
    config.read_dict(_CONFIG)
    config.set("pygopherd", "root", str(root))
    logger.init(config)
    GopherExceptions.init(False)
    # pygopherd's own init_mimetypes() rewrites the process-wide mimetypes
    # tables; the standard ones, untouched, are all its extension map needs.
    pygopherd.fileext.init()
    context, ca, ca_file = _tls(tmp)
    server = initialization.get_server(config, context=context)
    server.daemon_threads = True
    _ensure_pyg_handler(config)
    # Tests that refuse the certificate make the server's handshake fail; that
    # is expected, not worth a traceback on stderr.
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    host, port = server.server_address[:2]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="pygopherd", daemon=True
    )
    thread.start()
    try:
        yield GopherServer(host=host, port=port, root=root, ca_file=ca_file, ca=ca)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


Respond = Callable[[bytes, socket.socket], None]


@dataclass
class ScriptedServer:
    """A raw server that runs ``respond`` for every connection; ``requests`` records the request lines."""

    host: str
    port: int
    requests: list[bytes] = field(default_factory=list)

    def url(self, item: str = "1", selector: str = "") -> str:
        """``gopher://127.0.0.1:PORT/<item><selector>``."""
        return f"gopher://{self.host}:{self.port}/{item}{selector}"


class _Handler(socketserver.BaseRequestHandler):
    server: _ScriptServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        line = b""
        try:
            while not line.endswith(b"\n") and len(line) < 65536:
                data = sock.recv(4096)
                if not data:
                    break
                line += data
                if not self.server.whole_line:
                    break
        except OSError:
            return
        self.server.record.requests.append(line)
        try:
            self.server.respond(line, sock)
        except OSError:
            pass  # the client went away; that is the client's business


class _ScriptServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, respond: Respond, whole_line: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.respond = respond
        self.whole_line = whole_line
        host, port = self.server_address[:2]
        self.record = ScriptedServer(str(host), int(port))


def reply(data: bytes, *, reset: bool = False) -> Respond:
    """A ``respond`` that sends ``data`` then closes (with a TCP reset when ``reset``)."""

    def respond(_line: bytes, sock: socket.socket) -> None:
        if data:
            sock.sendall(data)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

    return respond


@pytest.fixture
def gopher_script_server() -> Iterator[Callable[[Respond], ScriptedServer]]:
    """Start scripted gopher servers: ``start(respond) -> ScriptedServer`` (stopped after the test).

    ``respond`` runs once the request line has arrived, or after the first
    bytes of any kind with ``whole_line=False`` (for clients that send no line,
    such as a TLS handshake).
    """
    servers: list[_ScriptServer] = []

    def start(respond: Respond, *, whole_line: bool = True) -> ScriptedServer:
        server = _ScriptServer(respond, whole_line)
        threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
            name="gopher-script",
        ).start()
        servers.append(server)
        return server.record

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
