"""The plugin guide's example (``examples/loader-mem-example``), installed as a user would.

``pip install --no-deps --target SITE`` builds and installs the example; every
run then is a fresh ``python -m loader`` (or library script) with ``SITE`` on
``PYTHONPATH``, so the plugin is found through its entry point, not imported by
the test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import plain_http_environ
from support.interop import check_event_lines

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "loader-mem-example"

#: What pip prints when the build backend cannot be fetched (no package index here).
_OFFLINE = ("No matching distribution found", "Could not find a version", "NewConnectionError",
            "Temporary failure in name resolution", "Network is unreachable")


def _can_build_offline() -> bool:
    """Whether the installed setuptools builds wheels itself (70.1+, or with ``wheel``)."""
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example plugin, built from a copy (a build leaves ``build/`` behind) and installed."""
    root = tmp_path_factory.mktemp("example")
    source = root / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = root / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-input",
               "--target", str(target), str(source)]
    if _can_build_offline():
        command.insert(-1, "--no-build-isolation")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        if any(sign in proc.stderr for sign in _OFFLINE):
            pytest.skip(f"cannot build the example: setuptools>=68 is neither installed nor "
                        f"reachable on the package index ({proc.stderr.strip().splitlines()[-1]})")
        pytest.fail(f"pip could not install the example:\n{proc.stderr}")
    assert (target / "loader_mem_example" / "_handler.py").is_file()
    yield target


def _env(site: Path) -> dict[str, str]:
    env = plain_http_environ()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.pop("LOADER_DISABLE_PLUGINS", None)
    return env


def _loader(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loader", *args], capture_output=True, text=True,
                          timeout=60, env=_env(site), cwd=cwd)


def test_it_is_listed_with_its_schemes_and_hooks(site: Path, tmp_path: Path) -> None:
    run = _loader(site, tmp_path, "plugins")
    assert run.returncode == 0, run.stderr
    assert ("mem\tloader_mem_example\tschemes: mem\thooks: loader_add_commands, loader_allow, "
            "loader_extract, loader_protocol, loader_schemes") in run.stdout.splitlines()


def test_loader_get_through_it_with_events(site: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    run = _loader(site, tmp_path, "get", "mem://example/big.bin", "-o", "big.bin", "--events", str(events))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "big.bin").read_bytes() == bytes(range(256)) * 1024
    (request,) = check_event_lines(events, need_status=False).values()
    phases = [e["phase"] for e in request]
    assert phases[:4] == ["HANDLE_CREATED", "SENDING_REQUEST", "REQUEST_SENT", "RESPONSE_RECEIVED"]
    assert phases[-1] == "REQUEST_COMPLETE"
    progress = [(e["bytes"], e["total"]) for e in request if e["phase"] == "PROGRESS"]
    # Response.length is what gives every PROGRESS its total; one event per 16 KiB chunk.
    assert progress == [(n * 16384, 262144) for n in range(1, 17)]

    stdout = _loader(site, tmp_path, "get", "mem://example/hello.txt", "-o", "-", "-q")
    assert (stdout.returncode, stdout.stdout) == (0, "hello from memory\n")


def test_its_errors_are_one_line(site: Path, tmp_path: Path) -> None:
    missing = _loader(site, tmp_path, "get", "mem://example/nope", "-o", "-", "-q")
    assert missing.returncode == 3
    assert missing.stderr.splitlines() == ["error: mem://example/nope: not found"]
    denied = _loader(site, tmp_path, "get", "mem://example/private/key", "-o", "-", "-q")
    assert denied.returncode == 3
    assert "mem: files under private/ are never served" in denied.stderr


def test_loader_fetch_finds_the_index_requisites(site: Path, tmp_path: Path) -> None:
    listed = _loader(site, tmp_path, "fetch", "--list", "mem://example/index.mem")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "image\tmem://example/logo.png\tmem-index[line]",
        "sound\tmem://example/chime.wav\tmem-index[line]",
    ]
    run = _loader(site, tmp_path, "fetch", "mem://example/index.mem", "-o", "out", "-q")
    assert run.returncode == 0, run.stderr
    saved = {p.name for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert {"index.mem", "logo.png", "chime.wav"} <= saved
    assert "hello.txt" not in saved  # a text file is not among the default kinds


def test_its_subcommand(site: Path, tmp_path: Path) -> None:
    run = _loader(site, tmp_path, "mem")
    assert run.returncode == 0, run.stderr
    assert "mem://example/hello.txt\t18 bytes\ttext/plain" in run.stdout.splitlines()


_LIBRARY = """
import json, sys
from pathlib import Path
import anyio
from loader import Loader, NotFound, Phase, SyncLoader

events = []
target = Path(sys.argv[1])
full = bytes(range(256)) * 1024
# A partial download of 1000 bytes: resume asks the handler for the rest (Request.offset).
Path(str(target) + ".part").write_bytes(full[:1000])

async def main():
    async with Loader() as loader:
        one = await loader.fetch("mem://example/hello.txt", callback=events.append, context="hello")
        resumed = await loader.fetch("mem://example/big.bin", to=target, resume=True,
                                     callback=events.append, context="resume")
        missing = await loader.fetch("mem://example/nope")
    return one, resumed, missing

one, resumed, missing = anyio.run(main)
with SyncLoader() as sync:
    again = sync.fetch("mem://example/hello.txt")
progress = [(e.bytes_done, e.bytes_total) for e in events if e.context == "resume" and e.phase is Phase.PROGRESS]
print(json.dumps({
    "one": [one.ok, one.content.decode(), one.content_type],
    "phases": [e.phase.name for e in events if e.context == "hello"],
    "resumed": [resumed.ok, target.read_bytes() == full, progress[0], progress[-1]],
    "missing": [isinstance(missing.error, NotFound), str(missing.error)],
    "sync": again.content.decode(),
}))
"""


def test_the_library_through_it_with_resume(site: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(_LIBRARY)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "big.bin")], capture_output=True,
                          text=True, timeout=60, env=_env(site), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert seen["one"] == [True, "hello from memory\n", "text/plain"]
    assert seen["phases"] == ["HANDLE_CREATED", "SENDING_REQUEST", "REQUEST_SENT", "RESPONSE_RECEIVED",
                              "PROGRESS", "REQUEST_COMPLETE"]
    # Continued from byte 1000: the first count starts past it and the total is the whole file.
    assert seen["resumed"] == [True, True, [1000 + 16384, 262144], [262144, 262144]]
    assert seen["missing"] == [True, "mem://example/nope: not found"]
    assert seen["sync"] == "hello from memory\n"
