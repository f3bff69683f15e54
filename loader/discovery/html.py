"""Where an HTML document names resources: the elements and attributes a browser loads.

:func:`iter_slots` walks a parsed tree once, in document order, and yields a
:class:`Slot` for every attribute (or ``<style>`` text) that holds one or more
URLs, saying what kind of resource they are and how the value is written
(a plain URL, a ``srcset``, CSS …).  Discovery reads the slots; link
rewriting writes them, so both always agree on what a URL is.

Kinds of the constructs (the ``kind`` of the resulting ``Found``):

* ``image``: ``img`` ``src``/``srcset``/``lowsrc``; ``picture > source``;
  ``input type=image``; ``video poster``; SVG ``image``/``feImage``/``use``;
  ``background`` attributes; icon ``link`` elements; CSS ``url()``/``image-set()``.
* ``sound``: ``audio`` and its ``source`` children; ``bgsound``.
* ``video``: ``video`` and its ``source`` children.
* ``style`` (a stylesheet): ``link rel=stylesheet``; CSS ``@import``.
* ``script``: ``script src`` (SVG ``script href``).
* ``frame``: ``iframe``/``frame`` ``src``.
* ``link`` (an outgoing link, never a requisite: discovery puts it in
  ``Discovery.links``): ``a``/``area`` ``href``; ``link rel=next|prev|alternate``.
* ``font``: ``url()`` in ``@font-face``.
* ``meta``: ``meta`` ``og:image``/``twitter:image``/``itemprop=image``;
  ``link rel=image_src``.
* ``embed src`` and ``object data``: from ``type`` (``image/*``, ``audio/*``,
  ``video/*``), else the file extension, else ``frame`` (HTML, PDF, Flash,
  unknown: content for a nested browsing context or a plugin).

``link rel=preload|prefetch`` take their kind from ``as`` (``image``,
``audio`` → sound, ``video``, ``style`` → a stylesheet, ``script``, ``font``).

Lazy loading: on ``img``/``picture > source`` the common URL attributes
(``data-src``, ``data-original``, ``data-lazy-src`` …) and srcset attributes
(``data-srcset``, ``data-lazy-srcset`` …); on ``video``/``audio``/``iframe``/
``script`` their ``data-src``; on any element ``data-bg``/``data-background``
(a URL or CSS ``url()``) and ``data-bgset`` (lazysizes: srcsets separated by
``|``), and ``data-src``/``data-original`` when the URL ends in an image
extension.

Hostile nesting: lexbor checks element scope by walking the stack of open
elements, so 100 000 nested ``<div>`` take quadratic time to parse.  Like
browsers (Chrome caps the tree at 512 levels), :func:`limit_nesting` flattens
what lies deeper than :data:`MAX_DEPTH`: such elements become empty
``<param data-loader-nested="div" …>`` elements that keep their attributes,
so their URLs are still found (reported under the original element name).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from ._types import KIND_BY_EXTENSION

__all__ = [
    "MAX_DEPTH",
    "MAX_TREE_BYTES",
    "MAX_TREE_TAGS",
    "NESTED_ATTRIBUTE",
    "Slot",
    "base_href",
    "embedded_kind",
    "extension_kind",
    "in_pieces",
    "iter_slots",
    "limit_nesting",
    "parse_html",
]

#: Elements nested deeper than this are flattened before parsing.
MAX_DEPTH = 512
#: Attribute naming the original element of a flattened one.
NESTED_ATTRIBUTE = "data-loader-nested"
#: Documents with more tags than this are read in pieces (see :mod:`.pieces`).
MAX_TREE_TAGS = 100_000
#: Documents bigger than this are read in pieces, whatever their tags.
MAX_TREE_BYTES = 8 << 20


def in_pieces(content: bytes) -> bool:
    """Whether a document is too big to parse into one tree (see :mod:`.pieces`)."""
    return len(content) > MAX_TREE_BYTES or content.count(b"<") > MAX_TREE_TAGS

# ---------------------------------------------------------------------------
# Parsing, with the nesting limit


_VOID = frozenset(
    "area base basefont bgsound br col embed frame hr image img input keygen link meta "
    "param source track wbr".split()
)
# Elements whose end tag is commonly omitted: the parser closes them itself
# when a sibling starts, so they do not make the tree deeper.
_SELF_CLOSING_SIBLINGS = frozenset(
    "html head body p li dt dd rb rt rtc rp optgroup option colgroup caption thead tbody "
    "tfoot tr td th a nobr".split()
)
_RAWTEXT = frozenset("script style textarea title xmp iframe noembed noframes".split())


@functools.cache
def _nesting_regexes() -> tuple[re.Pattern[str], dict[str, re.Pattern[str]], re.Pattern[str]]:
    """The tag scanner, the raw-text end tags and the safe-name test of :func:`limit_nesting`.

    Compiled on first use: only documents with more than ``MAX_DEPTH`` tags
    need them, and this module loads before every fetch's first request.
    """
    # Void start tags (the bulk of a hostile million-<img> page) do not even match.
    tag = re.compile(
        r"<(?:(!--)|(/?)(?!(?i:img|input|source|meta|link|br|area|embed|wbr|hr|col|param|track)[\s/>])"
        r"([A-Za-z][^\s/>\x00]*)|[!?])"
    )
    rawtext_end = {name: re.compile(rf"</{name}", re.IGNORECASE) for name in _RAWTEXT}
    safe_name = re.compile(r"[A-Za-z][A-Za-z0-9\-]*")
    return tag, rawtext_end, safe_name


def limit_nesting(text: str, max_depth: int = MAX_DEPTH) -> str:
    """Flatten elements nested deeper than ``max_depth`` (see the module docstring).

    A cheap approximation of the tree builder's stack, on the source text:
    start tags of elements that are neither void nor closed by their
    siblings count one level, their end tags one less.  Documents that stay
    within the limit are returned unchanged (the common case costs one
    ``str.count`` or a regex scan over the tags).
    """
    if text.count("<") <= max_depth:
        return text
    tag, rawtext_end, safe_name = _nesting_regexes()
    out: list[str] = []
    last = 0
    depth = 0
    foreign = 0  # inside <svg>/<math>, where "/>" really closes an element
    pos = 0
    n = len(text)
    search = tag.search
    while True:
        m = search(text, pos)
        if m is None:
            break
        if m.group(1):  # <!-- comment -->
            end = text.find("-->", m.end())
            pos = n if end < 0 else end + 3
            continue
        name = m.group(3)
        close = text.find(">", m.end())
        tag_end = n if close < 0 else close + 1
        pos = tag_end
        if name is None:  # <!doctype>, <?bogus comment>
            continue
        lname = name.lower()
        if m.group(2):  # end tag
            if lname in _VOID or lname in _SELF_CLOSING_SIBLINGS or lname in _RAWTEXT:
                continue
            if depth > max_depth:
                out.append(text[last : m.start()])
                last = tag_end
            elif lname in ("svg", "math") and foreign:
                foreign -= 1
            if depth:
                depth -= 1
            continue
        if lname in _RAWTEXT:
            end_match = rawtext_end[lname].search(text, tag_end)
            if end_match is None:
                break
            pos = end_match.start()
            continue
        if lname == "plaintext":
            break
        if lname in _VOID or lname in _SELF_CLOSING_SIBLINGS or close < 0:
            continue
        if foreign and text[close - 1] == "/":
            continue
        depth += 1
        if depth <= max_depth:
            if lname in ("svg", "math"):
                foreign += 1
            continue
        original = lname if safe_name.fullmatch(lname) else "x"
        out.append(text[last : m.start()])
        out.append(f'<param {NESTED_ATTRIBUTE}="{original}"{text[m.end() : close]} />')
        last = tag_end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def parse_html(text: str) -> LexborHTMLParser:
    """Parse ``text`` with lexbor (nesting limited); never raises for any text."""
    try:
        return LexborHTMLParser(limit_nesting(text))
    except (SelectolaxError, ValueError, MemoryError):
        return LexborHTMLParser("")


def base_href(tree: LexborHTMLParser) -> str | None:
    """The ``href`` of the document's first ``<base href>``, as written."""
    node = tree.css_first("base[href]")
    return node.attributes.get("href") if node is not None else None


