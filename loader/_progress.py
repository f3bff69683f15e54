"""What the shell shows: a live rich display, plain log lines, or a JSON-lines event log.

Each is an ordinary observer plugin (a ``loader_event`` hook) registered on the
command's Loader, so the CLI sees exactly what any other plugin sees.
"""

from __future__ import annotations

import json
import sys
import time
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import IO, Any

from ._display import printable, shown_url
from ._events import Event, Phase
from .hookspecs import hookimpl

__all__ = ["EventLog", "LiveProgress", "PlainProgress", "Tally", "failure_text"]


def _cause(message: str) -> str:
    """``message`` without a step that the next one repeats.

    Wrapped errors often say the same thing twice ("cannot connect: cannot connect
    to 127.0.0.1:1: Connection refused"); the reader needs it once.
    """
    parts = message.split(": ")
    kept = [
        part for part, following in zip(parts, [*parts[1:], None], strict=True)
        if not (part and following is not None and following.lower().startswith(part.lower()))
    ]
    return ": ".join(kept)


def failure_text(url: str, error: BaseException | str | None) -> str:
    """``URL: cause`` for a person: the URL once (password redacted), then why, all escaped.

    Server text reaches ``error`` (an FTP reply, a Gopher error item, a reason
    phrase), so it goes through :func:`~loader._display.printable` like the URL.
    """
    url = getattr(error, "url", None) or url
    message = getattr(error, "message", None)
    if not isinstance(message, str):
        message = "unknown error" if error is None else str(error)
    for prefix in (url + ": ", shown_url(url) + ": "):
        if message.startswith(prefix):  # the URL is said once, in front
            message = message[len(prefix):]
    return f"{shown_url(url)}: {printable(_cause(message))}"


#: The phases that change a count, a byte total or a bar.
_DISPLAYED = frozenset({Phase.HANDLE_CREATED, Phase.PROGRESS, Phase.RETRY, Phase.REQUEST_COMPLETE,
                        Phase.FAILED, Phase.CANCELLED})


class Tally:
    """Counts resources and bytes from events (shared by both displays and the summary)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.total = 0
        self.done = 0
        self.failed = 0
        self.bytes = 0
        self._bytes_by_request: dict[int, int] = {}

    def update(self, event: Event) -> None:
        phase = event.phase
        if phase is Phase.HANDLE_CREATED:
            self.total += 1
        elif phase is Phase.PROGRESS and event.bytes_done is not None:
            previous = self._bytes_by_request.get(event.request_id, 0)
            self._bytes_by_request[event.request_id] = event.bytes_done
            self.bytes += event.bytes_done - previous
        elif phase is Phase.RETRY:
            self.bytes -= self._bytes_by_request.pop(event.request_id, 0)
        elif phase.terminal:
            self.done += 1
            if phase is not Phase.REQUEST_COMPLETE:
                self.failed += 1
            elif event.synchronous and event.bytes_done:
                self.bytes += event.bytes_done
            self._bytes_by_request.pop(event.request_id, None)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


#: ``"phase": …, "code": …`` of each phase, as ``json.dumps`` writes them.
_PHASE_JSON = {phase: f'"phase": "{phase.name}", "code": {phase.value}' for phase in Phase}
_INT_OR_NONE = frozenset({int, type(None)})


def _json_string(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


def _json_time(when: float) -> str:
    """``repr(round(when, 6))``, as ``to_json`` and ``json.dumps`` write a time.

    For a time from 1 s to 2**32 s (any Unix time until the year 2106), ``round`` to
    six places and ``repr`` make the correctly rounded six-place decimal without its
    trailing zeros: doubles there lie closer than half a millionth apart, so no
    shorter decimal names the same double.  That is ``%.6f`` trimmed, in a third of
    the time.  Other values take ``round`` itself.
    """
    if 1.0 <= when < 4294967296.0:
        text = f"{when:.6f}".rstrip("0")
        return text + "0" if text[-1] == "." else text
    return repr(round(when, 6))


def event_line(event: Event) -> str:
    """``json.dumps(event.to_json())`` and a newline, in about half the time.

    The ``--events`` schema has fixed keys, so the line is written out directly,
    each value as ``json.dumps`` writes it (its own string encoder for text).  A
    value of any other type than the schema's (a plugin's ``status="200"``)
    takes ``json.dumps`` itself, so the two never differ (a test compares them).
    """
    b, t, status, parent = event.bytes_done, event.bytes_total, event.status, event.parent_id
    phase = _PHASE_JSON.get(event.phase)
    when = event.time
    if (
        phase is None or type(when) is not float or type(event.request_id) is not int
        or type(event.attempt) is not int or type(event.synchronous) is not bool
        or type(b) not in _INT_OR_NONE or type(t) not in _INT_OR_NONE
        or type(status) not in _INT_OR_NONE or type(parent) not in _INT_OR_NONE
    ):
        return json.dumps(event.to_json()) + "\n"
    error = event.error
    try:
        return (
            f'{{"time": {_json_time(when)}, {phase}, "request_id": {event.request_id}, '
            f'"parent_id": {"null" if parent is None else parent}, "url": {encode_basestring_ascii(event.url)}, '
            f'"kind": {_json_string(event.kind)}, "attempt": {event.attempt}, '
            f'"bytes": {"null" if b is None else b}, "total": {"null" if t is None else t}, '
            f'"status": {"null" if status is None else status}, "new_url": {_json_string(event.new_url)}, '
            f'"message": {_json_string(event.message)}, '
            f'"error": {"null" if error is None else encode_basestring_ascii(str(error))}, '
            f'"synchronous": {"true" if event.synchronous else "false"}, '
            f'"http_version": {_json_string(event.http_version)}, "reason": {_json_string(event.reason)}}}\n'
        )
    except TypeError:  # a text field that is not text: json.dumps says what it makes of it
        return json.dumps(event.to_json()) + "\n"


class EventLog:
    """Writes every event as one JSON object per line (``--events FILE`` or ``-``)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    @hookimpl
    def loader_event(self, event: Event) -> None:
        self.stream.write(event_line(event))


