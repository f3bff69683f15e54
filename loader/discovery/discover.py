"""Parsing fetched documents and finding the resources they use.

Pure functions, no I/O: the page fetcher calls :func:`parse_document` on the
bytes it received, then :func:`discover` with the kinds the user asked for and
the extractors plugins added (``loader_extract``), fetches ``found``, and
fetches ``stylesheets`` (always: images inside them count as images) to run
:func:`discover` on each of them in turn.
"""

from __future__ import annotations

import importlib
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._types import DEFAULT_KINDS, KINDS, LINK_KINDS, MAX_LINKS, Document, Found
from .browser import DEFAULT_BROWSER, Browser
from .encoding import decode_css, decode_html, html_codec
from .html import Slot, base_href, extension_kind, in_pieces, iter_slots, parse_html
from .urls import Resolver

if TYPE_CHECKING:
    from .css import CSSRef
    from .srcset import Candidate

__all__ = [
    "MAX_ALSO",
    "MAX_DROPPED",
    "Discovery",
    "Extractor",
    "discover",
    "document_type",
    "parse_document",
]

#: A function that finds more resources in a document (what ``loader_extract`` hooks provide).
Extractor = Callable[[Document], "Iterable[Found] | None"]

_CSS_TYPES = frozenset({"text/css"})
_HTML_TYPES = frozenset(
    {"text/html", "application/xhtml+xml", "image/svg+xml", "application/xml", "text/xml"}
)


@dataclass(frozen=True, slots=True)
class Discovery:
    """What :func:`discover` found in one document.

    ``found``: resources of the requested kinds, in document order,
    deduplicated by URL (the first provenance is the ``Found``'s own, the
    others are in its ``also``), at most ``max_found`` of them.
    ``stylesheets``: the document's linked stylesheets and ``@import``\\ s
    (kind ``"style"``), whatever kinds were requested, so that the caller can
    fetch them and discover the images inside; when ``"style"`` is requested
    they are in ``found`` too.  ``skipped``: how many distinct resources the
    ``max_found`` cap left out (of both lists).  A ``Found``'s ``also`` keeps
    at most :data:`MAX_ALSO` provenances.  ``base_url``: what relative
    references resolved against.  ``errors``: exceptions raised by
    extractors (the built-in results are kept; the caller reports them as
    plugin errors).  ``dropped``: URLs of the requested kinds the browser
    model left out, each with its ``why`` (at most :data:`MAX_DROPPED`, the
    first ones; a URL found elsewhere in the document is not in it).
    ``links``: the document's outgoing links (see :data:`~._types.LINK_KINDS`),
    whatever kinds were requested and whatever the browser model decided
    (a link inside an inert ``<noscript>`` is still a link), deduplicated by URL
    like ``found``, at most :data:`~._types.MAX_LINKS` (``links_skipped``
    counts the distinct ones left out); an extractor's item whose kind is not a
    requisite kind is a link too, its kind kept.
    """

    found: list[Found]
    stylesheets: list[Found]
    skipped: int
    base_url: str
    errors: list[Exception] = field(default_factory=list)
    dropped: list[Found] = field(default_factory=list)
    links: list[Found] = field(default_factory=list)
    links_skipped: int = 0


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def document_type(url: str, content_type: str | None) -> str:
    """``"css"`` for stylesheets (by ``Content-Type``, else a ``.css`` path), else ``"html"``."""
    media = _media_type(content_type)
    if media in _CSS_TYPES:
        return "css"
    if media is None or media not in _HTML_TYPES:
        path = url.split("#", 1)[0].split("?", 1)[0].lower()
        if path.endswith(".css") and (media is None or media == "text/plain"):
            return "css"
    return "html"


