"""A benchmark HTTP/1.1 server: fixed latency per response, optional bandwidth cap, counters.

Runs in its own process (so it never competes with the measured client for the GIL)
and serves a synthetic page: ``/page.html`` referring to ``images`` images of
``image_size`` bytes and ``sounds`` sounds of ``sound_size`` bytes, each body a
deterministic pattern the harness can check.  ``/stats`` returns the request count
and the most connections it saw at once; ``/reset`` clears them.

Every other request (404s included) is answered ``latency`` seconds after the server
takes it up; requests on one connection are answered one after another, in order
(pipelined requests wait their turn, each with its own latency).  To keep the server
out of the measurement it runs on uvloop when that is installed (else plain asyncio),
uses a bare ``asyncio.Protocol`` rather than streams, and builds every response's
bytes (status line, headers and body) once at start-up.

    python benchmarks/server.py --images 100 --sounds 10 --latency 0.05
    (prints "PORT <n> <event loop>" and serves until killed)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover - depends on the environment
    uvloop = None

# Bodies are built once at start-up while they fit in this much memory in total;
# beyond it, each response builds its body when it is sent.
CACHE_LIMIT = 512 << 20


def body_for(name: str, size: int) -> bytes:
    """The deterministic body of a resource (also used by the harness to verify)."""
    seed = sum(name.encode()) % 251
    pattern = bytes((seed + i) % 251 for i in range(251))
    return (pattern * (size // 251 + 1))[:size]


def resource_names(images: int, sounds: int) -> list[tuple[str, str]]:
    """(path, kind) of every requisite of the page."""
    names = [(f"/img/i{i}.png", "image") for i in range(images)]
    names += [(f"/snd/s{i}.wav", "sound") for i in range(sounds)]
    return names


def page_html(images: int, sounds: int) -> bytes:
    parts = ["<!doctype html><html><head><title>bench</title></head><body>"]
    for path, kind in resource_names(images, sounds):
        parts.append(f'<img src="{path}">' if kind == "image" else f'<audio src="{path}"></audio>')
    parts.append("</body></html>")
    return "\n".join(parts).encode()


def head(ctype: bytes, length: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (ctype, length)


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.open = 0
        self.max_open = 0
        self.active = 0  # requests taken up and not yet answered (in flight), all connections
        self.max_active = 0


class Site:
    """Every response of the synthetic site, prebuilt where memory allows."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.latency: float = args.latency
        self.bandwidth: float = args.bandwidth
        self.stats = Stats()
        page = page_html(args.images, args.sounds)
        self.ready: dict[str, bytes] = {"/page.html": head(b"text/html", len(page)) + page}
        self.lazy: dict[str, int] = {}
        cached = len(page)
        for path, kind in resource_names(args.images, args.sounds):
            size = args.image_size if kind == "image" else args.sound_size
            if cached + size <= CACHE_LIMIT:
                self.ready[path] = head(b"application/octet-stream", size) + body_for(path, size)
                cached += size
            else:
                self.lazy[path] = size

    def response(self, path: str) -> bytes:
        """Status line, headers and body for ``path``."""
        data = self.ready.get(path)
        if data is not None:
            return data
        size = self.lazy.get(path)
        if size is None:
            return NOT_FOUND
        return head(b"application/octet-stream", size) + body_for(path, size)

    def control(self, path: str) -> bytes | None:
        """The answer to ``/stats`` or ``/reset`` (no latency, not counted), else None."""
        if path == "/stats":
            stats = self.stats
            data = json.dumps({"requests": stats.requests, "max_open": stats.max_open}).encode()
        elif path == "/reset":
            self.stats.requests, self.stats.max_open = 0, self.stats.open
            data = b"ok"
        else:
            return None
        return head(b"application/json", len(data)) + data


def request_end(buffer: bytearray) -> tuple[int, int]:
    """(index, terminator length) of the blank line ending the first request head, or (-1, 0)."""
    crlf = buffer.find(b"\r\n\r\n")
    lf = buffer.find(b"\n\n")
    if lf != -1 and (crlf == -1 or lf < crlf):
        return lf, 2
    return (crlf, 4) if crlf != -1 else (-1, 0)


