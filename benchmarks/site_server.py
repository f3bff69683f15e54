"""A benchmark HTTP/1.1 server for crawls: a generated site of N interlinked pages.

The connection handling is ``server.py``'s (its own process, uvloop when installed,
fixed ``latency`` per response, answers in order on each connection); only the site
differs.  Page ``/p/<i>.html`` (``i`` from 0 to N-1; ``/p/0.html`` is the start) has:

- links to its children ``2i+1`` and ``2i+2`` (so every page is at most log2(N) links
  deep), to its parent, and to two pseudo-random pages;
- ``OWN`` requisites of its own (3 images ``/img/<i>-<k>.png``, 2 sounds
  ``/snd/<i>-<k>.wav``) and 2 shared by many pages (``/shared/logo.png`` on every page,
  ``/shared/bg<i % 20>.png``);
- every tenth page also links to ``/private/<i>.html``, a subtree robots.txt
  (``Disallow: /private/``) keeps crawlers out of (its pages link on further down).

``/stats`` (not counted, no latency) answers JSON: ``requests``, ``duplicates``
(requests for a path already requested since the last reset), ``robots_violations``
(requests under ``/private/``), ``robots_requests``, ``pages``, ``resources``,
``max_open`` (the most connections open at once: everything is one host),
``max_in_flight`` (the most requests taken up and not yet answered, with latency) and
``expected`` (the pages and resources a polite crawl fetches); ``/reset`` clears them.

    python benchmarks/site_server.py --pages 1000 --latency 0.05
    (prints "PORT <n> <event loop>" and serves until killed)
"""

from __future__ import annotations

import argparse
import json

from server import NOT_FOUND, Stats, body_for, head, run

OWN = 5
IMAGE_SIZE = 2048
SOUND_SIZE = 8192
SHARED_BACKGROUNDS = 20
ROBOTS = b"User-agent: *\nDisallow: /private/\n"


def links(i: int, pages: int) -> list[int]:
    """The pages page ``i`` links to (children, parent, two pseudo-random ones)."""
    out = [c for c in (2 * i + 1, 2 * i + 2) if c < pages]
    if i:
        out.append((i - 1) // 2)
    out += [(i * 7919 + 13) % pages, (i * 104729 + 7) % pages]
    return out


def requisites(i: int) -> list[str]:
    own = [f"/img/{i}-{k}.png" for k in range(3)] + [f"/snd/{i}-{k}.wav" for k in range(OWN - 3)]
    return own + ["/shared/logo.png", f"/shared/bg{i % SHARED_BACKGROUNDS}.png"]


def page_html(i: int, pages: int, private: bool = False) -> bytes:
    prefix = "/private" if private else "/p"
    parts = [f"<!doctype html><html><head><title>page {i}</title></head><body><h1>{i}</h1>"]
    for target in links(i, pages):
        parts.append(f'<a href="{prefix}/{target}.html">page {target}</a>')
    if not private and i % 10 == 0:
        parts.append(f'<a href="/private/{i}.html">private {i}</a>')
    for path in requisites(i):
        if path.endswith(".wav"):
            parts.append(f'<audio src="{path}"></audio>')
        else:
            parts.append(f'<img src="{path}" alt="">')
    parts.append("</body></html>")
    return "\n".join(parts).encode()


def expected(pages: int) -> dict[str, int]:
    """What a polite crawl of the whole site fetches (robots.txt aside)."""
    resources = pages * OWN + 1 + min(pages, SHARED_BACKGROUNDS)
    return {"pages": pages, "resources": resources}


class CrawlStats(Stats):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()
        self.duplicates = 0
        self.robots_violations = 0
        self.robots_requests = 0
        self.pages = 0
        self.resources = 0


class CrawlSite:
    """The ``Site`` interface of ``server.py`` (``response``, ``control``, ``stats``) for the crawl site."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.pages: int = args.pages
        self.latency: float = args.latency
        self.bandwidth = 0.0
        self.stats = CrawlStats()
        self.bodies = {
            size: {name: body_for(name, size) for name in ("a", "b")} for size in (IMAGE_SIZE, SOUND_SIZE)
        }

    def count(self, path: str) -> None:
        stats = self.stats
        if path in stats.seen:
            stats.duplicates += 1
        else:
            stats.seen.add(path)
        if path.startswith("/private/"):
            stats.robots_violations += 1
        elif path == "/robots.txt":
            stats.robots_requests += 1
        elif path.startswith("/p/"):
            stats.pages += 1
        else:
            stats.resources += 1

    def response(self, path: str) -> bytes:
        """Status line, headers and body for ``path`` (counted here: ``Connection`` asks once)."""
        self.count(path)
        if path == "/robots.txt":
            return head(b"text/plain", len(ROBOTS)) + ROBOTS
        for prefix, private in (("/p/", False), ("/private/", True)):
            if path.startswith(prefix) and path.endswith(".html"):
                number = path[len(prefix) : -5]
                if number.isdigit() and int(number) < self.pages:
                    body = page_html(int(number), self.pages, private)
                    return head(b"text/html; charset=utf-8", len(body)) + body
                return NOT_FOUND
        if path.startswith(("/img/", "/shared/")) and path.endswith(".png"):
            body = self.bodies[IMAGE_SIZE]["a"]
            return head(b"image/png", len(body)) + body
        if path.startswith("/snd/") and path.endswith(".wav"):
            body = self.bodies[SOUND_SIZE]["b"]
            return head(b"audio/wav", len(body)) + body
        return NOT_FOUND

    def control(self, path: str) -> bytes | None:
        if path == "/stats":
            s = self.stats
            data = json.dumps({
                "requests": s.requests, "duplicates": s.duplicates,
                "robots_violations": s.robots_violations, "robots_requests": s.robots_requests,
                "pages": s.pages, "resources": s.resources, "max_open": s.max_open,
                "max_in_flight": s.max_active,
                "expected": expected(self.pages),
            }).encode()
        elif path == "/reset":
            open_now = self.stats.open
            self.stats = CrawlStats()
            self.stats.open = self.stats.max_open = open_now
            data = b"ok"
        else:
            return None
        return head(b"application/json", len(data)) + data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--no-uvloop", action="store_true")
    run(parser.parse_args(), CrawlSite)


if __name__ == "__main__":
    main()
