"""Configuration objects, requests and results (all immutable, keyword-only)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

__all__ = ["HostLimiter", "HostStats", "Limits", "Request", "Result", "Retries", "Stats", "Timeouts"]


class HostLimiter(Protocol):
    """Who may send a request to a host now: ``Limits.host_limiter`` (awaitable, pluggable).

    ``slot(key, limit)`` is entered around each request to host ``key`` (scheme, host
    and port, ``loader._scheduler.host_key``) and lets at most ``limit`` in at once,
    first come, first served.  The default (``None`` in ``Limits``) is the scheduler's
    own, in memory; :class:`loader.RedisHostLimiter` shares the limit
    between processes.
    """

    def slot(self, key: str, limit: int) -> AbstractAsyncContextManager[object]:
        """A context held while one request to ``key`` runs."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """How much may run at once, and how much one page may ask for.

    ``total``: concurrent requests across the loader (default 32).
    ``per_host``: concurrent requests to one host and port (default 6, what
    browsers allow per HTTP/1.1 origin, and polite to servers).
    ``per_page``: requisites one page may fetch (default 1000); further ones
    are reported as skipped.  ``max_body``: bytes one response may have
    (default ``None``, unlimited; bodies stream to their sink, so memory stays
    bounded; the shell sets a default).  ``max_page``: bytes a document read
    into memory for discovery may have (a page, a stylesheet, a Gopher menu, an
    FTP listing; default 64 MiB), enforced as the bytes arrive.
    ``long_callbacks``: worker threads for long callbacks (default 4).

    Politeness (all off by default: a plain fetch is not slowed down):
    ``host_delay``: seconds between one page fetch of a host ending and the next
    starting (wget's ``--wait``; a crawl's pages, see ``loader._politeness``);
    ``random_wait``: each such delay times a random factor in 0.5-1.5 (``--random-wait``);
    ``rate``: bytes a second for the whole loader, every body counted as it arrives
    (``--limit-rate``); ``host_backoff``: when a host answers 429 or 503, every request
    to that host waits its ``Retry-After`` (else an exponential delay), at most this
    many seconds (``None``: no host-wide back-off, only the request's own retries).
    ``host_limiter``: a :class:`HostLimiter` that enforces ``per_host`` instead of the
    loader's own (one shared by several processes, say).
    """

    total: int = 32
    per_host: int = 6
    per_page: int = 1000
    max_body: int | None = None
    max_page: int | None = 64 << 20
    long_callbacks: int = 4
    host_delay: float = 0.0
    random_wait: bool = False
    rate: int | None = None
    host_backoff: float | None = None
    host_limiter: HostLimiter | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("total", "per_host", "per_page", "long_callbacks"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1")
        for name in ("max_body", "max_page"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Limits.{name} must be None or at least 0")
        if self.host_delay < 0:
            raise ValueError("Limits.host_delay must be at least 0")
        if self.rate is not None and self.rate < 1:
            raise ValueError("Limits.rate must be None or at least 1 byte a second")
        if self.host_backoff is not None and self.host_backoff < 0:
            raise ValueError("Limits.host_backoff must be None or at least 0")


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Time limits in seconds (``None`` disables one).

    ``connect``: establishing a connection (including name resolution).
    ``idle``: longest wait for the next bytes once connected.
    ``total``: deadline for the whole request, retries and redirects included.
    """

    connect: float | None = 10.0
    idle: float | None = 30.0
    total: float | None = 300.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Retries:
    """Retry transient failures with exponential backoff and full jitter.

    Only transient errors are retried: connection failures, idle timeouts and
    HTTP 429/502/503/504 (see ``LoaderError.transient``); never other 4xx.
    The delay before attempt *n+1* is ``uniform(0, min(max_backoff,
    backoff * 2**(n-1)))``, or the server's ``Retry-After`` when that is no
    more than ``max_retry_after`` (a longer one is not waited for).

    A request whose method is not idempotent (POST, PATCH: RFC 9110 §9.2.2) is
    retried only with ``non_idempotent=True``, since the server may have acted on
    the first attempt; a body that cannot be sent again (an async iterator, a
    pipe) is never retried.
    """

    attempts: int = 3
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 30.0
    non_idempotent: bool = False


class Origin(enum.Enum):
    """Where a result came from."""

    NETWORK = "network"
    CACHE = "cache"  # already fetched by this loader: completed synchronously
    DATA = "data"  # a data: URL, decoded locally: completed synchronously
    GIVEN = "given"  # handed over by the caller (Loader.fetch_requisites): completed synchronously


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """What a protocol handler is asked to fetch.

    Plugins may return a modified copy from ``loader_prepare_request``
    (use :meth:`with_headers`).  ``offset`` asks for the body from that byte on
    (resume); handlers that cannot resume ignore it and report ``offset=0``.

    ``content`` is the request body, ``None`` for none.  Given as bytes, a binary
    file, a path or an async iterator of bytes, it is kept wrapped in a
    ``RequestContent`` (``loader._upload``), which a handler reads with
    ``async for chunk in request.content.chunks()`` and whose ``length`` (``None``:
    unknown) and ``replayable`` say what it can promise.  Only a handler whose
    ``sends_bodies`` is true is given a request with a body or a method other than
    GET; the core fails any other such request with a clear error.
    """

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    offset: int = 0
    kind: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    content: Any = None

    def __post_init__(self) -> None:
        if self.content is not None:
            from ._upload import RequestContent  # only requests with a body pay for it

            object.__setattr__(self, "content", RequestContent.of(self.content))

    @property
    def idempotent(self) -> bool:
        """Whether sending this request twice has the effect of sending it once (RFC 9110 §9.2.2)."""
        from ._upload import IDEMPOTENT_METHODS

        return self.method.upper() in IDEMPOTENT_METHODS

    @property
    def replayable(self) -> bool:
        """Whether this request can be sent again (its body, if any, can be read once more)."""
        return self.content is None or bool(self.content.replayable)

    def with_headers(self, **headers: str) -> Request:
        """A copy with these headers added (underscores become dashes)."""
        merged = dict(self.headers)
        merged.update({k.replace("_", "-"): v for k, v in headers.items()})
        return replace(self, headers=merged)


@dataclass(frozen=True, kw_only=True, slots=True)
class Result:
    """The outcome of one request: a value, whether it succeeded or not.

    ``content`` holds the body when fetched to memory; ``path`` where it was
    saved when fetched to a file.  ``error`` is set exactly when ``ok`` is
    false.  ``timings`` maps phase names to seconds since the request began.
    ``http_version`` (``"HTTP/1.1"``, ``"HTTP/2"``) and ``reason`` (the status
    line's phrase, or an FTP reply's text) say what the server answered.
    ``raw_headers`` are the header lines as received (``(name, value)`` pairs in order,
    names' case and repeated lines such as two ``Set-Cookie`` kept); ``headers`` is
    the same as a mapping, repeats joined.
    """

    request_id: int
    url: str
    final_url: str
    ok: bool
    status: int | None = None
    content_type: str | None = None
    size: int = 0
    path: Path | None = None
    content: bytes | None = None
    error: BaseException | None = None
    attempts: int = 1
    elapsed: float = 0.0
    timings: Mapping[str, float] = field(default_factory=dict)
    origin: Origin = Origin.NETWORK
    kind: str | None = None
    parent_id: int | None = None
    context: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    document: str | None = None
    http_version: str | None = None
    reason: str | None = None
    raw_headers: Sequence[tuple[str, str]] = ()

    @property
    def completed_synchronously(self) -> bool:
        """True when the result was produced without touching the network."""
        return self.origin is not Origin.NETWORK

    @property
    def text(self) -> str:
        """The in-memory body decoded as text (charset from the content type, else UTF-8)."""
        if self.content is None:
            raise ValueError(f"{self.url}: the body was not kept in memory")
        charset = "utf-8"
        if self.content_type and "charset=" in self.content_type:
            charset = self.content_type.split("charset=", 1)[1].split(";")[0].strip(" \"'")
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


#: Hosts counted one by one in :attr:`Stats.hosts`; further hosts share the ``"*"`` entry
#: (a crawl meets millions of hosts: the counters stay bounded).
STATS_HOSTS = 10_000


@dataclass(kw_only=True, slots=True)
class HostStats:
    """One host's counters in :attr:`Stats.hosts` (network attempts, body bytes, failures)."""

    requests: int = 0
    bytes: int = 0
    failures: int = 0


@dataclass(kw_only=True, slots=True)
class Stats:
    """A loader's running counters (``Loader.stats``): plain ints, readable at any time.

    ``requests``: attempts sent to the network (a retry is one more); ``bytes``: body
    bytes received; ``failures``: requests that ended failed (not cancelled);
    ``retries``: attempts repeated after a transient error; ``cache_hits``: requests
    completed from the loader's memory or an up-to-date saved file; ``shared``: requests
    that waited for the same URL in flight and shared its result (duplicates avoided);
    ``robots_denied``: URLs robots.txt kept a crawl from; ``rate_waits``: times the
    ``Limits.rate`` bucket made a body wait; ``host_backoffs``: 429/503 answers that held
    their host (``Limits.host_backoff``).  ``hosts``: per-host counters by
    ``scheme://host:port``.
    """

    requests: int = 0
    bytes: int = 0
    failures: int = 0
    retries: int = 0
    cache_hits: int = 0
    shared: int = 0
    robots_denied: int = 0
    rate_waits: int = 0
    host_backoffs: int = 0
    hosts: dict[str, HostStats] = field(default_factory=dict)

    def host(self, key: str) -> HostStats:
        """The counters of host ``key`` (created on first use; past ``STATS_HOSTS``, ``"*"``)."""
        entry = self.hosts.get(key)
        if entry is None:
            if len(self.hosts) >= STATS_HOSTS:
                key = "*"
                entry = self.hosts.get(key)
            if entry is None:
                entry = self.hosts[key] = HostStats()
        return entry

    def as_dict(self) -> dict[str, Any]:
        """The counters as plain data (for ``--json`` and logs)."""
        data: dict[str, Any] = {
            name: getattr(self, name) for name in self.__slots__ if name != "hosts"
        }
        data["hosts"] = {
            key: {"requests": h.requests, "bytes": h.bytes, "failures": h.failures}
            for key, h in self.hosts.items()
        }
        return data