def parse_document(content: bytes, url: str, content_type: str | None = None) -> Document:
    """Decode and parse a fetched HTML page or stylesheet into a :class:`Document`.

    HTML is decoded by BOM, ``Content-Type`` charset, ``<meta>`` declaration,
    else UTF-8 (see :mod:`~loader.discovery.encoding`), parsed with lexbor
    (``tree``), and ``base_url`` honours the first ``<base href>``.  CSS
    (``text/css``, or a ``.css`` URL without a type) gets ``tree=None``.
    The decoded text is kept in ``extra["text"]``, the codec in
    ``extra["encoding"]``.  An HTML document too big for one tree
    (:func:`~loader.discovery.html.in_pieces`) is neither decoded nor parsed
    here: ``tree`` is ``None``, ``extra["pieces"]`` is true, and
    :func:`discover` reads it a piece at a time (see :mod:`.pieces`).
    Never raises for any content.
    """
    kind = document_type(url, content_type)
    if kind == "css":
        text, codec = decode_css(content, content_type)
        tree, base_url = None, url
        extra: dict[str, Any] = {"text": text, "encoding": codec}
    else:
        if in_pieces(content):
            # Too big for one tree (see .pieces): read a piece at a time, when discovered.
            from .pieces import first_base_href

            codec = html_codec(content, content_type)[0]
            tree, extra = None, {"encoding": codec, "pieces": True}
            href = first_base_href(content, content_type)
        else:
            text, codec = decode_html(content, content_type)
            tree, extra = parse_html(text), {"text": text, "encoding": codec}
            href = base_href(tree)
        base_url = url
        if href is not None:
            resolved = Resolver(url)(href)
            # A base that is not a place documents live (data:, javascript:) is ignored.
            if resolved is not None and not resolved.lower().startswith("data:"):
                base_url = resolved
    return Document(
        url=url,
        type=kind,
        content=content,
        base_url=base_url,
        content_type=content_type,
        tree=tree,
        extra=extra,
    )


#: Most provenances kept in a ``Found``'s ``also`` (a million identical
#: ``<img>`` need not be listed a million times).
MAX_ALSO = 16


class _Overflow:
    """Counts the distinct URLs the caps left out, in about 8 bytes per occurrence.

    A set of a million URLs (or of their hashes, each an int object) would cost
    more than the page; hashes go into flat arrays, split by their low bits so
    that only one part at a time is made a set when they are counted.
    """

    __slots__ = ("limits", "parts")
    _SPLIT = 16

    def __init__(self) -> None:
        self.parts = [array("q") for _ in range(self._SPLIT)]
        self.limits = [1 << 18] * self._SPLIT

    def add(self, url: str) -> None:
        h = hash(url)
        i = h % self._SPLIT
        part = self.parts[i]
        part.append(h)
        if len(part) >= self.limits[i]:
            # Repeats of the same few URLs: keep the part as small as its distinct hashes.
            part = self.parts[i] = array("q", set(part))
            if len(part) > self.limits[i] // 2:
                self.limits[i] *= 2

    def count(self) -> int:
        return sum(len(set(part)) for part in self.parts)


class _Collector:
    """Deduplicates by URL, keeps the first provenance (and a few more), enforces the cap."""

    __slots__ = ("cap", "entries", "overflow")

    def __init__(self, cap: int | None, overflow: _Overflow) -> None:
        self.cap = cap
        # url -> [kind, element, attribute, source, also (list or None), why]
        self.entries: dict[str, list[Any]] = {}
        self.overflow = overflow

    def add(self, url: str, kind: str, element: str, attribute: str, source: str | None,
            why: str = "") -> None:
        entry = self.entries.get(url)
        if entry is not None:
            also = entry[4]
            if also is None:
                entry[4] = [(element, attribute, source)]
            elif len(also) < MAX_ALSO:
                also.append((element, attribute, source))
        elif self.cap is not None and len(self.entries) >= self.cap:
            self.overflow.add(url)
        else:
            self.entries[url] = [kind, element, attribute, source, None, why]

    def results(self) -> list[Found]:
        return [
            Found(url, kind, element, attribute, source, tuple(also) if also else (), why)
            for url, (kind, element, attribute, source, also, why) in self.entries.items()
        ]


#: Most left-out items a :class:`Discovery` keeps for ``--explain``.
MAX_DROPPED = 1000
_FLAGS = re.compile(r"<(noscript|picture)\b", re.IGNORECASE)
# How much of a page read in pieces is searched for <noscript> in <head>.
_HEAD_BYTES = 1 << 20
# Codecs whose bytes can be cut anywhere and decoded with "replace" (pieces re-encode the others).
_ASCII_SAFE = frozenset({"utf-8", "utf8", "ascii", "latin-1", "iso-8859-1", "windows-1252", "cp1252"})
_FLAGS_BYTES = re.compile(rb"<(noscript|picture)\b", re.IGNORECASE)


