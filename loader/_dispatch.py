"""Delivering events to observer hooks and to the caller's callback.

Three callback models, chosen per call (the Windows Web Services model):

``"short"`` (default)
    Called inline on the event loop as each event happens.  Must not block.
``"long"``
    Called in a worker thread, so it may block.  Threads are bounded by
    ``Limits.long_callbacks`` (shared by the loader); a single consumer per
    call hands events over in order, so events of one request (and of one
    page) still arrive in order.  A bounded queue gives back-pressure: a slow
    long callback slows its transfers down rather than growing memory.
``async def`` callbacks
    Awaited inline, in order.

A callback that raises is logged and reported as a ``CALLBACK_ERROR`` event
to the observers; the transfer carries on.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._events import Event, Phase

if TYPE_CHECKING:
    from ._loader import Loader

__all__ = ["CallbackMode", "Delivery"]

log = logging.getLogger("loader")

CallbackMode = Literal["short", "long"]
Callback = Callable[[Event], Any]


class Delivery:
    """Routes the events of one public call to observers and the call's callback."""

    def __init__(self, loader: Loader, callback: Callback | None, mode: CallbackMode) -> None:
        if mode not in ("short", "long"):
            raise ValueError(f"callback_mode must be 'short' or 'long', not {mode!r}")
        self._loader = loader
        self._callback = callback
        self._is_async = callback is not None and inspect.iscoroutinefunction(callback)
        if self._is_async and mode == "long":
            raise TypeError("an async callback cannot be a long callback: it is awaited on the loop")
        self._long = callback is not None and mode == "long"
        self._send: MemoryObjectSendStream[Event] | None = None
        self._observers = loader._observers
        #: False when no observer and no callback would see an event (then none is built).
        self.listening = bool(self._observers) or callback is not None
        #: The phases someone wants (``None``: all): a callback sees every phase, and so
        #: does an observer that does not name its ``loader_event_phases``.
        self.phases: frozenset[Phase] | None = None if callback is not None else loader._observer_phases
        #: True when delivery never awaits (observers and a short plain callback): then
        #: :meth:`deliver_now` serves, without a coroutine per event.
        self.inline = not self._long and not self._is_async

    async def start(self, tg: TaskGroup) -> None:
        """Start the long-callback consumer, if this call has a long callback."""
        if self._long:
            send, receive = anyio.create_memory_object_stream[Event](256)
            self._send = send
            tg.start_soon(self._consume, receive)

    async def aclose(self) -> None:
        """No more events: let the long-callback consumer drain and stop."""
        if self._send is not None:
            await self._send.aclose()

    def deliver_now(self, event: Event) -> None:
        """:meth:`deliver` when :attr:`inline`: nothing to await."""
        for name, observer in self._observers:
            try:
                observer(event=event)
            except Exception as exc:  # an observer must not break a transfer
                self._report(event, exc, f"observer {name!r}")
        callback = self._callback
        if callback is not None and self.inline:
            try:
                callback(event)
            except Exception as exc:
                self._report(event, exc, "callback")

    async def deliver(self, event: Event) -> None:
        """Hand one event to every observer, then to the callback."""
        self.deliver_now(event)
        if self.inline:
            return
        callback = self._callback
        if self._send is not None:
            await self._send.send(event)
        elif self._is_async:
            try:
                await callback(event)
            except Exception as exc:
                self._report(event, exc, "callback")
        else:
            try:
                callback(event)
            except Exception as exc:
                self._report(event, exc, "callback")

    async def _consume(self, receive: MemoryObjectReceiveStream[Event]) -> None:
        callback = self._callback
        assert callback is not None
        limiter = self._loader._long_limiter
        async with receive:
            async for event in receive:
                try:
                    await anyio.to_thread.run_sync(callback, event, limiter=limiter)
                except Exception as exc:
                    self._report(event, exc, "long callback")

    def _report(self, event: Event, exc: Exception, who: str) -> None:
        log.warning("%s raised on %s for %s: %r", who, event.phase.name, event.url, exc)
        if event.phase is Phase.CALLBACK_ERROR:
            return
        report = dataclasses.replace(
            event,
            phase=Phase.CALLBACK_ERROR,
            time=time.time(),
            error=exc,
            message=f"{who} raised {type(exc).__name__}: {exc}",
        )
        for name, observer in self._observers:
            try:
                observer(event=report)
            except Exception:
                log.exception("observer %r raised on CALLBACK_ERROR", name)
