"""Finding the URLs in CSS: ``url()``, ``image-set()``, ``@import`` and ``@font-face``.

Not a full CSS parser: a single linear scan over the tokens that matter
(comments, strings, ``url()`` tokens, function openings, at-keywords, braces,
parentheses and semicolons), with just enough state to tell

* ``@import "a.css"`` / ``@import url(a.css)`` → kind ``"import"``;
* ``url()`` inside an ``@font-face`` block → kind ``"font"``;
* ``@namespace`` URLs → ignored (they name a namespace, not a resource);
* ``image-set("a.png" 1x, url(b.png) 2x)`` strings → images (but not the
  MIME type in ``type("image/avif")``);
* any other ``url()`` → kind ``"image"`` (backgrounds, cursors, list markers,
  masks, border images …).

Comments are skipped, CSS escapes decoded, and every reference keeps the span
it occupies in the text so the text can be rewritten around it.  Regexes are
written so that no input makes them backtrack: the scan is linear in the size
of the CSS, whatever it contains.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CSSRef", "CSSScanner", "css_cuts", "css_string", "find_css_urls", "iter_css_urls", "unescape_css"]

_TOKEN = re.compile(
    r"""
      (?P<comment>/\*.*?(?:\*/|\Z))
    | (?P<string>"(?P<body1>(?:[^"\\\n]|\\.)*+)(?P<end1>"?)|'(?P<body2>(?:[^'\\\n]|\\.)*+)(?P<end2>'?))
    | (?<![\w\-\\])(?P<url>url\(\s*+(?P<unquoted>(?:[^\s"'()\\]|\\[0-9a-fA-F]{1,6}\s?|\\.)*+)\s*+\))
    | (?<![\w\-\\])(?P<function>-?[a-zA-Z_][\w\-]*+)\(
    | (?P<at>@-?[a-zA-Z_][\w\-]*+)
    | (?P<punct>[(){};])
    """,
    re.DOTALL | re.VERBOSE | re.IGNORECASE,
)
_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(\r\n|[\n\r\f])|(.)|\Z)", re.DOTALL)

# Deeper blocks keep an empty prelude: hostile nesting must not keep copies of the text.
_MAX_PRELUDES = 32
_PROPERTY = re.compile(r"\s*+(-?[A-Za-z][\w\-]*+)\s*+:")
_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)


def _prelude(text: str) -> str:
    """A block's prelude without comments, whitespace collapsed."""
    if "/*" in text:
        text = _COMMENT.sub(" ", text)
    return " ".join(text.split())


_IMAGE_SET = frozenset({"image-set", "-webkit-image-set", "-moz-image-set", "-o-image-set"})


@dataclass(frozen=True, slots=True)
class CSSRef:
    """One URL reference in CSS.

    ``url`` is the reference with escapes decoded (still relative);
    ``kind`` is ``"image"``, ``"font"`` or ``"import"``; ``via`` is how it
    was written (``"url()"``, ``"image-set()"``, ``"@import"``);
    ``text[start:end]`` is the token to replace when rewriting (the whole
    ``url(...)`` for an unquoted URL, else the string including its quotes).
    """

    url: str
    kind: str
    via: str
    start: int
    end: int
    #: The preludes of the blocks the reference stands in, outermost first
    #: (``("@media (min-width: 40em)", ".hero::before")``); empty at top level.
    context: tuple[str, ...] = ()
    #: The property of the declaration it stands in (``"background"``), ``""`` if none,
    #: and where that declaration starts in the text (``-1`` if none).
    property: str = ""
    declared_at: int = -1


def _unescape_match(m: re.Match[str]) -> str:
    hex_digits, newline, char = m.group(1), m.group(2), m.group(3)
    if hex_digits:
        code = int(hex_digits, 16)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return "\ufffd"
        return chr(code)
    if newline:
        return ""  # an escaped newline continues a string
    if char is not None:
        return char
    return "\ufffd"  # a backslash at the very end


def unescape_css(text: str) -> str:
    """Decode CSS escapes (``\\41 `` → ``A``, ``\\"`` → ``"``, escaped newlines removed)."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(_unescape_match, text)


def css_string(value: str) -> str:
    """Serialize ``value`` as a double-quoted CSS string, safe inside ``<style>`` and attributes."""
    out = []
    for ch in value:
        if ch in '"\\' or ch < " " or ch in "<>\x7f":
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# The tokens a "}" may hide in, and "}" itself, over the bytes of a stylesheet
# (UTF-8 or a legacy encoding whose multi-byte characters hold no ASCII byte).
_CUT_TOKEN = re.compile(
    rb"""/\*.*?(?:\*/|\Z)|"(?:[^"\\\n]|\\.)*+"?|'(?:[^'\\\n]|\\.)*+'?"""
    rb"""|(?<![\w\-\\])url\(\s*+(?:[^\s"'()\\]|\\[0-9a-fA-F]{1,6}\s?|\\.)*+\s*+\)|\}""",
    re.DOTALL | re.IGNORECASE,
)


def css_cuts(data: bytes, start: int, end: int, size: int) -> Iterator[int]:
    """Where to cut the stylesheet ``data[start:end]`` into parts for :class:`CSSScanner`.

    Yields increasing offsets, each right after a ``}`` outside comments,
    strings and ``url()``, at least ``size`` bytes after the one before
    (``start`` is the first part's start), and ``end`` last.
    """
    at = start
    while at + size < end:
        target = at + size
        for m in _CUT_TOKEN.finditer(data, at, end):
            if m.end() >= target and m.group() == b"}":
                at = m.end()
                yield at
                break
        else:
            break
    yield end


def find_css_urls(text: str) -> list[CSSRef]:
    """Return every URL reference in the stylesheet (or ``style`` attribute) ``text``, in order."""
    return list(iter_css_urls(text))


def iter_css_urls(text: str) -> Iterator[CSSRef]:
    """Yield the references :func:`find_css_urls` returns, one at a time.

    A huge stylesheet's million references need not all be alive at once.
    """
    return CSSScanner().feed(text)


class CSSScanner:
    """:func:`iter_css_urls` over a stylesheet given in consecutive parts.

    Each part must end right after a ``}`` that is not inside a comment,
    string or ``url()`` (:func:`css_cuts` finds such places), so that no token
    spans two parts; the state between tokens (open blocks, the pending
    at-rule) carries over.  A reference's ``start``/``end`` are in its part.
    """

    __slots__ = ("at_rule", "at_rule_has_url", "blocks", "deep", "functions", "in_font_face", "preludes")

    def __init__(self) -> None:
        self.functions: list[str] = []  # open functions/parentheses, innermost last
        self.at_rule: str | None = None  # pending at-rule, until its ';' or '{'
        self.at_rule_has_url = False
        self.blocks: list[bool] = []  # open '{' blocks: is it an @font-face block?
        self.in_font_face = 0
        # The preludes of the open blocks (selectors, at-rules), for CSSRef.context.
        self.preludes: list[str] = []
        self.deep = 0  # open blocks past _MAX_PRELUDES

    def feed(self, text: str) -> Iterator[CSSRef]:
        """Yield the references in the next part, ``text``."""
        functions, blocks, preludes = self.functions, self.blocks, self.preludes
        at_rule, at_rule_has_url, in_font_face = self.at_rule, self.at_rule_has_url, self.in_font_face
        prelude_start = 0  # where the next block's prelude begins
        context: tuple[str, ...] = tuple(preludes)
        deep = self.deep
        for m in _TOKEN.finditer(text):
            group = m.lastgroup
            if group == "string":
                if m.group("body1") is not None:
                    body, closed = m.group("body1"), m.group("end1")
                else:
                    body, closed = m.group("body2"), m.group("end2")
                if not closed and m.end() < len(text):
                    # A "bad string", cut by a newline: browsers drop the whole
                    # declaration, so nothing after it in these functions counts.
                    functions.clear()
                    continue
                top = functions[-1] if functions else None
                if top is None and at_rule == "import" and not at_rule_has_url:
                    at_rule_has_url = True
                    kind, via = "import", "@import"
                elif top == "url":
                    if len(functions) > 1 and functions[-2] in _IMAGE_SET:
                        kind, via = "image", "image-set()"
                    else:
                        kind, via = ("font" if in_font_face else "image"), "url()"
                elif top == "import-url":
                    kind, via = "import", "@import"
                elif top in _IMAGE_SET:
                    kind, via = "image", "image-set()"
                else:
                    continue
                prop = _PROPERTY.match(text, prelude_start) if context else None
                yield CSSRef(unescape_css(body), kind, via, m.start(), m.end(), context,
                             prop.group(1).lower() if prop else "", prelude_start if prop else -1)
            elif group == "url":
                top = functions[-1] if functions else None
                if at_rule == "namespace":
                    continue
                if at_rule == "import" and top is None:
                    if at_rule_has_url:
                        continue
                    at_rule_has_url = True
                    kind, via = "import", "@import"
                elif top in _IMAGE_SET:
                    kind, via = "image", "image-set()"
                else:
                    kind, via = ("font" if in_font_face else "image"), "url()"
                prop = _PROPERTY.match(text, prelude_start) if context else None
                yield CSSRef(unescape_css(m.group("unquoted")), kind, via, m.start(), m.end(), context,
                             prop.group(1).lower() if prop else "", prelude_start if prop else -1)
            elif group == "function":
                name = m.group("function").lower()
                if name == "url":
                    if at_rule == "namespace":
                        name = "ignored-url"
                    elif at_rule == "import" and not functions:
                        name = "ignored-url" if at_rule_has_url else "import-url"
                        at_rule_has_url = True
                if len(functions) < 1_000:
                    functions.append(name)
                else:
                    # Hostile nesting: keep memory bounded; deep levels hold no URL.
                    functions.append("(")
                    del functions[:500]
            elif group == "at":
                at_rule = m.group("at")[1:].lower()
                at_rule_has_url = False
            elif group == "punct":
                ch = m.group()
                if ch == "(":
                    functions.append("(")
                elif ch == ")":
                    if functions:
                        functions.pop()
                elif ch == "{":
                    functions.clear()
                    is_font_face = at_rule == "font-face"
                    if len(preludes) < _MAX_PRELUDES:
                        preludes.append(_prelude(text[max(prelude_start, m.start() - 8192) : m.start()]))
                        context = tuple(preludes)
                    else:
                        deep += 1
                    prelude_start = m.end()
                    blocks.append(is_font_face)
                    in_font_face += is_font_face
                    at_rule = None
                elif ch == "}":
                    functions.clear()
                    at_rule = None
                    prelude_start = m.end()
                    if deep:
                        deep -= 1
                    elif preludes:
                        preludes.pop()
                        context = tuple(preludes)
                    if blocks and blocks.pop():
                        in_font_face -= 1
                elif not functions:  # ';'
                    at_rule = None
                    prelude_start = m.end()
        self.at_rule, self.at_rule_has_url, self.in_font_face = at_rule, at_rule_has_url, in_font_face
        self.deep = deep
