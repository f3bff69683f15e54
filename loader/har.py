"""A page load as a HAR 1.2 log (what Chrome DevTools, Firefox and HAR viewers read).

Use::

    collector = HarCollector()
    async with Loader(plugins=[collector]) as loader:   # or loader.register(collector)
        page = await loader.fetch_page(url, output="copy")
    write_har("load.har", har_from([page], collector))

:class:`HarCollector` is a ``loader_event`` observer: it keeps, per request, what a
HAR entry needs (phase times, status, headers as sent and received, the connection),
not the events themselves, so its memory grows with the number of requests (capped at
:data:`MAX_REQUESTS`), not with the bytes moved.  :func:`har_from` adds what only the
results know: provenance (which element found a resource), MIME type and origin.

How the loader's events become HAR:

* **One entry per hop.** A request that is redirected (``REDIRECT``) or retried
  (``RETRY``) gives one entry per exchange, as a browser's network panel shows them;
  each hop's entry has ``redirectURL`` (redirects) or ``_error`` (a failed attempt).
* **Timings** split the time between a hop's start (``HANDLE_CREATED``, or the
  ``REDIRECT``/``RETRY`` that began it) and its end into the phase each event enters:
  ``blocked`` until the first plugin phase (waiting for a connection slot; a retry's
  backoff too), ``dns`` from ``RESOLVING_NAME``, ``connect`` from
  ``CONNECTING_TO_SERVER`` (``ssl`` from ``CONNECTED_TO_SERVER`` until the request
  goes out, on https/ftps/gophers; HAR counts it inside ``connect`` too), ``send``
  from ``SENDING_REQUEST``, ``wait`` from ``REQUEST_SENT`` (and an FTP control
  reply before the transfer), ``receive`` from ``RESPONSE_RECEIVED`` to the end.
  Phases that did not happen (a reused connection, a cached name) are ``-1``.  The
  parts are whole microseconds, so ``time`` is exactly their sum.
* **Connections.** A ``CONNECTED_TO_SERVER`` event opens connection ``"N"`` (its
  message, ``address:port``, gives ``serverIPAddress``).  A hop that sends without
  connecting reused one: events do not say which, so it is given the connection to
  the same origin that became free last (the pool's own choice for HTTP/1.1).
* **FTP and Gopher** requests are entries too; FTP's control replies are listed in
  ``_ftp``; the method is ``GET`` for every request a page makes.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ._events import Event, Phase
from ._urls import redact_url
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from ._models import Result
    from ._page import PageResult

__all__ = ["MAX_REQUESTS", "HarCollector", "har_from", "write_har"]

#: Requests one collector records; later ones are counted in the log's comment only.
MAX_REQUESTS = 100_000

# The timing a hop is in after each phase (see the module docstring).
_BLOCKED, _DNS, _CONNECT, _SSL, _SEND, _WAIT, _RECEIVE = range(7)
TIMING_NAMES = ("blocked", "dns", "connect", "ssl", "send", "wait", "receive")
_ENTERS = {
    Phase.RESOLVING_NAME: _DNS,
    Phase.NAME_RESOLVED: _DNS,
    Phase.CONNECTING_TO_SERVER: _CONNECT,
    Phase.CONNECTED_TO_SERVER: _CONNECT,  # _SSL on a secure scheme
    Phase.SENDING_REQUEST: _SEND,
    Phase.REQUEST_SENT: _WAIT,
    Phase.RECEIVING_RESPONSE: _WAIT,
    Phase.CTL_RESPONSE_RECEIVED: _WAIT,
    Phase.INTERMEDIATE_RESPONSE: _WAIT,
    Phase.RESPONSE_RECEIVED: _RECEIVE,
    Phase.PROGRESS: _RECEIVE,
    Phase.CLOSING_CONNECTION: _RECEIVE,
    Phase.CONNECTION_CLOSED: _RECEIVE,
}
_SECURE = frozenset({"https", "ftps", "gophers"})
_HOP_ENDS = frozenset({Phase.REDIRECT, Phase.RETRY, Phase.REQUEST_COMPLETE, Phase.FAILED, Phase.CANCELLED})


@dataclass(slots=True)
class _Hop:
    """One exchange of a request: the first, or one after a redirect or a retry."""

    url: str
    start: float
    attempt: int
    secure: bool
    marks: list[tuple[float, int]] = field(default_factory=list)
    phases: list[tuple[int, float]] = field(default_factory=list)
    end: float | None = None
    end_phase: Phase | None = None
    status: int | None = None
    reason: str | None = None
    http_version: str | None = None
    sent: Sequence[tuple[str, str]] | None = None
    received: Sequence[tuple[str, str]] | None = None
    connection: int | None = None
    closed: bool = False
    ftp: list[tuple[int | None, str]] = field(default_factory=list)
    new_url: str | None = None
    error: str | None = None
    size: int = 0
    synchronous: bool = False


@dataclass(slots=True)
class _Record:
    request_id: int
    parent_id: int | None
    url: str
    kind: str | None
    hops: list[_Hop]
    done: bool = False


def _origin_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    except ValueError:
        return url


def _scheme(url: str) -> str:
    return url.partition(":")[0].lower()


class HarCollector:
    """Records what a HAR log needs from a loader's events; register it as a plugin.

    Register it before the requests start (``Loader(plugins=[collector])`` or
    ``loader.register(collector)``); build the log with :meth:`har` or :func:`har_from`.
    """

    #: Body chunks (``PROGRESS``) are not needed: the first ``RESPONSE_RECEIVED`` starts
    #: ``receive``, the terminal event has the size.  Without other listeners, the core
    #: then does not build an event per chunk.
    loader_event_phases = frozenset(Phase) - {Phase.PROGRESS}

    def __init__(self) -> None:
        self._records: dict[int, _Record] = {}
        #: Requests seen after :data:`MAX_REQUESTS` were recorded (left out of the log).
        self.dropped = 0
        self._connections: list[str] = []  # server address:port, by connection id - 1
        self._free: dict[str, list[int]] = {}  # origin -> idle connection ids, last freed last
        self._latest: dict[str, int] = {}  # origin -> newest connection id

    @hookimpl
    def loader_event(self, event: Event) -> None:
        """Fold one event into its request's record."""
        phase = event.phase
        if phase is Phase.CALLBACK_ERROR:
            return
        record = self._records.get(event.request_id)
        if record is None:
            if len(self._records) >= MAX_REQUESTS:
                self.dropped += 1
                return
            hop = _Hop(event.url, event.time, event.attempt, _scheme(event.url) in _SECURE, synchronous=event.synchronous)
            record = self._records[event.request_id] = _Record(
                event.request_id, event.parent_id, event.url, event.kind, [hop]
            )
        if record.done:
            return
        hop = record.hops[-1]
        if hop.end is not None:  # a redirect or a retry ended the last hop: this one starts there
            url = hop.new_url if hop.end_phase is Phase.REDIRECT and hop.new_url else record.url
            hop = _Hop(url, hop.end, event.attempt, _scheme(url) in _SECURE)
            record.hops.append(hop)
        if (phase is not Phase.PROGRESS or not hop.size) and len(hop.phases) < 256:
            hop.phases.append((int(phase), event.time))
        if phase in _HOP_ENDS:
            self._end_hop(record, hop, event)
            return
        state = _ENTERS.get(phase)
        if state is None:
            return
        if hop.marks and hop.marks[-1][1] == _RECEIVE:
            state = _RECEIVE  # a reply after the response (FTP's 226) is part of receiving
        elif phase is Phase.CONNECTED_TO_SERVER and hop.secure:
            state = _SSL
        if not hop.marks or hop.marks[-1][1] != state:  # a body's chunks: one mark, not one each
            hop.marks.append((event.time, state))
        if phase is Phase.CONNECTED_TO_SERVER:
            self._connections.append(event.message or "")
            hop.connection = len(self._connections)
            self._latest[_origin_of(hop.url)] = hop.connection
        elif phase is Phase.SENDING_REQUEST and hop.connection is None:
            hop.connection = self._reused(_origin_of(hop.url))
        elif phase is Phase.REQUEST_SENT:
            if event.headers is not None:
                hop.sent = tuple(event.headers)
        elif phase is Phase.RESPONSE_RECEIVED:
            hop.status, hop.reason, hop.http_version = event.status, event.reason, event.http_version
            if event.headers is not None:
                hop.received = tuple(event.headers)
        elif phase is Phase.CTL_RESPONSE_RECEIVED:
            if len(hop.ftp) < 64:  # a listing's replies are few; a hostile server's need not be
                hop.ftp.append((event.status, event.message or ""))
        elif phase is Phase.PROGRESS:
            hop.size = event.bytes_done or 0
        elif phase is Phase.CONNECTION_CLOSED:
            hop.closed = True

    def _reused(self, origin: str) -> int | None:
        free = self._free.get(origin)
        if free:
            return free.pop()
        return self._latest.get(origin)  # none idle: HTTP/2 shares one

    def _end_hop(self, record: _Record, hop: _Hop, event: Event) -> None:
        phase = event.phase
        hop.end, hop.end_phase = event.time, phase
        if phase is Phase.REDIRECT:
            hop.new_url = event.new_url
        elif event.error is not None:
            hop.error = str(event.error)
        if phase is Phase.REQUEST_COMPLETE:
            hop.size = event.bytes_done or hop.size
            # FTP's 125/150 is preliminary: the final reply (226) comes with completion.
            if event.status is not None and (hop.status is None or 100 <= hop.status < 200):
                hop.status = event.status
        if phase not in (Phase.REDIRECT, Phase.RETRY):
            record.done = True
        if hop.connection is not None and not hop.closed and hop.error is None:
            free = self._free.setdefault(_origin_of(hop.url), [])
            if hop.connection not in free:
                free.append(hop.connection)

    def har(self, pages: Iterable[PageResult] = ()) -> dict[str, Any]:
        """The HAR log of ``pages`` (every request recorded, when none are given)."""
        return har_from(pages, self)


