"""A second, independent HTTP server for tests: hypercorn (h11 and h2) serving a small ASGI app.

The ``http_server`` fixture runs the standard library's ``http.server``; this one runs a
different implementation, so the HTTP plugin is tested against more than one server.

Two session-scoped fixtures, each yielding an :class:`ASGITestServer`:

``asgi_server``      plain HTTP/1.1 on ``http://127.0.0.1:PORT``
``asgi_tls_server``  HTTPS on ``https://127.0.0.1:PORT`` with a certificate from a throwaway
                     trustme CA (``.ca_path`` is its PEM, usable as ``Loader(verify=...)``),
                     offering ALPN ``h2`` and ``http/1.1``, so HTTP/2 is tested too

Each runs hypercorn in a daemon thread with its own asyncio event loop, on a socket bound
before the thread starts; the fixture returns once hypercorn is accepting. Every request is
logged (:attr:`ASGITestServer.requests`) with its HTTP version and the client's port, so a
test can tell which version was used and how many connections carried its requests.

Routes (GET and HEAD; HEAD sends the same headers without a body):

==================================  ========================================================
``/bytes/<n>``                      ``pattern_bytes(n)`` with Content-Length
``/chunked/<n>?chunk=<k>``          the same body in ``k``-byte pieces (default 65536),
                                    no Content-Length (chunked on HTTP/1.1)
``/status/<code>``                  that status (200-599) with a short body
``/redirect/<n>``                   302 to ``/redirect/<n-1>``; ``/redirect/0`` is 200 "done"
``/headers``                        the request headers as JSON, names lowercased
``/set-cookie?name=value``          200 with ``Set-Cookie: name=value; Path=/`` per pair
``/gzip``                           ``GZIP_TEXT`` gzip-encoded (``Content-Encoding: gzip``)
``/page.html``                      HTML with ``PAGE_IMAGES`` ``<img src="/img/<i>.png">``
                                    and ``PAGE_SOUNDS`` ``<audio src="/snd/<i>.ogg">``
``/img/<i>.png``, ``/snd/<i>.ogg``  ``image_bytes(i)`` / ``sound_bytes(i)`` (image/png,
                                    audio/ogg)
``/close/<n>``                      ``pattern_bytes(n)`` with ``Connection: close`` set by
                                    the app (HTTP/1.x only: HTTP/2 forbids the header)
``POST /echo``                      the request body back, with ``X-Body-Length``
==================================  ========================================================

Anything else is 404; other methods are 405. An exception in the app is answered 500 by
hypercorn and re-raised when the fixture tears down, so a broken route cannot pass
unnoticed.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, parse_qsl

import pytest

from .http_server import GZIP_TEXT, pattern_bytes

__all__ = ["asgi_server", "asgi_tls_server"]

PAGE_IMAGES = 20
"""How many ``<img>`` elements ``/page.html`` has."""
PAGE_SOUNDS = 3
"""How many ``<audio>`` elements ``/page.html`` has."""

_CHUNK = 64 * 1024
_START_TIMEOUT = 10.0
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_OGG_MAGIC = b"OggS"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def image_bytes(i: int) -> bytes:
    """The body of ``/img/<i>.png``: distinct per ``i`` (a PNG signature, then a pattern)."""
    return _PNG_MAGIC + pattern_bytes(200 + 37 * i, offset=i)


def sound_bytes(i: int) -> bytes:
    """The body of ``/snd/<i>.ogg``: distinct per ``i``."""
    return _OGG_MAGIC + pattern_bytes(1000 + 501 * i, offset=7 * i)


def page_html() -> bytes:
    """The body of ``/page.html``."""
    images = "".join(f'  <img src="/img/{i}.png" alt="{i}">\n' for i in range(PAGE_IMAGES))
    sounds = "".join(f'  <audio src="/snd/{i}.ogg"></audio>\n' for i in range(PAGE_SOUNDS))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>asgi page</title></head>\n"
        f"<body>\n{images}{sounds}</body></html>\n"
    ).encode()


class RecordedRequest(NamedTuple):
    """One request the server received."""

    method: str
    path: str
    """The request target, query string included."""
    http_version: str
    """As hypercorn reports it: ``"1.1"``, ``"1.0"`` or ``"2"``."""
    headers: dict[str, str]
    """Header names lowercased; repeated headers joined with ``", "`` (cookies with ``"; "``)."""
    client_port: int
    """The client's TCP port: requests on one connection share it."""


class _BadRequest(Exception):
    """A route's parameters are malformed: answered with 400."""