# (raw url, kind, element, attribute); kind "style" = a stylesheet.
_Ref = tuple[str, str, str, str]


# The CSS scanner and the srcset parser (their regexes and dataclasses) load on
# first use: most pages have no style or srcset for them, and a page's requisites
# wait on its discovery.  The first call binds the real function in its place.


def _on_first_use(module: str, name: str) -> Callable[[str], Any]:
    """A stand-in for ``module.name`` bound to the global ``_name``: imports, rebinds, calls."""

    def load(text: str) -> Any:
        real = getattr(importlib.import_module(module, __package__), name)
        globals()["_" + name] = real
        return real(text)

    return load


_iter_css_urls: Callable[[str], Iterator[CSSRef]] = _on_first_use(".css", "iter_css_urls")
_parse_srcset: Callable[[str], list[Candidate]] = _on_first_use(".srcset", "parse_srcset")


def _css_refs(text: str, element: str, attribute: str | None) -> Iterator[_Ref]:
    for ref in _iter_css_urls(text):
        kind = "style" if ref.kind == "import" else ref.kind
        yield ref.url, kind, element, attribute or ref.via


def _slot_refs(slot: Slot) -> Iterator[_Ref]:
    """The references one slot of an HTML document holds."""
    syntax = slot.syntax
    if syntax == "url":
        yield slot.value, slot.kind, slot.element, slot.attribute
    elif syntax == "srcset":
        for candidate in _parse_srcset(slot.value):
            yield candidate.url, slot.kind, slot.element, slot.attribute
    elif syntax == "css":
        # A style attribute is reported as element[style], a <style> block
        # as style[url()] / style[@import].
        yield from _css_refs(slot.value, slot.element, slot.attribute or None)
    elif syntax == "css-or-url":
        if "url(" in slot.value.lower():
            for url, _kind, element, attribute in _css_refs(
                slot.value, slot.element, slot.attribute
            ):
                yield url, slot.kind, element, attribute
        else:
            yield slot.value, slot.kind, slot.element, slot.attribute
    elif syntax == "bgset":
        for part in slot.value.split("|"):
            for candidate in _parse_srcset(part):
                yield candidate.url, slot.kind, slot.element, slot.attribute


def _document_text(document: Document) -> str:
    text = document.extra.get("text")
    if isinstance(text, str):
        return text
    decode = decode_css if document.type == "css" else decode_html
    return decode(document.content, document.content_type)[0]


