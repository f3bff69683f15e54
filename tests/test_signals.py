"""Stop signals in a real ``python -m loader`` process: SIGINT, SIGTERM and SIGHUP at every moment.

Each test reaches its moment by polling or by a hook inside the process (a signal the
process sends itself at a chosen import), never by sleeping and hoping.  What is asserted:
the exit code is ``128 + signum``, no traceback, no request once stopped before the loop,
the ``--events`` file holds whole JSON lines, and nothing half-written is left.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import plain_http_environ
from support.raw_server import hold, recv_until, send_lines

from loader.cli import EXIT_OK

#: A hang guard for polling, not a timing assertion.
_PATIENCE = 30.0

_STOPS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def _spawn(argv: list[str], *, script: str | None = None) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", script, *argv] if script else [sys.executable, "-m", "loader", *argv]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=plain_http_environ())


def _wait_for(proc: subprocess.Popen[str], reached: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _PATIENCE
    while not reached():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (code {proc.returncode}) before {what}:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"never reached: {what}")
        time.sleep(0.02)


def _finish(proc: subprocess.Popen[str]) -> str:
    try:
        _, err = proc.communicate(timeout=_PATIENCE)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the command did not stop:\n{err}")
    return err


def _temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if ".part" in p.name]


def _console_script(hook: str) -> str:
    """``console()`` run as the ``loader`` script, with ``hook`` run first in the same process."""
    return f"import os, signal, sys\n{hook}\nimport loader.cli as cli\nsys.argv[0] = 'loader'\ncli.console()\n"


# -- before the event loop -------------------------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_signal_as_the_command_starts_stops_it_before_any_request(
    stop: signal.Signals, http_server: Any, tmp_path: Path
) -> None:
    """The signal arrives as ``main`` is entered, right after ``console`` took over signals."""
    path = f"/files/http/index.html?start-{stop.name}"
    hook = (
        "import loader.cli as cli\n"
        "real_main = cli.main\n"
        "def main(*a, **k):\n"
        f"    os.kill(os.getpid(), {int(stop)})\n"
        "    return real_main(*a, **k)\n"
        "cli.main = main"
    )
    out = tmp_path / "out"
    proc = _spawn(["fetch", http_server.url(path), "-o", str(out), "--no-progress"], script=_console_script(hook))
    err = _finish(proc)
    assert proc.returncode == 128 + stop, err
    assert "Traceback" not in err and f"interrupted by {stop.name}" in err
    assert not out.exists()
    assert all(r.path != path for r in http_server.requests)


@pytest.mark.parametrize("module", ["anyio", "loader._progress", "loader._loader", "loader.discovery.html"])
def test_sigint_while_modules_import_exits_130_without_traceback(
    module: str, http_server: Any, tmp_path: Path
) -> None:
    """Ctrl-C lands inside an import: before the loop (anyio, the displays) and inside it (the
    Loader, the warm-up's parser).  Python's own handler raised there: a traceback."""
    path = f"/files/http/index.html?import-{module}"
    hook = (
        "import importlib.abc\n"
        "class Interrupt(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {module!r}:\n"
        "            sys.meta_path.remove(self)\n"
        "            sys.stderr.write('signal sent\\n')\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Interrupt())"
    )
    out = tmp_path / "out"
    events = tmp_path / "events.jsonl"
    proc = _spawn(["fetch", http_server.url(path), "-o", str(out), "--no-progress", "--events", str(events)],
                  script=_console_script(hook))
    err = _finish(proc)
    assert "signal sent" in err, f"{module} was imported before the command started: test is moot"
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted by SIGINT" in err
    assert _temporaries(tmp_path) == []
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
    for line in events.read_text().splitlines() if events.exists() else []:
        json.loads(line)


# -- during a transfer -------------------------------------------------------------------------


@pytest.mark.parametrize("stop", _STOPS, ids=lambda s: s.name)
def test_signal_during_a_download_cleans_up_and_flushes_the_event_log(
    stop: signal.Signals, http_server: Any, tmp_path: Path
) -> None:
    """SIGTERM and SIGHUP as Ctrl-C: the temporary goes, the buffered event lines reach the file."""
    out = tmp_path / "out"
    out.mkdir()
    events = tmp_path / "events.jsonl"
    url = http_server.url(f"/bytes/5000000?chunk=5000&delay=0.01&stop={stop.name}")
    proc = _spawn(["get", url, "-o", str(out / "big.bin"), "-q", "--events", str(events)])
    _wait_for(proc, lambda: bool(_temporaries(out)), "the download started")
    proc.send_signal(stop)
    err = _finish(proc)
    assert proc.returncode == 128 + stop, err
    assert "Traceback" not in err and f"interrupted by {stop.name}" in err
    assert list(out.iterdir()) == []
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines, "the event log is empty: its buffer was lost"
    phases = [line["phase"] for line in lines]
    assert phases[0] == "HANDLE_CREATED" and "PROGRESS" in phases
    assert phases[-1] in ("CANCELLED", "FAILED")


def _slow_page_server(raw_server: Any, body: bytes) -> Any:
    """A page naming one image whose body comes slowly, 1000 bytes a piece, until the client hangs up."""

    def handle(conn: Any) -> None:
        while True:
            head = recv_until(conn, b"\r\n\r\n")
            if not head:
                return
            target = head.split(b" ", 2)[1]
            if target == b"/":
                send_lines(conn, ["HTTP/1.1 200 OK", "Content-Type: text/html",
                                  f"Content-Length: {len(body)}", ""])
                conn.sendall(body)
                continue
            send_lines(conn, ["HTTP/1.1 200 OK", "Content-Type: image/png", "Content-Length: 10000000", ""])
            for _ in range(10000):
                conn.sendall(b"x" * 1000)
                if hold(conn, 0.01):
                    return

    return raw_server(handle)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_signal_during_a_page_fetch_leaves_no_partial_requisite(
    stop: signal.Signals, raw_server: Any, tmp_path: Path
) -> None:
    server = _slow_page_server(raw_server, b'<html><img src="/slow.png"></html>')
    out = tmp_path / "out"
    events = tmp_path / "events.jsonl"
    proc = _spawn(["fetch", server.url("http", "/"), "-o", str(out), "--no-progress", "--events", str(events)])
    _wait_for(proc, lambda: out.exists() and bool(_temporaries(out)), "the image download started")
    proc.send_signal(stop)
    err = _finish(proc)
    assert proc.returncode == 128 + stop, err
    assert "Traceback" not in err and "done:" not in err
    assert _temporaries(out) == []
    assert not any(p.name.startswith("slow") for p in out.rglob("*"))
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    image = [line for line in lines if line["url"].endswith("/slow.png")]
    assert image and image[-1]["phase"] in ("CANCELLED", "FAILED")


def test_a_run_that_is_not_stopped_still_exits_0(http_server: Any, tmp_path: Path) -> None:
    """Taking over the signals changes nothing for a run nobody stops."""
    proc = _spawn(["get", http_server.url("/bytes/1000"), "-o", str(tmp_path / "b"), "-q"])
    err = _finish(proc)
    assert proc.returncode == EXIT_OK, err
    assert (tmp_path / "b").stat().st_size == 1000


def test_an_ignored_sighup_stays_ignored(http_server: Any, tmp_path: Path) -> None:
    """``nohup loader …``: SIGHUP was ignored when the command started, so it must not stop it."""
    out = tmp_path / "out"
    out.mkdir()
    url = http_server.url("/bytes/400000?chunk=4000&delay=0.01&nohup=1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "loader", "get", url, "-o", str(out / "big.bin"), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=plain_http_environ(),
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # noqa: PLW1509 - what nohup does
    )
    _wait_for(proc, lambda: bool(_temporaries(out)), "the download started")
    proc.send_signal(signal.SIGHUP)
    err = _finish(proc)
    assert proc.returncode == EXIT_OK, err
    assert (out / "big.bin").stat().st_size == 400000


@pytest.mark.anyio
async def test_the_watcher_cancels_the_run_on_either_backend() -> None:
    """``run_with_loader``'s watcher, in process: the signal is noted at once and wakes the loop
    (asyncio's ``call_soon_threadsafe``, trio's ``run_sync_soon``); the handler is given back."""
    import os

    import anyio

    from loader import cli

    before = signal.getsignal(signal.SIGINT)
    with anyio.fail_after(_PATIENCE):  # a hang guard
        async with anyio.create_task_group() as group:
            await group.start(cli._watch_stop_signals, group.cancel_scope)
            os.kill(os.getpid(), signal.SIGINT)
            await anyio.sleep_forever()  # until the watcher cancels the group
    assert cli._take_stop() == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before


def test_sigint_while_get_waits_for_a_fifo_reader(http_server: Any, tmp_path: Path) -> None:
    """``-o FIFO`` with nobody reading: the wait for a reader ends at Ctrl-C (a blocking open in a
    worker thread kept the process alive for ever after 'interrupted')."""
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    events = tmp_path / "events.jsonl"
    proc = _spawn(["get", http_server.url("/bytes/10?fifo"), "-o", str(fifo), "--events", str(events)])
    _wait_for(proc, events.exists, "the run started (its event log is open)")
    proc.send_signal(signal.SIGINT)
    err = _finish(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def test_sigint_while_the_event_log_fifo_waits_for_its_reader(http_server: Any, tmp_path: Path) -> None:
    """``--events FIFO`` with nobody reading: the command waits for a reader before its run, and
    a signal ends that wait (a blocking open would sit in the system call, deaf to Ctrl-C)."""
    import os

    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    hook = (  # the first pause of the wait says so on stderr, so the test knows the moment
        "import time\n"
        "real_sleep = time.sleep\n"
        "def sleep(seconds):\n"
        "    time.sleep = real_sleep\n"
        "    sys.stderr.write('waiting for a reader\\n'); sys.stderr.flush()\n"
        "    real_sleep(seconds)\n"
        "time.sleep = sleep"
    )
    proc = _spawn(["get", http_server.url("/bytes/10?events-fifo"), "-o", str(tmp_path / "b"), "--events", str(fifo)],
                  script=_console_script(hook))
    assert proc.stderr is not None
    assert proc.stderr.readline() == "waiting for a reader\n"
    proc.send_signal(signal.SIGINT)
    err = _finish(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and not (tmp_path / "b").exists()
    assert all("events-fifo" not in r.path for r in http_server.requests)


def test_the_event_log_may_be_a_fifo(http_server: Any, tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    lines: list[str] = []

    def read() -> None:
        with open(fifo) as reader:
            lines.extend(reader)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc = _spawn(["get", http_server.url("/bytes/10"), "-o", str(tmp_path / "b"), "-q", "--events", str(fifo)])
    err = _finish(proc)
    reader.join(_PATIENCE)
    assert proc.returncode == EXIT_OK, err
    assert json.loads(lines[-1])["phase"] == "REQUEST_COMPLETE"