# ---------------------------------------------------------------------------
# Kinds


_TYPE_PREFIXES = (("image/", "image"), ("audio/", "sound"), ("video/", "video"))
_MEDIA_KINDS = frozenset({"image", "sound", "video"})
_EXT = re.compile(r"\.([A-Za-z0-9]{1,5})(?:[?#]|$)")


def extension_kind(url: str) -> str | None:
    """``"image"``, ``"sound"`` or ``"video"`` from the URL's file extension, else ``None``."""
    if url[:5].lower() == "data:":
        mime = url[5:].split(",", 1)[0].split(";", 1)[0].strip().lower()
        return next((kind for prefix, kind in _TYPE_PREFIXES if mime.startswith(prefix)), None)
    m = _EXT.search(url.split("?", 1)[0].split("#", 1)[0][-12:] or "")
    if not m:
        return None
    kind = KIND_BY_EXTENSION.get(m.group(1).lower())
    return kind if kind in _MEDIA_KINDS else None


def embedded_kind(mime: str | None, url: str) -> str:
    """Kind of an ``embed``/``object`` resource: from its ``type``, else its extension.

    ``image/*`` → image, ``audio/*`` → sound, ``video/*`` → video; anything
    else (HTML, PDF, Flash, unknown) → ``frame``: embedded content a browser
    would hand to a nested browsing context or a plugin, fetched only when
    frames are asked for.
    """
    if mime:
        mime = mime.strip().lower()
        for prefix, kind in _TYPE_PREFIXES:
            if mime.startswith(prefix):
                return kind
        return "frame"
    return extension_kind(url) or "frame"


