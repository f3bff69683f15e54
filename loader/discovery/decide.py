"""Per element, what a browser would load: the rules of the browser model.

:class:`Rules` reads the slots of one element at a time (what
:func:`~loader.discovery.html.iter_slots` yields for one node) and says, for
each URL, whether the :class:`~loader.discovery.browser.Browser` loads it and
why: an :class:`Item` with ``keep`` true or false and a ``why``.

The rules (each keeps the URL when it cannot tell: a miss is worse than an extra):

* ``<noscript>`` content is inert when scripting is on: found through the tree
  (an element inside ``<noscript>``) and, for a ``<noscript>`` in ``<head>``
  whose ``<img>`` the parser moves into ``<body>``, through the source text;
* ``img``: one ``srcset`` candidate (``src`` taking part as ``1x``), none when a
  ``<picture>``'s earlier ``<source>`` applies; ``lowsrc`` is not loaded;
* ``picture > source``: the first whose ``media`` applies and whose ``type`` is
  decoded; one candidate of it;
* icons: the favicons Chromium loads for a tab (``rel=icon`` without
  ``sizes``, with ``sizes=any``, an SVG, or sized at most 32 px: it fetches the
  16 and 32 px ones) are ``image``; every other icon link (touch icons,
  startup images, mask icons, bigger sizes) is of kind ``icon``;
* ``audio``/``video``: the ``src``, else the first ``<source>`` of a type it
  plays (one with an unknown type keeps the next ones too);
* ``<style>`` ``url()``: only when its rule could apply (``@media`` evaluated,
  the selector matched against the document, user-action-only selectors
  skipped; see :func:`~loader.discovery.browser.selector_verdict`); the
  ``<style media>`` attribute counts as an ``@media``;
* ``style`` attributes of elements hidden by an inline ``display:none`` or the
  ``hidden`` attribute are skipped;
* lazy attributes (``data-src``, ``data-srcset`` …) count only on ``img``,
  ``source``, ``video``, ``audio`` (``data-bg``-style background attributes on
  any element), and only when their value reads as a URL.

A later declaration of the same longhand in a rule of the same selector text
overrides an earlier one (:func:`css_items`); specificity and declarations
without a ``url()`` are not modelled, so such rules are kept.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .browser import (
    Browser,
    _short,
    choose_candidate,
    media_matches,
    selector_verdict,
    type_supported,
)
from .html import NESTED_ATTRIBUTE, Slot, iter_slots, parse_html

__all__ = ["MAX_OVERRIDE_REFS", "Item", "Matcher", "Rules", "css_items", "css_verdict", "url_like"]


class Item(NamedTuple):
    """One URL of a slot and the model's verdict on it."""

    raw: str
    kind: str
    element: str
    attribute: str
    keep: bool
    why: str


#: ``selector -> matches?`` over a document; ``None``: cannot tell.
Matcher = Callable[[str], "bool | None"]

_LAZY_URL = frozenset(
    {"data-src", "data-lazy-src", "data-original", "data-lazy", "data-original-src", "data-echo",
     "data-hi-res-src", "data-fallback-src"}
)
_LAZY_SRCSET = frozenset({"data-srcset", "data-lazy-srcset", "data-original-srcset", "data-original-set"})
_NOT_URL = re.compile(r"[\s\"'{}\[\]<>`]")
_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*display\s*:\s*none\s*(?:!important\s*)?(?:;|$)", re.IGNORECASE)
# Chromium loads the 16 and 32 px favicons (1x and 2x of a tab's icon) and unsized ones.
_FAVICON_MAX = 32
_ICON_RELS = frozenset({"icon", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon",
                        "fluid-icon", "apple-touch-startup-image"})
# Types Chromium plays: a <source> with one of them ends the search.
_PLAYABLE = frozenset({"audio/ogg", "audio/mpeg", "audio/mp3", "audio/wav", "audio/wave",
                       "audio/x-wav", "audio/webm", "audio/mp4", "audio/aac", "audio/flac",
                       "video/mp4", "video/webm", "video/ogg"})
_KEEP_AT_RULES = ("@keyframes", "@-webkit-keyframes", "@-moz-keyframes", "@font-face", "@page",
                  "@counter-style", "@property", "@font-feature-values")