def discover(
    document: Document,
    *,
    kinds: frozenset[str] = DEFAULT_KINDS,
    extractors: Sequence[Extractor] = (),
    max_found: int | None = None,
    browser: Browser = DEFAULT_BROWSER,
    page: Document | None = None,
) -> Discovery:
    """Find the resources ``document`` uses.

    Built-in extraction covers HTML (every construct listed in
    :mod:`~loader.discovery.html`) and CSS (``url()``, ``image-set()``,
    ``@font-face`` fonts, ``@import``); other document types (Gopher menus,
    FTP listings) rely on ``extractors``, which run after the built-in ones.
    Their URLs may be relative (resolved against ``document.base_url``);
    items of unknown kinds are ignored; an exception from one extractor is
    recorded in ``errors`` and does not lose what the others found.
    ``max_found`` caps each of ``found`` and ``stylesheets``; what it leaves
    out is counted in ``skipped``.  Memory follows ``max_found``, not the
    document: a huge HTML document is walked a piece at a time, and the
    URLs left out are counted, not kept.  Never raises for any document content.

    ``browser`` is the device whose loads are imitated (see
    :mod:`~loader.discovery.decide`: one ``srcset`` candidate, inert
    ``<noscript>``, CSS rules that could apply …); what it leaves out is in
    ``dropped``.  A stylesheet's selectors are matched against ``page`` (the
    HTML document that linked it) when given; a page read in pieces, or a
    stylesheet without its page, keeps every rule that ``@media`` allows.
    """
    source = document.url
    base_url = document.base_url or document.url
    resolve = Resolver(base_url, document_scheme=_scheme(document.url))
    # One count for both lists: a stylesheet left out of both is one resource.
    overflow = _Overflow()
    found = _Collector(max_found, overflow)
    stylesheets = _Collector(max_found, overflow)
    dropped: dict[str, Found] = {}
    link_overflow = _Overflow()
    links = _Collector(MAX_LINKS, link_overflow)

    def add_link(raw: str, kind: str, element: str, attribute: str, item_source: str | None,
                 why: str) -> None:
        url = resolve(raw)
        if url is not None:
            links.add(url, kind, element, attribute, item_source, why)

    want_styles = "style" in kinds
    found_add = found.add
    explain_icons = "image" in kinds

    def accept(raw: str, kind: str, element: str, attribute: str, item_source: str | None,
               why: str = "") -> None:
        url = resolve(raw)
        if url is None:
            return
        if kind == "image?":
            if extension_kind(url) != "image":
                return
            kind = "image"
        if kind == "style":
            stylesheets.add(url, kind, element, attribute, item_source, why)
            if want_styles:
                found_add(url, kind, element, attribute, item_source, why)
        elif kind in kinds:
            found_add(url, kind, element, attribute, item_source, why)
        elif kind == "icon" and explain_icons:
            drop(raw, kind, element, attribute, why)

    def drop(raw: str, kind: str, element: str, attribute: str, why: str) -> None:
        if kind not in kinds and not (kind == "icon" and explain_icons) and kind != "image?":
            return
        if len(dropped) >= MAX_DROPPED:
            return
        url = resolve(raw)
        if url is not None and url not in dropped:
            dropped[url] = Found(url, "image" if kind == "image?" else kind, element, attribute,
                                 source, why=why)

    if document.type == "html":
        if not browser.faithful:
            for slot in _html_slots(document):
                if slot.kind in LINK_KINDS:
                    add_link(slot.value, slot.kind, slot.element, slot.attribute, source,
                             f"link: {slot.element}[{slot.attribute}]")
                    if slot.kind == "link":
                        continue
                if slot.syntax == "url" and slot.kind in kinds and slot.kind != "style":
                    # The common case, inlined: a million <img> must stay fast.
                    url = resolve(slot.value)
                    if url is not None:
                        found_add(url, slot.kind, slot.element, slot.attribute, source,
                                  f"html: {slot.element}[{slot.attribute}]")
                else:
                    for raw, kind, element, attribute in _slot_refs(slot):
                        accept(raw, kind, element, attribute, source, f"html: {element}[{attribute}]")
        else:
            slots = _html_slots(document)  # parses a hand-built Document's tree first
            rules = _rules(document, browser)
            fast = not (rules.has_noscript or rules.has_picture)
            for group in _groups(slots):
                # One slot, nearly always: no generator for any() then.
                if group[0].kind in LINK_KINDS if len(group) == 1 else any(s.kind in LINK_KINDS for s in group):
                    # Links are outside the browser model: whatever it decides, they are links.
                    for s in group:
                        if s.kind in LINK_KINDS:
                            add_link(s.value, s.kind, s.element, s.attribute, source,
                                     f"link: {s.element}[{s.attribute}]")
                    group = [s for s in group if s.kind != "link"]
                    if not group:
                        continue
                slot = group[0]
                if fast and len(group) == 1 and slot.element == "img" and slot.attribute == "src":
                    # The common case, inlined: a million <img> must stay fast.
                    if "image" in kinds:
                        url = resolve(slot.value)
                        if url is not None:
                            found_add(url, "image", "img", "src", source, "html: img[src]")
                    continue
                for item in rules.items(group, _slot_refs, _iter_css_urls):
                    if item.keep:
                        accept(item.raw, item.kind, item.element, item.attribute, source, item.why)
                    else:
                        drop(item.raw, item.kind, item.element, item.attribute, item.why)
    elif document.type == "css":
        text = _document_text(document)
        if not browser.faithful:
            for raw, kind, element, attribute in _css_refs(text, "css", None):
                accept(raw, kind, element, attribute, source, f"css: {attribute}")
        else:
            from .decide import css_items, tree_matcher

            page_tree = page.tree if page is not None else None
            page_text = page.extra.get("text") if page is not None else None
            elements = page_text.count("<") if isinstance(page_text, str) else 0
            matcher = tree_matcher(page_tree, elements) if page_tree is not None else None
            for ref, keep, why in css_items(_iter_css_urls(text), (), browser, matcher, text):
                if ref.kind == "import":
                    accept(ref.url, "style", "css", ref.via, source, why)
                elif keep:
                    accept(ref.url, ref.kind, "css", ref.via, source, why)
                else:
                    drop(ref.url, ref.kind, "css", ref.via, why)

    def extracted(item: Found) -> None:
        why = item.why or "plugin: loader_extract"
        if item.kind in KINDS:
            accept(item.url, item.kind, item.element, item.attribute, item.source or source, why)
        if item.kind in LINK_KINDS or item.kind not in KINDS:
            # Any other kind is kept, as a link: not fetched, its kind as the plugin said.
            add_link(item.url, item.kind, item.element, item.attribute, item.source or source, why)

    errors: list[Exception] = []
    for extractor in extractors:
        try:
            items = extractor(document)
            for item in items or ():
                if isinstance(item, Found):  # anything else is a plugin's mistake, ignored
                    extracted(item)
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is reported, not raised
            errors.append(exc)

    kept = found.entries.keys() | stylesheets.entries.keys()
    return Discovery(
        found=found.results(),
        stylesheets=stylesheets.results(),
        skipped=overflow.count(),
        base_url=base_url,
        errors=errors,
        dropped=[item for url, item in dropped.items() if url not in kept],
        links=links.results(),
        links_skipped=link_overflow.count(),
    )


