"""Status events: one vocabulary for every protocol.

Every request reports what it is doing as a stream of :class:`Event` objects.
The phases keep WinINet's ``INTERNET_STATUS_*`` numbers where WinINet has one
(see ``wininet.h``); phases WinINet lacks (byte progress, retry, failure,
cancellation, a failing callback) are numbered from 1000 so they never collide.

Who emits what (the grammar every plugin follows, checked by a conformance test):

* the core emits ``HANDLE_CREATED`` first, then exactly one terminal phase
  (``REQUEST_COMPLETE``, ``FAILED`` or ``CANCELLED``) last, ``PROGRESS`` while
  body bytes flow, and ``RETRY`` between attempts;
* protocol plugins emit what happens in between: ``RESOLVING_NAME`` …
  ``RESPONSE_RECEIVED``, ``CTL_RESPONSE_RECEIVED`` for control replies (FTP),
  ``REDIRECT``, ``INTERMEDIATE_RESPONSE``, ``CLOSING_CONNECTION`` …
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._control import Control

__all__ = ["Event", "Phase"]


class Phase(enum.IntEnum):
    """The phases of a request.  Values below 1000 are WinINet's."""

    RESOLVING_NAME = 10
    NAME_RESOLVED = 11
    CONNECTING_TO_SERVER = 20
    CONNECTED_TO_SERVER = 21
    SENDING_REQUEST = 30
    REQUEST_SENT = 31
    RECEIVING_RESPONSE = 40
    RESPONSE_RECEIVED = 41
    CTL_RESPONSE_RECEIVED = 42
    CLOSING_CONNECTION = 50
    CONNECTION_CLOSED = 51
    HANDLE_CREATED = 60
    HANDLE_CLOSING = 70
    REQUEST_COMPLETE = 100
    REDIRECT = 110
    INTERMEDIATE_RESPONSE = 120
    # Ours.
    PROGRESS = 1001
    RETRY = 1002
    FAILED = 1003
    CANCELLED = 1004
    CALLBACK_ERROR = 1005

    @property
    def terminal(self) -> bool:
        """True for the phases that end a request."""
        return self in _TERMINAL


_TERMINAL = frozenset({Phase.REQUEST_COMPLETE, Phase.FAILED, Phase.CANCELLED})


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to one request.

    ``context`` is the value the caller attached to the call that started the
    request (WinINet's ``dwContext``, WWS's callback state).  ``parent_id`` is
    the id of the page request whose resource this is, or ``None``.

    Phase data: ``bytes_done``/``bytes_total`` for ``PROGRESS`` (and the final
    size on ``REQUEST_COMPLETE``; a request body's chunks, while it is sent, are
    ``PROGRESS`` with ``message="sending"``), ``new_url`` for ``REDIRECT``, ``error`` for
    ``FAILED``/``RETRY``/``CALLBACK_ERROR``, ``attempt`` (1-based) everywhere,
    ``status`` for responses and control replies (with ``http_version``, e.g.
    ``"HTTP/1.1"`` or ``"HTTP/2"``, and the ``reason`` phrase on an HTTP
    ``RESPONSE_RECEIVED``), ``message`` for free text
    (an FTP reply line, a resolved address), ``kind`` of the resource.
    ``headers``: the header lines as sent (on ``REQUEST_SENT``) or as received (on
    ``RESPONSE_RECEIVED``), in order and original case, a repeated name once per
    line, as ``(name, value)`` text pairs, where the plugin reports them (HTTP
    does); not part of :meth:`to_json`.
    """

    request_id: int
    parent_id: int | None
    url: str
    phase: Phase
    time: float
    context: Any = None
    attempt: int = 1
    kind: str | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    new_url: str | None = None
    status: int | None = None
    message: str | None = None
    error: BaseException | None = None
    synchronous: bool = False
    http_version: str | None = None
    reason: str | None = None
    headers: Sequence[tuple[str, str]] | None = field(default=None, repr=False, compare=False)
    _control: Control | None = field(default=None, repr=False, compare=False)

    def cancel(self) -> None:
        """Cancel the request this event belongs to (safe from any thread)."""
        if self._control is not None:
            self._control.cancel()

    def cancel_page(self) -> None:
        """Cancel the whole call this event belongs to (a page and all its resources)."""
        if self._control is not None:
            self._control.cancel_call()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``--events`` schema)."""
        return {
            "time": round(self.time, 6),
            "phase": self.phase.name,
            "code": int(self.phase),
            "request_id": self.request_id,
            "parent_id": self.parent_id,
            "url": self.url,
            "kind": self.kind,
            "attempt": self.attempt,
            "bytes": self.bytes_done,
            "total": self.bytes_total,
            "status": self.status,
            "new_url": self.new_url,
            "message": self.message,
            "error": None if self.error is None else str(self.error),
            "synchronous": self.synchronous,
            "http_version": self.http_version,
            "reason": self.reason,
        }