# ---------------------------------------------------------------------------
# Slots


class Slot(NamedTuple):
    """One place in the tree that holds URLs.

    ``syntax`` says how ``value`` is written: ``"url"``; ``"srcset"``;
    ``"css"`` (a ``style`` attribute or, with ``attribute == ""``, the text
    of a ``<style>`` element); ``"css-or-url"`` (lazy background attributes);
    ``"bgset"`` (srcsets separated by ``|``).  ``kind`` is the kind of the
    URLs; ``"image?"`` means an image only if the URL's extension says so;
    for CSS it is ``"css"`` (each ``url()`` says its own kind).
    """

    node: Any
    element: str
    attribute: str
    kind: str
    syntax: str
    value: str


_IMG_LAZY_URL = (
    "data-src",
    "data-lazy-src",
    "data-original",
    "data-lazy",
    "data-original-src",
    "data-echo",
    "data-hi-res-src",
    "data-fallback-src",
)
_IMG_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset", "data-original-srcset", "data-original-set")
_BG_LAZY = (
    "data-bg",
    "data-background",
    "data-background-image",
    "data-bg-src",
    "data-bg-image",
    "data-bg-url",
)
# data-src on other elements is an image only if it looks like one.
_GENERIC_LAZY = ("data-src", "data-original", "data-lazy-src")

_ICON_RELS = frozenset(
    {
        "icon",
        "apple-touch-icon",
        "apple-touch-icon-precomposed",
        "mask-icon",
        "fluid-icon",
        "apple-touch-startup-image",
    }
)
_PRELOAD_AS = {
    "image": "image",
    "audio": "sound",
    "video": "video",
    "style": "style",
    "script": "script",
    "font": "font",
}
_META_IMAGE_NAMES = frozenset(
    {
        "og:image",
        "og:image:url",
        "og:image:secure_url",
        "twitter:image",
        "twitter:image:src",
        "msapplication-tileimage",
        "thumbnail",
    }
)
_HREFS = ("href", "xlink:href")
#: ``<link rel>`` values that name another document to visit (outgoing links).
_LINK_RELS = frozenset({"next", "prev", "previous", "alternate"})


