"""``loader demo``: serve the bundled demo site on 127.0.0.1 and fetch it, with no internet.

Three real servers start in background threads, each on a free port:

* HTTP (the standard library's threaded server) serving ``fixtures/demo/http``,
  reachable as ``127.0.0.1`` and as ``localhost`` (the page's "other host");
  ``{{ALT}}``, ``{{FTP}}`` and ``{{GOPHER}}`` in its HTML and CSS are replaced
  with the live base URLs;
* FTP (pyftpdlib, anonymous, read-only) serving ``fixtures/demo/ftp``;
* Gopher (pygopherd) serving ``fixtures/demo/gopher``, whose menu lists a
  picture, a GIF and a sound.

Then it fetches the HTML page and the Gopher menu as pages, into ``-o DIR``,
with the live progress display.  One image on the page is missing on purpose:
the demo shows it as a clear failure that does not sink the page.

With ``--serve`` it fetches nothing: the servers run, the page served filled at
its own URL and at its directory's, until Ctrl-C (exit 0), SIGTERM or SIGHUP.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import mimetypes
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["DEMO_ROOT", "DemoServers", "demo_servers", "run_demo"]

DEMO_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
#: Resources the demo page refers to but that do not exist, on purpose.
EXPECTED_MISSING = ("img/missing.png",)


class _TemplateHandler(SimpleHTTPRequestHandler):
    """Serves files, filling the ``{{…}}`` placeholders of HTML and CSS with live URLs."""

    protocol_version = "HTTP/1.1"
    replacements: dict[str, str] = {}

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def send_head(self) -> Any:
        path = Path(self.translate_path(self.path))
        if path.is_dir() and self.path.split("?", 1)[0].endswith("/"):
            # The base class would send a directory's index.html itself, unfilled.
            path = path / "index.html"
        if path.suffix in (".html", ".css") and path.is_file():
            body = path.read_text("utf-8")
            for key, value in self.replacements.items():
                body = body.replace("{{" + key + "}}", value)
            data = body.encode("utf-8")
            ctype = mimetypes.guess_type(path.name)[0] or "text/plain"
            self.send_response(200)
            self.send_header("Content-Type", f"{ctype}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return io.BytesIO(data)
        return super().send_head()


class DemoServers:
    """The running demo servers and their base URLs."""

    def __init__(self) -> None:
        self.http = ""
        self.alt = ""
        self.ftp = ""
        self.gopher = ""
        #: ``{{NAME}}`` placeholders of the demo's HTML and CSS, filled as servers start.
        self.replacements: dict[str, str] = {}
        self._stops: list[Any] = []

    def close(self) -> None:
        for stop in reversed(self._stops):
            with contextlib.suppress(Exception):
                stop()


def _thread(target: Any, name: str) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()


def _start_http(servers: DemoServers, root: Path) -> None:
    handler = type("DemoHandler", (_TemplateHandler,), {"replacements": servers.replacements})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    server.daemon_threads = True
    port = server.server_address[1]
    servers.http = f"http://127.0.0.1:{port}"
    servers.alt = f"http://localhost:{port}"
    servers.replacements["ALT"] = servers.alt
    servers._stops.append(server.server_close)
    servers._stops.append(server.shutdown)
    _thread(server.serve_forever, "demo-http")


def _start_ftp(servers: DemoServers, root: Path) -> None:
    import logging

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.log import config_logging
    from pyftpdlib.servers import ThreadedFTPServer

    config_logging(level=logging.WARNING)  # its per-session INFO lines would drown the progress
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(str(root))
    handler = type("DemoFTPHandler", (FTPHandler,), {"authorizer": authorizer, "banner": "loader demo FTP"})
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    port = server.address[1]
    servers.ftp = f"ftp://127.0.0.1:{port}"
    servers._stops.append(server.close_all)
    _thread(partial(server.serve_forever, timeout=0.2, blocking=True, handle_exit=False), "demo-ftp")


def _start_gopher(servers: DemoServers, root: Path) -> None:
    import mimetypes as mt
    from configparser import ConfigParser

    import pygopherd.fileext
    from pygopherd import GopherExceptions, initialization, logger

    config = ConfigParser()
    config.read_dict(
        {
            "pygopherd": {
                "servertype": "ThreadingTCPServer", "interface": "127.0.0.1", "port": "0",
                "servername": "127.0.0.1", "usechroot": "no", "detach": "no", "tracebacks": "no",
                "abstract_entries": "never", "abstract_headers": "no", "root": str(root),
            },
            "logger": {"logmethod": "none"},
            "GopherEntry": {
                "defaultmimetype": "text/plain",
                "mapping": repr([["text/html", "h"], ["text/.*", "0"], ["image/gif", "g"],
                                 ["image/.*", "I"], ["audio/.*", "s"],
                                 ["application/gopher-menu", "1"], [".*", "9"]]),
                "eaexts": "{}",
            },
            "protocols.ProtocolMultiplexer": {"protocols": "[rfc1436.GopherProtocol]"},
            "handlers.HandlerMultiplexer": {
                "handlers": "[gophermap.BuckGophermapHandler, dir.DirHandler, file.FileHandler]"
            },
            "handlers.dir.DirHandler": {"cachetime": "0", "cachefile": "no-such-folder/.cache"},
        }
    )
    from pygopherd.handlers import HandlerMultiplexer, base

    # pygopherd keeps its handler list and its root folder in module globals, set from
    # the first server's config: give them back on close, so that another pygopherd in
    # this process (a test's) does not go on serving from the demo's deleted copy.
    saved = (HandlerMultiplexer.handlers, HandlerMultiplexer.rootpath, base.rootpath)

    def restore() -> None:
        HandlerMultiplexer.handlers, HandlerMultiplexer.rootpath, base.rootpath = saved

    servers._stops.append(restore)
    HandlerMultiplexer.handlers = HandlerMultiplexer.rootpath = base.rootpath = None  # ours, from our config
    logger.init(config)
    GopherExceptions.init(False)
    mt.init()
    pygopherd.fileext.init()
    server = initialization.get_server(config)
    server.daemon_threads = True
    port = server.server_address[1]
    servers.gopher = f"gopher://127.0.0.1:{port}"
    servers._stops.append(server.server_close)
    servers._stops.append(server.shutdown)
    _thread(server.serve_forever, "demo-gopher")


@contextlib.contextmanager
def demo_servers(root: Path = DEMO_ROOT) -> Iterator[DemoServers]:
    """Start the demo's HTTP, FTP and Gopher servers (a server whose library is missing is skipped)."""
    servers = DemoServers()
    tmp = Path(tempfile.mkdtemp(prefix="loader-demo-"))
    try:
        # Serve copies: pygopherd and friends must never write into the checkout.
        for part in ("http", "ftp", "gopher"):
            shutil.copytree(root / part, tmp / part)
        _start_http(servers, tmp / "http")
        for start, part in ((_start_ftp, "ftp"), (_start_gopher, "gopher")):
            try:
                start(servers, tmp / part)
            except ImportError as exc:
                print(f"demo: no {part} server ({exc.name} is not installed); skipping it")
        servers.replacements.update(
            {"FTP": servers.ftp or "ftp://127.0.0.1:9", "GOPHER": servers.gopher or "gopher://127.0.0.1:9"}
        )
        yield servers
    finally:
        servers.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _serve_until_stopped(stderr: Any, announce: str) -> int:
    """Serve until a stop signal: Ctrl-C ends serving normally (0), SIGTERM/SIGHUP give ``128 + signum``.

    The subcommand runs with the process's original handlers, under which SIGTERM
    and SIGHUP would end it on the spot and leave the served copies in the
    temporary directory; here every stop signal ends it through ``demo_servers``' cleanup.
    """
    stop = threading.Event()
    received: list[int] = []

    def note(signum: int, frame: Any) -> None:
        received.append(signum)
        stop.set()

    replaced: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:  # nohup stays in force
                replaced[sig] = signal.signal(sig, note)
    try:
        # Announced once the handlers are in place: whoever reads the URL may stop us at once.
        stderr.write(announce)
        stderr.flush()
        stop.wait()
    except KeyboardInterrupt:  # a SIGINT that came before our handler was in place
        received.append(signal.SIGINT)
    finally:
        for sig, handler in replaced.items():
            if handler is not None:
                signal.signal(sig, handler)
    stderr.write("demo: stopped serving\n")
    return 0 if received[0] == signal.SIGINT else 128 + received[0]


