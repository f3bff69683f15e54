"""A guard against a hang that is not a measurement (no wall-clock assertion)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: Far above what linear work on a megabyte takes on a loaded machine (well under a
#: second), far below what quadratic work on it takes (hours).
HANG = 60.0


def finishes(fn: Callable[..., Any], *args: Any, within: float = HANG) -> Any:
    """``fn(*args)``'s result; fails the test if it has not returned ``within`` seconds."""
    outcome: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(fn(*args))
        except BaseException as exc:  # re-raised in the test's thread
            error.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(within)
    assert not worker.is_alive(), f"{getattr(fn, '__name__', fn)} still running after {within} s: not linear"
    if error:
        raise error[0]
    return outcome[0]
