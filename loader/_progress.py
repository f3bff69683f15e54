"""What the shell shows: a live rich display, plain log lines, or a JSON-lines event log.

Each is an ordinary observer plugin (a ``loader_event`` hook) registered on the
command's Loader, so the CLI sees exactly what any other plugin sees.  With ``-q``
nothing is shown while files arrive, so no observer is registered at all (no event
is built): a page's line then counts from its results (:meth:`Count.of_results`).
"""

from __future__ import annotations

import json
import sys
import time
from json.encoder import encode_basestring_ascii
from typing import IO, TYPE_CHECKING, Any

from ._display import printable, shown_url
from ._errors import RequestCancelled
from ._events import Event, Phase
from ._models import Origin
from .hookspecs import hookimpl

if TYPE_CHECKING:  # rich loads with the live display only
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from rich.console import Console
    from rich.progress import TaskID

    from ._models import Result

__all__ = ["Count", "EventLog", "LiveProgress", "PlainProgress", "Tally", "failure_text", "page_line"]


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


class Count:
    """What happened to a set of files: the numbers every display and summary shows.

    A *file* is one request of the run: a page, each stylesheet read for its images,
    each image or sound (a crawl's robots.txt requests are not files).  ``skipped`` files completed without a transfer (already
    there with ``--exists skip`` or ``-c``, or a copy reused from earlier in the run;
    a ``data:`` URL decoded in place counts as ``ok``); ``bytes`` counts only what
    came over the network.  ``ok + skipped + failed + cancelled == done``.
    """

    __slots__ = ("bytes", "cancelled", "done", "failed", "ok", "skipped", "total")

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.ok = 0
        self.skipped = 0
        self.failed = 0
        self.cancelled = 0
        self.bytes = 0

    def finish(self, event: Event) -> None:
        phase = event.phase
        self._end(completed=phase is Phase.REQUEST_COMPLETE, cancelled=phase is Phase.CANCELLED,
                  skipped=event.synchronous and not event.url.startswith("data:"))

    def _end(self, *, completed: bool, cancelled: bool, skipped: bool) -> None:
        """One file done: the one place that says which of the four counts it adds to."""
        self.done += 1
        if cancelled:
            self.cancelled += 1
        elif not completed:
            self.failed += 1
        elif skipped:
            self.skipped += 1
        else:
            self.ok += 1

    @classmethod
    def of_results(cls, results: Iterable[Result]) -> Count:
        """The count of a page's results, as :class:`Tally` counts their events: a file
        completed without a transfer is skipped (a ``data:`` URL is ``ok``), only
        network bytes count, and a transfer that failed part way adds none."""
        count = cls()
        for result in results:
            count.total += 1
            count._end(completed=result.ok, cancelled=isinstance(result.error, RequestCancelled),
                       skipped=result.origin not in (Origin.NETWORK, Origin.DATA))
            if result.ok and result.origin is Origin.NETWORK:
                count.bytes += result.size
        return count

    def parts(self, skipped_as: str = "skipped") -> str:
        """``15 ok, 3 skipped, 1 failed`` (a count that is zero is left out, but for ``ok``)."""
        words = [f"{self.ok} ok"]
        for count, word in ((self.skipped, skipped_as), (self.failed, "failed"), (self.cancelled, "cancelled")):
            if count:
                words.append(f"{count} {word}")
        return ", ".join(words)


class Tally(Count):
    """Counts files and bytes from events, in all and per page (shared by the displays and summaries).

    ``skipped_as`` names the files completed without a transfer (see :class:`Count`):
    "skipped (already there)" when the command was told to skip existing files.
    """

    #: The phases it counts from: the core builds no event of another phase for it alone.
    loader_event_phases = _DISPLAYED

    def __init__(self, *, skipped_as: str = "reused") -> None:
        super().__init__()
        self.started = time.monotonic()
        self.skipped_as = skipped_as
        self.pages: dict[int, Count] = {}  # by the request id of the page (a single get: its own)
        self._bytes_by_request: dict[int, int] = {}
        self._totals: dict[int, int | None] = {}  # active transfers: their announced length
        #: What a run of many pages says before the files (``loader fetch -r``: pages done
        #: and queued), read each time the live display redraws its overall line.
        self.heading: Callable[[], str] | None = None

    @hookimpl
    def loader_event(self, event: Event) -> None:
        """Count on its own when no display does (``-q``, ``--list``)."""
        self.update(event)

    def _page(self, event: Event) -> Count:
        root = event.parent_id if event.parent_id is not None else event.request_id
        count = self.pages.get(root)
        if count is None:
            count = self.pages[root] = Count()
        return count

    def update(self, event: Event) -> None:
        if event.kind == "robots":
            return  # the crawl's own question to a host, not a file of the run (--events shows it)
        phase = event.phase
        rid = event.request_id
        if phase is Phase.HANDLE_CREATED:
            self.total += 1
            self._page(event).total += 1
            self._totals[rid] = None
        elif phase is Phase.PROGRESS and event.bytes_done is not None:
            previous = self._bytes_by_request.get(rid, 0)
            self._bytes_by_request[rid] = event.bytes_done
            self._add_bytes(event, event.bytes_done - previous)
            self._totals[rid] = event.bytes_total
        elif phase is Phase.RETRY:
            self._add_bytes(event, -self._bytes_by_request.pop(rid, 0))
        elif phase.terminal:
            self.finish(event)
            self._page(event).finish(event)
            self._bytes_by_request.pop(rid, None)
            self._totals.pop(rid, None)

    def _add_bytes(self, event: Event, amount: int) -> None:
        self.bytes += amount
        self._page(event).bytes += amount

    def expected_bytes(self) -> int | None:
        """The run's bytes once every active transfer ends, or ``None`` while one has no known length.

        Files not discovered yet are not in it: the total may still grow.
        """
        expected = self.bytes
        for rid, total in self._totals.items():
            if total is None:
                return None
            expected += total - self._bytes_by_request.get(rid, 0)
        return expected

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def summary(self) -> str:
        """The run's last line: ``done: 19 files: 15 ok, 3 skipped, 1 failed; 24900 bytes transferred in 0.52s``."""
        return (f"done: {_files(self.total)}: {self.parts(self.skipped_as)}; "
                f"{self.bytes} bytes transferred in {self.elapsed:.2f}s")


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"


