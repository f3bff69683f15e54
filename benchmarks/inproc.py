"""Time (and optionally profile) one page fetch inside this process, by hand.

    python benchmarks/inproc.py --scenario d                # time, 5 runs
    python benchmarks/inproc.py --scenario d --profile      # cProfile, top functions
    python benchmarks/inproc.py --profile --sort cumulative --top 60 --callers current_async_library
    python benchmarks/inproc.py --scenario d --events FILE  # with the --events observer
    python benchmarks/inproc.py --scenario d --warc         # recording a WARC (loader.warc)

It starts the benchmark server (``server.py``) in its own process and runs
``Loader.fetch_page`` here, saving to a temporary directory, so a profile shows
where the client's time goes per request (events, discovery, file writes,
scheduling, HTTP) without process start-up in the way.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import SCENARIOS, Server  # noqa: E402

CPU: list[float] = []  # process CPU seconds of each run (steadier than wall time on a busy machine)


def once(base: str, per_host: int, out: Path, events: str | None, backend: str, warc: bool = False) -> float:
    import anyio

    from loader import Limits, Loader

    plugins = []
    stream = None
    if events:
        from loader._progress import EventLog

        stream = open(events, "w")  # noqa: SIM115
        plugins.append(("events", EventLog(stream)))

    options = {"warc": out.with_name(out.name + "-warc")} if warc else {}  # the WARC's CPU counted in

    async def main() -> float:
        async with Loader(limits=Limits(total=max(32, per_host), per_host=per_host, per_page=5000),
                          plugins=plugins, **options) as loader:
            started, cpu = time.perf_counter(), time.process_time()
            page = await loader.fetch_page(base + "/page.html", output=out)
            if not warc:
                elapsed = time.perf_counter() - started
                CPU.append(time.process_time() - cpu)
        if warc:  # the loader has closed: the WARC is complete, all its writing counted
            elapsed = time.perf_counter() - started
            CPU.append(time.process_time() - cpu)
        assert page.ok, page.failed[:3]
        return elapsed

    from loader._loop import backend_options  # uvloop when installed, as the shell does

    try:
        return anyio.run(main, backend=backend, backend_options=backend_options(backend))
    finally:
        if stream is not None:
            stream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="d", choices=sorted(SCENARIOS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="profile order (pstats key, default tottime)")
    parser.add_argument("--top", type=int, default=40, help="profile rows shown (default 40)")
    parser.add_argument("--callers", metavar="REGEX", help="also show who calls the functions matching REGEX")
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave the collector as it is (by default everything loaded is frozen"
                        " out of its walks with gc.freeze, as the loader command does)")
    parser.add_argument("--events", metavar="FILE")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--warc", action="store_true", help="record a WARC of each run (loader.warc)")
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="where to save (default: /dev/shm, a RAM disk, so the disk does not dominate)")
    args = parser.parse_args()
    s = SCENARIOS[args.scenario]
    server = Server(s)
    if not args.no_freeze:
        import loader._page  # noqa: F401 - what a fetch loads, loaded and frozen first, as the command does
        import loader.discovery.html  # noqa: F401

        gc.freeze()
    try:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            times = []
            for i in range(args.runs):
                out = Path(tmp) / str(i)
                if args.profile and i == args.runs - 1:
                    profiler = cProfile.Profile()
                    profiler.enable()
                    once(server.base, s.per_host, out, args.events, args.backend, args.warc)
                    profiler.disable()
                    stats = pstats.Stats(profiler).sort_stats(args.sort)
                    stats.print_stats(args.top)
                    if args.callers:
                        stats.print_callers(args.callers)
                else:
                    times.append(once(server.base, s.per_host, out, args.events, args.backend, args.warc))
            if times:
                n = s.images + s.sounds
                med = statistics.median(times)
                cpu = statistics.median(CPU)
                print(f"{s.name}: median {med:.3f}s over {len(times)} runs, {n / med:.0f} resources/s;"
                      f" CPU {cpu:.3f}s ({cpu / n * 1e6:.0f} us per resource)")
    finally:
        server.close()


if __name__ == "__main__":
    main()
