#!/usr/bin/env python3
"""Compare what ``loader fetch --list`` finds with what headless Chromium loads.

Not part of the test suite (it needs Debian's ``chromium``): run it by hand,

    python tools/browser_compare.py                   # every fixtures/browser page
    python tools/browser_compare.py --device 390x844@3 picture.html

It serves ``fixtures/browser/`` on 127.0.0.1 (a file the pages name but the
directory lacks is answered with a tiny GIF or WAV of its extension's kind, so
the fixtures stay small), starts a small logging HTTP proxy on 127.0.0.1, and
for each page and device runs ``chromium --headless`` with a fresh profile
through the proxy (``--proxy-bypass-list=<-loopback>`` so loopback goes
through it too), the window at the viewport and ``--force-device-scale-factor``
at the DPR.  The image and audio requests the proxy saw (by file extension)
are compared with the image and sound URLs of ``loader fetch --list`` at the
same ``--viewport``/``--dpr``, in its default mode and with
``--all-candidates``: per page, *misses* (Chromium loaded, we would not) and
*extras* (we would, Chromium did not), then the totals.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "browser"
sys.path.insert(0, str(ROOT))

from loader.discovery import kind_for_name  # noqa: E402

# The smallest GIF (1x1, transparent) and a WAV of a few silent samples.
GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)
WAV = (
    b"RIFF" + (36 + 8).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
    + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
    + b"data" + (8).to_bytes(4, "little") + b"\x80" * 8
)
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css", ".svg": "image/svg+xml"}


class FixtureHandler(http.server.BaseHTTPRequestHandler):
    """Serves fixtures/browser, inventing tiny images and sounds it lacks."""

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        name = urlsplit(self.path).path.lstrip("/")
        path = FIXTURES / name
        if name and path.is_file() and FIXTURES in path.resolve().parents:
            body = path.read_bytes()
            ctype = TYPES.get(path.suffix, "application/octet-stream")
        elif kind_for_name(name) == "image":
            body, ctype = GIF, "image/gif"
            if name.endswith(".svg"):
                body, ctype = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>', "image/svg+xml"
        elif kind_for_name(name) == "sound":
            body, ctype = WAV, "audio/wav"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    """A plain HTTP proxy that records each request's URL (``server.seen``)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=10)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", target or "/")
            response = conn.getresponse()
            body = response.read()
        except OSError:
            self.send_error(502)
            return
        finally:
            conn.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "content-length", "keep-alive"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    """A client that hangs up early (Chromium closing at exit) is not worth a traceback."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    server = QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def media_paths(urls: list[str]) -> set[str]:
    """The paths of the image and sound URLs among ``urls``."""
    out = set()
    for url in urls:
        path = urlsplit(url).path
        if kind_for_name(path.rsplit("/", 1)[-1]) in ("image", "sound"):
            out.add(path)
    return out


def chromium_loads(binary: str, url: str, proxy: http.server.ThreadingHTTPServer,
                   viewport: tuple[int, int], dpr: float) -> set[str]:
    proxy.seen.clear()  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="browser-compare-") as profile:
        subprocess.run(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--disable-sync",
             f"--user-data-dir={profile}",
             f"--window-size={viewport[0]},{viewport[1]}", f"--force-device-scale-factor={dpr:g}",
             f"--proxy-server=http://127.0.0.1:{proxy.server_address[1]}",
             "--proxy-bypass-list=<-loopback>", "--virtual-time-budget=4000",
             "--dump-dom", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False,
        )
    return media_paths(list(proxy.seen))  # type: ignore[attr-defined]


def chromium_viewport(binary: str, viewport: tuple[int, int], dpr: float) -> tuple[int, int]:
    """The viewport Chromium really has for a window of ``viewport``.

    Headless windows are at least 500 px wide, and the height includes the
    window's frame: the loader is told what the page saw, not what was asked.
    """
    probe = "data:text/html,<script>document.write('VIEWPORT='+innerWidth+'x'+innerHeight)</script>"
    with tempfile.TemporaryDirectory(prefix="browser-compare-") as profile:
        out = subprocess.run(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             f"--window-size={viewport[0]},{viewport[1]}", f"--force-device-scale-factor={dpr:g}",
             "--dump-dom", probe],
            capture_output=True, text=True, timeout=120, check=False,
        ).stdout
    m = re.search(r"VIEWPORT=(\d+)x(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else viewport


def loader_finds(url: str, viewport: tuple[int, int], dpr: float, *extra: str) -> set[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), env.get("PYTHONPATH", "")])
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    out = subprocess.run(
        [sys.executable, "-m", "loader", "fetch", "--list", "--kinds", "image,sound",
         "--viewport", f"{viewport[0]}x{viewport[1]}", "--dpr", f"{dpr:g}", *extra, url],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    urls = [line.split("\t")[1] for line in out.stdout.splitlines() if line.count("\t") >= 2]
    return media_paths(urls)


def device(text: str) -> tuple[tuple[int, int], float]:
    size, _, dpr = text.partition("@")
    width, _, height = size.partition("x")
    return (int(width), int(height)), float(dpr or 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", help="fixture pages (default: every fixtures/browser/*.html)")
    parser.add_argument("--device", action="append", type=device, metavar="WxH@DPR",
                        help="window size and DPR (repeatable; default 1280x800@1 and 500x900@3)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)
    devices = args.device or [device("1280x800@1"), device("500x900@3")]
    pages = args.pages or sorted(p.name for p in FIXTURES.glob("*.html"))
    site = serve(FixtureHandler)
    proxy = serve(ProxyHandler)
    proxy.seen = []  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{site.server_address[1]}/"
    totals = {"default": [0, 0], "all-candidates": [0, 0]}
    browser_total = 0
    implicit_favicons = 0
    for window, dpr in devices:
        viewport = chromium_viewport(args.chromium, window, dpr)
        print(f"== device: window {window[0]}x{window[1]}, viewport {viewport[0]}x{viewport[1]}, dpr {dpr:g}")
        for page in pages:
            url = base + page
            browser = chromium_loads(args.chromium, url, proxy, window, dpr)
            if "/favicon.ico" in browser:
                # What Chromium asks for when a page names no icon: not written in the
                # page, and a 404 on most sites; the loader does not guess it.
                browser.discard("/favicon.ico")
                implicit_favicons += 1
            browser_total += len(browser)
            print(f"-- {page}: chromium loaded {len(browser)}")
            for mode, extra in (("default", ()), ("all-candidates", ("--all-candidates",))):
                ours = loader_finds(url, viewport, dpr, *extra)
                misses, extras = sorted(browser - ours), sorted(ours - browser)
                totals[mode][0] += len(misses)
                totals[mode][1] += len(extras)
                print(f"   {mode:15} found {len(ours):3}  misses {len(misses):2} {' '.join(misses)}")
                print(f"   {'':15}            extras {len(extras):2} {' '.join(extras)}")
    print(f"== totals over {len(pages)} pages x {len(devices)} devices "
          f"(chromium loaded {browser_total} images and sounds)")
    for mode, (misses, extras) in totals.items():
        print(f"   {mode:15} misses {misses:3}  extras {extras:3}")
    print(f"   (not counted: Chromium's own /favicon.ico request on {implicit_favicons} page loads)")
    site.shutdown()
    proxy.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
