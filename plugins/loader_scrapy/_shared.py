"""One :class:`~loader.Loader` per Scrapy crawler, built from the crawler's settings.

The download handler and the requisites middleware share it, so a host sees one
per-host limit: ``Limits(per_host=CONCURRENT_REQUESTS_PER_DOMAIN,
total=CONCURRENT_REQUESTS)`` bounds every request the loader makes for the crawl,
pages (when ``http``/``https`` are mapped to :class:`LoaderDownloadHandler`) and
their requisites alike.
"""

from __future__ import annotations

import weakref
from typing import Any

from loader import Limits, Loader, Retries, Timeouts

__all__ = ["REACTOR", "ReactorError", "loader_options", "require_asyncio", "shared_loader"]

#: The reactor the loader needs: its asyncio code runs on Scrapy's asyncio loop.
REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


class ReactorError(RuntimeError):
    """Scrapy runs a non-asyncio Twisted reactor: the loader cannot run on it."""


def require_asyncio(component: str) -> None:
    """Raise :class:`ReactorError` naming the setting to change unless asyncio can run.

    Called when a component is built, so a crawl under another reactor stops at
    start-up with this one message instead of failing every item.
    """
    from scrapy.utils.asyncio import is_asyncio_available

    try:
        available = is_asyncio_available()
    except RuntimeError:  # no reactor installed yet (a component built by hand): asyncio will do
        return
    if not available:
        raise ReactorError(
            f"{component} runs the loader on asyncio, and this crawl's Twisted reactor is not "
            f"asyncio's: set TWISTED_REACTOR = {REACTOR!r} (Scrapy's default) in the "
            f"project's settings or the spider's custom_settings"
        )


def loader_options(settings: Any) -> dict[str, Any]:
    """:class:`~loader.Loader` keyword arguments from a crawler's settings.

    ``CONCURRENT_REQUESTS_PER_DOMAIN`` and ``CONCURRENT_REQUESTS`` become the per-host
    and total limits, ``DOWNLOAD_TIMEOUT`` the total deadline, ``DOWNLOAD_MAXSIZE`` the
    body cap, ``RETRY_TIMES`` (when ``RETRY_ENABLED``) the requisites' retries,
    ``USER_AGENT`` the requisites' User-Agent.  ``LOADER_OPTIONS`` (a dict) adds or
    overrides any keyword.
    """
    maxsize = settings.getint("DOWNLOAD_MAXSIZE", 0)
    attempts = 1 + settings.getint("RETRY_TIMES", 2) if settings.getbool("RETRY_ENABLED", True) else 1
    options: dict[str, Any] = {
        "limits": Limits(
            per_host=max(1, settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 8)),
            total=max(1, settings.getint("CONCURRENT_REQUESTS", 16)),
            max_body=maxsize or None,
        ),
        "timeouts": Timeouts(total=settings.getfloat("DOWNLOAD_TIMEOUT", 180.0) or None),
        "retries": Retries(attempts=max(1, attempts)),
        "user_agent": settings.get("USER_AGENT") or None,
    }
    options.update(settings.getdict("LOADER_OPTIONS"))
    return options


class SharedLoader:
    """A crawler's loader: entered on first use (on the crawl's asyncio loop), closed when
    the engine stops."""

    def __init__(self, crawler: Any) -> None:
        self._options = loader_options(crawler.settings)
        self._loader: Loader | None = None
        #: Whether a component refused this crawl's reactor already (said once).
        self.refused = False
        from scrapy import signals

        crawler.signals.connect(self.aclose, signal=signals.engine_stopped)

    async def get(self) -> Loader:
        loader = self._loader
        if loader is None:
            # No await between the check and the assignment: one loader, however many callers.
            loader = self._loader = Loader(**self._options)
            await loader.__aenter__()
        return loader

    async def aclose(self) -> None:
        loader, self._loader = self._loader, None
        if loader is not None:
            await loader.aclose()


_SHARED: weakref.WeakKeyDictionary[Any, SharedLoader] = weakref.WeakKeyDictionary()


def shared_loader(crawler: Any) -> SharedLoader:
    """The crawler's :class:`SharedLoader` (made on first call)."""
    shared = _SHARED.get(crawler)
    if shared is None:
        shared = _SHARED[crawler] = SharedLoader(crawler)
    return shared
