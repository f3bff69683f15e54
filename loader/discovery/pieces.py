"""Huge HTML documents, read in bounded pieces.

lexbor keeps every element of a tree in memory, several hundred bytes each,
and discovery walks the whole tree: a page of a million ``<img>`` cost about
1 GiB.  A document with more than :data:`MAX_TREE_TAGS` tags (or bigger than
:data:`MAX_TREE_BYTES`) is therefore never parsed whole.  :func:`iter_pieces`
cuts it at tag boundaries into pieces of at most :data:`PIECE_TAGS` tags and
about :data:`PIECE_BYTES` bytes, each parsed on its own and dropped before the
next, so memory follows the size of a piece, not of the document.

What a piece cannot see is carried over by a light scan of the tags (the same
approximation of the tree builder :func:`~loader.discovery.html.limit_nesting`
uses):

* the open elements whose meaning depends on where they stand (``picture``,
  ``video`` and ``audio`` for their ``source`` children, ``svg``/``math``
  foreign content, ``frameset``, the parts of a table) are written again at the start of
  the next piece;
* ``<template>`` contents (never loaded by browsers) and the text of raw-text
  elements (``script``, ``textarea``, ``title`` …), which hold no URL, are left
  out, so no piece grows with them;
* a big ``<style>`` block becomes pieces of its own, its CSS scanned in parts
  without lexbor.

For well-formed markup the pieces give the slots one tree gives (the tests
cut pages after every few tags to hold them to it).  Tag soup can differ near
a cut, where the scan's approximate stack is not lexbor's: a ``<source>``
whose parent (say an ``<object>`` inside a ``<picture>``) opened in an earlier
piece is read as the picture's; a ``<frameset>`` after body content, or a second
``<body>``'s attributes, land where a fresh document would put them.

The bytes are cut only at ``<`` (never inside a character of the encodings
read this way: UTF-8 and the ASCII-compatible legacy ones); a UTF-16 or
ISO-2022-JP document is first re-encoded as UTF-8.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Iterator
from typing import NamedTuple

from .encoding import html_codec
from .html import MAX_TREE_BYTES, MAX_TREE_TAGS, Slot, base_href, in_pieces, iter_slots, parse_html

__all__ = [
    "MAX_TREE_BYTES",
    "MAX_TREE_TAGS",
    "PIECE_BYTES",
    "PIECE_TAGS",
    "Piece",
    "first_base_href",
    "in_pieces",
    "iter_piece_slots",
    "iter_pieces",
    "piece_bytes",
]

#: Most tags in one piece.
PIECE_TAGS = 32_768
#: About the most bytes in one piece (a piece ends at the first tag boundary after).
PIECE_BYTES = 1 << 20
#: A ``<style>`` block at least this big is scanned as CSS on its own.
BIG_STYLE = 1 << 16

# Codecs in which a "<" byte may be part of another character.
_UNSAFE_CODECS = frozenset({"utf-16-le", "utf-16-be", "iso2022_jp"})
_CONTEXT_NAMES = (
    rb"template|script|style|textarea|title|xmp|iframe|noembed|noframes|plaintext|"
    rb"picture|video|audio|frameset|svg|math|foreignobject|"
    rb"table|caption|colgroup|tbody|thead|tfoot|tr|td|th"
)
_BREAKOUT_NAMES = (
    rb"b|big|blockquote|body|br|center|code|dd|div|dl|dt|em|embed|h[1-6]|head|hr|i|img|li|"
    rb"listing|menu|meta|nobr|ol|p|pre|ruby|s|small|span|strong|strike|sub|sup|table|tt|u|ul|var"
)
# The tags that may change the context, and comments; the rest (the bulk of a
# huge page) do not even match.  In foreign content, also the HTML tags that end it.
_TAG = re.compile(rb"<(?:(!--)|(/?)(?i:(" + _CONTEXT_NAMES + rb"))(?=[\s/>])|[!?])")
_FOREIGN_TAG = re.compile(
    rb"<(?:(!--)|(/?)(?i:(" + _CONTEXT_NAMES + rb"|" + _BREAKOUT_NAMES + rb"))(?=[\s/>])|[!?])"
)
# A boundary between two tags, where a piece may end; failing that (text between
# every two tags), any tag start, which could but seldom does lie in a quoted value.
_CUT = re.compile(rb">[ \t\r\n\f]*+(?=<[A-Za-z/!])")
_ANY_CUT = re.compile(rb"<[A-Za-z/!]")
# How far past its budget a piece looks for a boundary between two tags.
_CUT_REACH = 1 << 16
_RAWTEXT = frozenset(b"script style textarea title xmp iframe noembed noframes".split())
_RAWTEXT_END = {name: re.compile(rb"</" + name, re.IGNORECASE) for name in _RAWTEXT}
# How deep in a table each of its elements stands: opening one closes the
# open ones of its rank or deeper (a <td> ends the cell before it).
_TABLE_RANK = {
    "table": 0,
    "caption": 1,
    "colgroup": 1,
    "tbody": 1,
    "thead": 1,
    "tfoot": 1,
    "tr": 2,
    "td": 3,
    "th": 3,
}
_RANK = {name.encode(): rank for name, rank in _TABLE_RANK.items()}
#: Elements written again at the start of the next piece while open.
_CONTEXT = {
    b"picture": "<picture>",
    b"video": "<video>",
    b"audio": "<audio>",
    b"frameset": "<frameset>",
    b"svg": "<svg>",
    b"math": "<math>",
    b"foreignobject": "<foreignObject>",
    # Table cells are dropped outside a table: their background attributes need it.
    **{name.encode(): f"<{name}>" for name in _TABLE_RANK},
}
# Most open context elements remembered.
_MAX_CONTEXT = 64
_FOREIGN = frozenset({b"svg", b"math"})
# HTML start tags that end foreign content.
_BREAKOUT = frozenset(_BREAKOUT_NAMES.replace(b"h[1-6]", b"h1|h2|h3|h4|h5|h6").split(b"|"))


class Piece(NamedTuple):
    """One bounded piece of a huge HTML document.

    Either ``html`` (markup to parse on its own, the carried-over context
    first) or ``css``: part ``css_part`` (0 for the first) of a big
    ``<style>`` block's text, cut where :func:`~loader.discovery.css.css_cuts`
    says, to be scanned in order by one :class:`~loader.discovery.css.CSSScanner`.
    ``start`` and ``end`` are the byte range of the document it covers.
    """

    start: int
    end: int
    html: str | None = None
    css: str | None = None
    css_part: int = 0


def piece_bytes(content: bytes, codec: str, skip: int) -> tuple[bytes, str, int]:
    """The bytes to cut, the codec to decode the pieces with, and where the text starts.

    ``content`` itself when ``codec`` never puts a ``<`` byte inside another
    character; else the text re-encoded as UTF-8, decoded a block at a time so
    that no whole-document string is ever built.
    """
    if codec not in _UNSAFE_CODECS:
        return content, codec, skip
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    block = 1 << 20
    parts = [
        decoder.decode(content[at : at + block]).encode("utf-8", "surrogatepass")
        for at in range(skip, len(content), block)
    ]
    parts.append(decoder.decode(b"", final=True).encode("utf-8", "surrogatepass"))
    return b"".join(parts), "utf-8", 0


@functools.cache
def _nth_tag(tags: int) -> re.Pattern[bytes]:
    return re.compile(rb"(?:[^<]*+<){%d}" % tags)


def _in_foreign(stack: list[bytes]) -> bool:
    for name in reversed(stack):
        if name in _FOREIGN:
            return True
        if name == b"foreignobject":
            return False
    return False


def iter_pieces(
    data: bytes,
    codec: str,
    start: int = 0,
    *,
    tags: int = PIECE_TAGS,
    size: int = PIECE_BYTES,
    big_style: int = BIG_STYLE,
) -> Iterator[Piece]:
    """Cut ``data[start:]`` (an HTML document; see :func:`piece_bytes`) into pieces, in order.

    A piece holds at most ``tags`` tags and ends at the first tag boundary
    after ``size`` bytes; a ``<style>`` block of ``big_style`` bytes or more
    is a piece of its own.
    """
    n = len(data)
    view = memoryview(data)
    nth_tag = _nth_tag(tags)

    def piece_end(at: int) -> int:
        """Where the piece starting at ``at`` wants to end (its tag or byte budget)."""
        m = nth_tag.match(data, at + 1)  # the "<" at ``at`` is the piece's own first tag
        return min(m.end() - 1 if m is not None else n, at + max(size, 1))

    stack: list[bytes] = []
    prefix = ""
    piece_start = start  # where the current piece's bytes begin
    parts: list[tuple[int, int]] = []  # byte ranges of the piece before part_start
    part_start = start
    target = piece_end(start)
    pos = start
    dropping = 0  # open <template>s: their contents are left out

    def text(end: int) -> str:
        ranges = [*parts, (part_start, end)]
        return prefix + "".join(str(view[a:b], codec, "replace") for a, b in ranges if b > a)

    # The next tag that matters, kept across cuts: searching afresh for each
    # piece would scan the rest of a page with none left once per piece.
    m: re.Match[bytes] | None = None
    searched: re.Pattern[bytes] | None = None
    foreign = False  # in svg/math content: _in_foreign(stack), kept up to date
    while pos < n:
        scan = _FOREIGN_TAG if foreign and not dropping else _TAG
        if scan is not searched or (m is not None and m.start() < pos):
            m = scan.search(data, pos)
            searched = scan
        tag_at = n if m is None else m.start()
        if tag_at >= target and not dropping:
            # Only void tags and text lie before the next tag that matters, all in
            # the same context: cut at the first tag boundary past the budget.
            begin = max(target, pos) - 1
            cut = _CUT.search(data, begin, min(tag_at, begin + _CUT_REACH))
            if cut is None:
                cut = _ANY_CUT.search(data, begin + 1, tag_at)
                at = cut.start() if cut is not None else (tag_at if m is not None else n)
            else:
                at = cut.end()
            if piece_start < at < n:
                yield Piece(piece_start, at, html=text(at))
                piece_start = part_start = at
                parts = []
                prefix = "".join(_CONTEXT[name] for name in stack if name in _CONTEXT)
                target = piece_end(at)
                pos = at
                continue
        if m is None:
            break
        if m.group(1):  # <!-- comment -->
            end = data.find(b"-->", m.end())
            pos = n if end < 0 else end + 3
            continue
        raw_name = m.group(3)
        close = data.find(b">", m.end())
        tag_end = n if close < 0 else close + 1
        pos = tag_end
        if raw_name is None:  # <!doctype>, <?bogus comment>
            continue
        name = raw_name.lower()
        if dropping:
            pos = _in_template(data, m, name, tag_end)
            if name == b"template":
                dropping += -1 if m.group(2) else 1
                if not dropping:
                    part_start = m.start()
            continue
        if m.group(2):  # end tag
            if name in _CONTEXT and name in stack:
                del stack[len(stack) - 1 - stack[::-1].index(name) :]
                foreign = _in_foreign(stack)
            continue
        if foreign:
            if name in _BREAKOUT:
                while foreign:
                    stack.pop()
                    foreign = _in_foreign(stack)
            elif close < 0 or data[close - 1 : close] == b"/":
                continue  # self-closing in foreign content
            elif name in _CONTEXT:
                stack.append(name)
                if name == b"foreignobject":
                    foreign = False
                if len(stack) > _MAX_CONTEXT:
                    del stack[: _MAX_CONTEXT // 2]
                    foreign = _in_foreign(stack)
                continue
            else:
                continue
        if name == b"template":
            parts.append((part_start, tag_end))
            dropping = 1
            continue
        if name in _RAWTEXT:
            end_match = _RAWTEXT_END[name].search(data, tag_end)
            end_at = n if end_match is None else end_match.start()
            if name == b"style" and end_at - tag_end >= big_style:
                if m.start() > piece_start:
                    yield Piece(piece_start, m.start(), html=text(m.start()))
                yield from _style_parts(data, codec, tag_end, end_at, size)
                prefix = "".join(_CONTEXT[name] for name in stack if name in _CONTEXT)
                piece_start = part_start = pos = end_at
                parts = []
                target = piece_end(end_at)
                continue
            if name != b"style":  # their text holds no URL
                parts.append((part_start, tag_end))
                part_start = end_at
            pos = end_at
            continue
        if name == b"plaintext":
            parts.append((part_start, tag_end))
            part_start = pos = n
            break
        if name in _CONTEXT and close >= 0 and data[close - 1 : close] != b"/":
            rank = _RANK.get(name)
            if rank:  # a nested <table> (rank 0) closes nothing
                while stack and _RANK.get(stack[-1], -1) >= rank:
                    stack.pop()
            stack.append(name)
            if name in _FOREIGN:
                foreign = True
            if len(stack) > _MAX_CONTEXT:
                # Hostile nesting: the innermost elements are the ones that matter.
                del stack[: _MAX_CONTEXT // 2]
                foreign = _in_foreign(stack)
    if dropping:
        part_start = n
    if piece_start < n or parts:
        yield Piece(piece_start, n, html=text(n))


# Legacy encodings with ASCII bytes ("\\", "}") inside their double-byte characters.
_ASCII_IN_CHARACTERS = frozenset({"cp932", "big5hkscs", "gb18030", "cp949"})


def _style_parts(data: bytes, codec: str, start: int, end: int, size: int) -> Iterator[Piece]:
    """A big ``<style>`` block's text in parts of about ``size`` bytes.

    Parts, not one string: a single character beyond U+FFFF makes Python store
    a whole string at four bytes a character.
    """
    from .css import css_cuts

    view = memoryview(data)
    cuts = [end] if codec in _ASCII_IN_CHARACTERS else css_cuts(data, start, end, max(size, 1))
    at = start
    for part, cut in enumerate(cuts):
        yield Piece(at, cut, css=str(view[at:cut], codec, "replace"), css_part=part)
        at = cut


def _in_template(data: bytes, m: re.Match[bytes], name: bytes, tag_end: int) -> int:
    """Where to scan on after a tag inside a ``<template>`` (past a raw-text element's text)."""
    if m.group(2) or name not in _RAWTEXT:
        return len(data) if name == b"plaintext" else tag_end
    end_match = _RAWTEXT_END[name].search(data, tag_end)
    return len(data) if end_match is None else end_match.start()


def iter_piece_slots(
    content: bytes, content_type: str | None = None, **sizes: int
) -> Iterator[Slot]:
    """The slots of a huge document, as :func:`~loader.discovery.html.iter_slots` gives them.

    One piece's tree at a time.  A big ``<style>`` block gives one ``url`` slot
    per reference, with no ``node`` (a tree gives one ``css`` slot for the block).
    ``sizes`` are :func:`iter_pieces`' ``tags``, ``size`` and ``big_style``.
    """
    from .css import CSSScanner

    data, codec, start = piece_bytes(content, *html_codec(content, content_type))
    scanner = CSSScanner()
    for piece in iter_pieces(data, codec, start, **sizes):
        if piece.css is not None:
            if piece.css_part == 0:
                scanner = CSSScanner()
            # What the style slot of a whole tree gives: style[url()], style[@import] ...
            for ref in scanner.feed(piece.css):
                kind = "style" if ref.kind == "import" else ref.kind
                yield Slot(None, "style", ref.via, kind, "url", ref.url)
        elif piece.html is not None:
            yield from iter_slots(parse_html(piece.html))


_BASE = re.compile(rb"<base[\s/>]", re.IGNORECASE)


def first_base_href(content: bytes, content_type: str | None = None) -> str | None:
    """The ``href`` of a huge document's first ``<base href>``, as written.

    Only the pieces that hold a ``<base`` are parsed.
    """
    data, codec, start = piece_bytes(content, *html_codec(content, content_type))
    if _BASE.search(data, start) is None:
        return None
    for piece in iter_pieces(data, codec, start):
        if piece.html is not None and _BASE.search(data, piece.start, piece.end) is not None:
            href = base_href(parse_html(piece.html))
            if href is not None:
                return href
    return None
