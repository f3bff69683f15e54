"""``LoaderAddon``: the whole integration from one line of settings."""

from __future__ import annotations

from typing import Any

from ._shared import REACTOR, ReactorError

__all__ = ["LoaderAddon"]

#: The schemes the add-on maps to the handler unless ``LOADER_SCHEMES`` names others.
SCHEMES = ("ftp", "ftps", "gopher", "gophers", "http", "https")


class LoaderAddon:
    """A Scrapy add-on (``ADDONS = {"loader_scrapy.LoaderAddon": 0}``).

    It maps ``LOADER_SCHEMES`` (default ``ftp``, ``ftps``, ``gopher``, ``gophers``,
    ``http``, ``https``: with http(s) too, pages and requisites share one per-host limit)
    to :class:`LoaderDownloadHandler`, enables :class:`RequisitesMiddleware` when
    ``FILES_STORE`` is set, and checks ``TWISTED_REACTOR`` before the crawl starts: another
    reactor than asyncio's is one :class:`ReactorError` naming the setting.
    """

    def update_settings(self, settings: Any) -> None:
        reactor = settings.get("TWISTED_REACTOR")
        if reactor and reactor != REACTOR:
            raise ReactorError(
                f"loader_scrapy runs the loader on asyncio: set TWISTED_REACTOR = {REACTOR!r} "
                f"(Scrapy's default), not {reactor!r}"
            )
        schemes = settings.getlist("LOADER_SCHEMES") or list(SCHEMES)
        handlers = settings["DOWNLOAD_HANDLERS"]
        for scheme in schemes:
            handlers[scheme] = "loader_scrapy.LoaderDownloadHandler"
        if settings.get("FILES_STORE"):
            settings["SPIDER_MIDDLEWARES"]["loader_scrapy.RequisitesMiddleware"] = 543