def _retry_text(event: Event) -> str:
    text = failure_text(event.url, event.error)
    return f"{text} ({printable(event.message)})" if event.message else text


class PlainProgress:
    """One log line per finished request, for logs and pipes (not a terminal)."""

    def __init__(self, tally: Tally, stream: IO[str] | None = None) -> None:
        self.tally = tally
        self.stream = stream or sys.stderr

    @hookimpl
    def loader_event(self, event: Event) -> None:
        self.tally.update(event)
        if event.phase is Phase.REQUEST_COMPLETE:
            size = event.bytes_done or 0
            note = " (at once)" if event.synchronous else ""
            self.stream.write(f"[{self.tally.done}/{self.tally.total}] ok {shown_url(event.url)} {size} bytes{note}\n")
        elif event.phase is Phase.RETRY:
            self.stream.write(f"retry {_retry_text(event)}\n")


class LiveProgress:
    """A rich live display: the page's overall progress and a bar per active transfer."""

    def __init__(self, tally: Tally, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self.tally = tally
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            # Descriptions hold server-chosen names: never read as rich markup.
            TextColumn("{task.description}", justify="left", markup=False),
            BarColumn(bar_width=30),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            refresh_per_second=10,
        )
        self.overall = self.progress.add_task("resources 0/0", total=None)
        self.tasks: dict[int, Any] = {}

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.progress.stop()

    @staticmethod
    def _label(url: str) -> str:
        url = shown_url(url)
        name = url.rstrip("/").rsplit("/", 1)[-1] or url
        return (name[:37] + "…") if len(name) > 38 else name

    @hookimpl
    def loader_event(self, event: Event) -> None:
        phase = event.phase
        if phase not in _DISPLAYED:
            return  # connect, send … change nothing on screen: skip the redraw bookkeeping
        self.tally.update(event)
        rid = event.request_id
        if phase is Phase.PROGRESS:
            task = self.tasks.get(rid)
            if task is None:
                task = self.tasks[rid] = self.progress.add_task(self._label(event.url), total=event.bytes_total)
            self.progress.update(task, completed=event.bytes_done, total=event.bytes_total)
        elif phase.terminal:
            task = self.tasks.pop(rid, None)
            if task is not None:
                self.progress.remove_task(task)
        elif phase is Phase.RETRY:
            from rich.text import Text

            # A Text, not a string: a URL like /[bold]x[/bold].png is shown as it is.
            self.progress.console.print(Text.assemble(("retry", "yellow"), " ", _retry_text(event)), highlight=False)
        self.progress.update(
            self.overall,
            description=f"resources {self.tally.done}/{self.tally.total}",
            completed=self.tally.bytes,
        )
