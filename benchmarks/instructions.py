"""Instructions a ``loader fetch -q`` page run costs, counted by callgrind: a steady yardstick.

Run by hand (never part of the test suite; needs ``valgrind``)::

    python benchmarks/instructions.py                     # scenario d, this interpreter's loader
    python benchmarks/instructions.py --scenario b
    python benchmarks/instructions.py --python /tmp/venv/bin/python   # another install
    python benchmarks/instructions.py --events            # the same with --events FILE

Wall times on a shared VM move by ±20 % from one run to the next, too much to tell a
5 % change.  Instruction counts move by well under 1 %: this runs ``loader.cli.main``
in one process, once and then ``--runs`` more times, under ``valgrind --tool=callgrind``
with a fixed ``PYTHONHASHSEED``, and prints (total(1 + runs) - total(1)) / runs: one
warm page run's instructions, start-up and the first run's imports left out.  The
server runs in its own process, outside valgrind (see ``server.py``).  Compare two
trees by pointing ``--python`` at each one's install (``run.py --install`` makes one).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def inner(scenario: str, runs: int, events: bool) -> None:
    """The measured process: ``runs`` page runs of ``loader fetch -q`` against the scenario."""
    sys.path.insert(0, str(HERE))
    from run import SCENARIOS, Server

    import loader.cli

    s = SCENARIOS[scenario]
    server = Server(s)
    try:
        for _ in range(runs):
            out = tempfile.mkdtemp(prefix="loader-instr-")
            argv = ["fetch", server.base + "/page.html", "-o", out, "--no-progress", "-q",
                    "--per-host", str(s.per_host), "--jobs", str(max(32, s.per_host)), "--max-resources", "5000"]
            if events:
                argv += ["--events", os.path.join(out, "events.jsonl")]
            loader.cli.main(argv)
            shutil.rmtree(out)
    finally:
        server.close()


def count(python: str, scenario: str, runs: int, events: bool) -> int:
    """Instructions of a process that makes ``runs`` page runs (callgrind's program total)."""
    with tempfile.TemporaryDirectory(prefix="loader-instr-") as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "-q",
               python, __file__, "--inner", "--scenario", scenario, "--runs", str(runs)]
        if events:
            cmd.append("--events")
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        text = Path(out).read_text(errors="replace")
    totals = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
    if totals is None:
        sys.exit("instructions.py: no total in callgrind's output")
    return int(totals[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="d", help="a run.py scenario (default d)")
    parser.add_argument("--runs", type=int, default=4, help="warm page runs measured (default 4)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose loader runs")
    parser.add_argument("--events", action="store_true", help="with --events FILE (every event written)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.scenario, args.runs, args.events)
        return
    if shutil.which("valgrind") is None:
        sys.exit("instructions.py: valgrind is not installed (apt-get install valgrind)")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    first = count(args.python, args.scenario, 1, args.events)
    more = count(args.python, args.scenario, 1 + args.runs, args.events)
    per_run = (more - first) / args.runs
    print(f"{args.python}: scenario {args.scenario}{' --events' if args.events else ''}: "
          f"{per_run / 1e6:.1f}M instructions a warm page run "
          f"(first run with start-up: {first / 1e6:.0f}M)")


if __name__ == "__main__":
    main()
