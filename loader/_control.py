"""Cancellation handles, safe to use from callbacks on any thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["CallControl", "Control"]


class _ThreadSafe:
    """Runs a function on the event loop's thread, whichever thread asks."""

    def __init__(self) -> None:
        self._thread = threading.get_ident()
        self._token = anyio.lowlevel.current_token()

    def _on_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._thread:
            fn()
        else:
            anyio.from_thread.run_sync(fn, token=self._token)


class CallControl(_ThreadSafe):
    """Cancels everything one public call started (a page and all its resources)."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = False
        self.requests: set[Control] = set()

    def cancel(self) -> None:
        """Cancel every request of the call, running or not yet started."""
        self._on_loop(self._cancel)

    def _cancel(self) -> None:
        self.cancelled = True
        for control in list(self.requests):
            control._cancel()


class Control(_ThreadSafe):
    """Cancels one request.  ``scope`` is set while the request runs."""

    def __init__(self, call: CallControl) -> None:
        # The call's loop and thread are this request's: no new token per request.
        self._thread, self._token = call._thread, call._token
        self.call = call
        self.cancelled = call.cancelled
        self.scope: anyio.CancelScope | None = None
        call.requests.add(self)

    def cancel(self) -> None:
        """Cancel this request."""
        self._on_loop(self._cancel)

    def cancel_call(self) -> None:
        """Cancel the whole call this request belongs to."""
        self.call.cancel()

    def _cancel(self) -> None:
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()

    def done(self) -> None:
        """Forget the request once it has ended."""
        self.call.requests.discard(self)
