"""Fetching a page with its requisites (``Loader.fetch_page``).

Data flow::

    page URL ──fetch to memory──▶ Document (html / css / gopher-menu / ftp-listing)
        │                             │ discover(): built-in extractors + loader_extract hooks
        │                             ▼
        │                  found (requested kinds)   stylesheets (always, for discovery)
        │                             │                     │ fetched; their url()/@import
        │                             │                     │ found the same way (depth ≤ 3)
        ▼                             ▼                     ▼
    saved atomically     queued by host (the scheduler's HostQueues: at most
    (rewritten at the    Limits.per_host workers a host, Limits.per_page a page),
    end with --convert-  each request in the loader's global / per-host slots
    links)               ──▶ Result per resource, passed to on_result as it completes
                         ──▶ manifest JSON beside the page

One failed resource is a failed Result in the list; it never sinks the page.
Every resource request carries the page's request id as ``parent_id``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import anyio

from ._errors import LoaderError
from ._models import Result
from ._plugins import call_hook, plugin_error
from ._saving import Directories, ExistsPolicy, PathAllocator, make_directories, write_file
from ._scheduler import HostQueues
from ._urls import redact_url
from .discovery import DEFAULT_KINDS, Document, Found

if TYPE_CHECKING:
    import pluggy

    from ._models import Limits
    from .discovery import Browser

#: How a page asks for one request: ``fetch(url, **options) -> Result`` (the loader's
#: one-request path, bound to the page's call; options as ``Loader.fetch`` plus
#: ``parent_id``, ``purpose``, ``root``, ``checked``, ``document`` and ``given``).
Fetch = Callable[..., Awaitable[Result]]

__all__ = ["PageResult", "fetch_page", "requisite_claim"]

log = logging.getLogger("loader")

#: How deep ``@import`` chains are followed.
MAX_IMPORT_DEPTH = 3
#: Largest document parsed for discovery (bigger ones are saved, not parsed).
MAX_DOCUMENT = 64 << 20

#: Set by a crawl around each page: ``await claim(url)`` before a requisite (or a
#: stylesheet) is fetched; ``False`` (another worker of a shared crawl has it) leaves
#: it out, listed in ``PageResult.elsewhere``.  Unset: every requisite is fetched.
requisite_claim: contextvars.ContextVar[Callable[[str], Awaitable[bool]] | None] = (
    contextvars.ContextVar("requisite_claim", default=None))

_INDEX_BY_TYPE = {"gopher-menu": "index.gophermap", "ftp-listing": "index.listing"}


@dataclass(frozen=True, kw_only=True)
class PageResult:
    """A page and its requisites.

    ``document`` is the page's own result; ``resources`` one result per
    requisite fetched (in completion order); ``found`` everything discovery
    reported (with provenance); ``skipped`` how many were left out by
    ``Limits.per_page``; ``manifest`` where the manifest was written.
    ``dropped``: what the browser model left out, each with its ``why``
    (at most ``MAX_DROPPED``; ``loader fetch --list --explain`` prints them).
    ``links``: the page's outgoing links, collected whatever ``kinds`` say and never
    fetched here (``a``/``area[href]``, ``link rel=next|prev|alternate``, Gopher menu
    items of types 1, 0, h, 7 and FTP directory entries: kind ``link``;
    ``iframe``/``frame[src]``: kind ``frame``; a ``loader_extract`` item of a kind
    that is no requisite kind, with its kind), each with its provenance, at most
    ``discovery.MAX_LINKS`` a page (``links_skipped`` counts the rest).
    ``elsewhere``: requisites not fetched because another worker of a shared crawl
    claimed them (see :data:`requisite_claim`).
    """

    url: str
    document: Result
    resources: tuple[Result, ...] = ()
    found: tuple[Found, ...] = ()
    skipped: int = 0
    path: Path | None = None
    manifest: Path | None = None
    warnings: tuple[str, ...] = ()
    dropped: tuple[Found, ...] = ()
    links: tuple[Found, ...] = ()
    links_skipped: int = 0
    elsewhere: tuple[str, ...] = ()

    @functools.cached_property
    def by_url(self) -> dict[str, Found]:
        """Each found item by the URL its result reports (password redacted)."""
        return _by_url(self.found)

    @property
    def ok(self) -> bool:
        """True when the page and every requisite arrived."""
        return self.document.ok and all(r.ok for r in self.resources)

    @property
    def failed(self) -> list[Result]:
        """The results that failed (the page's own first, if it failed)."""
        return [r for r in (self.document, *self.resources) if not r.ok]


def _by_url(found: Iterable[Found]) -> dict[str, Found]:
    return {redact_url(f.url): f for f in found}


def _shown_source(source: str | None) -> str | None:
    """A provenance's source (a document's URL) as it may be stored: no password."""
    return None if source is None else redact_url(source)


def with_credentials(shown: str, requested: str) -> str:
    """``shown`` (a redacted URL of a result) with the password ``requested`` carried.

    Only where both name the same user, host and port: a redirect to another
    origin loses the credentials, as a browser's would.
    """
    if "@" not in requested or "@" not in shown:
        return shown
    redacted = redact_url(requested)
    if redacted == requested:
        return shown  # no password to restore
    try:
        shown_parts, requested_parts = urlsplit(shown), urlsplit(requested)
    except ValueError:
        return shown
    if shown_parts.netloc != urlsplit(redacted).netloc:
        return shown
    return shown_parts._replace(netloc=requested_parts.netloc).geturl()


def document_type(result: Result) -> str | None:
    """What kind of document a result is, for discovery (``None``: not a page)."""
    if result.document:
        return result.document
    ctype = (result.content_type or "").split(";")[0].strip().lower()
    if ctype in ("text/html", "application/xhtml+xml"):
        return "html"
    if ctype == "text/css":
        return "css"
    if not ctype:
        path = urlsplit(result.final_url).path.lower()
        if path.endswith((".html", ".htm", "/")):
            return "html"
        if path.endswith(".css"):
            return "css"
    return None


class _PageRun:
    """The state of one ``fetch_page`` call."""

    def __init__(
        self,
        fetch: Fetch,
        pm: pluggy.PluginManager,
        limits: Limits,
        url: str,
        *,
        output: Path | None,
        kinds: frozenset[str],
        same_host: bool,
        convert_links: bool,
        exists: ExistsPolicy,
        on_result: Callable[[Result], Awaitable[None] | None] | None,
        list_only: bool,
        resume: bool = False,
        browser: Browser | None = None,
    ) -> None:
        self.fetch = fetch
        self.pm = pm
        self.browser = browser
        self.page_document: Document | None = None  # stylesheets' selectors match against it
        self.dropped: list[Found] = []
        self.links: list[Found] = []
        self.links_skipped = 0
        self.resume = resume
        self.output = output
        self.kinds = kinds
        self.same_host = same_host
        self.exists = exists
        self.on_result = on_result
        self.list_only = list_only
        self.alloc = PathAllocator(output) if output is not None else None
        self.seen: set[str] = set()
        self.checked = Directories()  # directories verified to lie inside the output, fds kept
        self.found: list[Found] = []
        self.results: list[Result] = []
        self.skipped = 0
        self.budget = limits.per_page
        self.warnings: list[str] = []
        self.page_host = (urlsplit(url).hostname or "").lower()
        self.page_id: int | None = None
        self.started = time.time()  # wall clock: the manifest reports when and how long
        self.stylesheets: dict[str, tuple[Result, Document | None]] = {}
        self.queues = HostQueues(limits.per_host, self.requisite)  # requisites waiting, by host
        self.shared_claim = requisite_claim.get()
        self.elsewhere: list[str] = []

    # -- discovery -------------------------------------------------------------------

    def parse(self, result: Result, doc_type: str, requested: str) -> Document:
        """Parse a document kept in memory; ``requested`` is the URL as asked for (with
        any credentials, which the result's redacted URLs lack), so that the document's
        relative references resolve to URLs that carry them too."""
        from .discovery import parse_document

        url = with_credentials(result.final_url, requested)
        content = result.content or b""
        if doc_type in ("html", "css"):
            ctype = result.content_type
            if doc_type == "css" and not (ctype or "").lower().startswith("text/css"):
                ctype = "text/css"  # keeps a served charset; forces CSS when the type was missing
            return parse_document(content, url, ctype)
        return Document(url=url, type=doc_type, content=content, base_url=url,
                        content_type=result.content_type)

    def _hook_extractor(self, document: Document) -> Iterable[Found]:
        # A raising hook surfaces as a PluginError in Discovery.errors (see discover()),
        # whether it raises when called or while its items are read.
        pm = self.pm
        for items in call_hook(pm, "loader_extract", document.url, document=document):
            try:
                yield from items or ()
            except LoaderError:
                raise
            except Exception as exc:
                raise plugin_error(pm, "loader_extract", exc, document.url) from exc

    def discover(self, document: Document) -> tuple[list[Found], list[Found]]:
        from .discovery import DEFAULT_BROWSER, MAX_DROPPED, MAX_LINKS, discover

        found = discover(
            document,
            kinds=self.kinds,
            extractors=[self._hook_extractor],
            max_found=max(self.budget * 2, 16),
            browser=self.browser or DEFAULT_BROWSER,
            page=self.page_document,
        )
        self.dropped.extend(found.dropped[: max(MAX_DROPPED - len(self.dropped), 0)])
        room = max(MAX_LINKS - len(self.links), 0)
        self.links.extend(found.links[:room])
        self.links_skipped += found.links_skipped + max(len(found.links) - room, 0)
        sheets = [f for f in found.stylesheets if self._wanted(f)]
        # A stylesheet asked for as a kind ("style") is also a stylesheet to read: it
        # goes the stylesheet's way (parsed, capped by max_page, saved), never twice.
        sheet_urls = {f.url for f in sheets}
        items = [f for f in found.found if f.url not in sheet_urls and self._wanted(f)]
        self.skipped += found.skipped
        for error in found.errors:
            self.warnings.append(str(error))
            log.warning("%s", error)
        return items, sheets

    def _wanted(self, item: Found) -> bool:
        if self.same_host and not item.url.startswith("data:"):
            if (urlsplit(item.url).hostname or "").lower() != self.page_host:
                return False
        return True

    def claim(self, item: Found) -> bool:
        """Record a found item; False when it was seen already or the page's budget is spent."""
        if item.url in self.seen:
            return False
        self.seen.add(item.url)
        if self.budget <= 0:
            self.skipped += 1
            return False
        self.budget -= 1
        self.found.append(item)
        return True

    # -- fetching ---------------------------------------------------------------------

    def dest(self, url: str, *, index: str = "index.html") -> Path | None:
        return self.alloc.path_for(url, index=index) if self.alloc is not None else None

    async def elsewhere_claimed(self, url: str) -> bool:
        """Whether another worker of a shared crawl fetches ``url`` (noted in ``elsewhere``)."""
        if self.shared_claim is None or await self.shared_claim(url):
            return False
        self.elsewhere.append(url)
        return True

    async def requisite(self, item: Found) -> None:
        if await self.elsewhere_claimed(item.url):
            return
        path = self.dest(item.url)
        result = await self.fetch(
            item.url, to=path, kind=item.kind, parent_id=self.page_id,
            purpose="requisite", root=self.output, exists=self.exists, checked=self.checked,
            resume=self.resume,
        )
        await self._done(result)

    async def stylesheet(self, item: Found, depth: int, tg: Any) -> None:
        """Fetch a stylesheet for its images (and save it when styles were asked for)."""
        if await self.elsewhere_claimed(item.url):
            return  # its images too: the worker that fetches it fetches them
        result = await self.fetch(
            item.url, kind="style", parent_id=self.page_id, purpose="requisite",
            document=True,
        )
        document = None
        if result.ok and result.content is not None:
            document = self.parse(result, "css", item.url)
            items, sheets = self.discover(document)
            self.schedule(items, sheets, depth + 1, tg)
        # Saved whenever there is an output directory, whether or not "style" was asked
        # for: it was downloaded to find its images, and an offline copy needs it.
        save = self.alloc is not None
        if save and result.ok:
            path = self.dest(item.url)
            assert path is not None
            result = self.save_bytes(result, path, exists=self.exists)
        self.stylesheets[item.url] = (result, document)
        if save or not result.ok:
            await self._done(result)

    def save_bytes(self, result: Result, path: Path, content: bytes | None = None, *,
                   exists: ExistsPolicy = "overwrite") -> Result:
        """Save a body kept in memory (or ``content`` instead) atomically; a failure is a failed result."""
        data = result.content if content is None else content
        try:
            stored = write_file(result.url, path, data or b"", root=self.output, checked=self.checked,
                                exists=exists)
        except LoaderError as exc:
            return dataclasses.replace(result, ok=False, error=exc)
        return dataclasses.replace(result, path=stored)

    def schedule(self, items: list[Found], sheets: list[Found], depth: int, tg: Any) -> None:
        for item in items:
            if self.claim(item) and not self.list_only:
                self.queues.add(item.url, item)
        self.queues.start(tg)
        for sheet in sheets:
            if depth > MAX_IMPORT_DEPTH:
                self.warnings.append(f"{sheet.url}: @import nested deeper than {MAX_IMPORT_DEPTH}, not followed")
                continue
            if self.claim(sheet):
                tg.start_soon(self.stylesheet, sheet, depth, tg)

    async def _done(self, result: Result) -> None:
        self.results.append(result)
        if self.on_result is not None:
            outcome = self.on_result(result)
            if outcome is not None:
                await outcome

    # -- offline copies and the manifest --------------------------------------------

    def local_mapping(self, from_path: Path) -> dict[str, str]:
        """URL → reference from ``from_path``: relative for local copies, absolute for the rest."""
        mapping: dict[str, str] = {}
        for result in self.results:
            if not result.ok:
                mapping[result.url] = result.url  # still works online from the offline copy
            elif result.path is not None:
                rel = os.path.relpath(result.path, from_path.parent).replace(os.sep, "/")
                mapping[result.url] = quote(rel, safe="/._-~")
                if result.final_url != result.url:
                    mapping.setdefault(result.final_url, mapping[result.url])
        return mapping

    def convert_links(self, document: Document, page_path: Path) -> None:
        from .discovery import rewrite_css, rewrite_html

        for result, sheet_doc in self.stylesheets.values():
            if result.ok and result.path is not None and sheet_doc is not None:
                text = rewrite_css(sheet_doc.extra.get("text", ""), redact_url(sheet_doc.base_url),
                                   self.local_mapping(result.path))
                self.save_bytes(result, result.path, text.encode("utf-8"))
        # References resolve against the redacted URLs the results carry, so they match
        # the mapping's keys, and no password reaches the offline copy.
        document = dataclasses.replace(document, url=redact_url(document.url),
                                       base_url=redact_url(document.base_url or document.url))
        if document.type == "html":
            body = rewrite_html(document, self.local_mapping(page_path))
        elif document.type == "css":
            body = rewrite_css(document.extra.get("text", ""), document.base_url,
                               self.local_mapping(page_path)).encode("utf-8")
        else:
            return
        write_file(document.url, page_path, body, root=self.output, checked=self.checked)

    @functools.cached_property
    def _output_prefix(self) -> str | None:
        """The output directory's text with a trailing separator (manifest paths drop it)."""
        return None if self.output is None else os.path.join(os.fspath(self.output), "")

    def _relative_to_output(self, path: Path) -> str:
        """``os.path.relpath(path, self.output)``, cheaply for the usual case.

        Every saved path is ``output / "host/..."``, so it starts with the output's own
        text; cutting that prefix off is what relpath (which makes both paths absolute
        and compares them part by part, ~3 µs a call) would return.  Anything else, or a
        remainder relpath would normalise (``.``, ``..``, empty parts), goes to relpath.
        """
        prefix = self._output_prefix
        if prefix is not None:
            text = os.fspath(path)
            if text.startswith(prefix):
                rest = text[len(prefix):]
                parts = rest.split(os.sep)
                if "" not in parts and "." not in parts and ".." not in parts:
                    return rest
        return os.path.relpath(path, self.output)

    def write_manifest(self, page: Result, page_path: Path) -> Path:
        by_url = _by_url(self.found)

        def entry(result: Result) -> dict[str, Any]:
            item = by_url.get(result.url)
            provenance = []
            if item is not None:
                provenance = [{"element": item.element, "attribute": item.attribute,
                               "source": _shown_source(item.source)}]
                provenance += [{"element": e, "attribute": a, "source": _shown_source(s)}
                               for e, a, s in item.also]
            return {
                "url": result.url,
                "final_url": result.final_url,
                "kind": result.kind,
                "found_by": provenance,
                "path": None if result.path is None else self._relative_to_output(result.path),
                "size": result.size,
                "content_type": result.content_type,
                "status": result.status,
                "reason": result.reason,
                "http_version": result.http_version,
                "ok": result.ok,
                "error": None if result.error is None else str(result.error),
                "attempts": result.attempts,
                "elapsed": round(result.elapsed, 6),
                "synchronous": result.completed_synchronously,
            }

        finished = time.time()
        manifest = {
            "page": entry(page),
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "started": round(self.started, 6),
            "duration": round(finished - self.started, 6),
            "kinds": sorted(self.kinds),
            "skipped": self.skipped,
            "warnings": self.warnings,
        }
        # One resource per line: readable, and the C encoder (indent= falls back to
        # the pure-Python one, ~60 ms for a thousand resources).  One encoder for all
        # the lines: json.dumps(..., ensure_ascii=False) builds a new one per call,
        # which costs as much as encoding the line.
        encode = json.JSONEncoder(ensure_ascii=False).encode
        resources = ",\n    ".join(encode(entry(r)) for r in self.results)
        head = json.dumps(manifest, indent=2, ensure_ascii=False)
        text = f'{head[:-2]},\n  "resources": [\n    {resources}\n  ]\n}}\n'
        stored = page.path or page_path  # where the page landed (a clash may have renamed it)
        path = stored.with_name(stored.name + ".manifest.json")
        data = text.encode("utf-8")
        return write_file(page.url, path, data, root=self.output, checked=self.checked)


async def fetch_page(
    fetch: Fetch,
    pm: pluggy.PluginManager,
    limits: Limits,
    url: str,
    *,
    output: Path | None = None,
    kinds: frozenset[str] = DEFAULT_KINDS,
    same_host: bool = False,
    convert_links: bool = False,
    exists: ExistsPolicy = "overwrite",
    on_result: Callable[[Result], Awaitable[None] | None] | None = None,
    list_only: bool = False,
    manifest: bool = True,
    resume: bool = False,
    given: tuple[bytes, dict[str, Any]] | None = None,
    browser: Browser | None = None,
) -> PageResult:
    """The body of :meth:`Loader.fetch_page` (see the module docstring); with ``given`` (the
    page's body and result fields), of :meth:`Loader.fetch_requisites`."""
    if output is not None:
        output = Path(output)
        make_directories(output)
    if resume and exists == "overwrite":
        exists = "skip"  # a file under its final name is complete: only partial ones continue
    run = _PageRun(fetch, pm, limits, url, output=output, kinds=kinds, same_host=same_host,
                   convert_links=convert_links, exists=exists, on_result=on_result,
                   list_only=list_only, resume=resume, browser=browser)
    page = await fetch(url, kind="document", purpose="page", document=True, given=given)
    run.page_id = page.request_id
    if not page.ok:
        return PageResult(url=url, document=page)
    doc_type = document_type(page)
    document: Document | None = None
    parse_cap = limits.max_page or MAX_DOCUMENT
    if doc_type is not None and page.size <= parse_cap:
        document = run.parse(page, doc_type, url)
    elif doc_type is not None:
        from ._display import size_text

        run.warnings.append(
            f"{page.url}: not searched for requisites: {size_text(page.size)} is over the "
            f"parse cap of {size_text(parse_cap)} (--max-page-size)"
        )
    page_path: Path | None = None
    if output is not None and not list_only:
        page_path = run.dest(page.url, index=_INDEX_BY_TYPE.get(doc_type or "", "index.html"))
        assert page_path is not None
        if doc_type == "html" and not page_path.name.lower().endswith((".html", ".htm")):
            page_path = page_path.with_name(page_path.name + ".html")
        page = run.save_bytes(page, page_path, exists=exists)  # --exists applies to the page too
        page_path = page.path or page_path
    if document is not None:
        run.page_document = document if doc_type == "html" else None
        items, sheets = run.discover(document)
        try:
            async with anyio.create_task_group() as tg:
                run.schedule(items, sheets, 1, tg)
        finally:
            run.checked.close()  # the directory fds its requisites shared
    if run.skipped:
        run.warnings.append(f"{run.skipped} resources over the per-page cap of {limits.per_page} were not fetched")
    manifest_path = None
    if page_path is not None and page.ok:
        if convert_links and document is not None:
            run.convert_links(document, page_path)
        if manifest:
            manifest_path = run.write_manifest(page, page_path)
    return PageResult(
        url=url,
        document=page,
        resources=tuple(run.results),
        found=tuple(run.found),
        skipped=run.skipped,
        path=page_path,
        manifest=manifest_path,
        warnings=tuple(run.warnings),
        dropped=tuple(run.dropped),
        links=tuple(run.links),
        links_skipped=run.links_skipped,
        elsewhere=tuple(run.elsewhere),
    )
