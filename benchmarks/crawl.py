"""Crawl a generated site with ``loader fetch -r`` and its peers, side by side (issue 18).

Run by hand (never part of the test suite)::

    python benchmarks/crawl.py                         # N=1000, latency 0 and 50 ms
    python benchmarks/crawl.py --pages 1000 10000      # several site sizes
    python benchmarks/crawl.py --latency 0.05 --tools loader,wget2
    python benchmarks/crawl.py --loader "python -m loader"   # the loader command to run
    python benchmarks/crawl.py --scrapy-python /tmp/scrapy-venv/bin/python
    python benchmarks/crawl.py --json crawl.json       # also every row as JSON

The site (``site_server.py``, its own process): N pages linked as a binary tree plus
parent and pseudo-random links, each with 5 requisites of its own (3 images, 2 sounds)
and 2 shared ones, and a ``/private/`` subtree that robots.txt disallows.  Every tool
crawls it from ``/p/0.html`` with no depth limit, honouring robots.txt, at most 6
connections to the host (wget has one), saving into a fresh directory under ``--dir``
(``/dev/shm`` when it exists):

==========  ============================================================================
loader      ``LOADER fetch -r -l inf URL -o DIR --per-host 6 --no-progress -q``; skipped
            when ``LOADER fetch --help`` has no ``--recursive`` (the crawl command)
wget2       ``wget2 -r -l inf -p --max-threads=6 -q -P DIR URL`` (apt: ``wget2``)
wget        ``wget -r -l inf -p -q -P DIR URL`` (one connection)
scrapy      ``scrapy_spider.py``: a spider following ``<a href>``, yielding each page's
            img/audio sources to ``FilesPipeline`` (``ROBOTSTXT_OBEY``,
            ``CONCURRENT_REQUESTS_PER_DOMAIN=6``).  Scrapy is no project dependency: give
            a Python that has it with ``--scrapy-python`` (default: ``/tmp/scrapy-venv``'s
            when it exists, else this one); the row is skipped when it cannot import it.
==========  ============================================================================

Columns: wall time of the process (``/usr/bin/time``), pages/s and requests/s (the
server's counts over that time), peak RSS (GNU time's ``%M``), the pages and resources
the server served against those a complete crawl fetches (``got``), ``dup`` requests for
a path already requested (must be 0), ``robots`` requests under ``/private/`` (must
be 0), ``conns`` the most connections open at once (must be <= 6), and with latency
``x bound``: the wall time over the latency bound ``latency x ceil(requests / 6)`` of
the complete crawl's requests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import BENCH_ENV, gnu_time_works, run_measured  # noqa: E402

PER_HOST = 6
TOOLS = ("loader", "wget2", "wget", "scrapy")
SCRAPY_VENV = Path("/tmp/scrapy-venv/bin/python")


class SiteServer:
    def __init__(self, pages: int, latency: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "site_server.py"), "--pages", str(pages),
             "--latency", str(latency)],
            stdout=subprocess.PIPE, text=True,
        )
        words = (self.proc.stdout.readline() if self.proc.stdout else "").split()
        self.base = f"http://127.0.0.1:{int(words[1])}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path) as r:
            body = r.read()
        return json.loads(body) if path == "/stats" else body

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def command(tool: str, url: str, out: Path, args: argparse.Namespace) -> list[str] | str:
    """The tool's command line, or why it is skipped."""
    if tool == "loader":
        loader = shlex.split(args.loader)
        try:
            helped = subprocess.run([*loader, "fetch", "--help"], capture_output=True, text=True,
                                    env=BENCH_ENV, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot run {args.loader!r}: {exc}"
        if "--recursive" not in helped.stdout:
            return f"{args.loader!r} has no 'fetch --recursive' yet"
        return [*loader, "fetch", "-r", "-l", "inf", url, "-o", str(out),
                "--per-host", str(PER_HOST), "--no-progress", "-q"]
    if tool == "wget2":
        if not shutil.which("wget2"):
            return "wget2 is not installed (apt-get install wget2)"
        return ["wget2", "-r", "-l", "inf", "-p", f"--max-threads={PER_HOST}", "-q", "-P", str(out), url]
    if tool == "wget":
        if not shutil.which("wget"):
            return "wget is not installed"
        return ["wget", "-r", "-l", "inf", "-p", "-q", "-P", str(out), url]
    if tool == "scrapy":
        python = args.scrapy_python
        probe = subprocess.run([python, "-c", "import scrapy"], capture_output=True)
        if probe.returncode:
            return f"{python} cannot import scrapy (pip install scrapy, in a venv of its own)"
        return [python, str(HERE / "scrapy_spider.py"), url, str(out), "--per-host", str(PER_HOST)]
    raise ValueError(tool)


def row(tool: str, pages: int, latency: float, args: argparse.Namespace, base: Path,
        gnu_time: bool) -> dict[str, Any]:
    server = SiteServer(pages, latency)
    try:
        out = base / f"{tool}-{pages}-{int(latency * 1000)}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        url = server.base + "/p/0.html"
        cmd = command(tool, url, out, args)
        if isinstance(cmd, str):
            return {"tool": tool, "pages": pages, "latency": latency, "skipped": cmd}
        server.get("/reset")
        measured = run_measured(cmd, out, base / f".{tool}", gnu_time)
        stats = server.get("/stats")
        shutil.rmtree(out, ignore_errors=True)
    finally:
        server.close()
    expected = stats["expected"]
    want = expected["pages"] + expected["resources"]
    bound = latency * math.ceil((want + 1) / PER_HOST) if latency else None
    return {
        "tool": tool, "pages": pages, "latency": latency, "command": shlex.join(cmd),
        "wall": measured.wall, "code": measured.code, "stderr": measured.stderr,
        "peak_mib": None if measured.peak_kib is None else measured.peak_kib / 1024,
        "pages_per_s": stats["pages"] / measured.wall,
        "requests_per_s": stats["requests"] / measured.wall,
        "served_pages": stats["pages"], "served_resources": stats["resources"],
        "expected_pages": expected["pages"], "expected_resources": expected["resources"],
        "requests": stats["requests"], "duplicates": stats["duplicates"],
        "robots_violations": stats["robots_violations"], "max_conns": stats["max_open"],
        "x_bound": None if bound is None else measured.wall / bound,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'tool':8} {'N':>6} {'lat ms':>6} {'wall s':>8} {'pages/s':>8} {'req/s':>8} "
            f"{'peak MiB':>8} {'got':>17} {'dup':>5} {'robots':>6} {'conns':>5} {'x bound':>7}")
    print(head)
    print("-" * len(head))
    for r in rows:
        lead = f"{r['tool']:8} {r['pages']:>6} {r['latency'] * 1000:>6.0f}"
        if "skipped" in r:
            print(f"{lead}  skipped: {r['skipped']}")
            continue
        got = f"{r['served_pages']}/{r['expected_pages']}+{r['served_resources']}/{r['expected_resources']}"
        peak = "?" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
        bound = "" if r["x_bound"] is None else f"{r['x_bound']:.2f}"
        print(f"{lead} {r['wall']:>8.2f} {r['pages_per_s']:>8.0f} {r['requests_per_s']:>8.0f} "
              f"{peak:>8} {got:>17} {r['duplicates']:>5} {r['robots_violations']:>6} "
              f"{r['max_conns']:>5} {bound:>7}")
        if r["code"]:
            print(f"{'':8} exit {r['code']}: {r['stderr']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, nargs="+", default=[1000])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--loader", default=f"{shlex.quote(sys.executable)} -m loader",
                        help="the loader command (default: this Python's -m loader)")
    parser.add_argument("--scrapy-python",
                        default=str(SCRAPY_VENV) if SCRAPY_VENV.exists() else sys.executable)
    parser.add_argument("--dir", type=Path,
                        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    for tool in tools:
        if tool not in TOOLS:
            parser.error(f"unknown tool {tool!r} (choose from {', '.join(TOOLS)})")
    base = Path(tempfile.mkdtemp(prefix="crawl-bench-", dir=args.dir))
    gnu_time = gnu_time_works(base / "probe")
    rows = []
    try:
        for pages in args.pages:
            for latency in args.latency:
                for tool in tools:
                    rows.append(row(tool, pages, latency, args, base, gnu_time))
                    print(f"  done: {tool} N={pages} latency={latency}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, per-host {PER_HOST}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
