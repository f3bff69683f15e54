"""A scripted raw TCP server for the misbehaving cases, and a port where nothing listens.

``raw_server(handler)`` starts a server on 127.0.0.1 that runs ``handler(conn)`` in its own
daemon thread for every connection it accepts: the handler writes whatever fault a test
needs (garbage replies, half responses, odd FTP or Gopher dialogues). Example::

    def half_response(conn: socket.socket) -> None:
        recv_until(conn, b"\\r\\n\\r\\n")
        send_lines(conn, ["HTTP/1.1 200 OK", "Content-Length: 100", ""])
        conn.sendall(b"short")

    server = raw_server(half_response)
    url = server.url("http", "/")

The connection is closed when the handler returns. A handler that fails with ``OSError``
(the client hung up, a 10 s socket timeout) is fine; any other exception is re-raised when
the fixture tears down, so a broken script cannot pass unnoticed.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import pytest

__all__ = ["HeadRecorder", "raw_server", "refused_port"]

Handler = Callable[[socket.socket], None]
"""A per-connection script: it gets the accepted socket and owns it until it returns."""

HANDLER_TIMEOUT = 10.0
"""Socket timeout on accepted connections, so a script waiting on a silent client ends."""

_JOIN_TIMEOUT = 1.0


def recv_until(conn: socket.socket, marker: bytes = b"\r\n", limit: int = 1 << 20) -> bytes:
    """Read up to and including ``marker`` and return it; never read past it.

    Returns what arrived if the peer closes first (maybe ``b""``); raises ``ValueError``
    past ``limit`` bytes without the marker.
    """
    buf = bytearray()
    while True:
        peeked = conn.recv(65536, socket.MSG_PEEK)
        if not peeked:
            return bytes(buf)
        found = (bytes(buf[-(len(marker) - 1) :]) if len(marker) > 1 else b"") + peeked
        index = found.find(marker)
        if index >= 0:
            wanted = index + len(marker) - (len(found) - len(peeked))
            buf += _recv_exactly(conn, wanted)
            return bytes(buf)
        buf += _recv_exactly(conn, len(peeked))
        if len(buf) > limit:
            raise ValueError(f"no {marker!r} in the first {len(buf)} bytes")


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def send_lines(conn: socket.socket, lines: Iterable[str | bytes], eol: bytes = b"\r\n") -> None:
    """Send each line followed by ``eol`` in one write; ``str`` lines are UTF-8 encoded."""
    conn.sendall(
        b"".join((line.encode() if isinstance(line, str) else line) + eol for line in lines)
    )


def hold(conn: socket.socket, seconds: float = 30.0) -> bool:
    """Keep the connection open and silent for up to ``seconds``, discarding input.

    Returns True as soon as the peer hangs up (or the fixture tears down, which closes
    every connection), False when the time runs out. Use it instead of ``time.sleep``
    so stalled-connection tests end as soon as the client gives up.
    """
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([conn], [], [], remaining)
        if readable:
            try:
                if not conn.recv(65536):
                    return True
            except OSError:
                return True
    return False


class RawServer:
    """A listening socket on 127.0.0.1 running ``handler`` once per accepted connection."""

    host = "127.0.0.1"
    """The address it listens on."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connections = 0
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        """Exceptions other than ``OSError`` that the handler raised."""
        self._listener = socket.create_server((self.host, 0), backlog=128)
        # A short accept timeout lets close() stop the loop promptly on every platform.
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        """The port it listens on."""
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"raw-server:{self.port}", daemon=True
        )
        self._acceptor.start()

    def url(self, scheme: str, path: str = "/") -> str:
        """Return ``scheme://127.0.0.1:PORT`` + ``path``, e.g. ``url("ftp", "/a.txt")``."""
        return f"{scheme}://{self.host}:{self.port}{path if path.startswith('/') else '/' + path}"

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._connections

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(HANDLER_TIMEOUT)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._connections += 1
                self._open.add(conn)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._handler(conn)
        except OSError:
            pass  # the client hung up or timed out: part of the scripts' world
        except BaseException as exc:  # reported at teardown
            with self._lock:
                self.errors.append(exc)
        finally:
            with self._lock:
                self._open.discard(conn)
            conn.close()

    def close(self) -> None:
        """Stop accepting, close every open connection and wait briefly for the handlers."""
        self._stop.set()
        self._acceptor.join()
        self._listener.close()
        with self._lock:
            conns, threads = list(self._open), list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes handlers blocked in recv/select
            except OSError:
                pass
        deadline = time.monotonic() + _JOIN_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class HeadRecorder:
    """A raw keep-alive HTTP/1.1 server that answers each request with :meth:`answer`
    and keeps every request head (``heads``, in arrival order).  Subclass it and
    override :meth:`answer`; the request's body, if any, is not read."""

    def __init__(self, raw_server: Callable[[Handler], RawServer]) -> None:
        self.heads: list[bytes] = []
        self._lock = threading.Lock()
        self.server = raw_server(self._serve)

    def url(self, path: str) -> str:
        return self.server.url("http", path)

    def answer(self, target: bytes, head: bytes) -> bytes:
        """The whole response (head and body) to the request for ``target``."""
        raise NotImplementedError

    def _serve(self, conn: socket.socket) -> None:
        while True:
            head = recv_until(conn, b"\r\n\r\n")
            if not head.endswith(b"\r\n\r\n"):
                return
            with self._lock:
                self.heads.append(head)
            conn.sendall(self.answer(head.split(b" ", 2)[1], head))


@pytest.fixture
def raw_server() -> Iterator[Callable[[Handler], RawServer]]:
    """A factory: ``raw_server(handler)`` starts a :class:`RawServer`; all stop at teardown.

    Handler exceptions other than ``OSError`` are raised at teardown.
    """
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    errors: list[BaseException] = []
    for server in servers:
        server.close()
        errors.extend(server.errors)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise BaseExceptionGroup("raw server handlers failed", errors)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 where connecting is refused.

    The port stays bound (without listening) for the test, so nothing else can take it
    meanwhile; the kernel answers a connection attempt with a reset.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