def run_demo(args: argparse.Namespace, fetch: Callable[[argparse.Namespace], int]) -> int:
    """``loader demo``: start the servers, fetch the page and the Gopher menu, explain the result.

    ``fetch`` runs ``loader fetch`` with the options it is given (the command line's own
    runner, passed in by ``loader.cli``: the demo does not reach into the command's code).
    """
    from .discovery import DEFAULT_KINDS

    with demo_servers() as servers:
        stderr = args._stderr
        stderr.write(
            f"demo servers: {servers.http}/ (also {servers.alt}), {servers.ftp or 'no FTP'}, "
            f"{servers.gopher or 'no Gopher'}\n"
        )
        if args.serve:
            return _serve_until_stopped(stderr, f"serving {servers.http}/index.html until Ctrl-C\n")
        urls = [f"{servers.http}/index.html"]
        if servers.gopher:
            urls.append(f"{servers.gopher}/1/")
        # `loader fetch URL… --convert-links --har … --report …` with the demo's common options.
        fetch_args = argparse.Namespace(**vars(args))
        fetch_args.command = "fetch"
        fetch_args.urls = urls
        fetch_args.list = False
        fetch_args.kinds = DEFAULT_KINDS
        fetch_args.meta_images = False
        fetch_args.same_host = False
        fetch_args.convert_links = True
        fetch_args.exists = "overwrite"
        fetch_args.per_page = None
        fetch_args._pages = []
        fetch_args.har = str(Path(args.output) / "demo.har")
        fetch_args.report = str(Path(args.output) / "demo-report.html")
        code = fetch(fetch_args)
        unexpected = [
            r for page in fetch_args._pages for r in page.failed
            if not r.url.endswith(EXPECTED_MISSING)
        ]
        stderr.write(f"demo: {', '.join(EXPECTED_MISSING)} is missing on purpose\n")
        saved = next((p.path for p in fetch_args._pages if p.url == urls[0] and p.path), None)
        if saved is not None:
            # The exact file: each run's port differs, so a pattern would match old runs' copies too.
            stderr.write(f"demo: open {saved.resolve()} in a browser to view the offline copy\n")
        report = Path(fetch_args.report)
        if report.is_file():
            stderr.write(f"demo: the load as HAR 1.2: {Path(fetch_args.har).resolve()}; "
                         f"its waterfall: open {report.resolve()} in a browser\n")
        if code == 1 and not unexpected:
            return 0  # only the resources missing on purpose failed: the demo worked
        return code
