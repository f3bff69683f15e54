"""What a protocol plugin may know of the loader that runs it: one typed, public object.

A handler is built by ``loader_protocol(scheme, context)`` and sees the same object again
as ``channel.context`` on every request; it never gets the :class:`~loader.Loader`
itself, so a plugin depends on these fields alone, not on how the loader is built.
"""

from __future__ import annotations

import functools
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._models import Limits, Retries, Timeouts

__all__ = ["PluginContext", "ResolvedNames", "make_ssl_context"]

#: How long a resolved name is trusted before the next request resolves (and reports) it again.
RESOLVE_TTL = 60.0


def make_ssl_context(verify: bool | str | os.PathLike[str] | ssl.SSLContext = True) -> ssl.SSLContext:
    """A client TLS context from a ``verify`` setting.

    ``True``: the system's trust store; ``False``: no verification (``--insecure``);
    a path: that CA bundle; an ``ssl.SSLContext``: itself.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, (str, os.PathLike)):
        return ssl.create_default_context(cafile=os.fspath(verify))
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ResolvedNames:
    """The names a loader resolved lately (per host and port), each trusted for ``ttl`` seconds.

    Lets each name be resolved, and its ``RESOLVING_NAME``/``NAME_RESOLVED`` reported,
    once per loader rather than once per request (see :func:`loader.resolve_host`).
    Bounded: past ``most`` names, the oldest are forgotten.
    """

    def __init__(self, ttl: float = RESOLVE_TTL, most: int = 4096) -> None:
        self.ttl = ttl
        self.most = most
        self._until: dict[tuple[str, int], float] = {}

    def fresh(self, host: str, port: int) -> bool:
        """Whether ``host:port`` was resolved less than ``ttl`` seconds ago."""
        return self._until.get((host.lower(), port), 0.0) > time.monotonic()

    def note(self, host: str, port: int) -> None:
        """Remember that ``host:port`` has just been resolved."""
        until = self._until
        until.pop((host.lower(), port), None)  # re-inserted last: the dict stays in age order
        until[(host.lower(), port)] = time.monotonic() + self.ttl
        while len(until) > self.most:
            del until[next(iter(until))]


@dataclass(frozen=True, kw_only=True)
class PluginContext:
    """The loader's settings a protocol handler applies, and the state its requests share.

    ``verify`` is ``True`` (system trust store), ``False`` (no verification), a CA bundle
    path or an ``ssl.SSLContext``; :attr:`ssl_context` is the context it asks for, built
    once.  ``headers`` are the loader's own (already merged into each ``Request``; a handler
    reads them only to build a client ahead).  ``proxy`` (``http://host:port``) replaces
    the environment's proxy settings; ``local_address`` binds new connections (``"0.0.0.0"``:
    IPv4 only, ``"::"``: IPv6 only); ``deny_private`` refuses every connection that reaches a
    loopback, link-local, private or unique-local address (:func:`loader.check_peer`).
    ``resolved`` is the loader's memory of resolved names (:func:`loader.resolve_host`).
    """

    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    retries: Retries = field(default_factory=Retries)
    headers: Mapping[str, str] = field(default_factory=dict)
    verify: bool | str | ssl.SSLContext = True
    http2: bool | None = None
    max_redirects: int = 10
    proxy: str | None = None
    local_address: str | None = None
    deny_private: bool = False
    resolved: ResolvedNames = field(default_factory=ResolvedNames, compare=False, repr=False)

    @functools.cached_property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS client context ``verify`` asks for, built on first use (FTPS, gophers …)."""
        return make_ssl_context(self.verify)
