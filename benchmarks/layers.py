"""What each layer of one small request costs, by hand: peel the stack from the bottom up.

    python benchmarks/layers.py              # scenario d's 1000 resources, 6 workers, 5 runs
    python benchmarks/layers.py --runs 9 --workers 1

Every layer fetches the same 1000 small resources from the benchmark server
(``server.py``, its own process) over 6 keep-alive connections on the loop the shell
uses, and reports CPU microseconds per request (process time, steadier than wall time
on a busy machine).  Each row adds one layer to the one above it, so the differences
say where a request's time goes:

transport   the HTTP transport alone: a prebuilt ``httpx.Request`` through
            ``FastTransport.handle_async_request``, body read, response closed
send        ``client.send(stream=True)`` of the prebuilt request + read + close
httpx       plus ``client.build_request`` + ``client.send(stream=True)`` + read + close
fetch       ``Loader.fetch(url)``: the core (events, limits, result) to memory
fetch-file  ``Loader.fetch(url, to=path)``: plus the atomic file write
page        ``Loader.fetch_page``: plus discovery, paths and the manifest
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "plugins"))

from run import SCENARIOS, Server  # noqa: E402
from server import resource_names  # noqa: E402


async def _spread(urls: list[str], workers: int, one) -> None:  # type: ignore[no-untyped-def]
    import anyio

    pending = iter(enumerate(urls))

    async def worker() -> None:
        for index, url in pending:
            await one(index, url)

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)


async def layer(name: str, base: str, urls: list[str], workers: int, out: Path) -> float:
    from loader import Limits, Loader

    async with Loader(limits=Limits(total=32, per_host=workers, per_page=5000)) as loader:
        handler = loader.handler("http")
        client = handler.client  # type: ignore[attr-defined]
        transport = client._transport
        # One warm-up request opens nothing new later: the pool fills in the first run.
        await loader.fetch(base + "/page.html")
        requests = [client.build_request("GET", url) for url in urls]

        async def via_transport(index: int, url: str) -> None:
            response = await transport.handle_async_request(requests[index])
            async for _ in response.stream:
                pass
            await response.aclose()

        async def via_send(index: int, url: str) -> None:
            response = await client.send(requests[index], stream=True)
            await response.aread()
            await response.aclose()

        async def via_httpx(index: int, url: str) -> None:
            response = await client.send(client.build_request("GET", url), stream=True)
            await response.aread()
            await response.aclose()

        async def via_fetch(index: int, url: str) -> None:
            result = await loader.fetch(url)
            assert result.ok, result.error

        async def via_fetch_file(index: int, url: str) -> None:
            result = await loader.fetch(url, to=out / f"{index}.bin")
            assert result.ok, result.error

        cpu = time.process_time()
        if name == "page":
            page = await loader.fetch_page(base + "/page.html", output=out)
            assert page.ok, page.failed[:3]
        else:
            one = {"transport": via_transport, "send": via_send, "httpx": via_httpx, "fetch": via_fetch,
                   "fetch-file": via_fetch_file}[name]
            await _spread(urls, workers, one)
        return time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    args = parser.parse_args()

    import anyio

    from loader._loop import backend_options

    s = SCENARIOS["d"]
    server = Server(s)
    names = ["transport", "send", "httpx", "fetch", "fetch-file", "page"]
    costs: dict[str, list[float]] = {name: [] for name in names}
    try:
        urls = [server.base + path for path, _ in resource_names(s.images, s.sounds)]
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            for run in range(args.runs):
                for name in names:  # interleaved, so drift hits every layer alike
                    out = Path(tmp) / f"{name}-{run}"
                    out.mkdir()
                    cpu = anyio.run(layer, name, server.base, urls, args.workers, out,
                                    backend="asyncio", backend_options=backend_options("asyncio"))
                    costs[name].append(cpu / len(urls) * 1e6)
    finally:
        server.close()
    previous = 0.0
    print(f"{len(urls)} requests, {args.workers} workers, median of {args.runs} runs (CPU us per request)")
    for name in names:
        median = statistics.median(costs[name])
        print(f"{name:11s} {median:7.1f}   +{median - previous:6.1f}")
        previous = median


if __name__ == "__main__":
    main()
