"""``--convert-links``: make a saved page and its stylesheets refer to the local copies.

``mapping`` maps absolute URLs (as discovery reports them) to the local path
that should replace them, relative to the file being rewritten.  Every place
discovery reads a URL from (see :mod:`~loader.discovery.html`) is rewritten
from the same slots, so whatever was found and saved is also relinked:
``src``, each ``srcset`` candidate (descriptors kept), lazy attributes,
``style`` attributes, ``<style>`` blocks, CSS ``url()``, ``image-set()`` and
``@import``.  A reference's fragment is kept (``sprite.svg#icon`` becomes
``local/sprite.svg#icon``).  References not in ``mapping`` are left as they
are, except that when the page had a ``<base href>`` (which has to go, or the
local paths would resolve against it) relative references that relied on it
are made absolute, links (``a``/``area`` ``href``, ``form action``) included,
so they keep pointing where they did.

The HTML is serialised from the lexbor tree and encoded as UTF-8, with the
``<meta>`` charset declaration set (or added) to say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping

from ._types import Document
from .css import css_string, find_css_urls
from .encoding import decode_html
from .html import Slot, iter_slots, parse_html
from .srcset import parse_srcset
from .urls import Resolver

__all__ = ["rewrite_css", "rewrite_html"]

_Rewrite = Callable[[str], "str | None"]
_LINKS = (("a", "href"), ("area", "href"), ("form", "action"))
_CSS_CHARSET = re.compile(r'@charset "([^"]*)";')


def _fragment(raw: str) -> str:
    if raw.lstrip()[:5].lower() == "data:":
        return ""
    _, sep, fragment = raw.strip().partition("#")
    return sep + fragment


def _url_rewriter(resolve: Resolver, mapping: Mapping[str, str], absolutize: bool) -> _Rewrite:
    """Return a function giving the new text for a reference, or ``None`` to leave it."""

    def rewrite(raw: str) -> str | None:
        url = resolve(raw)
        if url is None:
            return None
        local = mapping.get(url)
        if local is not None:
            return local + _fragment(raw)
        if absolutize and url != raw.strip():
            return url + _fragment(raw)
        return None

    return rewrite


def _splice(text: str, edits: Iterable[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end)`` span (in order, not overlapping) replaced."""
    pieces: list[str] = []
    last = 0
    for start, end, new in edits:
        pieces.append(text[last:start])
        pieces.append(new)
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _rewrite_css_text(text: str, rewrite: _Rewrite) -> str:
    def edits() -> Iterator[tuple[int, int, str]]:
        for ref in find_css_urls(text):
            new = rewrite(ref.url)
            if new is not None:
                quoted = css_string(new)
                yield ref.start, ref.end, quoted if text[ref.start : ref.start + 1] in "\"'" else f"url({quoted})"

    return _splice(text, edits())


def _rewrite_srcset(value: str, rewrite: _Rewrite) -> str:
    def edits() -> Iterator[tuple[int, int, str]]:
        for candidate in parse_srcset(value, keep_invalid=True):
            new = rewrite(candidate.url)
            if new is None:
                continue
            # A URL in a srcset ends at whitespace and must not end with a comma.
            new = new.replace(" ", "%20").replace("\t", "%09").replace("\n", "%0A")
            if new.endswith(","):
                new = new[:-1] + "%2C"
            yield candidate.start, candidate.end, new

    return _splice(value, edits())


def _rewrite_slot(slot: Slot, rewrite: _Rewrite) -> str:
    syntax, value = slot.syntax, slot.value
    if syntax == "url":
        new = rewrite(value)
        return value if new is None else new
    if syntax == "srcset":
        return _rewrite_srcset(value, rewrite)
    if syntax == "css" or (syntax == "css-or-url" and "url(" in value.lower()):
        return _rewrite_css_text(value, rewrite)
    if syntax == "css-or-url":
        new = rewrite(value)
        return value if new is None else new
    if syntax == "bgset":
        return "|".join(_rewrite_srcset(part, rewrite) for part in value.split("|"))
    return value


def rewrite_css(
    text: str, base_url: str, mapping: Mapping[str, str], *, absolutize: bool = False
) -> str:
    """Return the stylesheet ``text`` with every URL found in ``mapping`` replaced.

    ``base_url`` is what the stylesheet's references resolve against (its
    own URL).  Replaced references are written ``url("local/path")`` (or
    ``"local/path"`` where a string was), escaped.  With ``absolutize``,
    references not in ``mapping`` are made absolute instead of left alone.

    The result is meant to be saved as UTF-8: a leading ``@charset`` rule
    naming another encoding is changed to say ``utf-8``.  Pass the text
    discovery decoded (``Document.extra["text"]``), not a guess.
    """
    resolve = Resolver(base_url)
    text = _rewrite_css_text(text, _url_rewriter(resolve, mapping, absolutize))
    if text.startswith("\ufeff"):
        text = text[1:]
    match = _CSS_CHARSET.match(text)
    if match and match.group(1).lower() != "utf-8":
        text = '@charset "utf-8";' + text[match.end() :]
    return text


def _declare_utf8(tree: object) -> None:
    declared = False
    for meta in tree.css("meta"):  # type: ignore[attr-defined]
        attrs = meta.attributes
        if "charset" in attrs:
            meta.attrs["charset"] = "utf-8"
            declared = True
        elif (attrs.get("http-equiv") or "").strip().lower() == "content-type":
            meta.attrs["content"] = "text/html; charset=utf-8"
            declared = True
    if declared:
        return
    head = tree.head  # type: ignore[attr-defined]
    if head is None:
        return
    meta = tree.create_node("meta")  # type: ignore[attr-defined]
    meta.attrs["charset"] = "utf-8"
    first = head.child
    if first is not None:
        first.insert_before(meta)
    else:
        head.insert_child(meta)


def rewrite_html(document: Document, mapping: Mapping[str, str]) -> bytes:
    """Return the HTML of ``document`` with every URL found in ``mapping`` replaced, as UTF-8.

    ``document`` is not modified (the page is parsed afresh).  Each
    ``<base>`` loses its ``href``; see the module docstring for what happens
    to the references that relied on it.
    """
    text = document.extra.get("text")
    if not isinstance(text, str):
        text = decode_html(document.content, document.content_type)[0]
    tree = parse_html(text)
    base_url = document.base_url or document.url
    resolve = Resolver(base_url, document_scheme=document.url.partition(":")[0])
    bases = [node for node in tree.css("base") if "href" in node.attributes]
    absolutize = bool(bases) and base_url != document.url
    rewrite = _url_rewriter(resolve, mapping, absolutize)

    slots = list(iter_slots(tree))
    for slot in slots:
        new = _rewrite_slot(slot, rewrite)
        if new == slot.value:
            continue
        if slot.attribute:
            slot.node.attrs[slot.attribute] = new
        else:  # <style> text; css_string() escaped any "<", so it cannot end the element
            slot.node.inner_html = new
    if absolutize:
        for tag, attribute in _LINKS:
            for node in tree.css(f"{tag}[{attribute}]"):
                value = node.attributes.get(attribute) or ""
                new_value = rewrite(value)
                if new_value is not None:
                    node.attrs[attribute] = new_value
    for node in bases:
        del node.attrs["href"]
    _declare_utf8(tree)
    return (tree.html or "").encode("utf-8", errors="replace")
