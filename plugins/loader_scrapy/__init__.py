"""Scrapy integration (``pip install 'loader-fetch[scrapy]'``): the loader inside a crawl.

``LoaderDownloadHandler``
    a download handler for ``ftp``, ``ftps``, ``gopher``, ``gophers`` (and ``http``/
    ``https`` when mapped): Scrapy fetches through the loader's protocol plugins.
``LoaderAddon``
    a Scrapy add-on enabling both (``ADDONS = {"loader_scrapy.LoaderAddon": 0}``).
``RequisitesMiddleware``
    a spider middleware: each HTML response Scrapy downloaded gets its requisites
    (``Loader.fetch_requisites``), stored in ``FilesPipeline``'s layout and listed on
    the items.

Both share one loader per crawler, made from the crawler's settings, and need Scrapy's
asyncio reactor (``TWISTED_REACTOR = REACTOR``, Scrapy's default): under another one
they stop the crawl at start-up with one error naming that setting.
"""

from __future__ import annotations

from ._addon import LoaderAddon
from ._handler import LoaderDownloadError, LoaderDownloadHandler
from ._middleware import RequisitesMiddleware, files_path
from ._shared import REACTOR, ReactorError, loader_options

__all__ = [
    "REACTOR",
    "LoaderAddon",
    "LoaderDownloadError",
    "LoaderDownloadHandler",
    "ReactorError",
    "RequisitesMiddleware",
    "files_path",
    "loader_options",
]