class Connection(asyncio.Protocol):
    """One client connection: parse request heads, answer them in order."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.queue: deque[str] = deque()
        self.busy = False  # a response is being delayed or trickled
        self.eof = False
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.counted: Stats | None = None  # the Stats the request the timer answers is counted in
        self.trickle_task: asyncio.Task[None] | None = None
        self.drained: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        stats = self.site.stats
        stats.open += 1
        stats.max_open = max(stats.max_open, stats.open)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.site.stats.open -= 1
        if self.timer is not None:
            self.timer.cancel()
            if self.counted is not None:
                self.counted.active -= 1  # send() would have counted it down
        if self.trickle_task is not None:
            self.trickle_task.cancel()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def pause_writing(self) -> None:
        self.drained = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    def eof_received(self) -> bool:
        self.eof = True
        # Owing answers: stay half-closed and close after the last; else close now.
        return self.busy or bool(self.queue)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while True:
            end, skip = request_end(buffer)
            if end == -1:
                break
            line = bytes(buffer[: buffer.find(b"\n")])
            del buffer[: end + skip]
            parts = line.split()
            self.queue.append(parts[1].decode("latin-1").split("?")[0] if len(parts) > 1 else "/")
        if not self.busy:
            self.next()

    def next(self) -> None:
        """Take up queued requests until one has to wait (latency or bandwidth cap)."""
        site = self.site
        while self.queue and not self.closed:
            path = self.queue.popleft()
            answer = site.control(path)
            if answer is not None:
                self.transport.write(answer)
                continue
            site.stats.requests += 1
            if site.latency:
                self.busy = True
                stats = site.stats
                stats.active += 1
                stats.max_active = max(stats.max_active, stats.active)
                self.counted = stats
                self.timer = self.loop.call_later(site.latency, self.send, path)
                return
            if not self.write(path):
                return
        if self.eof and not self.closed:
            self.transport.close()

    def send(self, path: str) -> None:
        if self.counted is not None:
            self.counted.active -= 1  # the Stats it was counted in (a /reset may have come since)
            self.counted = None
        self.timer = None
        self.busy = False
        if not self.closed and self.write(path):
            self.next()

    def write(self, path: str) -> bool:
        """Send the response to ``path``; False when it goes on in the background."""
        data = self.site.response(path)
        if not self.site.bandwidth or data is NOT_FOUND:
            self.transport.write(data)
            return True
        self.busy = True
        self.trickle_task = self.loop.create_task(self.trickle(data))
        return False

    async def trickle(self, data: bytes) -> None:
        """At most ``bandwidth / 100`` bytes every 10 ms (waiting for the socket to drain)."""
        end = data.index(b"\r\n\r\n") + 4
        self.transport.write(data[:end])
        step = max(1, int(self.site.bandwidth / 100))
        view = memoryview(data)
        for start in range(end, len(data), step):
            if self.closed:
                return
            self.transport.write(view[start : start + step])
            if self.drained is not None:
                await self.drained
            await asyncio.sleep(0.01)
        self.trickle_task = None
        self.busy = False
        self.next()


async def serve(args: argparse.Namespace, loop_name: str, make_site: Callable[[argparse.Namespace], Any] = Site) -> None:
    site = make_site(args)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(site), "127.0.0.1", args.port,
                                      backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port} {loop_name}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--sounds", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=2048)
    parser.add_argument("--sound-size", type=int, default=50 * 1024)
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds added to every response")
    parser.add_argument("--bandwidth", type=float, default=0.0,
                        help="bytes/second per connection (0: no cap)")
    parser.add_argument("--no-uvloop", action="store_true",
                        help="plain asyncio even if uvloop is installed")
    run(parser.parse_args(), Site)


def run(args: argparse.Namespace, make_site: Callable[[argparse.Namespace], Any]) -> None:
    """Serve ``make_site(args)`` (a ``Site``'s interface) until killed, on uvloop if installed."""
    use_uvloop = uvloop is not None and not args.no_uvloop
    try:
        if use_uvloop:
            uvloop.run(serve(args, "uvloop", make_site))
        else:
            asyncio.run(serve(args, "asyncio", make_site))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
