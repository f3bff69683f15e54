"""SyncLoader: a failure while starting raises in the caller's thread and leaves no thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Each case runs in a fresh interpreter with a timeout: before the fix the portal's
# event-loop thread stayed alive after the error, so the process never exited.
PRELUDE = """
import threading
import loader
from loader import SyncLoader

def check(make):
    before = set(threading.enumerate())
    try:
        with make():
            raise SystemExit("entered, expected an error")
    except Exception as exc:
        assert threading.current_thread() is threading.main_thread()
        print("raised", type(exc).__name__, exc)
    left = [t for t in threading.enumerate() if t not in before]
    print("threads left", left)
"""

CASES = {
    "typo": ("check(lambda: SyncLoader(limit=4))", "TypeError", "limit"),
    "bad backend": ("check(lambda: SyncLoader(backend='nope'))", "LookupError", "nope"),
    "plugin that cannot register": (
        """
        class Broken:
            @loader.hookimpl
            def loader_allow(self, url, no_such_argument):
                pass
        check(lambda: SyncLoader(plugins=[("broken", Broken())], entry_points=False))
        """,
        "PluginValidationError",
        "broken",
    ),
    "failure on the loop thread": (
        """
        async def refuse(self):
            raise RuntimeError("cannot start today")
        loader.Loader.__aenter__ = refuse
        check(lambda: SyncLoader(entry_points=False))
        """,
        "RuntimeError",
        "cannot start today",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failure_while_starting_raises_and_leaves_no_thread(case: str) -> None:
    body, error, words = CASES[case]
    script = PRELUDE + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert f"raised {error}" in proc.stdout and words in proc.stdout, proc.stdout
    assert "threads left []" in proc.stdout, proc.stdout


def test_exit_without_enter_is_harmless() -> None:
    from loader import SyncLoader

    SyncLoader().__exit__(None, None, None)


def test_fetch_after_a_failed_start_says_how_to_use_it() -> None:
    from loader import SyncLoader

    sync = SyncLoader(entry_points=False, no_such_option=1)
    with pytest.raises(TypeError):
        sync.__enter__()
    # A method called after the failed start says how to use the class, not AssertionError.
    with pytest.raises(RuntimeError, match="with SyncLoader"):
        sync.fetch("http://127.0.0.1:1/")