def page_line(url: str, path: Path | None, count: Count, skipped_as: str) -> str:
    """A saved page's line (the page itself is one of its files): ``count`` is the
    page's in the run's :class:`Tally`, so that it agrees with the summary, or, with
    ``-q``, :meth:`Count.of_results` of the page's results."""
    return (f"{shown_url(url)}: saved to {printable(str(path))}; {_files(count.total)}: "
            f"{count.parts(skipped_as)}; {count.bytes} bytes transferred")


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
    """One log line per finished file, for logs and pipes (not a terminal).

    Every file gets its line, failed or not, so ``[n/m]`` counts up by one each
    line; ``m`` is the number of files known so far (it grows while pages and
    stylesheets reveal more).
    """

    loader_event_phases = _DISPLAYED  # see Tally

    def __init__(self, tally: Tally, stream: IO[str] | None = None) -> None:
        self.tally = tally
        self.stream = stream or sys.stderr

    @hookimpl
    def loader_event(self, event: Event) -> None:
        tally = self.tally
        tally.update(event)
        phase = event.phase
        if phase.terminal and event.kind != "robots":  # not a file: see Count
            counter = f"[{tally.done}/{tally.total}]"
            url = shown_url(event.url)
            if phase is Phase.REQUEST_COMPLETE:
                size = event.bytes_done or 0
                if not event.synchronous:
                    line = f"{counter} ok {url} {size} bytes"
                elif event.url.startswith("data:"):
                    line = f"{counter} ok {url} {size} bytes (decoded in place)"
                else:
                    line = f"{counter} {tally.skipped_as} {url} ({size} bytes, not transferred)"
            elif phase is Phase.CANCELLED:
                line = f"{counter} cancelled {url}"
            else:
                line = f"{counter} failed {failure_text(event.url, event.error)}"
            self.stream.write(line + "\n")
        elif phase is Phase.RETRY:
            self.stream.write(f"retry {_retry_text(event)}\n")

    def finish(self, *, interrupted: bool) -> None:
        """The run is over (plain lines need no closing state: the summary follows)."""


class LiveProgress:
    """A rich live display: the run's overall progress and a bar per active transfer.

    The overall line counts files as :class:`Count` defines them; its bar's total is
    the bytes expected so far (unknown while a transfer has no length).  :meth:`finish`
    sets its final state before the display stops: complete, or "interrupted".
    """

    loader_event_phases = _DISPLAYED  # see Tally

    def __init__(self, tally: Tally, console: Console | None = None) -> None:
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
        self.overall = self.progress.add_task(self._overall_text(), total=None)
        self.tasks: dict[int, TaskID] = {}

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.progress.stop()

    def _overall_text(self) -> str:
        t = self.tally
        text = f"files {t.done}/{t.total}"
        rest = [f"{count} {word}" for count, word in
                ((t.skipped, t.skipped_as), (t.failed, "failed"), (t.cancelled, "cancelled")) if count]
        if rest:
            text = f"{text} ({', '.join(rest)})"
        return text if t.heading is None else f"{t.heading()}; {text}"

    def finish(self, *, interrupted: bool) -> None:
        """Draw the final state: every active bar gone, the overall line complete or marked interrupted.

        Called before the display stops, so its last frame is what stays on the screen.
        """
        for task_id in self.tasks.values():
            self.progress.remove_task(task_id)
        self.tasks.clear()
        t = self.tally
        if interrupted:
            finished = t.ok + t.skipped
            heading = "" if t.heading is None else f"{t.heading()}; "
            self.progress.update(self.overall, description=f"interrupted: {heading}{finished} of {t.total} files done",
                                 completed=t.bytes, total=t.expected_bytes())
        else:
            # Everything known has ended: the bytes are all there, and the bar stops pulsing.
            self.progress.update(self.overall, description=self._overall_text(), completed=t.bytes,
                                 total=t.bytes)
        self.progress.stop_task(self.overall)
        for task in self.progress.tasks:
            if task.id == self.overall and t.elapsed > 0:
                # Its speed column would show "?" for a task not moving any more: the run's average instead.
                task.finished_speed = t.bytes / t.elapsed
        self.progress.refresh()

    @staticmethod
    def _label(url: str) -> str:
        url = shown_url(url)
        name = url.rstrip("/").rsplit("/", 1)[-1] or url
        return (name[:37] + "…") if len(name) > 38 else name

    @hookimpl
    def loader_event(self, event: Event) -> None:
        phase = event.phase
        if phase not in _DISPLAYED:
            return  # another observer's phase (connect, send …): nothing changes on screen
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
            description=self._overall_text(),
            completed=self.tally.bytes,
            total=self.tally.expected_bytes(),
        )