_Handler = Callable[[Any, str, dict[str, Any], list[Slot]], None]


def _url_slots(
    node: Any,
    tag: str,
    attrs: dict[str, Any],
    names: tuple[str, ...],
    kind: str,
    out: list[Slot],
    syntax: str = "url",
) -> None:
    for name in names:
        value = attrs.get(name)
        if value:
            out.append(Slot(node, tag, name, kind, syntax, value))


def _img(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
    src = attrs.get("src")
    if src:
        out.append(Slot(node, tag, "src", "image", "url", src))
    srcset = attrs.get("srcset")
    if srcset:
        out.append(Slot(node, tag, "srcset", "image", "srcset", srcset))
    if len(attrs) > ("src" in attrs) + ("srcset" in attrs):
        _url_slots(node, tag, attrs, ("lowsrc", *_IMG_LAZY_URL), "image", out)
        _url_slots(node, tag, attrs, _IMG_LAZY_SRCSET, "image", out, "srcset")


def _source(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
    parent = node.parent
    parent_tag = parent.tag if parent is not None else None
    if parent_tag == "param":
        parent_tag = parent.attributes.get(NESTED_ATTRIBUTE)
    if parent_tag == "picture":
        _url_slots(node, tag, attrs, ("srcset",), "image", out, "srcset")
        _url_slots(node, tag, attrs, ("src", *_IMG_LAZY_URL), "image", out)
        _url_slots(node, tag, attrs, _IMG_LAZY_SRCSET, "image", out, "srcset")
    elif parent_tag == "video":
        _url_slots(node, tag, attrs, ("src", "data-src"), "video", out)
    elif parent_tag == "audio":
        _url_slots(node, tag, attrs, ("src", "data-src"), "sound", out)


def _input(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
    if (attrs.get("type") or "").strip().lower() == "image":
        _url_slots(node, tag, attrs, ("src", "data-src"), "image", out)


def _link(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
    rels = set((attrs.get("rel") or "").lower().split())
    href = attrs.get("href")
    if "stylesheet" in rels:
        if href:
            out.append(Slot(node, tag, "href", "style", "url", href))
    elif rels & _ICON_RELS:
        if href:
            out.append(Slot(node, tag, "href", "image", "url", href))
    elif rels & {"preload", "prefetch", "modulepreload"}:
        kind: str | None
        if "modulepreload" in rels:
            kind = "script"
        else:
            kind = _PRELOAD_AS.get((attrs.get("as") or "").strip().lower())
        if kind is not None:
            if href:
                out.append(Slot(node, tag, "href", kind, "url", href))
            if kind == "image":
                _url_slots(node, tag, attrs, ("imagesrcset",), "image", out, "srcset")
    elif ("image_src" in rels or "image" in (attrs.get("itemprop") or "").split()) and href:
        out.append(Slot(node, tag, "href", "meta", "url", href))
    elif rels & _LINK_RELS and href:
        out.append(Slot(node, tag, "href", "link", "url", href))


def _meta(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
    name = (attrs.get("property") or attrs.get("name") or "").strip().lower()
    if name in _META_IMAGE_NAMES or "image" in (attrs.get("itemprop") or "").split():
        _url_slots(node, tag, attrs, ("content",), "meta", out)


def _embedded(attribute: str) -> _Handler:
    def handler(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
        value = attrs.get(attribute)
        if value:
            out.append(
                Slot(node, tag, attribute, embedded_kind(attrs.get("type"), value), "url", value)
            )

    return handler


def _simple(*pairs: tuple[str, str]) -> _Handler:
    def handler(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
        for name, kind in pairs:
            value = attrs.get(name)
            if value:
                out.append(Slot(node, tag, name, kind, "url", value))

    return handler


def _svg_use(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
    for name in _HREFS:
        value = attrs.get(name)
        # A reference into this document (use href="#icon") loads nothing.
        if value and not value.strip().startswith("#"):
            out.append(Slot(node, tag, name, "image", "url", value))


def _style(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
    text = node.text(deep=True)
    if text:
        out.append(Slot(node, tag, "", "css", "css", text))


_SVG_IMAGE = _simple(("href", "image"), ("xlink:href", "image"))
_HANDLERS: dict[str, _Handler] = {
    "img": _img,
    "source": _source,
    "input": _input,
    "link": _link,
    "meta": _meta,
    "style": _style,
    "embed": _embedded("src"),
    "object": _embedded("data"),
    "video": _simple(
        ("src", "video"), ("poster", "image"), ("data-src", "video"), ("data-poster", "image")
    ),
    "audio": _simple(("src", "sound"), ("data-src", "sound")),
    "bgsound": _simple(("src", "sound")),
    "iframe": _simple(("src", "frame"), ("data-src", "frame")),
    "frame": _simple(("src", "frame")),
    "script": _simple(
        ("src", "script"), ("data-src", "script"), ("href", "script"), ("xlink:href", "script")
    ),
    "image": _SVG_IMAGE,
    "feImage": _SVG_IMAGE,
    "feimage": _SVG_IMAGE,
    "use": _svg_use,
    "a": _simple(("href", "link")),
    "area": _simple(("href", "link")),
}
_GENERIC_HANDLED = frozenset({"img", "source", "input", "video", "audio", "iframe", "script"})


def _generic(node: Any, tag: str, attrs: dict[str, Any], out: list[Slot]) -> None:
    """Attributes that hold URLs on any element."""
    value = attrs.get("background")
    if value:
        out.append(Slot(node, tag, "background", "image", "url", value))
    value = attrs.get("style")
    if value:
        out.append(Slot(node, tag, "style", "css", "css", value))
    for name in _BG_LAZY:
        value = attrs.get(name)
        if value:
            out.append(Slot(node, tag, name, "image", "css-or-url", value))
    value = attrs.get("data-bgset")
    if value:
        out.append(Slot(node, tag, "data-bgset", "image", "bgset", value))
    if tag not in _GENERIC_HANDLED:
        for name in _GENERIC_LAZY:
            value = attrs.get(name)
            if value:
                out.append(Slot(node, tag, name, "image?", "url", value))


def iter_slots(tree: LexborHTMLParser) -> Iterator[Slot]:
    """Yield every URL-holding :class:`Slot` of the document, in document order.

    ``<template>`` contents are skipped (browsers do not load them); the
    contents of ``<noscript>`` are included (we run no scripts, and pages put
    the real ``<img>`` of lazily loaded images there).
    """
    root = tree.root
    if root is None:
        return
    handlers = _HANDLERS
    out: list[Slot] = []
    for node in root.traverse():
        attrs = node.attributes
        if not attrs:
            if node.tag == "style":
                _style(node, "style", attrs, out)
                yield from out
                out.clear()
            continue
        tag: str = node.tag or ""
        if tag == "img" and len(attrs) == 1 and "src" in attrs:
            # The bulk of big pages: <img src> alone.
            value = attrs["src"]
            if value:
                yield Slot(node, tag, "src", "image", "url", value)
            continue
        if tag == "param" and NESTED_ATTRIBUTE in attrs:
            tag = attrs[NESTED_ATTRIBUTE] or "param"
        handler = handlers.get(tag)
        if handler is not None:
            handler(node, tag, attrs, out)
        if len(attrs) > 1 or "src" not in attrs:
            _generic(node, tag, attrs, out)
        if out:
            yield from out
            out.clear()