class _App:
    """The ASGI application; logs requests into its server's state."""

    def __init__(self, server: ASGITestServer) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._http(scope, receive, send)
        except Exception as exc:
            self.server._record_error(exc)
            raise

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            if name in headers:
                value = f"{headers[name]}{'; ' if name == 'cookie' else ', '}{value}"
            headers[name] = value
        query = scope["query_string"].decode("latin-1")
        target = scope["raw_path"].decode("latin-1") + (f"?{query}" if query else "")
        client = scope.get("client") or ("", 0)
        method = scope["method"]
        self.server._record(
            RecordedRequest(method, target, scope["http_version"], headers, int(client[1]))
        )
        request = _Request(scope, receive, send, headers, query)
        try:
            for pattern, methods, route in _ROUTES:
                match = pattern.fullmatch(scope["path"])
                if match is None:
                    continue
                if method not in methods:
                    await request.respond(405, b"method not allowed\n", {"allow": ", ".join(methods)})
                else:
                    await route(request, *match.groups())
                break
            else:
                await request.respond(404, b"not found\n")
        except _BadRequest as exc:
            await request.respond(400, f"bad request: {exc}\n".encode())


class _Request:
    """One exchange: the scope plus helpers to answer it."""

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], query: str
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.headers = headers
        self.query_string = query
        self.query = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}

    @property
    def head(self) -> bool:
        return self.scope["method"] == "HEAD"

    @property
    def http2(self) -> bool:
        return self.scope["http_version"] == "2"

    def int_param(self, name: str, default: int) -> int:
        if name not in self.query:
            return default
        try:
            return int(self.query[name])
        except ValueError:
            raise _BadRequest(f"{name}={self.query[name]!r}") from None

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        await self.send({
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        })

    async def body(self, data: bytes, *, more: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(
        self,
        status: int,
        data: bytes = b"",
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        """A whole response with Content-Length; the body is left out for HEAD, 204 and 304."""
        extra = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        all_headers = extra
        if status not in (204, 304):
            all_headers = [("content-type", content_type), ("content-length", str(len(data))), *extra]
        await self.start(status, all_headers)
        bodiless = self.head or status in (204, 304)
        await self.body(b"" if bodiless else data)


# -- routes ----------------------------------------------------------------------------


async def _bytes(r: _Request, n: str) -> None:
    await r.respond(200, pattern_bytes(int(n)), content_type="application/octet-stream")


async def _chunked(r: _Request, n: str) -> None:
    size = int(n)
    chunk = r.int_param("chunk", _CHUNK)
    if chunk <= 0:
        raise _BadRequest("chunk must be > 0")
    await r.start(200, [("content-type", "application/octet-stream")])
    if r.head:
        await r.body(b"")
        return
    offset = 0
    while offset < size:
        piece = pattern_bytes(min(chunk, size - offset), offset)
        offset += len(piece)
        await r.body(piece, more=offset < size)
    if size == 0:
        await r.body(b"")


async def _status(r: _Request, code: str) -> None:
    status = int(code)
    if not 200 <= status <= 599:
        raise _BadRequest(f"status {status} is outside 200-599")
    await r.respond(status, f"status {status}\n".encode())


async def _redirect(r: _Request, n: str) -> None:
    remaining = int(n)
    if remaining == 0:
        await r.respond(200, b"done")
    else:
        await r.respond(302, b"redirecting\n", {"location": f"/redirect/{remaining - 1}"})


async def _echo_headers(r: _Request) -> None:
    body = json.dumps(r.headers, sort_keys=True).encode()
    await r.respond(200, body, content_type="application/json")


async def _set_cookie(r: _Request) -> None:
    cookies = [
        ("set-cookie", f"{name}={value}; Path=/")
        for name, value in parse_qsl(r.query_string, keep_blank_values=True)
    ]
    await r.respond(200, b"cookies set\n", cookies)


async def _gzip(r: _Request) -> None:
    await r.respond(200, gzip.compress(GZIP_TEXT, mtime=0), {"content-encoding": "gzip"})


async def _page(r: _Request) -> None:
    await r.respond(200, page_html(), content_type="text/html; charset=utf-8")


async def _image(r: _Request, i: str) -> None:
    await r.respond(200, image_bytes(int(i)), content_type="image/png")


async def _sound(r: _Request, i: str) -> None:
    await r.respond(200, sound_bytes(int(i)), content_type="audio/ogg")


async def _close(r: _Request, n: str) -> None:
    headers = {} if r.http2 else {"connection": "close"}
    await r.respond(200, pattern_bytes(int(n)), headers, content_type="application/octet-stream")


async def _echo(r: _Request) -> None:
    received = bytearray()
    while True:
        message = await r.receive()
        if message["type"] == "http.disconnect":
            return
        received += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await r.respond(
        200,
        bytes(received),
        {"x-body-length": str(len(received))},
        content_type=r.headers.get("content-type", "application/octet-stream"),
    )


_GET = ("GET", "HEAD")
_ROUTES: list[tuple[re.Pattern[str], tuple[str, ...], Callable[..., Awaitable[None]]]] = [
    (re.compile(r"/bytes/(\d+)"), _GET, _bytes),
    (re.compile(r"/chunked/(\d+)"), _GET, _chunked),
    (re.compile(r"/status/(\d+)"), _GET, _status),
    (re.compile(r"/redirect/(\d+)"), _GET, _redirect),
    (re.compile(r"/headers"), _GET, _echo_headers),
    (re.compile(r"/set-cookie"), _GET, _set_cookie),
    (re.compile(r"/gzip"), _GET, _gzip),
    (re.compile(r"/page\.html"), _GET, _page),
    (re.compile(r"/img/(\d+)\.png"), _GET, _image),
    (re.compile(r"/snd/(\d+)\.ogg"), _GET, _sound),
    (re.compile(r"/close/(\d+)"), _GET, _close),
    (re.compile(r"/echo"), ("POST",), _echo),
]


# -- the server ------------------------------------------------------------------------


class ASGITestServer:
    """hypercorn serving the routes above; use as a context manager or call :meth:`close`.

    ``certfile`` (a PEM holding the key and the certificate chain) turns on TLS with ALPN
    ``h2`` and ``http/1.1``; ``ca_path`` is then the CA to trust.
    """

    host = "127.0.0.1"
    """The address it listens on."""

    def __init__(self, *, certfile: Path | None = None, ca_path: Path | None = None) -> None:
        from hypercorn.config import Config

        self.ca_path: Path | None = ca_path
        """The PEM of the CA that issued the certificate (TLS only), for ``Loader(verify=)``."""
        self.scheme = "https" if certfile else "http"
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, 0))
        sock.listen(128)
        self.port: int = sock.getsockname()[1]
        """The port it listens on."""
        self.base = f"{self.scheme}://{self.host}:{self.port}"
        """``http(s)://127.0.0.1:PORT``."""

        config = Config()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn takes the socket over
        config.backlog = 128
        config.graceful_timeout = 0.5
        config.accesslog = None
        # Startup notices stay out of the test output; errors reach pytest's log capture.
        config.errorlog = logging.getLogger("tests.asgi_server")
        config.loglevel = "WARNING"
        if certfile is not None:
            config.certfile = config.keyfile = str(certfile)
            config.alpn_protocols = ["h2", "http/1.1"]

        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._run, args=(config,), name=f"asgi-test-server:{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT) or self._stop is None:
            self._thread.join(1.0)
            errors = self.errors
            raise RuntimeError(f"hypercorn did not start on {self.base}") from (
                errors[0] if errors else None
            )

    # -- the server thread --------------------------------------------------------

    def _run(self, config: Any) -> None:
        from hypercorn.asyncio import serve

        try:
            asyncio.run(serve(_App(self), config, shutdown_trigger=self._serving, mode="asgi"))
        except BaseException as exc:  # reported at start-up or teardown
            self._record_error(exc)
        finally:
            self._ready.set()

    async def _serving(self) -> None:
        """hypercorn's shutdown trigger: called once every listener accepts; returns to stop."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    # -- the API ------------------------------------------------------------------

    def url(self, path: str) -> str:
        """Return ``http(s)://127.0.0.1:PORT`` + ``path``."""
        return self.base + (path if path.startswith("/") else "/" + path)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received since the last :meth:`reset`, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """Distinct client ports among the requests since the last :meth:`reset`.

        That is how many connections carried those requests (a connection that sent no
        request is not counted).
        """
        return len({r.client_port for r in self.requests})

    @property
    def http_versions(self) -> set[str]:
        """The HTTP versions of the requests since the last :meth:`reset`."""
        return {r.http_version for r in self.requests}

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised in the app or the server thread."""
        with self._lock:
            return list(self._errors)

    def hits(self, path: str) -> int:
        """Count requests for ``path``: it matches the target exactly, or without its query."""
        return sum(1 for r in self.requests if path in (r.path, r.path.partition("?")[0]))

    def reset(self) -> None:
        """Forget the recorded requests (call it before asserting on them)."""
        with self._lock:
            self._requests.clear()

    def close(self) -> None:
        """Stop hypercorn (open connections get ``graceful_timeout``) and join its thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        self._thread.join(5.0)

    def __enter__(self) -> ASGITestServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check(server: ASGITestServer) -> None:
    if server._thread.is_alive():
        raise RuntimeError(f"hypercorn on {server.base} did not stop")
    errors = server.errors
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def asgi_server() -> Iterator[ASGITestServer]:
    """hypercorn over plain HTTP/1.1 on 127.0.0.1 for the whole session (module docstring).

    It is shared: call ``asgi_server.reset()`` before asserting on ``requests``,
    ``connections`` or ``hits()``.
    """
    pytest.importorskip("hypercorn")
    with ASGITestServer() as server:
        yield server
    _check(server)


@pytest.fixture(scope="session")
def asgi_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ASGITestServer]:
    """hypercorn over TLS (ALPN h2, http/1.1) with a trustme CA; ``.ca_path`` is the CA's PEM.

    Shared like ``asgi_server``: ``reset()`` before asserting on the log.
    """
    pytest.importorskip("hypercorn")
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("asgi-tls")
    ca_path, certfile = folder / "ca.pem", folder / "server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    with ASGITestServer(certfile=certfile, ca_path=ca_path) as server:
        yield server
    _check(server)