# -- building the log ------------------------------------------------------------------


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat(timespec="milliseconds")


def _ms(us: int) -> float:
    return us / 1000


def _timings(hop: _Hop) -> tuple[dict[str, float], int]:
    """The HAR timings of a hop and its total in microseconds (their exact sum)."""
    end = hop.end if hop.end is not None else (hop.marks[-1][0] if hop.marks else hop.start)
    spent = [0] * 7
    seen = [False] * 7
    at, state = hop.start, _BLOCKED
    seen[_BLOCKED] = True
    for t, next_state in (*hop.marks, (end, -1)):
        t = max(t, at)  # wall clock: never let a step back make a negative part
        spent[state] += round((t - at) * 1e6)
        at, state = t, next_state
        if state >= 0:
            seen[state] = True
    connect = spent[_CONNECT] + spent[_SSL]
    timings = {
        "blocked": _ms(spent[_BLOCKED]),
        "dns": _ms(spent[_DNS]) if seen[_DNS] else -1,
        "connect": _ms(connect) if seen[_CONNECT] or seen[_SSL] else -1,
        "ssl": _ms(spent[_SSL]) if seen[_SSL] else -1,
        "send": _ms(spent[_SEND]),
        "wait": _ms(spent[_WAIT]),
        "receive": _ms(spent[_RECEIVE]),
    }
    total = spent[_BLOCKED] + spent[_DNS] + connect + spent[_SEND] + spent[_WAIT] + spent[_RECEIVE]
    return timings, total


