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

Observers (``loader_event`` implementations) are called through
``pm.hook.loader_event``, so wrappers and monitors see every event.  One that
raises is logged and reported; the observers pluggy had not reached yet still
get the event (see :class:`Observers`).
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
    import pluggy

__all__ = ["CallbackMode", "Delivery", "Observers"]

log = logging.getLogger("loader")

CallbackMode = Literal["short", "long"]
Callback = Callable[[Event], Any]


class Observers:
    """A loader's ``loader_event`` observers, called through pluggy.

    ``phases`` is what the observers asked for (``None``: every phase): an
    observer object may name the phases it wants (``loader_event_phases``), and
    when every observer does, events of other phases are not even built.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._hook = pm.hook.loader_event
        impls = self._hook.get_hookimpls()
        #: False when no plugin implements ``loader_event``: then it is not called.
        self.present = bool(impls)
        wanted: set[Phase] = set()
        everything = False
        for impl in impls:
            phases = getattr(impl.plugin, "loader_event_phases", None)
            if phases is None:
                everything = True
                break
            wanted.update(phases)
        self.phases: frozenset[Phase] | None = None if everything else frozenset(wanted)

    def notify(self, event: Event, report: Callable[[Event, Exception, str], None]) -> None:
        """Call ``pm.hook.loader_event(event=event)``; ``report`` each observer that raises.

        pluggy stops at the first raising implementation, so the ones it had not
        reached yet are called again through ``pm.subset_hook_caller`` without it
        and without those that already saw the event.
        """
        if not self.present:
            return
        try:
            self._hook(event=event)
            return
        except Exception as exc:  # an observer must not break a transfer
            error = exc
        from ._plugins import raising_plugin

        # pluggy's calling order: the reverse of get_hookimpls(), wrappers aside.
        order = [impl for impl in reversed(self._hook.get_hookimpls()) if not (impl.wrapper or impl.hookwrapper)]
        done: list[Any] = []
        while True:
            name = raising_plugin(self._pm, "loader_event", error)
            report(event, error, f"observer {name!r}")
            culprit = self._pm.get_plugin(name) if name is not None else None
            if culprit is None:
                return
            seen = [impl.plugin for impl in order]
            done.extend(seen[: seen.index(culprit) + 1] if culprit in seen else [culprit])
            try:
                self._pm.subset_hook_caller("loader_event", remove_plugins=done)(event=event)
                return
            except Exception as exc:
                error = exc


class Delivery:
    """Routes the events of one public call to observers and the call's callback."""

    def __init__(
        self,
        pm: pluggy.PluginManager,
        callback: Callback | None,
        mode: CallbackMode,
        long_limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        """``long_limiter`` bounds the worker threads long callbacks run in (``Limits.long_callbacks``)."""
        if mode not in ("short", "long"):
            raise ValueError(f"callback_mode must be 'short' or 'long', not {mode!r}")
        self._long_limiter = long_limiter
        self._callback = callback
        self._is_async = callback is not None and inspect.iscoroutinefunction(callback)
        if self._is_async and mode == "long":
            raise TypeError("an async callback cannot be a long callback: it is awaited on the loop")
        self._long = callback is not None and mode == "long"
        self._send: MemoryObjectSendStream[Event] | None = None
        # Asked afresh for each call: a plugin registered on ``loader.plugin_manager``
        # directly is an observer from the next call on.
        self._observers = Observers(pm)
        #: False when no observer and no callback would see an event (then none is built).
        self.listening = self._observers.present or callback is not None
        #: The phases someone wants (``None``: all): a callback sees every phase, and so
        #: does an observer that does not name its ``loader_event_phases``.
        self.phases: frozenset[Phase] | None = None if callback is not None else self._observers.phases
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
        self._observers.notify(event, self._report)
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
        elif callback is None:
            return
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
        limiter = self._long_limiter
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
        self._observers.notify(report, self._report)
