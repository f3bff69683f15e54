"""``RequisitesMiddleware``: each HTML page Scrapy downloaded gets its requisites, stored as
``FilesPipeline`` stores files.

A spider middleware rather than an item pipeline: a pipeline sees only items, so it
would have to fetch the page a second time to read it; a spider middleware's
``process_spider_output`` sees the response Scrapy already downloaded (body, headers,
status) together with the items its callback made from it.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from itemadapter import ItemAdapter
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse, Response

from loader import Loader, LoaderError, PolicyDenied, Result, hookimpl
from loader.discovery import check_kinds

from ._shared import require_asyncio, shared_loader

__all__ = ["RequisitesMiddleware", "files_path"]

logger = logging.getLogger(__name__)

_HANDLER = "loader_scrapy.LoaderDownloadHandler"


def files_path(url: str) -> str:
    """Where ``FilesPipeline`` stores ``url`` under ``FILES_STORE``: ``full/<sha1 of the
    URL><extension>`` (the extension from the URL's path, else guessed from its type)."""
    guid = hashlib.sha1(url.encode("utf-8")).hexdigest()  # noqa: S324 - a name, as Scrapy's
    ext = PurePosixPath(urlsplit(url).path).suffix
    if ext not in mimetypes.types_map:
        ext = PurePosixPath(url).suffix
    if ext not in mimetypes.types_map:
        ext = ""
        guessed = mimetypes.guess_type(url)[0]
        if guessed:
            ext = mimetypes.guess_extension(guessed) or ""
    return f"full/{guid}{ext}"


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - FilesPipeline's checksum
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


#: The reason :class:`_Stored` gives for a requisite it keeps the loader from fetching.
_UPTODATE = "already in FILES_STORE"


class _Stored:
    """A loader plugin: a requisite whose file is in the store already is not fetched again
    (``FilesPipeline``'s "uptodate"; it also covers a loader's memory that a file too big
    to keep, moved into the store, has gone from)."""

    def __init__(self, store: Path) -> None:
        self.store = store

    @hookimpl
    def loader_allow(self, url: str, purpose: str) -> str | None:
        if purpose == "requisite" and (self.store / files_path(url)).is_file():
            return _UPTODATE
        return None


class RequisitesMiddleware:
    """A spider middleware fetching each HTML response's requisites through the crawler's
    loader (``Loader.fetch_requisites``: the page is not fetched again).

    Requisites are stored as ``FilesPipeline`` stores files: ``FILES_STORE/full/<sha1 of
    the URL><ext>``, each written under a temporary name and renamed when whole; one
    stored already is not fetched again.  Every item the page's callback yields gets
    ``loader_requisites`` (``LOADER_REQUISITES_FIELD``): one dict a requisite, with
    ``url``, ``path``, ``checksum`` (MD5) and ``status`` (``"downloaded"`` or
    ``"uptodate"``) as ``FilesPipeline``'s ``files`` has them, plus ``kind``, ``ok`` and
    ``http_status``; a failed one has ``ok`` false and ``error`` instead; and
    ``loader_links`` (``LOADER_LINKS_FIELD``): the page's outgoing links.  A page whose
    callback yields no item still has its requisites stored.  ``LOADER_REQUISITES_KINDS``
    (a list) chooses the kinds (default: the loader's, images and sounds).

    The loader is the crawler's one (see :class:`LoaderDownloadHandler`): with
    ``http``/``https`` mapped to that handler, pages and requisites share the per-host
    limit ``CONCURRENT_REQUESTS_PER_DOMAIN``.
    """

    def __init__(self, crawler: Any) -> None:
        require_asyncio(type(self).__name__)
        settings = crawler.settings
        store = settings.get("FILES_STORE")
        if not store:
            raise NotConfigured("RequisitesMiddleware needs FILES_STORE (a local folder) to store requisites in")
        store = str(store)
        if store.startswith("file://"):
            store = store[len("file://"):]
        elif "://" in store:
            raise NotConfigured(f"RequisitesMiddleware stores to a local FILES_STORE only, not {store!r}")
        self.store = Path(store)
        self.field = settings.get("LOADER_REQUISITES_FIELD", "loader_requisites")
        self.links_field = settings.get("LOADER_LINKS_FIELD", "loader_links")
        kinds = settings.getlist("LOADER_REQUISITES_KINDS")
        if kinds:
            try:
                check_kinds(kinds)  # at start-up, not once a page
            except ValueError as exc:
                raise ValueError(f"LOADER_REQUISITES_KINDS: {exc}") from exc
        self.kinds: list[str] | None = kinds or None
        self._shared = shared_loader(crawler)
        self._warned: set[str] = set()
        self._registered: Loader | None = None  # the loader _Stored is registered with
        handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
        if any(_HANDLER not in str(handlers.get(scheme)) for scheme in ("http", "https")):
            logger.warning(
                "RequisitesMiddleware: pages are downloaded by Scrapy's own HTTP handler, requisites "
                "by the loader: a host may see CONCURRENT_REQUESTS_PER_DOMAIN requests from each. "
                "Map 'http' and 'https' to %r in DOWNLOAD_HANDLERS for one per-host limit.", _HANDLER,
            )

    @classmethod
    def from_crawler(cls, crawler: Any) -> RequisitesMiddleware:
        return cls(crawler)

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Any = None
    ) -> AsyncIterator[Any]:
        if not isinstance(response, HtmlResponse):
            async for out in result:
                yield out
            return
        page: tuple[list[dict[str, Any]], list[str]] | None = None
        async for out in result:
            if ItemAdapter.is_item(out):
                if page is None:
                    page = await self._page(response)
                self._attach(out, *page)
            yield out
        if page is None:
            await self._page(response)

    async def _page(self, response: Response) -> tuple[list[dict[str, Any]], list[str]]:
        """The requisites of one page, or none when they could not be stored (said once a page:
        the items still go on)."""
        try:
            return await self._fetch(response)
        except (OSError, LoaderError) as exc:
            logger.error("%s: requisites not stored: %s", response.url, exc)
            return [], []

    async def _fetch(self, response: Response) -> tuple[list[dict[str, Any]], list[str]]:
        """Fetch, store and describe the requisites of one page Scrapy downloaded."""
        loader = await self._shared.get()
        if self._registered is not loader:
            self._registered = loader
            loader.register(_Stored(self.store), name="loader_scrapy_store")
        self.store.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".loader-", dir=self.store))  # one file system: renames
        try:
            page = await loader.fetch_requisites(
                response.url, response.body,
                content_type=_text(response.headers.get("Content-Type")),
                headers={_text(k): _text(b", ".join(v)) for k, v in response.headers.items()},
                status=response.status, output=staging, manifest=False, kinds=self.kinds,
            )
            files = [self._store(r) for r in page.resources]
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for message in page.warnings:
            logger.warning("%s: %s", response.url, message)
        return files, [link.url for link in page.links]

    def _store(self, result: Result) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "url": result.url, "kind": result.kind, "ok": result.ok, "http_status": result.status,
        }
        rel = files_path(result.url)
        final = self.store / rel
        error = result.error
        if isinstance(error, PolicyDenied) and _UPTODATE in str(error) and final.is_file():
            entry.update(ok=True, path=rel, checksum=_md5(final), status="uptodate")
            return entry
        if not result.ok:
            entry["error"] = str(error)
            return entry
        final.parent.mkdir(parents=True, exist_ok=True)
        if result.path is not None:
            entry["checksum"] = _md5(result.path)
            os.replace(result.path, final)  # whole, under its final name, at once
        else:  # kept in memory (a data: URL): written beside, then renamed
            body = result.content or b""
            entry["checksum"] = hashlib.md5(body).hexdigest()  # noqa: S324
            with tempfile.NamedTemporaryFile(dir=final.parent, prefix=".part-", delete=False) as f:
                f.write(body)
            os.replace(f.name, final)
        entry.update(path=rel, status="downloaded")
        return entry

    def _attach(self, item: Any, files: list[dict[str, Any]], links: list[str]) -> None:
        adapter = ItemAdapter(item)
        for field, value in ((self.field, files), (self.links_field, links)):
            try:
                adapter[field] = value
            except KeyError:  # a scrapy.Item without that field
                kind = type(item).__name__
                if kind not in self._warned:
                    self._warned.add(kind)
                    logger.error(
                        "RequisitesMiddleware: %s has no field %r: declare %s = scrapy.Field()",
                        kind, field, field,
                    )


def _text(value: bytes | str | Iterable[Any] | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)
