"""A real HTTP/1.1 test server on 127.0.0.1, serving ``fixtures/`` and scripted routes.

The session-scoped ``http_server`` fixture yields an :class:`HTTPTestServer`. It runs the
standard library's ``ThreadingHTTPServer`` (one daemon thread per connection, keep-alive)
in a background thread and records every request it receives.

Routes (GET and HEAD; HEAD sends the same headers without a body):

==================================  ========================================================
``/files/<path>``                   a file under ``fixtures/`` (Content-Type, Content-Length;
                                    a directory serves its ``index.html``; 404 otherwise)
``/page/<name>``                    alias of ``/files/http/<name>``
``/latency/<ms>/<path>``            ``/files/<path>`` after ``ms`` milliseconds
``/status/<code>``                  that status (200-599) with a short body
``/redirect/<n>``                   302 to ``/redirect/<n-1>``; ``/redirect/0`` is 200 "done"
``/redirect-to?url=U&status=302``   redirect (any 3xx) to ``U``, absolute or relative
``/loop``, ``/loop2``               302 to each other, for ever
``/bytes/<n>``                      ``pattern_bytes(n)`` with Content-Length
``/chunked/<n>``                    the same body, ``Transfer-Encoding: chunked``
  ``?chunk=<k>&delay=<s>``          (both) write ``k``-byte pieces, sleeping ``s`` between
``/slow?delay=<s>``                 sleep ``s`` (default 1) before the headers, then "slow"
``/stall?after=<n>``                Content-Length 10000, ``n`` bytes, then silence (30 s,
                                    or until the client hangs up)
``/drop?after=<n>[&reset=1]``       Content-Length 100000, ``n`` bytes, then the socket is
                                    closed (FIN; with ``reset=1`` an RST)
``/flaky/<key>/<k>?status=503``     the first ``k`` requests for ``key`` answer ``status``
  ``&retry_after=<s>``              (with ``Retry-After: s`` if given); later ones 200
                                    "recovered". Counts are per server: use unique keys.
``/headers``                        the request headers as JSON, names lowercased
``/set-cookie?name=value``          200 with ``Set-Cookie: name=value; Path=/`` per pair
``/gzip``                           ``GZIP_TEXT`` gzip-encoded (``Content-Encoding: gzip``)
``/echo``                           the request as JSON: ``method``, the body's ``length``,
                                    ``sha256`` and ``body`` (latin-1, up to 64 KiB, else
                                    null), ``content_type``, ``content_length``,
                                    ``transfer_encoding``
==================================  ========================================================

Any method is answered (POST, PUT, PATCH, DELETE, OPTIONS too): a request body
(``Content-Length`` or chunked, with any method) is read first, hashed as it streams, never kept whole,
and recorded in :attr:`HTTPTestServer.bodies` as ``(method, path, length, sha256)``.

Waits (``delay``, ``latency``, ``stall``) end early when the client hangs up, so a test
that gives up on a request does not leave it counted as in flight.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import re
import select
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, TypeVar
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

import pytest

__all__ = ["http_server"]

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures"
"""The directory ``/files/`` serves: ``fixtures/`` at the repository root."""

GZIP_TEXT = b"The quick brown fox jumps over the lazy dog.\n" * 64
"""The decoded body of ``/gzip``."""

_PERIOD = bytes(range(251))
_CHUNK = 64 * 1024
_ECHO_MAX = 64 * 1024
_STALL_LENGTH = 10_000
_DROP_LENGTH = 100_000
_STALL_SECONDS = 30.0

# A private table of built-in types only: the system's mime.types differs between
# machines, and the tests assert exact Content-Types.
_MIME = mimetypes.MimeTypes()
for _type, _ext in [
    ("image/webp", ".webp"),
    ("image/avif", ".avif"),
    ("audio/ogg", ".ogg"),
    ("audio/flac", ".flac"),
    ("audio/wav", ".wav"),
]:
    _MIME.add_type(_type, _ext)


def pattern_bytes(n: int, offset: int = 0) -> bytes:
    """Return ``n`` bytes of the deterministic body ``/bytes/`` serves, from ``offset``.

    Byte ``i`` of the body is ``i % 251``, so ``pattern_bytes(n) ==
    bytes(i % 251 for i in range(n))``; it is built from repeats, not byte by byte.
    """
    start = offset % len(_PERIOD)
    repeats = (start + n) // len(_PERIOD) + 1
    return (_PERIOD * repeats)[start : start + n]


class RecordedRequest(NamedTuple):
    """One request the server received: unpacks as ``(method, path, headers)``."""

    method: str
    path: str
    """The request target as sent, query string included."""
    headers: dict[str, str]
    """Header names lowercased; repeated headers joined with ``", "``."""


class _State:
    """Counters and logs shared by the handler threads, guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_concurrent = 0
        self.connections = 0
        self.flaky: dict[str, int] = {}
        self.open_sockets: set[socket.socket] = set()
        self.bodies: list[tuple[str, str, int, str]] = []

    def begin(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self.in_flight)

    def end(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def flaky_attempt(self, key: str) -> int:
        """Count one request for ``key``; return how many came before it."""
        with self.lock:
            seen = self.flaky.get(key, 0)
            self.flaky[key] = seen + 1
            return seen


class _BadRequest(Exception):
    """A route's parameters are malformed: answered with 400."""


_T = TypeVar("_T")


class _Handler(BaseHTTPRequestHandler):
    """Dispatches GET and HEAD to the routes in the module docstring."""

    protocol_version = "HTTP/1.1"
    server: _Server
    request_headers: dict[str, str]
    route: str
    query: dict[str, str]
    _answering: bool
    body_length: int
    body_sha256: str
    body_kept: bytes | None

    def setup(self) -> None:
        super().setup()
        state = self.server.state
        with state.lock:
            state.connections += 1
            state.open_sockets.add(self.connection)

    def finish(self) -> None:
        state = self.server.state
        with state.lock:
            state.open_sockets.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        """Answer a GET."""
        self._handle()

    def do_HEAD(self) -> None:
        """Answer a HEAD: the GET headers, no body."""
        self._handle()

    def do_POST(self) -> None:
        """Answer a POST (its body read first)."""
        self._handle()

    do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST

    def _read_body(self) -> None:
        """Read the request's body, hashing it as it comes (chunked or by Content-Length)."""
        digest = hashlib.sha256()
        kept = bytearray()
        length = 0

        def take(size: int, where: str) -> None:
            nonlocal length
            while size:
                data = self.rfile.read(min(size, _CHUNK))
                if not data:
                    raise ConnectionError(f"client closed inside {where}")
                digest.update(data)
                length += len(data)
                size -= len(data)
                if len(kept) <= _ECHO_MAX:
                    kept.extend(data[: _ECHO_MAX + 1 - len(kept)])

        if "chunked" in self.request_headers.get("transfer-encoding", "").lower():
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                take(size, "a chunked body")
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
        else:
            take(int(self.request_headers.get("content-length", "0") or 0), "the body")
        self.body_length = length
        self.body_sha256 = digest.hexdigest()
        self.body_kept = bytes(kept) if len(kept) <= _ECHO_MAX else None

    # -- dispatch ---------------------------------------------------------------------

    def _handle(self) -> None:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.request_headers = headers
        split = urlsplit(self.path)
        self.route = unquote(split.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.server.state.begin(RecordedRequest(self.command, self.path, headers))
        self._answering = True
        try:
            self.body_length, self.body_sha256, self.body_kept = 0, hashlib.sha256().hexdigest(), b""
            if "content-length" in headers or "transfer-encoding" in headers:
                self._read_body()
                with self.server.state.lock:
                    self.server.state.bodies.append((self.command, self.path, self.body_length, self.body_sha256))
            for pattern, method in _ROUTES:
                match = pattern.fullmatch(self.route)
                if match:
                    method(self, *match.groups())
                    break
            else:
                self._send(404, b"not found\n")
        except _BadRequest as exc:
            self._send(400, f"bad request: {exc}\n".encode())
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away mid-response
        finally:
            self._done()

    def _done(self) -> None:
        """Stop counting this request as in flight (once).

        Called just before a response's last bytes are written: a client that has a
        whole response and starts another request must never see the two overlap.
        """
        if self._answering:
            self._answering = False
            self.server.state.end()

    def _param(self, name: str, default: _T, convert: Callable[[str], _T]) -> _T:
        if name not in self.query:
            return default
        try:
            return convert(self.query[name])
        except ValueError:
            raise _BadRequest(f"{name}={self.query[name]!r}") from None

    # -- writing ----------------------------------------------------------------------

    @property
    def _head(self) -> bool:
        return self.command == "HEAD"

    def _start(
        self, status: int, headers: dict[str, str] | None = None, *, last: bool = False
    ) -> None:
        """Send the status line and headers; ``last`` when no body follows."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if last:
            self._done()
        self.end_headers()

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a whole response; the body is left out for HEAD, 204 and 304."""
        all_headers = dict(headers or {})
        if status not in (204, 304):
            all_headers["Content-Type"] = content_type
            all_headers["Content-Length"] = str(len(body))
        self._start(status, all_headers, last=True)
        if body and not self._head and status not in (204, 304):
            self.wfile.write(body)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return False at once if the client hangs up.

        Watching the socket also wakes us when the server closes it at shutdown.
        """
        deadline = time.monotonic() + seconds
        sock = self.connection
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([sock], [], [], remaining)
            if not readable:
                continue
            try:
                peeked = sock.recv(1, socket.MSG_PEEK)
            except OSError:
                return False
            if not peeked:
                return False
            # A pipelined request is waiting: we can no longer see a hang-up; just sleep.
            time.sleep(max(0.0, deadline - time.monotonic()))
            return True
        return True

    def _stream(self, n: int, *, chunked: bool, chunk: int, delay: float) -> None:
        """Write ``pattern_bytes(n)`` in pieces of ``chunk`` bytes, ``delay`` s apart."""
        offset = 0
        while True:
            if offset and delay and not self._wait(delay):
                self.close_connection = True
                return
            size = min(chunk, n - offset)
            piece = pattern_bytes(size, offset)
            if chunked and size:
                piece = b"%x\r\n%s\r\n" % (size, piece)
            offset += size
            if offset >= n:
                self._done()
                self.wfile.write(piece + (b"0\r\n\r\n" if chunked else b""))
                return
            self.wfile.write(piece)

    # -- routes -----------------------------------------------------------------------

    def _files(self, path: str) -> None:
        root = self.server.root
        if "\0" in path:
            self._send(404, b"not found\n")
            return
        target = (root / path.lstrip("/")).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(root) or not target.is_file():
            self._send(404, b"not found\n")
            return
        content_type, _ = _MIME.guess_type(target.name)
        content_type = content_type or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        size = target.stat().st_size
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        self._start(200, headers, last=self._head or size == 0)
        if self._head:
            return
        with target.open("rb") as f:
            block = f.read(_CHUNK)
            while block:
                following = f.read(_CHUNK)
                if not following:
                    self._done()
                self.wfile.write(block)
                block = following

    def _page(self, name: str) -> None:
        self._files(f"http/{name}")

    def _latency(self, ms: str, path: str) -> None:
        if self._wait(int(ms) / 1000):
            self._files(path)
        else:
            self.close_connection = True

    def _status(self, code: str) -> None:
        status = int(code)
        if not 200 <= status <= 599:
            raise _BadRequest(f"status {status} is outside 200-599")
        self._send(status, f"status {status}\n".encode())

    def _redirect(self, n: str) -> None:
        remaining = int(n)
        if remaining == 0:
            self._send(200, b"done")
        else:
            self._send(302, b"redirecting\n", headers={"Location": f"/redirect/{remaining - 1}"})

    def _redirect_to(self) -> None:
        url = self._param("url", "", str)
        status = self._param("status", 302, int)
        if not url or not 300 <= status <= 399:
            raise _BadRequest("needs url= and a 3xx status=")
        self._send(status, b"redirecting\n", headers={"Location": url})

    def _loop(self, suffix: str) -> None:
        self._send(302, b"looping\n", headers={"Location": "/loop" if suffix else "/loop2"})

    def _bytes(self, n: str, *, chunked: bool = False) -> None:
        size = int(n)
        chunk = self._param("chunk", _CHUNK, int)
        delay = self._param("delay", 0.0, float)
        if chunk <= 0 or delay < 0:
            raise _BadRequest("chunk must be > 0 and delay >= 0")
        framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)}
        self._start(200, {"Content-Type": "application/octet-stream", **framing}, last=self._head)
        if not self._head:
            self._stream(size, chunked=chunked, chunk=chunk, delay=delay)

    def _chunked(self, n: str) -> None:
        self._bytes(n, chunked=True)

    def _slow(self) -> None:
        if self._wait(self._param("delay", 1.0, float)):
            self._send(200, b"slow")
        else:
            self.close_connection = True

    def _stall(self) -> None:
        after = min(self._param("after", 0, int), _STALL_LENGTH)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(_STALL_LENGTH)}
        self._start(200, headers, last=self._head)
        if self._head:
            return
        self.wfile.write(pattern_bytes(after))
        self._wait(_STALL_SECONDS)
        self.close_connection = True  # the body is incomplete: the connection is spent

    def _drop(self) -> None:
        after = min(self._param("after", 0, int), _DROP_LENGTH)
        reset = self._param("reset", False, lambda v: v not in ("", "0", "false"))
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(_DROP_LENGTH)}
        self._start(200, headers, last=True)
        if not self._head:
            self.wfile.write(pattern_bytes(after))
        self.close_connection = True
        if reset:
            # Linger 0 turns close() into an RST instead of an orderly FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self.connection.shutdown(socket.SHUT_RDWR)

    def _flaky(self, key: str, failures: str) -> None:
        status = self._param("status", 503, int)
        retry_after = self._param("retry_after", "", str)
        if self.server.state.flaky_attempt(key) < int(failures):
            headers = {"Retry-After": retry_after} if retry_after else {}
            self._send(status, f"failing with {status}\n".encode(), headers=headers)
        else:
            self._send(200, b"recovered")

    def _echo_headers(self) -> None:
        body = json.dumps(self.request_headers, sort_keys=True).encode()
        self._send(200, body, "application/json")

    def _set_cookie(self) -> None:
        body = b"cookies set\n"
        self.send_response(200)
        for name, value in parse_qsl(urlsplit(self.path).query, keep_blank_values=True):
            self.send_header("Set-Cookie", f"{name}={value}; Path=/")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self._done()
        self.end_headers()
        if not self._head:
            self.wfile.write(body)

    def _echo(self) -> None:
        kept = self.body_kept
        answer = {
            "method": self.command,
            "length": self.body_length,
            "sha256": self.body_sha256,
            "body": None if kept is None else kept.decode("latin-1"),
            "content_type": self.request_headers.get("content-type"),
            "content_length": self.request_headers.get("content-length"),
            "transfer_encoding": self.request_headers.get("transfer-encoding"),
        }
        self._send(200, json.dumps(answer).encode(), "application/json")

    def _gzip(self) -> None:
        body = gzip.compress(GZIP_TEXT, mtime=0)
        self._send(200, body, headers={"Content-Encoding": "gzip"})


_ROUTES: list[tuple[re.Pattern[str], Callable[..., None]]] = [
    (re.compile(r"/files/(.*)"), _Handler._files),
    (re.compile(r"/page/(.*)"), _Handler._page),
    (re.compile(r"/latency/(\d+)/(.*)"), _Handler._latency),
    (re.compile(r"/status/(\d+)"), _Handler._status),
    (re.compile(r"/redirect/(\d+)"), _Handler._redirect),
    (re.compile(r"/redirect-to"), _Handler._redirect_to),
    (re.compile(r"/loop(2?)"), _Handler._loop),
    (re.compile(r"/bytes/(\d+)"), _Handler._bytes),
    (re.compile(r"/chunked/(\d+)"), _Handler._chunked),
    (re.compile(r"/slow"), _Handler._slow),
    (re.compile(r"/stall"), _Handler._stall),
    (re.compile(r"/drop"), _Handler._drop),
    (re.compile(r"/flaky/([^/]+)/(\d+)"), _Handler._flaky),
    (re.compile(r"/headers"), _Handler._echo_headers),
    (re.compile(r"/set-cookie"), _Handler._set_cookie),
    (re.compile(r"/gzip"), _Handler._gzip),
    (re.compile(r"/echo"), _Handler._echo),
]


class _Server(ThreadingHTTPServer):
    """The listening server: daemon handler threads and a deep accept backlog."""

    daemon_threads = True
    # The default backlog of 5 drops SYNs when a test opens many connections at once,
    # and the client's SYN retry then costs a whole second.
    request_queue_size = 128

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = _State()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can stall.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet about clients that hang up; report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class HTTPTestServer:
    """A running test server; use as a context manager or call :meth:`close`."""

    host = "127.0.0.1"
    """The address it listens on."""

    def __init__(self, root: Path = FIXTURES_DIR) -> None:
        self.root = root.resolve()
        """The directory ``/files/`` serves."""
        self._server = _Server(self.root)
        self._state = self._server.state
        self.port: int = self._server.server_port
        """The port it listens on."""
        self.base = f"http://{self.host}:{self.port}"
        """``http://127.0.0.1:PORT``."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"http-test-server:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def url(self, path: str) -> str:
        """Return ``http://127.0.0.1:PORT`` + ``path``."""
        return self.base + _slash(path)

    def alt_url(self, path: str) -> str:
        """Return the same server addressed by another host name: ``http://localhost:PORT`` + ``path``."""
        return f"http://localhost:{self.port}{_slash(path)}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received since the last :meth:`reset`, in order."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def bodies(self) -> list[tuple[str, str, int, str]]:
        """``(method, path, length, sha256)`` of each request body received since the last :meth:`reset`."""
        with self._state.lock:
            return list(self._state.bodies)

    @property
    def max_concurrent(self) -> int:
        """The most requests in flight at once since the last :meth:`reset`."""
        with self._state.lock:
            return self._state.max_concurrent

    @property
    def in_flight(self) -> int:
        """Requests being answered right now."""
        with self._state.lock:
            return self._state.in_flight

    @property
    def connections(self) -> int:
        """TCP connections accepted since the last :meth:`reset` (connection reuse tests)."""
        with self._state.lock:
            return self._state.connections

    def hits(self, path: str) -> int:
        """Count requests for ``path``: it matches the target exactly, or without its query."""
        return sum(1 for r in self.requests if path in (r.path, r.path.partition("?")[0]))

    def reset(self) -> None:
        """Forget recorded requests, ``max_concurrent`` and ``connections`` (not flaky keys)."""
        with self._state.lock:
            self._state.requests.clear()
            self._state.bodies.clear()
            self._state.max_concurrent = self._state.in_flight
            self._state.connections = 0

    def close(self) -> None:
        """Stop serving and close every connection, waking handlers that wait."""
        self._server.shutdown()
        with self._state.lock:
            sockets = list(self._state.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> HTTPTestServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _slash(path: str) -> str:
    return path if path.startswith("/") else "/" + path


@pytest.fixture(scope="session")
def http_server() -> Iterator[HTTPTestServer]:
    """A real HTTP/1.1 server on 127.0.0.1 for the whole session (see the module docstring).

    It is shared: call ``http_server.reset()`` before asserting on ``requests``,
    ``hits()``, ``max_concurrent`` or ``connections``.
    """
    with HTTPTestServer() as server:
        yield server
