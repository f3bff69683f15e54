"""Time ``loader fetch`` on a page's requisites against the C tools, side by side.

Run by hand (never part of the test suite)::

    python benchmarks/run.py                          # every scenario, 5 runs each
    python benchmarks/run.py --scenario a6 --runs 3   # one scenario (repeatable)
    python benchmarks/run.py --dir ~/bench-tmp        # save on the real disk, not /dev/shm
    python benchmarks/run.py --peers wget2,curl       # only these peers (default: all installed)
    python benchmarks/run.py --loader "loader"        # time another installed loader command
    python benchmarks/run.py --install                # time a regular install in a throwaway venv
    python benchmarks/run.py --json results.json      # also write every row as JSON

Scenarios (the server runs in its own process, see ``server.py``):

a6, a128  100 images of 2 KiB + 10 sounds of 50 KiB, 50 ms added to every response,
          at per-host limits of 6 and 128
b         the same with no latency (per-host 6)
c         20 images of 5 MiB (per-host 6)
d         900 images + 100 sounds of 2 KiB, no latency (per-host 6)

Rows: ``loader`` is ``loader fetch PAGE -o DIR --no-progress -q`` (plus the limits);
``loader --events`` is the same with ``--events FILE`` (every status event as JSON
lines).  The peers, those of ``wget2 -p``, ``wget -p``, ``curl --parallel`` and
``aria2c`` that are installed (the last two over the explicit URL list), are held to the
scenario's per-host limit too (aria2c: ``-j`` = the limit, ``-x`` = the limit capped at
16, its maximum; no ``.aria2`` control files, existing files overwritten).
Within a run every tool goes once, in turn, and each run saves into a fresh directory
under ``--dir`` (default ``/dev/shm``, a RAM disk, when it exists: creating a thousand
small files on a disk costs up to a second depending on the journal, which would swamp
scenario d).

Columns:

median s   median wall time of the whole process (start-up included), from the harness
x peer     that divided by the reference peer's (``wget2 -p`` when it runs, else the
           first peer; the scenario header names it)
x bound    that divided by the lower bound ``latency x (1 + ceil(resources / per-host))``
           (scenarios with latency only)
peak MiB   the highest peak RSS over the runs, from ``/usr/bin/time -f %M`` (GNU time);
           without it from ``wait4``, which counts the harness's own RSS as a floor
           (Linux keeps the parent's high-water mark across fork and exec)
max conns  the most connections the server saw open at once
intact     every run exited 0 and saved every resource with the right bytes; otherwise
           False, with the exit code or the missing count noted under the table
inside s   loader only, median time inside the process once started: for ``loader``
           the page manifest's ``duration`` (``*.manifest.json`` beside the saved page:
           from the start of the page run to the manifest), for ``loader --events``
           first to last status event in the events file

The wall times include the ``/usr/bin/time`` wrapper's own start-up (about a
millisecond, measured and printed at the start).  After the tables of a6, a128, c and
d come the performance targets for both loader rows, each ``-> met`` or ``-> missed``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from server import body_for, resource_names, uvloop  # noqa: E402

GNU_TIME = "/usr/bin/time"
ARIA2_MAX_CONNECTIONS = 16  # aria2c refuses -x above this
PEERS = {"wget2": "wget2 -p", "wget": "wget -p", "curl": "curl --parallel", "aria2c": "aria2c"}
REFERENCE_PEER = "wget2"  # the performance targets compare loader with wget2


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
            [sys.executable, str(HERE / "server.py"), "--images", str(s.images),
             "--sounds", str(s.sounds), "--image-size", str(s.image_size),
             "--sound-size", str(s.sound_size), "--latency", str(s.latency)],
            stdout=subprocess.PIPE, text=True,
        )
        words = (self.proc.stdout.readline() if self.proc.stdout else "").split()
        self.port = int(words[1])
        self.loop = words[2] if len(words) > 2 else "asyncio"
        self.base = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.base + "/stats") as r:
            return json.loads(r.read())

    def reset(self) -> None:
        urllib.request.urlopen(self.base + "/reset").read()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()


# -- measuring one process ---------------------------------------------------------------


@dataclass
class Measured:
    wall: float  # seconds
    peak_kib: int | None
    code: int
    stderr: str  # the last line the tool wrote to stderr


def gnu_time_works(scratch: Path) -> bool:
    out = scratch / "time-probe"
    try:
        done = subprocess.run([GNU_TIME, "-f", "%M", "-o", str(out), "true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return done.returncode == 0 and out.read_text().strip().isdigit()
    except OSError:
        return False


#: The tools' environment: this one, except that Python may cache bytecode as on a
#: normal install (a sandbox's PYTHONDONTWRITEBYTECODE=1 would make every loader
#: start compile its own modules again, ~40 ms).
BENCH_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def install(root: Path, tmp: Path) -> list[str]:
    """Install ``root`` into a new venv under ``tmp`` as a user would (not editable).

    pip builds from a copy, so the build writes no ``build/`` or ``*.egg-info`` into the
    checkout and packs no stale ``build/lib`` files.  Returns the venv's ``loader``.
    """
    src, venv = tmp / "src", tmp / "venv"
    shutil.copytree(root, src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".*"))
    python = str(venv / "bin" / "python")
    steps = [
        ("python -m venv", [sys.executable, "-m", "venv", str(venv)]),
        ("pip install", [python, "-m", "pip", "install", "--quiet", str(src)]),
        # pip compiles bytecode itself, PYTHONDONTWRITEBYTECODE or not: insurance only
        ("compileall", [python, "-m", "compileall", "-q", str(venv / "lib")]),
    ]
    for step, cmd in steps:
        done = subprocess.run(cmd, env=BENCH_ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if done.returncode:
            # without pip's notes that a configured index location does not exist
            lines = [line for line in done.stdout.splitlines() if "is ignored:" not in line]
            sys.exit(f"--install: {step} failed (exit {done.returncode}): {shlex.join(cmd)}\n"
                     + "\n".join(lines[-15:]))
    return [str(venv / "bin" / "loader")]


def run_measured(cmd: list[str], cwd: Path, scratch: Path, gnu_time: bool) -> Measured:
    """Run ``cmd`` once: wall time, peak RSS and exit code.

    With GNU time the command runs under ``/usr/bin/time -f %M`` (which reports the
    child's own peak RSS); otherwise ``wait4`` reports it, floored at the harness's
    RSS, which Linux carries over fork and exec.
    """
    rss = scratch.with_name(scratch.name + ".rss")
    err = scratch.with_name(scratch.name + ".stderr")
    argv = [GNU_TIME, "-f", "%M", "-o", str(rss), *cmd] if gnu_time else cmd
    with err.open("wb") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr, env=BENCH_ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    peak: int | None = usage.ru_maxrss
    if gnu_time:
        # The last line is %M; before it GNU time notes a non-zero exit or a signal.
        lines = rss.read_text().split() if rss.exists() else []
        peak = int(lines[-1]) if lines and lines[-1].isdigit() else None
        rss.unlink(missing_ok=True)
    lines = err.read_text(errors="replace").strip().splitlines()
    err.unlink()
    return Measured(wall, peak, code, lines[-1].strip() if lines else "")


def wrapper_overhead(scratch: Path, gnu_time: bool) -> float:
    """Median seconds GNU time adds to the wall time of a trivial command."""
    if not gnu_time:
        return 0.0
    bare, wrapped = [], []
    for _ in range(30):  # interleaved, so drift hits both alike
        bare.append(run_measured(["true"], scratch.parent, scratch, False).wall)
        wrapped.append(run_measured(["true"], scratch.parent, scratch, True).wall)
    return max(0.0, statistics.median(wrapped) - statistics.median(bare))


def fs_type(path: Path) -> str:
    """The file system type of ``path`` from /proc/mounts ("?" when unknown)."""
    best, kind = "", "?"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


# -- the tools ---------------------------------------------------------------------------


def damaged(s: Scenario, out: Path) -> int:
    """How many requisites are missing under ``out`` or have the wrong bytes."""
    files = {p.name: p for p in out.rglob("*") if p.is_file()}
    bad = 0
    for path, kind in resource_names(s.images, s.sounds):
        name = path.rsplit("/", 1)[1]
        size = s.image_size if kind == "image" else s.sound_size
        found = files.get(name)
        right = found is not None and found.stat().st_size == size
        if not (right and found.read_bytes() == body_for(path, size)):
            bad += 1
    return bad


def events_span(events: Path) -> float | None:
    """First to last status event in an ``--events`` file."""
    if not events.exists():
        return None
    times = [json.loads(line)["time"] for line in events.read_text().splitlines() if line]
    return max(times) - min(times) if times else None


def manifest_duration(out: Path) -> float | None:
    """``duration`` from the page manifest loader writes beside the saved page."""
    durations = []
    for path in out.rglob("*.manifest.json"):
        try:
            durations.append(float(json.loads(path.read_text())["duration"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return max(durations) if durations else None


@dataclass
class Tool:
    label: str
    peer: str | None  # None for the loader rows
    build: Callable[[Scenario, str, Path, Path], list[str]]  # (scenario, base, out, aux)
    inside: Callable[[Path, Path], float | None] | None = None  # (out, aux) -> seconds
    inside_from: str | None = None


def loader_tools(loader: list[str]) -> list[Tool]:
    def plain(s: Scenario, base: str, out: Path, aux: Path) -> list[str]:
        return [*loader, "fetch", base + "/page.html", "-o", str(out), "--no-progress", "-q",
                "--per-host", str(s.per_host), "--jobs", str(max(32, s.per_host)),
                "--max-resources", "5000"]

    def with_events(s: Scenario, base: str, out: Path, aux: Path) -> list[str]:
        return [*plain(s, base, out, aux), "--events", str(aux.with_suffix(".events.jsonl"))]

    return [
        Tool("loader", None, plain, lambda out, aux: manifest_duration(out), "manifest duration"),
        Tool("loader --events", None, with_events,
             lambda out, aux: events_span(aux.with_suffix(".events.jsonl")), "first to last event"),
    ]


def urls(s: Scenario, base: str) -> list[str]:
    return [base + p for p, _ in resource_names(s.images, s.sounds)]


def wget2(s: Scenario, base: str, out: Path, aux: Path) -> list[str]:
    # robots=off: -p reads robots.txt first (a round trip the loader does not pay for a
    # page's requisites), so without it the peer does more work than we do.
    return ["wget2", "-q", "-p", "-e", "robots=off", f"--max-threads={s.per_host}", "-P", str(out),
            base + "/page.html"]


def wget(s: Scenario, base: str, out: Path, aux: Path) -> list[str]:
    return ["wget", "-q", "-p", "-e", "robots=off", "-P", str(out), base + "/page.html"]


def curl(s: Scenario, base: str, out: Path, aux: Path) -> list[str]:
    # --no-progress-meter: curl 7.88 draws its --parallel meter to stderr even with -s
    args = ["curl", "--no-progress-meter", "--parallel", "--parallel-max", str(s.per_host),
            "--output-dir", str(out)]
    for url in urls(s, base):
        args += ["-o", url.rsplit("/", 1)[1], url]
    return args


def aria2c(s: Scenario, base: str, out: Path, aux: Path) -> list[str]:
    listing = aux.with_suffix(".urls")
    listing.write_text("\n".join(urls(s, base)) + "\n")
    connections = min(s.per_host, ARIA2_MAX_CONNECTIONS)
    return ["aria2c", "-q", "-j", str(s.per_host), "-x", str(connections),
            # no .aria2 control files, no "file exists" failures or renamed copies
            "--auto-save-interval=0", "--allow-overwrite=true", "--auto-file-renaming=false",
            "-d", str(out), "-i", str(listing)]


PEER_BUILDERS = {"wget2": wget2, "wget": wget, "curl": curl, "aria2c": aria2c}


def peer_tools(names: list[str]) -> list[Tool]:
    return [Tool(PEERS[name], name, PEER_BUILDERS[name]) for name in names]


# -- one scenario ------------------------------------------------------------------------


@dataclass
class Row:
    tool: Tool
    walls: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)  # MiB
    codes: list[int] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)  # resources missing or wrong, per run
    stderr: list[str] = field(default_factory=list)
    insides: list[float] = field(default_factory=list)
    conns: int = 0

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def peak(self) -> float | None:
        return max(self.peaks) if self.peaks else None

    @property
    def inside(self) -> float | None:
        return statistics.median(self.insides) if self.insides else None

    @property
    def ok(self) -> bool:
        return all(code == 0 for code in self.codes) and not any(self.bad)

    def notes(self, resources: int) -> list[str]:
        notes = []
        by_code: dict[int, list[int]] = {}
        for i, code in enumerate(self.codes):
            if code:
                by_code.setdefault(code, []).append(i)
        for code, runs in by_code.items():
            said = self.stderr[runs[0]]
            notes.append(f"{self.tool.label}: exit code {code} in run {listing(runs)}"
                         + (f": {said}" if said else ""))
        for i, bad in enumerate(self.bad):
            if bad:
                notes.append(f"{self.tool.label}: {bad} of {resources} resources missing or wrong"
                             f" in run {i + 1}")
        return notes

    def as_json(self, ref: float | None, bound: float | None) -> dict[str, Any]:
        return {
            "tool": self.tool.label,
            "median_s": self.wall,
            "x_peer": self.wall / ref if ref else None,
            "x_bound": self.wall / bound if bound else None,
            "peak_mib": self.peak,
            "max_conns": self.conns,
            "intact": self.ok,
            "inside_s": self.inside,
            "inside_from": self.tool.inside_from,
            "walls_s": self.walls,
            "peaks_mib": self.peaks,
            "exit_codes": self.codes,
            "missing_or_wrong": self.bad,
            "insides_s": self.insides,
        }


def listing(runs: list[int]) -> str:
    return ", ".join(str(i + 1) for i in runs)


def lower_bound(s: Scenario) -> float | None:
    resources = s.images + s.sounds
    return s.latency * (1 + math.ceil(resources / s.per_host)) if s.latency else None


def reference(rows: list[Row]) -> Row | None:
    """The peer the ``x peer`` column divides by: wget2 when it ran, else the first peer."""
    peers = [r for r in rows if r.tool.peer]
    return next((r for r in peers if r.tool.peer == REFERENCE_PEER), peers[0] if peers else None)


def targets(key: str, s: Scenario, rows: list[Row]) -> list[dict[str, Any]]:
    """The performance targets for both loader rows (a6, a128, c and d only)."""
    resources = s.images + s.sounds
    bound = lower_bound(s)
    wget2_row = next((r for r in rows if r.tool.peer == "wget2"), None)
    found = []

    def check(row: Row, what: str, measured: float | None, limit: float | None, shown: str,
              below: bool = True, strict: bool = False) -> None:
        if measured is None or limit is None:
            verdict = "unknown (wget2 not run)" if limit is None else "unknown (not measured)"
        elif not row.ok:
            verdict = "missed (not intact)"
        elif strict:
            verdict = "met" if measured < limit else "missed"
        else:
            verdict = "met" if (measured <= limit if below else measured >= limit) else "missed"
        found.append({"scenario": key, "tool": row.tool.label, "target": what,
                      "measured": measured, "limit": limit, "shown": shown, "verdict": verdict})

    def vs_wget2(row: Row, factor: float) -> None:
        ref = wget2_row.wall if wget2_row else None
        limit = factor * ref if ref is not None else None
        what = f"whole <= {factor:g} x wget2 whole" + (f" ({limit:.3f} s)" if limit else "")
        check(row, what, row.wall, limit, f"{row.wall:.3f} s")

    for row in (r for r in rows if r.tool.peer is None):
        if key == "a6" and bound:
            ratio = row.wall / bound
            check(row, "whole / bound <= 1.10", ratio, 1.10, f"{ratio:.2f}")
        elif key == "a128" and bound:
            vs_wget2(row, 1.5)
            inside = row.inside
            check(row, f"inside <= 1.3 x {bound:.3f} s ({1.3 * bound:.3f} s)", inside, 1.3 * bound,
                  "-" if inside is None else f"{inside:.3f} s")
        elif key == "c":
            check(row, "peak < 64 MiB", row.peak, 64.0,
                  "-" if row.peak is None else f"{row.peak:.1f} MiB", strict=True)
            vs_wget2(row, 1.5)
        elif key == "d":
            vs_wget2(row, 3)
            rate = resources / row.inside if row.inside else None
            check(row, "inside resources/s >= 5000", rate, 5000.0,
                  "-" if rate is None else f"{rate:.0f}/s", below=False)
    return found


def bench(key: str, runs: int, tools: list[Tool], where: str | None,
          gnu_time: bool) -> dict[str, Any]:
    s = SCENARIOS[key]
    resources = s.images + s.sounds
    bound = lower_bound(s)
    server = Server(s)
    rows = [Row(tool) for tool in tools]
    try:
        with tempfile.TemporaryDirectory(prefix="loader-bench-", dir=where) as tmp:
            for n, row in enumerate(rows):  # one untimed warm-up each: caches, bytecode
                warm = Path(tmp) / f"warm{n}"
                warm.mkdir()
                run_measured(row.tool.build(s, server.base, warm, Path(tmp) / f"warm{n}-aux"),
                             Path(tmp), Path(tmp) / f"warm{n}-aux", False)
                shutil.rmtree(warm)
                for leftover in Path(tmp).glob(f"warm{n}-aux*"):
                    leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
            for i in range(runs):
                for n, row in enumerate(rows):
                    out = Path(tmp) / f"t{n}-run{i}"
                    aux = Path(tmp) / f"t{n}-run{i}-aux"
                    out.mkdir()
                    cmd = row.tool.build(s, server.base, out, aux)
                    server.reset()
                    measured = run_measured(cmd, Path(tmp), aux, gnu_time)
                    row.walls.append(measured.wall)
                    if measured.peak_kib is not None:
                        row.peaks.append(measured.peak_kib / 1024)
                    row.codes.append(measured.code)
                    row.stderr.append(measured.stderr)
                    row.conns = max(row.conns, server.stats()["max_open"])
                    row.bad.append(damaged(s, out))
                    if row.tool.inside and (inside := row.tool.inside(out, aux)) is not None:
                        row.insides.append(inside)
                    shutil.rmtree(out)
                    for leftover in Path(tmp).glob(aux.name + ".*"):
                        leftover.unlink()
    finally:
        server.close()

    ref = reference(rows)
    ref_wall = ref.wall if ref else None
    head = f"\n== {s.name}: {resources} resources"
    head += f", per-host {s.per_host}" if "per-host" not in s.name else ""
    head += f"; lower bound {bound:.3f} s" if bound else ""
    head += f"; x peer = ratio to {ref.tool.label}" if ref else ""
    print(head)
    print(f"{'tool':18} {'median s':>9} {'x peer':>7} {'x bound':>8} {'peak MiB':>9} "
          f"{'max conns':>9} {'intact':>7} {'inside s':>9}")
    for row in rows:
        ratio_peer = f"{row.wall / ref_wall:.2f}" if ref_wall else "-"
        ratio_bound = f"{row.wall / bound:.2f}" if bound else "-"
        peak = f"{row.peak:.1f}" if row.peak is not None else "-"
        inside = f"{row.inside:.3f}" if row.inside is not None else "-"
        print(f"{row.tool.label:18} {row.wall:9.3f} {ratio_peer:>7} {ratio_bound:>8} {peak:>9} "
              f"{row.conns:9d} {str(row.ok):>7} {inside:>9}")
    notes = [note for row in rows for note in row.notes(resources)]
    for note in notes:
        print(f"  note: {note}")
    checks = targets(key, s, rows)
    for t in checks:
        print(f"  target {key} {t['tool']}: {t['target']}: measured {t['shown']} -> {t['verdict']}")
    return {
        "scenario": key, "name": s.name, "resources": resources, "latency_s": s.latency,
        "per_host": s.per_host, "bound_s": bound, "runs": runs,
        "peer": ref.tool.label if ref else None,
        "rows": [row.as_json(ref_wall, bound) for row in rows],
        "notes": notes, "targets": checks,
    }


# -- command line ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="repeatable (default: all)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="where the output directories go (default: /dev/shm, a RAM disk,"
                        " when it exists, else the system temporary directory)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--loader", metavar="CMD",
                       help=f"the loader command to time (default: {sys.executable} -m loader)")
    which.add_argument("--install", action="store_true",
                       help="time a regular (non-editable) install of this checkout in a"
                       " throwaway venv, without this interpreter's site-packages .pth files")
    parser.add_argument("--peers", metavar="LIST",
                        help=f"comma list of {','.join(PEERS)}"
                        " (default: all installed; '' for none)")
    parser.add_argument("--json", metavar="FILE", help="also write every row as JSON to FILE")
    args = parser.parse_args()

    loader = shlex.split(args.loader) if args.loader else [sys.executable, "-m", "loader"]
    if args.peers is None:
        wanted = list(PEERS)
    else:
        wanted = [name.strip() for name in args.peers.split(",") if name.strip()]
        if unknown := [name for name in wanted if name not in PEERS]:
            parser.error(f"unknown peer(s) {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    missing = [name for name in wanted if not shutil.which(name)]
    peers = [name for name in wanted if name not in missing]
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.dir is not None and not Path(args.dir).is_dir():
        parser.error(f"--dir {args.dir}: no such directory")

    if args.install:
        # The venv's loader takes no modules from here: not from PYTHONPATH, nor from the
        # working directory (a console script puts its own directory on sys.path, and the
        # tools run in a temporary directory anyway).
        for name in ("PYTHONPATH", "PYTHONHOME"):
            BENCH_ENV.pop(name, None)
    venv = (tempfile.TemporaryDirectory(prefix="loader-bench-venv-") if args.install
            else contextlib.nullcontext())
    with venv as venv_tmp:
        if venv_tmp:
            loader = install(HERE.parent, Path(venv_tmp))
        where = args.dir if args.dir is not None else tempfile.gettempdir()
        with tempfile.TemporaryDirectory(prefix="loader-bench-", dir=where) as tmp:
            scratch = Path(tmp) / "probe"
            gnu_time = gnu_time_works(Path(tmp))
            overhead = wrapper_overhead(scratch, gnu_time)
        memory = (f"{GNU_TIME} -f %M (adds {overhead * 1000:.1f} ms to every wall time)"
                  if gnu_time else f"wait4 ({GNU_TIME} missing: the harness's own RSS is a floor)")
        print(f"output dirs: {where} ({fs_type(Path(where))})")
        print(f"peak RSS:    {memory}")
        print(f"loader:      {shlex.join(loader)}")
        if venv_tmp:
            print(f"install:     {HERE.parent} as a regular (not editable) install"
                  " in a throwaway venv")
        print(f"peers:       {', '.join(PEERS[p] for p in peers) or 'none'}"
              + (f" (not installed: {', '.join(missing)})" if missing else ""))
        print(f"server:      {'uvloop' if uvloop else 'asyncio'} event loop")
        print(f"runs:        {args.runs} per tool and scenario, median shown")

        tools = loader_tools(loader) + peer_tools(peers)
        report: dict[str, Any] = {
            "settings": {"dir": where, "fs": fs_type(Path(where)), "runs": args.runs,
                         "peak_rss": "gnu-time" if gnu_time else "wait4",
                         "wrapper_overhead_s": overhead, "loader": loader,
                         "install": bool(venv_tmp),
                         "server_loop": "uvloop" if uvloop else "asyncio",
                         "peers": [PEERS[p] for p in peers]},
            "scenarios": [],
        }
        for key in args.scenario or list(SCENARIOS):
            report["scenarios"].append(bench(key, args.runs, tools, where, gnu_time))
            if args.json:  # after every scenario, so an interrupted run keeps what it measured
                Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