def _rules(document: Document, browser: Browser) -> Any:
    """The browser model's :class:`~loader.discovery.decide.Rules` for an HTML document."""
    from .decide import Rules, tree_matcher

    text = document.extra.get("text")
    if document.tree is not None and isinstance(text, str):
        return Rules(browser, text, _flags(_FLAGS, text), tree_matcher(document.tree, text.count("<")))
    # Read in pieces: no whole tree to match selectors against; the <head> (where
    # the parser moves a <noscript>'s <img> out) is read from its first bytes.
    flags = _flags(_FLAGS_BYTES, document.content)
    head = None
    if "noscript" in flags:
        codec = document.extra.get("encoding") or "utf-8"
        head = str(document.content[: _HEAD_BYTES], codec, "replace") if codec in _ASCII_SAFE else None
    return Rules(browser, head, flags, None)


def _flags(pattern: re.Pattern[Any], text: Any) -> frozenset[str]:
    """Which of ``noscript``/``picture`` the document's text has (a scan that stops early)."""
    seen: set[str] = set()
    for m in pattern.finditer(text):
        name = m.group(1)
        seen.add(name.decode().lower() if isinstance(name, bytes) else name.lower())
        if len(seen) == 2:
            break
    return frozenset(seen)


def _groups(slots: Iterator[Slot]) -> Iterator[list[Slot]]:
    """The slots of one element together (``iter_slots`` yields them one after another)."""
    group: list[Slot] = []
    node: Any = None
    for slot in slots:
        if group and (slot.node is not node or node is None):
            yield group
            group = []
        group.append(slot)
        node = slot.node
    if group:
        yield group


def _html_slots(document: Document) -> Iterator[Slot]:
    """The document's tree's slots; a huge document's, a piece at a time (see :mod:`.pieces`)."""
    tree = document.tree
    if tree is None:
        # parse_document decided already (extra["pieces"]); only a Document built by
        # hand is measured here.
        pieces = document.extra.get("pieces")
        if pieces is None:
            pieces = not isinstance(document.extra.get("text"), str) and in_pieces(document.content)
        if pieces:
            from .pieces import iter_piece_slots

            return iter_piece_slots(document.content, document.content_type)
        tree = document.tree = parse_html(_document_text(document))
    return iter_slots(tree)


def _scheme(url: str) -> str | None:
    head, sep, _ = url.partition(":")
    return head.lower() if sep else None
