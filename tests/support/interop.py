"""Running real, independently written servers (Debian packages) for the interop suite.

``tests/interop/install.sh`` installs them; each test module starts the server it
needs on 127.0.0.1 with a configuration generated in a temporary directory, in the
foreground, and stops it by PID at the end.  A server whose program is missing is
skipped with the reason shown in pytest's summary (``-ra``), never silently.

Shared checks: :func:`sha256_tree` for byte-exact comparisons and
:func:`check_event_lines` for the event grammar of an ``--events`` file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "ServerProcess", "check_event_lines", "free_port", "require_program", "run_loader",
    "sha256_file", "sha256_tree", "wait_for_port",
]

#: Where ``install.sh`` unpacks packages that cannot be installed side by side
#: (the FTP servers conflict): ``dpkg -x`` into ``/opt/loader-interop/<package>``.
UNPACKED = Path(os.environ.get("LOADER_INTEROP_ROOT", "/opt/loader-interop"))


def require_program(name: str, *candidates: str | Path) -> str:
    """The path of a server program, or skip the test saying what is missing."""
    for candidate in (*candidates, shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.skip(f"{name} is not installed (run tests/interop/install.sh)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 20.0,
                  process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts connections on ``port`` (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s")


class ServerProcess:
    """A server started in the foreground; :meth:`stop` ends it by PID (and its group)."""

    def __init__(self, args: Sequence[str], *, port: int, cwd: Path | None = None,
                 env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.args = list(args)
        self.port = port
        self.log = log
        out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for_port(port, process=self.process)
        except Exception:
            self.stop()
            raise RuntimeError(f"{self.args[0]} did not start: {self.log_text()}") from None

    def log_text(self) -> str:
        if self.log is not None and self.log.exists():
            return self.log.read_text(errors="replace")[-4000:]
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


@contextmanager
def running(args: Sequence[str], *, port: int, **kwargs: Any) -> Iterator[ServerProcess]:
    server = ServerProcess(args, port=port, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    return {
        path.relative_to(root).as_posix(): sha256_file(path)
        for path in sorted(root.rglob("*")) if path.is_file()
    }


def run_loader(*args: str, timeout: float = 60.0, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``loader`` command (``python -m loader``) as a user would."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "loader", *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd,
    )


def check_event_lines(path: Path, *, need_status: bool = True) -> dict[int, list[dict[str, Any]]]:
    """Check the grammar of every request in an ``--events`` file; return events by request.

    Per request: ``HANDLE_CREATED`` first, exactly one terminal event (last),
    ``PROGRESS`` never decreasing, and (``need_status``) a status on every
    successful network response's ``RESPONSE_RECEIVED`` or ``REQUEST_COMPLETE``.
    """
    by_request: dict[int, list[dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        by_request.setdefault(event["request_id"], []).append(event)
    terminal = {"REQUEST_COMPLETE", "FAILED", "CANCELLED"}
    for request_id, events in by_request.items():
        phases = [e["phase"] for e in events]
        assert phases[0] == "HANDLE_CREATED", (request_id, phases)
        assert phases[-1] in terminal, (request_id, phases)
        assert sum(p in terminal for p in phases) == 1, (request_id, phases)
        progress = [e["bytes"] for e in events if e["phase"] == "PROGRESS"]
        assert progress == sorted(progress), (request_id, progress)
        if need_status and phases[-1] == "REQUEST_COMPLETE" and not events[-1]["synchronous"]:
            statuses = [e["status"] for e in events if e["phase"] in ("RESPONSE_RECEIVED", "REQUEST_COMPLETE")]
            assert any(s is not None for s in statuses), (request_id, events)
    return by_request
