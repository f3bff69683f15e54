"""Time ``loader fetch`` on a page's requisites against the C tools, side by side.

Run by hand (never part of the test suite)::

    python benchmarks/run.py                 # every scenario, 5 runs each
    python benchmarks/run.py --scenario a --runs 3

Scenarios (the server runs in its own process, see ``server.py``):

a   100 images of 2 KiB + 10 sounds of 50 KiB, 50 ms added to every response,
    at per-host limits of 6 and 128
b   the same with no latency
c   20 images of 5 MiB
d   900 images + 100 sounds of 2 KiB, no latency

For each tool installed (``loader``, ``wget2 -p``, ``wget -p``, ``curl --parallel``
and ``aria2c`` over the explicit URL list) it prints the median wall time of the
whole process, the ratio to the first peer, the ratio to the lower bound
``latency × (1 + ceil(resources / per-host limit))``, peak memory (max RSS of the
process), the most connections the server saw at once, and whether every resource
arrived intact.  For ``loader`` it also prints the time inside the process (first
to last status event, from ``--events``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from server import body_for, resource_names  # noqa: E402


@dataclass
class Scenario:
    name: str
    images: int
    sounds: int
    image_size: int
    sound_size: int
    latency: float
    per_host: int


SCENARIOS = {
    "a6": Scenario("a (latency 50 ms, per-host 6)", 100, 10, 2048, 50 * 1024, 0.05, 6),
    "a128": Scenario("a (latency 50 ms, per-host 128)", 100, 10, 2048, 50 * 1024, 0.05, 128),
    "b": Scenario("b (no latency)", 100, 10, 2048, 50 * 1024, 0.0, 6),
    "c": Scenario("c (20 x 5 MiB)", 20, 0, 5 << 20, 0, 0.0, 6),
    "d": Scenario("d (1000 small)", 900, 100, 2048, 2048, 0.0, 6),
}


class Server:
    def __init__(self, s: Scenario) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "server.py"), "--images", str(s.images), "--sounds", str(s.sounds),
             "--image-size", str(s.image_size), "--sound-size", str(s.sound_size), "--latency", str(s.latency)],
            stdout=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.base + "/stats") as r:
            return json.loads(r.read())

    def reset(self) -> None:
        urllib.request.urlopen(self.base + "/reset").read()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def run_measured(cmd: list[str], cwd: Path) -> tuple[float, int, int]:
    """Wall time, peak RSS in KiB and exit code of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    return wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def intact(s: Scenario, out: Path) -> bool:
    """Every requisite present somewhere under ``out`` with the right bytes."""
    files = {p.name: p for p in out.rglob("*") if p.is_file()}
    for path, kind in resource_names(s.images, s.sounds):
        name = path.rsplit("/", 1)[1]
        size = s.image_size if kind == "image" else s.sound_size
        found = files.get(name)
        if found is None or found.stat().st_size != size or found.read_bytes() != body_for(path, size):
            return False
    return True


def commands(s: Scenario, base: str, out: Path) -> dict[str, list[str]]:
    page = base + "/page.html"
    urls = [base + p for p, _ in resource_names(s.images, s.sounds)]
    cmds: dict[str, list[str]] = {
        "loader": [sys.executable, "-m", "loader", "fetch", page, "-o", str(out), "--no-progress", "-q",
                   "--per-host", str(s.per_host), "--jobs", str(max(32, s.per_host)),
                   "--max-resources", "5000", "--events", str(out / "events.jsonl")],
    }
    if shutil.which("wget2"):
        cmds["wget2 -p"] = ["wget2", "-q", "-p", f"--max-threads={s.per_host}", "-P", str(out), page]
    if shutil.which("wget"):
        cmds["wget -p"] = ["wget", "-q", "-p", "-P", str(out), page]
    if shutil.which("curl"):
        args = ["curl", "-s", "--parallel", "--parallel-max", str(s.per_host), "--output-dir", str(out)]
        for url in urls:
            args += ["-o", url.rsplit("/", 1)[1], url]
        cmds["curl --parallel"] = args
    if shutil.which("aria2c"):
        listing = out.parent / f"{out.name}.urls"
        listing.write_text("\n".join(urls))
        cmds["aria2c"] = ["aria2c", "-q", "-x", str(s.per_host), "-j", str(s.per_host), "-d", str(out), "-i", str(listing)]
    return cmds


def inside_time(out: Path) -> float | None:
    events = out / "events.jsonl"
    if not events.exists():
        return None
    times = [json.loads(line)["time"] for line in events.read_text().splitlines() if line]
    return max(times) - min(times) if times else None


def bench(key: str, runs: int) -> None:
    s = SCENARIOS[key]
    server = Server(s)
    resources = s.images + s.sounds
    bound = s.latency * (1 + math.ceil(resources / s.per_host)) if s.latency else None
    print(f"\n== {s.name}: {resources} resources; lower bound {bound:.3f}s" if bound else f"\n== {s.name}: {resources} resources")
    print(f"{'tool':18} {'median s':>9} {'x peer':>7} {'x bound':>8} {'peak MiB':>9} {'max conns':>9} {'intact':>7} {'inside s':>9}")
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for tool, _ in commands(s, server.base, Path(tmp) / "probe").items():
                walls, peaks, insides, ok, conns = [], [], [], True, 0
                for i in range(runs):
                    out = Path(tmp) / f"{tool.split()[0]}-{i}"
                    out.mkdir()
                    server.reset()
                    wall, peak, code = run_measured(commands(s, server.base, out)[tool], Path(tmp))
                    walls.append(wall)
                    peaks.append(peak / 1024)
                    conns = max(conns, server.stats()["max_open"])
                    ok = ok and intact(s, out)
                    if (inside := inside_time(out)) is not None:
                        insides.append(inside)
                    shutil.rmtree(out)
                rows.append((tool, statistics.median(walls), max(peaks), conns, ok,
                             statistics.median(insides) if insides else None))
    finally:
        server.close()
    peer = next((r[1] for r in rows if r[0] != "loader"), None)
    for tool, wall, peak, conns, ok, inside in rows:
        ratio_peer = f"{wall / peer:.2f}" if peer else "-"
        ratio_bound = f"{wall / bound:.2f}" if bound else "-"
        inside_s = f"{inside:.3f}" if inside is not None else "-"
        print(f"{tool:18} {wall:9.3f} {ratio_peer:>7} {ratio_bound:>8} {peak:9.1f} {conns:9d} {str(ok):>7} {inside_s:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="default: all")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for key in args.scenario or list(SCENARIOS):
        bench(key, args.runs)


if __name__ == "__main__":
    main()