_MAX_MATCHES = 5000
# Selector evaluations walk the tree: at most about this many elements visited in all.
_MATCH_BUDGET = 20_000_000
# Earlier siblings looked at for a chosen <source> (a hostile picture may hold thousands:
# past these, the element is kept).
_MAX_SIBLINGS = 64


def url_like(value: str) -> bool:
    """Whether a lazy attribute's value reads as a URL (not JSON, no quotes, braces or spaces)."""
    value = value.strip()
    return bool(value) and _NOT_URL.search(value) is None


def tree_matcher(tree: Any, elements: int = 0) -> Matcher:
    """A :data:`Matcher` over a lexbor tree, caching its answers.

    ``elements`` (about how many the tree holds) bounds the work: at most
    ``_MATCH_BUDGET // elements`` distinct selectors (and at most
    ``_MAX_MATCHES``) are evaluated; past them every selector is kept.
    """
    cache: dict[str, bool | None] = {}
    limit = min(_MAX_MATCHES, max(100, _MATCH_BUDGET // max(elements, 1)))

    def match(selector: str) -> bool | None:
        verdict = cache.get(selector, ...)
        if verdict is not ...:
            return verdict
        if len(cache) >= limit:
            return None
        try:
            verdict = tree.css_first(selector) is not None
        except Exception:  # noqa: BLE001 - lexbor cannot parse it: keep the rule
            verdict = None
        cache[selector] = verdict
        return verdict

    return match


def _no_tree(selector: str) -> bool | None:
    return None


def css_verdict(context: tuple[str, ...], browser: Browser, match: Matcher | None) -> tuple[bool, str]:
    """Whether a ``url()`` inside blocks with preludes ``context`` could be loaded, and why."""
    selectors: list[str] = []
    for prelude in context:
        lower = prelude.lower()
        if lower.startswith("@media"):
            verdict = media_matches(prelude[6:], browser)
            if verdict is False:
                return False, f"css: {prelude} does not apply at {_device(browser)}"
        elif lower.startswith(_KEEP_AT_RULES):
            return True, f"css: inside {prelude.split()[0]}"
        elif lower.startswith("@"):
            continue  # @supports, @layer, @container, @document …: the rules inside decide
        else:
            selectors.append(prelude)
    if not selectors:
        return True, "css: top-level url()"
    if len(selectors) > 1:
        return True, f"css: rule {selectors[-1][:60]} kept (selector not evaluated: nested rule)"
    if match is None:
        # No whole document: user-action-only selectors are still skipped, the rest kept.
        keep, why = selector_verdict(selectors[0], _no_tree)
        if keep:
            why = f"css: rule {selectors[0][:60]} kept (selector not evaluated: no whole document to match)"
        return keep, why
    return selector_verdict(selectors[0], match)


# The longhand a declaration's url() sets: a later declaration of the same one wins.
_LONGHAND = {
    "background": "background-image",
    "background-image": "background-image",
    "list-style": "list-style-image",
    "list-style-image": "list-style-image",
    "border-image": "border-image-source",
    "border-image-source": "border-image-source",
    "mask": "mask-image",
    "mask-image": "mask-image",
    "-webkit-mask": "mask-image",
    "-webkit-mask-image": "mask-image",
    "content": "content",
    "cursor": "cursor",
}
#: Most references of one stylesheet looked at for overrides (a bigger one keeps them all).
MAX_OVERRIDE_REFS = 20_000


def css_items(refs: Iterator[Any], outer: tuple[str, ...], browser: Browser,
              match: Matcher | None, text: str | None = None) -> Iterator[tuple[Any, bool, str]]:
    """Each reference of one stylesheet with its verdict (:func:`css_verdict`), overrides applied.

    A ``url()`` whose declaration is followed, later in the same stylesheet, by a
    declaration of the same longhand (``background`` and ``background-image`` …)
    in a rule of the very same selector whose ``@media`` surely applies, is
    overridden: that element shows the later image.  Only the same selector
    text counts (no specificity), and only declarations holding a ``url()`` are
    seen: a later ``background: none`` overrides nothing here.  With the
    stylesheet's ``text``, an ``image-set()`` loads one candidate, as a
    ``srcset`` does (unless ``browser.all_candidates``).
    """
    batch: list[tuple[Any, bool, str]] = []
    for ref in refs:
        batch.append((ref, *_verdict(ref, outer, browser, match)))
        if len(batch) > MAX_OVERRIDE_REFS:
            yield from batch
            for ref in refs:
                yield (ref, *_verdict(ref, outer, browser, match))
            return
    out = list(batch)
    if text is not None and not browser.all_candidates:
        _choose_image_sets(out, text, browser)
    # Walk backwards: the last sure declaration of each (selector, longhand) wins.
    winners: dict[tuple[str, str], int] = {}
    for index in range(len(out) - 1, -1, -1):
        ref, keep, why = out[index]
        if not keep or ref.kind != "image":
            continue
        longhand = _LONGHAND.get(ref.property)
        context = outer + ref.context
        if longhand is None or not context or context[-1].startswith("@"):
            continue
        key = (context[-1], longhand)
        winner = winners.get(key)
        if winner is not None and winner != ref.declared_at:
            out[index] = (ref, False, f"css: {ref.property} overridden by a later {_short(context[-1])} rule")
        elif winner is None and _surely_applies(context[:-1], browser):
            winners[key] = ref.declared_at
    yield from out


_RESOLUTION = re.compile(r"\s*+([0-9]*\.?[0-9]+)(x|dppx|dpi|dpcm)\b", re.IGNORECASE)


def _choose_image_sets(items: list[tuple[Any, bool, str]], text: str, browser: Browser) -> None:
    """Keep one candidate of each ``image-set()`` among ``items`` (in place).

    Candidates of one set are consecutive references with nothing but their
    resolutions and commas between them; a set whose candidates cannot all be
    told apart that way (``type()`` between them) keeps each of them.
    """
    groups: list[list[int]] = []
    for index, (ref, keep, _why) in enumerate(items):
        if ref.via != "image-set()" or not keep:
            continue
        if groups:
            last = items[groups[-1][-1]][0]
            between = text[last.end : ref.start] if 0 <= last.end <= ref.start else "("
            if last.declared_at == ref.declared_at and "(" not in between and ")" not in between:
                groups[-1].append(index)
                continue
        groups.append([index])
    for group in groups:
        if len(group) < 2:
            continue
        densities = []
        for index in group:
            ref = items[index][0]
            m = _RESOLUTION.match(text, ref.end)
            densities.append(_density(m.group(1), m.group(2)) if m else 1.0)
        order = sorted(range(len(group)), key=lambda i: densities[i])
        pick = next((i for i in order if densities[i] >= browser.dpr - 1e-9), order[-1])
        for i, index in enumerate(group):
            ref, _keep, _why = items[index]
            if i == pick:
                items[index] = (ref, True, f"css: image-set chose {densities[i]:g}x for dpr {browser.dpr:g}")
            else:
                items[index] = (ref, False, f"css: image-set {densities[i]:g}x not chosen for dpr {browser.dpr:g}")


def _density(value: str, unit: str) -> float:
    number = float(value)
    unit = unit.lower()
    if unit == "dpi":
        return number / 96
    if unit == "dpcm":
        return number * 2.54 / 96
    return number


def _verdict(ref: Any, outer: tuple[str, ...], browser: Browser, match: Matcher | None) -> tuple[bool, str]:
    if ref.kind == "import":
        return True, "css: @import"
    return css_verdict(outer + ref.context, browser, match)


def _surely_applies(at_rules: tuple[str, ...], browser: Browser) -> bool:
    for prelude in at_rules:
        if not prelude.lower().startswith("@media") or media_matches(prelude[6:], browser) is not True:
            return False
    return True


def _device(browser: Browser) -> str:
    return f"{browser.width}x{browser.height} dpr {browser.dpr:g}"


def _tag(node: Any) -> str:
    tag = node.tag or ""
    if tag == "param":
        tag = node.attributes.get(NESTED_ATTRIBUTE) or tag
    return tag


class Rules:
    """The browser model over one HTML document's slots (see the module docstring).

    ``text`` is the document's decoded text when there is one (whole-tree
    documents); ``matcher`` evaluates selectors against the whole document
    (``None`` when it is read in pieces: every selector is kept).
    """

    def __init__(self, browser: Browser, text: str | None, flags: frozenset[str],
                 matcher: Matcher | None) -> None:
        self.browser = browser
        self.matcher = matcher
        self.has_noscript = "noscript" in flags and browser.scripting
        self.has_picture = "picture" in flags
        self.head_noscript: Counter[tuple[str, str, str]] = Counter()
        if self.has_noscript and text is not None:
            self.head_noscript = _head_noscript_slots(text)
        self.noscript_parents: dict[int, bool] = {}
        self.sources: dict[int, tuple[bool | None, str]] = {}  # <source> verdicts by mem_id
        self.parser: Any = None  # the tree those mem_ids belong to

    # -- grouping ---------------------------------------------------------------------

    def items(self, slots: list[Slot], refs: Callable[[Slot], Iterator[tuple[str, str, str, str]]],
              css_refs: Callable[[str], Iterator[Any]]) -> Iterator[Item]:
        """The verdicts on the URLs of one element's slots (consecutive slots of one node)."""
        first = slots[0]
        node = first.node
        if node is None:
            # A big <style> block of a page read in pieces: no tree, no selectors.
            yield Item(first.value, first.kind, first.element, first.attribute, True,
                       "css: page read in pieces, selector not evaluated")
            return
        parser = node.parser
        if parser is not self.parser:
            # Another piece's tree: lexbor may reuse the addresses mem_id is made of.
            self.parser = parser
            self.noscript_parents.clear()
            self.sources.clear()
        if self.has_noscript and self._inert(node, slots):
            for slot in slots:
                for raw, kind, element, attribute in refs(slot):
                    yield Item(raw, kind, element, attribute, False,
                               "noscript: inert with scripting on (--noscript loads it)")
            return
        tag = first.element
        if tag == "img":
            yield from self._img(node, slots, refs)
        elif tag == "source" and first.kind == "image":
            yield from self._source(node, slots, refs)
        elif tag == "link" and first.attribute == "href" and _is_icon_link(node):
            yield from self._icon(node, slots)
        elif tag == "source" and first.kind in ("sound", "video"):
            yield from self._media_source(node, slots, refs)
        else:
            for slot in slots:
                yield from self._other(node, slot, refs, css_refs)

    # -- noscript ---------------------------------------------------------------------

    def _inert(self, node: Any, slots: list[Slot]) -> bool:
        if self._in_noscript(node.parent):
            return True
        if self.head_noscript:
            counts = self.head_noscript
            key = (slots[0].element, slots[0].attribute, slots[0].value)
            if counts.get(key):
                counts[key] -= 1
                return True
        return False

    def _in_noscript(self, node: Any) -> bool:
        """Whether ``node`` is or stands in a ``<noscript>``; each element's answer is kept,
        so a deep tree costs one walk, not one per element."""
        known = self.noscript_parents
        path = []
        answer = False
        while node is not None:
            key = node.mem_id
            cached = known.get(key)
            if cached is not None:
                answer = cached
                break
            if node.tag == "noscript":
                answer = True
                break
            path.append(key)
            node = node.parent
        for key in path:
            known[key] = answer
        return answer

    # -- img, picture -----------------------------------------------------------------

    def _picture_chose_source(self, node: Any) -> bool:
        """Whether an earlier ``<source>`` of ``node``'s ``<picture>`` applies for sure."""
        if not self.has_picture:
            return False
        parent = node.parent
        if parent is None or _tag(parent) != "picture":
            return False
        sibling = node.prev
        for _ in range(_MAX_SIBLINGS):
            if sibling is None:
                break
            if _tag(sibling) == "source" and self._source_applies(sibling)[0] is True:
                return True
            sibling = sibling.prev
        return False

    def _source_applies(self, node: Any) -> tuple[bool | None, str]:
        key = node.mem_id
        verdict = self.sources.get(key)
        if verdict is None:
            verdict = self.sources[key] = self._source_verdict(node)
        return verdict

    def _source_verdict(self, node: Any) -> tuple[bool | None, str]:
        attrs = node.attributes
        if not (attrs.get("srcset") or attrs.get("src") or any(attrs.get(a) for a in _LAZY_SRCSET)):
            return False, "no srcset"
        mime = attrs.get("type")
        decoded = type_supported(mime)
        if decoded is False:
            return False, f"picture: type {mime} not decoded"
        media = attrs.get("media")
        if media:
            verdict = media_matches(media, self.browser)
            if verdict is False:
                return False, f"picture: media {media} does not apply at {_device(self.browser)}"
            if verdict is None:
                return None, f"picture: media {media} not evaluated"
        if decoded is None:
            return None, f"picture: type {mime} decoded by some builds"
        return True, "picture: first <source> that applies"

    def _img(self, node: Any, slots: list[Slot], refs: Callable[[Slot], Iterator[tuple[str, str, str, str]]]) -> Iterator[Item]:
        browser = self.browser
        attrs = node.attributes
        if self._picture_chose_source(node) and not browser.all_candidates:
            for slot in slots:
                for raw, kind, element, attribute in refs(slot):
                    yield Item(raw, kind, element, attribute, False,
                               "picture: an earlier <source> was chosen")
            return
        src = next((s for s in slots if s.attribute == "src"), None)
        srcset = next((s for s in slots if s.attribute == "srcset"), None)
        chosen_src = True
        items: list[Item] = []
        for slot in slots:
            attribute = slot.attribute
            if slot is src:
                continue
            if attribute == "lowsrc":
                items.append(Item(slot.value, "image", "img", attribute, False, "img[lowsrc]: not loaded by browsers"))
                continue
            lazy = attribute in _LAZY_URL or attribute in _LAZY_SRCSET
            if slot.syntax == "srcset":
                sizes = attrs.get("data-sizes") if lazy else None
                sizes = sizes or attrs.get("sizes")
                with_src = src.value if (slot is srcset and src is not None) else None
                found, src_chosen = self._srcset(slot, sizes, with_src, lazy)
                if slot is srcset:
                    chosen_src = src_chosen
                items.extend(found)
            elif lazy:
                items.append(self._lazy(slot))
            else:
                for raw, kind, element, attr in refs(slot):
                    items.append(Item(raw, kind, element, attr, True, f"html: {element}[{attr}]"))
        if src is not None:
            # src first, where the document has it (iter_slots yields it first).
            if chosen_src:
                yield Item(src.value, "image", "img", "src", True,
                           "html: img[src]" if srcset is None or browser.all_candidates
                           else "srcset: chose src (1x)")
            else:
                yield Item(src.value, "image", "img", "src", False,
                           "srcset: a srcset candidate was chosen over src")
        yield from items

    def _srcset(self, slot: Slot, sizes: str | None, src: str | None, lazy: bool) -> tuple[list[Item], bool]:
        """The items of a srcset slot, and whether ``src`` (taking part as 1x) was chosen."""
        from .srcset import Candidate, parse_srcset

        candidates = parse_srcset(slot.value)
        kind, element, attribute = slot.kind, slot.element, slot.attribute
        if lazy:
            bad = [c for c in candidates if not url_like(c.url)]
            if bad or not candidates:
                return [Item(c.url, kind, element, attribute, False,
                             f"lazy: {element}[{attribute}] is not a URL list") for c in candidates], src is not None
        prefix = "lazy: " if lazy else ""
        if self.browser.all_candidates:
            return [Item(c.url, kind, element, attribute, True,
                         f"{prefix}srcset: every candidate (--all-candidates)") for c in candidates], True
        pool = list(candidates)
        src_candidate = None
        if src is not None and not any(c.width is not None for c in candidates) and not any(
            (c.density or 1.0) == 1.0 for c in candidates
        ):
            src_candidate = Candidate(src, ("1x",), -1, -1)
            pool.append(src_candidate)
        chosen, why = choose_candidate(pool, self.browser, sizes)
        if chosen is None:
            return [Item(c.url, kind, element, attribute, True, f"{prefix}{why}: every candidate kept")
                    for c in candidates], True
        items = []
        for c in candidates:
            if c is chosen:
                items.append(Item(c.url, kind, element, attribute, True, prefix + why))
            else:
                label = " ".join(c.descriptors) or "1x"
                items.append(Item(c.url, kind, element, attribute, False,
                                  f"{prefix}srcset: {label} not chosen for dpr {self.browser.dpr:g}"))
        return items, src_candidate is not None and chosen is src_candidate

    def _source(self, node: Any, slots: list[Slot], refs: Callable[[Slot], Iterator[tuple[str, str, str, str]]]) -> Iterator[Item]:
        browser = self.browser
        if not browser.all_candidates:
            verdict, why = self._source_applies(node)
            earlier = self._picture_chose_source(node)
            if earlier or verdict is False:
                reason = "picture: an earlier <source> was chosen" if earlier else why
                for slot in slots:
                    for raw, kind, element, attribute in refs(slot):
                        yield Item(raw, kind, element, attribute, False, reason)
                return
        sizes = node.attributes.get("sizes")
        for slot in slots:
            lazy = slot.attribute in _LAZY_URL or slot.attribute in _LAZY_SRCSET
            if slot.syntax == "srcset":
                lazy_sizes = node.attributes.get("data-sizes") if lazy else None
                yield from self._srcset(slot, lazy_sizes or sizes, None, lazy)[0]
            elif lazy:
                yield self._lazy(slot)
            else:
                for raw, kind, element, attribute in refs(slot):
                    yield Item(raw, kind, element, attribute, True, f"html: {element}[{attribute}]")

    def _lazy(self, slot: Slot) -> Item:
        if url_like(slot.value):
            return Item(slot.value.strip(), slot.kind, slot.element, slot.attribute, True,
                        f"lazy: {slot.element}[{slot.attribute}] (a lazy loader sets it)")
        return Item(slot.value, slot.kind, slot.element, slot.attribute, False,
                    f"lazy: {slot.element}[{slot.attribute}] is not a URL")

    # -- icons ------------------------------------------------------------------------

    def _icon(self, node: Any, slots: list[Slot]) -> Iterator[Item]:
        slot = slots[0]
        attrs = node.attributes
        rels = (attrs.get("rel") or "").lower().split()
        rel = " ".join(rels)
        if "icon" in rels and _tab_icon(attrs.get("sizes"), attrs.get("type")):
            yield Item(slot.value, "image", "link", "href", True, "icon: a favicon a tab loads")
            return
        yield Item(slot.value, "icon", "link", "href", True,
                   f"icon: rel={rel} (not a tab's favicon; --kinds icon fetches it)")

    # -- audio and video sources ------------------------------------------------------

    def _media_source(self, node: Any, slots: list[Slot],
                      refs: Callable[[Slot], Iterator[tuple[str, str, str, str]]]) -> Iterator[Item]:
        parent = node.parent
        reason = None
        if parent is not None and parent.attributes.get("src"):
            reason = f"media: <{_tag(parent)} src> is played, not its <source>s"
        else:
            sibling = node.prev
            for _ in range(_MAX_SIBLINGS):
                if sibling is None:
                    break
                attrs = sibling.attributes
                if _tag(sibling) == "source" and attrs.get("src") and _playable(attrs.get("type")):
                    reason = "media: an earlier <source> is played"
                    break
                sibling = sibling.prev
        for slot in slots:
            for raw, kind, element, attribute in refs(slot):
                if reason is None or self.browser.all_candidates:
                    yield Item(raw, kind, element, attribute, True, f"html: {element}[{attribute}]")
                else:
                    yield Item(raw, kind, element, attribute, False, reason)

    # -- everything else --------------------------------------------------------------

    def _other(self, node: Any, slot: Slot, refs: Callable[[Slot], Iterator[tuple[str, str, str, str]]],
               css_refs: Callable[[str], Iterator[Any]]) -> Iterator[Item]:
        syntax, element, attribute = slot.syntax, slot.element, slot.attribute
        if syntax == "css" and not attribute:
            yield from self._style_block(node, slot, css_refs)
            return
        if syntax == "css" and attribute == "style":
            if _hidden(node):
                for raw, kind, el, attr in refs(slot):
                    yield Item(raw, kind, el, attr, False, f"style: <{element}> is hidden (display:none)")
                return
            for ref, keep, why in css_items(css_refs(slot.value), (), self.browser, None, slot.value):
                kind = "style" if ref.kind == "import" else ref.kind
                if not why.startswith("css: image-set"):
                    why = f"css: inline style of <{element}>"
                yield Item(ref.url, kind, element, attribute, keep, why)
            return
        if slot.kind == "image?":
            for raw, kind, el, attr in refs(slot):
                yield Item(raw, kind, el, attr, False,
                           f"lazy: {element}[{attribute}] is not on a media element")
            return
        if attribute.startswith("data-") and syntax in ("url", "css-or-url", "bgset") and not _lazy_value_ok(slot):
            for raw, kind, el, attr in refs(slot):
                yield Item(raw, kind, el, attr, False, f"lazy: {element}[{attribute}] is not a URL")
            return
        for raw, kind, el, attr in refs(slot):
            if syntax == "css":
                why = f"css: inline style of <{element}>"
            elif attribute.startswith("data-"):
                why = f"lazy: {el}[{attr}] (a lazy loader sets it)"
            else:
                why = f"html: {el}[{attr}]"
            yield Item(raw, kind, el, attr, True, why)

    def _style_block(self, node: Any, slot: Slot, css_refs: Callable[[str], Iterator[Any]]) -> Iterator[Item]:
        media = node.attributes.get("media") if node.attributes else None
        outer: tuple[str, ...] = (f"@media {media}",) if media else ()
        for ref, keep, why in css_items(css_refs(slot.value), outer, self.browser, self.matcher, slot.value):
            kind = "style" if ref.kind == "import" else ref.kind
            yield Item(ref.url, kind, "style", ref.via, keep, why)


def _lazy_value_ok(slot: Slot) -> bool:
    if slot.syntax == "url":
        return url_like(slot.value)
    if slot.syntax == "css-or-url":
        return "url(" in slot.value.lower() or url_like(slot.value)
    return not any(c in slot.value for c in "{}\"'<>")


def _ancestors(node: Any) -> Iterator[Any]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _hidden(node: Any) -> bool:
    attrs = node.attributes
    if "hidden" in attrs:
        return True
    style = attrs.get("style") or ""
    return "none" in style.lower() and _HIDDEN_STYLE.search(style) is not None


def _is_icon_link(node: Any) -> bool:
    return bool(_ICON_RELS.intersection((node.attributes.get("rel") or "").lower().split()))


def _tab_icon(sizes: str | None, mime: str | None) -> bool:
    """Whether Chromium loads a ``rel=icon`` for a tab: unsized, ``any``/SVG, or at most 32 px."""
    if (mime or "").strip().lower() == "image/svg+xml":
        return True
    tokens = (sizes or "").lower().split()
    if not tokens or "any" in tokens:
        return True
    for token in tokens:
        w, _, h = token.partition("x")
        if not (w.isdigit() and h.isdigit()) or max(int(w), int(h)) <= _FAVICON_MAX:
            return True
    return False


def _playable(mime: str | None) -> bool:
    """Whether a ``<source type>`` is one Chromium surely plays (no type: it tries it)."""
    if mime is None or not mime.strip():
        return True
    return mime.split(";", 1)[0].strip().lower() in _PLAYABLE


_HEAD_NOSCRIPT = re.compile(r"<noscript\b[^>]*>(.*?)(?:</noscript\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_BODY = re.compile(r"<body[\s>]", re.IGNORECASE)
# A start tag that cannot stand in <head>: where <body> begins when its tag is left out.
_BODY_CONTENT = re.compile(
    r"<(?!(?:html|head|meta|link|title|style|script|noscript|base|template|/)[\s/>]|[!?/])[a-zA-Z]",
    re.IGNORECASE,
)


def _head_noscript_slots(text: str) -> Counter[tuple[str, str, str]]:
    """The slots of ``<noscript>`` blocks in ``<head>``: the parser moves their ``<img>`` out."""
    body = _BODY.search(text)
    end = body.start() if body is not None else len(text)
    counts: Counter[tuple[str, str, str]] = Counter()
    at = 0
    for n, m in enumerate(_HEAD_NOSCRIPT.finditer(text, 0, end)):
        if n >= 100 or _BODY_CONTENT.search(text, at, m.start()) is not None:
            break  # body content before it: this <noscript> is in <body>, the tree knows it
        at = m.end()
        inner = m.group(1)
        if "<" not in inner:
            continue
        for slot in iter_slots(parse_html("<body>" + inner[:65536])):
            counts[(slot.element, slot.attribute, slot.value)] += 1
    return counts