def _pairs(lines: Sequence[tuple[str, str]] | None) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in lines or ()]


def _header(lines: Sequence[tuple[str, str]] | None, name: str) -> str | None:
    for key, value in lines or ():
        if key.lower() == name:
            return value
    return None


def _head_size(first_line: str, lines: Sequence[tuple[str, str]] | None, version: str | None) -> int:
    """Bytes of an HTTP/1.x head (start line, header lines, blank line); -1 when unknown."""
    if lines is None or not version or not version.startswith("HTTP/1"):
        return -1
    return len(first_line) + 2 + sum(len(k) + len(v) + 4 for k, v in lines) + 2


def _target(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "/"
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _query(url: str) -> list[dict[str, str]]:
    try:
        return [{"name": k, "value": v} for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
    except ValueError:
        return []


def _server_ip(address: str) -> str:
    host = address.rpartition(":")[0] if ":" in address else address
    return host.strip("[]")


@dataclass(slots=True)
class _Context:
    """What the results add to the events, by request id."""

    results: dict[int, Result] = field(default_factory=dict)
    found: dict[int, Any] = field(default_factory=dict)
    pages: dict[int, str] = field(default_factory=dict)  # page request id -> page id


def _context(pages: Iterable[PageResult]) -> tuple[_Context, list[PageResult]]:
    ctx = _Context()
    listed = list(pages)
    for number, page in enumerate(listed):
        ctx.pages[page.document.request_id] = f"page_{number + 1}"
        by_url = page.by_url
        for result in (page.document, *page.resources):
            ctx.results[result.request_id] = result
            found = by_url.get(result.url)
            if found is not None and result is not page.document:
                ctx.found[result.request_id] = found
    return ctx, listed


def _entry(record: _Record, index: int, hop: _Hop, collector: HarCollector, ctx: _Context) -> dict[str, Any]:
    timings, total = _timings(hop)
    last = index == len(record.hops) - 1
    result = ctx.results.get(record.request_id)
    scheme = _scheme(hop.url)
    version = hop.http_version or ("" if scheme.startswith("http") else scheme.upper())
    encoded = _header(hop.received, "content-encoding")
    length = _header(hop.received, "content-length")
    stated = int(length) if length is not None and length.isdigit() else None
    if last and hop.end_phase is Phase.REQUEST_COMPLETE:
        size = hop.size
        body = (stated if stated is not None else -1) if encoded else size
    else:
        size = stated or 0
        body = stated if stated is not None else -1
    mime = (result.content_type if result is not None and last else None) or _header(hop.received, "content-type") or ""
    status = hop.status or 0
    reason = hop.reason or ""
    if not hop.reason and hop.ftp and scheme.startswith("ftp") and hop.status is not None:
        reason = next((m for s, m in reversed(hop.ftp) if s == hop.status), "")
    content: dict[str, Any] = {"size": size, "mimeType": mime}
    if encoded and body >= 0:
        content["compression"] = size - body
    entry: dict[str, Any] = {
        "startedDateTime": _iso(hop.start),
        "time": _ms(total),
        "request": {
            "method": "GET",
            "url": hop.url,
            "httpVersion": version,
            "cookies": [],
            "headers": _pairs(hop.sent),
            "queryString": _query(hop.url),
            "headersSize": _head_size(f"GET {_target(hop.url)} {version}", hop.sent, version),
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": reason,
            "httpVersion": version if hop.status is not None else "",
            "cookies": [],
            "headers": _pairs(hop.received),
            "content": content,
            "redirectURL": hop.new_url or "",
            "headersSize": _head_size(f"{version} {status} {reason}", hop.received, version),
            "bodySize": body,
        },
        "cache": {},
        "timings": timings,
    }
    root = record.parent_id if record.parent_id is not None else record.request_id
    if root in ctx.pages:
        entry["pageref"] = ctx.pages[root]
    if hop.connection is not None:
        entry["connection"] = str(hop.connection)
        address = collector._connections[hop.connection - 1]
        if address:
            entry["serverIPAddress"] = _server_ip(address)
    entry["_protocol"] = scheme
    entry["_request_id"] = record.request_id
    if record.parent_id is not None:
        entry["_parent_id"] = record.parent_id
    entry["_kind"] = record.kind or ("page" if record.request_id in ctx.pages else None)
    found = ctx.found.get(record.request_id)
    if found is not None:
        entry["_found_by"] = found.provenance()
        entry["_found_in"] = redact_url(found.source) if found.source else None
    entry["_attempt"] = hop.attempt
    entry["_attempts"] = record.hops[-1].attempt
    entry["_hop"] = index
    if index and record.hops[index - 1].end_phase is Phase.REDIRECT:
        entry["_redirected_from"] = record.hops[index - 1].url
    if result is not None:
        entry["_origin"] = result.origin.value
    if hop.synchronous:
        entry["_synchronous"] = True
    if hop.error is not None or hop.end_phase in (Phase.FAILED, Phase.CANCELLED):
        entry["_error"] = hop.error or hop.end_phase.name.lower()  # type: ignore[union-attr]
    entry["_phases"] = [[code, Phase(code).name, round((t - hop.start) * 1000, 3)] for code, t in hop.phases]
    if scheme.startswith("ftp"):
        entry["_ftp"] = [{"status": s, "message": m} for s, m in hop.ftp]
    return entry


def har_from(pages: Iterable[PageResult] = (), collector: HarCollector | None = None) -> dict[str, Any]:
    """A HAR 1.2 log (a JSON-ready dict) of ``pages``, from what ``collector`` recorded.

    Every request the collector saw that belongs to one of ``pages`` (the page's own
    request, its requisites) is an entry; with no pages, every request is, and each
    request without a parent is a page.  Without a collector, the log has the pages
    and no entries (the results alone do not say when each phase happened).
    """
    from . import __version__

    ctx, listed = _context(pages)
    records = list(collector._records.values()) if collector is not None else []
    if not listed:
        roots = [r for r in records if r.parent_id is None]
        ctx.pages = {r.request_id: f"page_{n + 1}" for n, r in enumerate(roots)}
    entries: list[dict[str, Any]] = []
    ends: dict[int, list[float]] = {}
    for record in records:
        root = record.parent_id if record.parent_id is not None else record.request_id
        if listed and root not in ctx.pages:
            continue
        for index, hop in enumerate(record.hops):
            entries.append(_entry(record, index, hop, collector, ctx))  # type: ignore[arg-type]
        end = record.hops[-1].end
        if end is not None:
            ends.setdefault(root, []).append(end)
    entries.sort(key=lambda e: (e["startedDateTime"], e["_request_id"], e["_hop"]))
    by_id = {r.request_id: r for r in records}
    har_pages = []
    for page_request, page_id in ctx.pages.items():
        page_record = by_id.get(page_request)
        result = ctx.results.get(page_request)
        start = page_record.hops[0].start if page_record is not None else None
        title = page_record.url if page_record is not None else (result.url if result is not None else page_id)
        timings: dict[str, float] = {"onContentLoad": -1, "onLoad": -1}
        if start is not None and page_record is not None:
            done = page_record.hops[-1].end
            if done is not None:
                timings["onContentLoad"] = round((done - start) * 1000, 3)
            if ends.get(page_request):
                timings["onLoad"] = round((max(ends[page_request]) - start) * 1000, 3)
        har_pages.append({
            "startedDateTime": _iso(start if start is not None else 0.0),
            "id": page_id,
            "title": title,
            "pageTimings": timings,
        })
    log: dict[str, Any] = {
        "version": "1.2",
        "creator": {"name": "loader", "version": __version__},
        "pages": har_pages,
        "entries": entries,
    }
    if collector is not None and collector.dropped:
        log["comment"] = f"{collector.dropped} requests after the first {MAX_REQUESTS} were not recorded"
    return {"log": log}


def write_har(path: str | os.PathLike[str], har: Mapping[str, Any]) -> Path:
    """Write ``har`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    from ._saving import write_file

    target = Path(path)
    data = json.dumps(har, indent=1, ensure_ascii=False).encode("utf-8")
    return write_file(str(target), target, data)


def save_load(
    collector: HarCollector, pages: Sequence[PageResult], har_path: str | None, report_path: str | None, stderr: Any
) -> bool:
    """Write the HAR and/or the HTML report of ``pages``, saying where on ``stderr``; False if one failed."""
    from ._display import printable
    from ._errors import LoaderError

    har = har_from(pages, collector)
    ok = True
    for label, path in (("HAR", har_path), ("report", report_path)):
        if not path:
            continue
        try:
            if label == "HAR":
                written = write_har(path, har)
            else:
                from ._report import write_report

                written = write_report(path, har)
        except (OSError, LoaderError) as exc:
            stderr.write(f"error: cannot write the {label} {printable(str(path))}: {printable(str(exc))}\n")
            ok = False
        else:
            stderr.write(f"{label}: {printable(str(written))}\n")
    return ok
