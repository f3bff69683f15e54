"""A generated, interlinked loopback web site for crawl tests, with per-path request counters.

:func:`make_site` builds the site in memory: ``/p/<i>.html`` for ``i`` in
``range(pages)``, a tree in which page ``i`` links to its ``fanout`` children
(``fanout*i + 1`` …), so its depth from ``/p/0.html`` is known
(:func:`depth`); every page also links back to the root, to its parent (by an
absolute URL), to itself with a fragment, to its own first image (a link to a
requisite) and to a page on another host name (``localhost``, out of scope).
Each page has ``images`` images of its own (``/img/<i>-<k>.png``) and one of
``shared`` images shared across pages (``/img/shared-<n>.png``).

:class:`SiteServer` serves it with the standard library's threaded HTTP server
on 127.0.0.1, counting each path's requests, the most requests in flight at
once, and waiting ``delay`` seconds before each answer when asked to.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["SiteServer", "depth", "make_site", "serve_site"]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def depth(i: int, fanout: int = 2) -> int:
    """How many links page ``i`` lies from page 0 in :func:`make_site`'s tree."""
    d = 0
    while i:
        i = (i - 1) // fanout
        d += 1
    return d


def make_site(pages: int, *, fanout: int = 2, images: int = 2, shared: int = 3,
              port: int = 0) -> dict[str, tuple[str, bytes]]:
    """The site: path → (content type, body).  ``port`` goes into the absolute links."""
    site: dict[str, tuple[str, bytes]] = {}
    for i in range(pages):
        children = [c for c in range(fanout * i + 1, fanout * i + fanout + 1) if c < pages]
        parent = (i - 1) // fanout if i else 0
        links = [f'<a href="/p/{c}.html">child {c}</a>' for c in children]
        links += [
            '<a href="/p/0.html">home</a>',
            f'<a href="http://127.0.0.1:{port}/p/{parent}.html">up</a>',
            f'<a href="{i}.html#top">this page</a>',
            f'<a href="/img/{i}-0.png">my picture</a>',
            f'<a href="http://localhost:{port}/elsewhere.html">another host</a>',
        ]
        imgs = [f'<img src="/img/{i}-{k}.png">' for k in range(images)]
        imgs.append(f'<img src="/img/shared-{i % shared}.png">')
        body = f"<!doctype html><title>page {i}</title>{''.join(links)}{''.join(imgs)}\n"
        site[f"/p/{i}.html"] = ("text/html; charset=utf-8", body.encode())
        for k in range(images):
            site[f"/img/{i}-{k}.png"] = ("image/png", PNG)
    for n in range(shared):
        site[f"/img/shared-{n}.png"] = ("image/png", PNG)
    return site


class SiteServer:
    """A running site: ``url(path)``, ``counts`` by path, ``most_in_flight``."""

    def __init__(self, site: Mapping[str, tuple[str, bytes]] | None = None, *, delay: float = 0.0) -> None:
        self.site: dict[str, tuple[str, bytes]] = dict(site or {})
        self.delay = delay
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm
            # and the client's delayed ACK hold each answer back ~40 ms.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.counts[path] += 1
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                answering = False
                try:
                    if server.delay:
                        time.sleep(server.delay)
                    entry = server.site.get(path)
                    if entry is None:
                        self.send_response(404)
                        body, ctype = b"not found", "text/plain"
                    else:
                        self.send_response(200)
                        ctype, body = entry
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    # Out of flight before the first byte leaves: a client that reads the
                    # answer and sends its next request can never be seen overlapping
                    # this one because this thread was slow to count down.
                    answering = True
                    with server._lock:
                        server.in_flight -= 1
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    if not answering:
                        with server._lock:
                            server.in_flight -= 1

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A client that hangs up mid-answer (a crawl killed or left early) is no error here.
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="site-server", daemon=True)

    def generate(self, pages: int, **options: int) -> SiteServer:
        """Serve :func:`make_site` (its absolute links naming this server's port)."""
        self.site.update(make_site(pages, port=self.port, **options))
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.most_in_flight = 0

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@contextlib.contextmanager
def serve_site() -> Iterator[SiteServer]:
    """An empty running :class:`SiteServer` (fill ``site`` or call ``generate``), stopped after."""
    server = SiteServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.close()
