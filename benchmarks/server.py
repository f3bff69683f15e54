"""A benchmark HTTP/1.1 server: fixed latency per response, optional bandwidth cap, counters.

Runs in its own process (so it never competes with the measured client for the GIL)
and serves a synthetic page: ``/page.html`` referring to ``images`` images of
``image_size`` bytes and ``sounds`` sounds of ``sound_size`` bytes, each body a
deterministic pattern the harness can check.  ``/stats`` returns the request count
and the most connections it saw at once; ``/reset`` clears them.

    python benchmarks/server.py --images 100 --sounds 10 --latency 0.05
    (prints "PORT <n>" and serves until killed)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


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


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.open = 0
        self.max_open = 0


async def serve(args: argparse.Namespace) -> None:
    stats = Stats()
    sizes = {p: (args.image_size if k == "image" else args.sound_size) for p, k in resource_names(args.images, args.sounds)}
    page = page_html(args.images, args.sounds)
    cache: dict[str, bytes] = {}

    def body(path: str) -> bytes | None:
        if path == "/page.html":
            return page
        size = sizes.get(path)
        if size is None:
            return None
        if path not in cache and size <= (1 << 20):
            cache[path] = body_for(path, size)
        return cache.get(path) or body_for(path, size)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.open += 1
        stats.max_open = max(stats.max_open, stats.open)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                path = line.split()[1].decode().split("?")[0] if len(line.split()) > 1 else "/"
                if path == "/stats":
                    data = json.dumps({"requests": stats.requests, "max_open": stats.max_open}).encode()
                elif path == "/reset":
                    stats.requests, stats.max_open = 0, stats.open
                    data = b"ok"
                else:
                    stats.requests += 1
                    if args.latency:
                        await asyncio.sleep(args.latency)
                    data = body(path)
                if data is None:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                ctype = b"text/html" if path.endswith(".html") else b"application/octet-stream"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (ctype, len(data)))
                if args.bandwidth:
                    step = max(1, int(args.bandwidth / 100))
                    for start in range(0, len(data), step):
                        writer.write(data[start : start + step])
                        await writer.drain()
                        await asyncio.sleep(0.01)
                else:
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            stats.open -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--sounds", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=2048)
    parser.add_argument("--sound-size", type=int, default=50 * 1024)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--bandwidth", type=float, default=0.0, help="bytes/second per connection (0: no cap)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
