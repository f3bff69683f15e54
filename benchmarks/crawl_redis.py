"""A crawl shared through Redis: pages/s for 1, 2 and 3 workers (issue 19).

Run by hand (never part of the test suite; needs ``redis-server``, which
``tests/interop/install-http.sh`` installs, and the ``redis`` extra)::

    python benchmarks/crawl_redis.py                      # 400 pages a host, 0 and 50 ms
    python benchmarks/crawl_redis.py --pages 1000 --latency 0
    python benchmarks/crawl_redis.py --workers 1 2 3 --hosts 1 3 --json redis.json

Each row starts a ``redis-server`` of its own on a free loopback port, ``--hosts``
generated sites (``site_server.py``, each its own process and port: to the loader,
each port is a host with its own per-host limit of 6) of ``--pages`` pages, and then
``--workers`` processes at once, each::

    LOADER fetch -r -l inf --frontier redis://127.0.0.1:PORT/0?crawl=bench -o DIR_i \\
        --per-host 6 --no-progress -q http://127.0.0.1:SITE1/p/0.html …

Columns: wall time from the first worker's start to the last one's exit, pages/s and
requests/s (the sites' counts over that time), ``dup`` requests for a path already
requested on its site (must be 0, robots.txt excluded: each worker reads it once),
``robots`` requests under ``/private/`` (must be 0), ``conns`` the most connections
open at once on any one site (each worker keeps its own idle keep-alive connections, so
up to 6 a worker), ``flight`` the most requests under way at once on any one site, as
the site counts them with latency on (at most 6 however many workers: the limit is
shared; at 0 latency a request is answered as it arrives and this is not measured).
With one host the per-host limit is the bound, and more workers cannot go faster
(at 50 ms: ``x bound`` is the wall time over ``latency x ceil(requests / 6)``); with
several hosts, the workers share the frontier and the hosts' limits add up.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from crawl import SiteServer  # noqa: E402
from run import BENCH_ENV  # noqa: E402

PER_HOST = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Redis:
    def __init__(self, scratch: Path) -> None:
        program = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = free_port()
        self.proc = subprocess.Popen(
            [program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(scratch), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def row(workers: int, hosts: int, pages: int, latency: float, args: argparse.Namespace,
        base: Path) -> dict[str, Any]:
    sites = [SiteServer(pages, latency) for _ in range(hosts)]
    redis = Redis(base)
    outs = [base / f"w{i}" for i in range(workers)]
    try:
        for out in outs:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
        frontier = f"redis://127.0.0.1:{redis.port}/0?crawl=bench"
        starts = [site.base + "/p/0.html" for site in sites]
        for site in sites:
            site.get("/reset")
        cmd = [*shlex.split(args.loader), "fetch", "-r", "-l", "inf", "--frontier", frontier,
               "--per-host", str(PER_HOST), "--no-progress", "-q"]
        # stderr to files, not pipes: a worker blocked on a full pipe that nobody reads
        # yet (we wait for the workers one by one) stalls, and its leases run out.
        logs = [base / f"w{i}.err" for i in range(workers)]
        started = time.perf_counter()
        procs = []
        for out, log in zip(outs, logs, strict=True):
            with log.open("w") as err:
                procs.append(subprocess.Popen([*cmd, "-o", str(out), *starts], env=BENCH_ENV,
                                              stdout=subprocess.DEVNULL, stderr=err))
        for proc in procs:
            proc.wait()
        wall = time.perf_counter() - started
        errors = [log.read_text(errors="replace") for log in logs]
        stats = [site.get("/stats") for site in sites]
    finally:
        for site in sites:
            site.close()
        redis.close()
        for out in outs:
            shutil.rmtree(out, ignore_errors=True)
    served = sum(s["pages"] for s in stats)
    requests = sum(s["requests"] for s in stats)
    want = sum(s["expected"]["pages"] + s["expected"]["resources"] for s in stats)
    bound = latency * math.ceil((want / hosts + 1) / PER_HOST) if latency else None
    return {
        "workers": workers, "hosts": hosts, "pages": pages, "latency": latency, "wall": wall,
        "pages_per_s": served / wall, "requests_per_s": requests / wall,
        "served_pages": served, "expected_pages": sum(s["expected"]["pages"] for s in stats),
        "duplicates": sum(s["duplicates"] - (workers - 1) for s in stats),  # robots.txt once a worker
        "robots_violations": sum(s["robots_violations"] for s in stats),
        "max_conns": max(s["max_open"] for s in stats),
        "max_in_flight": max(s.get("max_in_flight", 0) for s in stats),
        "x_bound": None if bound is None else wall / bound,
        "codes": [p.returncode for p in procs], "stderr": [e[-500:] for e in errors if e.strip()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=400, help="pages a host (default 400)")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--loader", default=f"{shlex.quote(sys.executable)} -m loader",
                        help="the loader command to run (default: this Python's)")
    parser.add_argument("--dir", type=Path,
                        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    head = (f"{'workers':>7} {'hosts':>5} {'N/host':>6} {'lat ms':>6} {'wall s':>7} {'pages/s':>8} "
            f"{'req/s':>7} {'pages':>11} {'dup':>4} {'robots':>6} {'conns':>5} {'flight':>6} {'x bound':>7}")
    print(head)
    print("-" * len(head), flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="crawl-redis-") as tmp:
        for latency in args.latency:
            for hosts in args.hosts:
                for workers in args.workers:
                    r = row(workers, hosts, args.pages, latency, args, Path(tmp))
                    rows.append(r)
                    bound = "" if r["x_bound"] is None else f"{r['x_bound']:.2f}"
                    print(f"{workers:>7} {hosts:>5} {args.pages:>6} {latency * 1000:>6.0f} {r['wall']:>7.2f} "
                          f"{r['pages_per_s']:>8.0f} {r['requests_per_s']:>7.0f} "
                          f"{r['served_pages']:>5}/{r['expected_pages']:<5} {r['duplicates']:>4} "
                          f"{r['robots_violations']:>6} {r['max_conns']:>5} {r['max_in_flight']:>6} {bound:>7}", flush=True)
                    if any(r["codes"]):
                        print(f"        exit codes {r['codes']}: {r['stderr']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
