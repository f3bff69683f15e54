"""The browser discovery imitates: a device, and the rules a browser loads by.

:class:`Browser` is the device (viewport, device pixel ratio, scripting) and
how faithful to it discovery is (``all_candidates`` keeps every ``srcset``
candidate, what an archiver wants).  The functions here are the pure parts of
the model, no tree walking:

* :func:`media_matches`: a media query list against the device (``width``,
  ``height``, ``aspect-ratio``, ``orientation``, ``resolution`` and the
  ``-webkit-device-pixel-ratio`` forms, ``prefers-*`` at their defaults,
  ``hover``/``pointer`` of a desktop); ``None`` when it cannot tell (an unknown
  feature or unit), which callers treat as *applies* (a miss is worse than an
  extra);
* :func:`source_size`: a ``sizes`` attribute's width in CSS pixels;
* :func:`choose_candidate`: the ``srcset`` candidate Chromium picks;
* :func:`selector_verdict`: whether a CSS rule's selector list could apply to a
  parsed document (pseudo-elements stripped, user-action pseudo-classes skipped,
  lexbor evaluates the rest; a selector it cannot parse keeps the rule).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .srcset import Candidate

__all__ = [
    "ARCHIVER",
    "DEFAULT_BROWSER",
    "Browser",
    "choose_candidate",
    "media_matches",
    "selector_verdict",
    "source_size",
    "type_supported",
]


@dataclass(frozen=True, slots=True)
class Browser:
    """The device discovery decides for, and how closely it follows it.

    ``viewport`` is the window's (width, height) in CSS pixels; ``dpr`` the
    device pixel ratio; ``scripting`` whether scripts run (then ``<noscript>``
    content is inert text); ``all_candidates`` keeps every ``srcset`` and
    ``<picture>`` candidate instead of the one the browser chooses.
    ``faithful=False`` turns the whole model off: every URL written in the
    document is found, as before the model existed.
    """

    viewport: tuple[int, int] = (1280, 800)
    dpr: float = 1.0
    scripting: bool = True
    all_candidates: bool = False
    faithful: bool = True

    @property
    def width(self) -> int:
        """The viewport's width in CSS pixels."""
        return self.viewport[0]

    @property
    def height(self) -> int:
        """The viewport's height in CSS pixels."""
        return self.viewport[1]


#: The default: a desktop window of 1280x800 at 1 dppx, scripting on.
DEFAULT_BROWSER = Browser()
#: Every URL the document names (no browser model): what tests of the parsers use.
ARCHIVER = Browser(scripting=False, all_candidates=True, faithful=False)

# ---------------------------------------------------------------------------
# Media queries

_FONT_PX = 16.0
_LENGTH = re.compile(r"(-?[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([a-z%]*)\Z")
_RATIO = re.compile(r"([0-9]*\.?[0-9]+)\s*(?:/\s*([0-9]*\.?[0-9]+))?\Z")
_MEDIA_TYPES_SHOWN = frozenset({"all", "screen"})
_MEDIA_TYPES_KNOWN = frozenset(
    {"all", "screen", "print", "speech", "tv", "projection", "handheld", "braille",
     "embossed", "aural", "tty"}
)
# prefers-* and other user/device settings at a desktop browser's defaults.
_DISCRETE = {
    "prefers-color-scheme": "light",
    "prefers-reduced-motion": "no-preference",
    "prefers-reduced-transparency": "no-preference",
    "prefers-reduced-data": "no-preference",
    "prefers-contrast": "no-preference",
    "forced-colors": "none",
    "inverted-colors": "none",
    "hover": "hover",
    "any-hover": "hover",
    "pointer": "fine",
    "any-pointer": "fine",
    "scripting": None,  # filled from the Browser
    "update": "fast",
    "display-mode": "browser",
    "color-gamut": "srgb",
    "dynamic-range": "standard",
    "grid": "0",
    "overflow-block": "scroll",
    "overflow-inline": "scroll",
}
_RANGE_OPS = re.compile(r"(<=|>=|<|>|=)")


def _length_px(text: str, browser: Browser) -> float | None:
    m = _LENGTH.match(text.strip().lower())
    if m is None:
        return None
    value, unit = float(m.group(1)), m.group(2)
    if unit == "px" or (unit == "" and value == 0):
        return value
    if unit in ("em", "rem"):
        return value * _FONT_PX
    if unit == "vw":
        return value * browser.width / 100
    if unit == "vh":
        return value * browser.height / 100
    if unit == "vmin":
        return value * min(browser.viewport) / 100
    if unit == "vmax":
        return value * max(browser.viewport) / 100
    if unit == "pt":
        return value * 96 / 72
    if unit == "pc":
        return value * 16
    if unit == "in":
        return value * 96
    if unit == "cm":
        return value * 96 / 2.54
    if unit == "mm":
        return value * 96 / 25.4
    return None


def _resolution_dppx(text: str) -> float | None:
    m = _LENGTH.match(text.strip().lower())
    if m is None:
        return None
    value, unit = float(m.group(1)), m.group(2)
    if unit in ("dppx", "x"):
        return value
    if unit == "dpi":
        return value / 96
    if unit == "dpcm":
        return value * 2.54 / 96
    if unit == "" and value == 0:
        return 0.0
    return None


def _ratio(text: str) -> float | None:
    m = _RATIO.match(text.strip())
    if m is None:
        return None
    num = float(m.group(1))
    den = float(m.group(2)) if m.group(2) else 1.0
    return num / den if den else None


def _feature_value(name: str, browser: Browser) -> tuple[float | str | None, Callable[[str], Any] | None]:
    """The device's value of a range feature and the parser of its operand."""
    if name == "width":
        return float(browser.width), lambda t: _length_px(t, browser)
    if name == "height":
        return float(browser.height), lambda t: _length_px(t, browser)
    if name in ("device-width",):
        return float(browser.width), lambda t: _length_px(t, browser)
    if name in ("device-height",):
        return float(browser.height), lambda t: _length_px(t, browser)
    if name in ("aspect-ratio", "device-aspect-ratio"):
        return browser.width / max(browser.height, 1), _ratio
    if name == "resolution":
        return browser.dpr, _resolution_dppx
    if name == "-webkit-device-pixel-ratio" or name == "device-pixel-ratio":
        return browser.dpr, lambda t: _ratio(t)
    if name in ("color",):
        return 8.0, lambda t: _ratio(t)
    if name in ("monochrome",):
        return 0.0, lambda t: _ratio(t)
    return None, None


def _compare(left: float, op: str, right: float) -> bool:
    eps = 1e-9
    if op == "<":
        return left < right - eps
    if op == "<=":
        return left <= right + eps
    if op == ">":
        return left > right + eps
    if op == ">=":
        return left >= right - eps
    return abs(left - right) <= eps


def _feature(text: str, browser: Browser) -> bool | None:
    """One parenthesised media feature: ``(min-width: 600px)``, ``(width >= 40em)`` …"""
    body = text.strip()
    if ":" in body and not _RANGE_OPS.search(body.split(":", 1)[0]):
        name, _, raw = body.partition(":")
        name, raw = name.strip().lower(), raw.strip()
        prefix = ""
        for p in ("min-", "max-", "-webkit-min-", "-webkit-max-"):
            if name.startswith(p):
                prefix, name = p, name[len(p):]
                if p.startswith("-webkit-"):
                    name = "-webkit-" + name
                break
        if name == "orientation":
            actual = "portrait" if browser.height >= browser.width else "landscape"
            return raw.lower() == actual
        if name in _DISCRETE:
            expected = _DISCRETE[name]
            if name == "scripting":
                expected = "enabled" if browser.scripting else "none"
            return raw.lower() == expected
        value, parse = _feature_value(name, browser)
        if value is None or parse is None:
            return None
        operand = parse(raw)
        if operand is None:
            return None
        op = ">=" if prefix.endswith("min-") else "<=" if prefix.endswith("max-") else "="
        return _compare(float(value), op, float(operand))
    if _RANGE_OPS.search(body):
        # Range syntax: "width >= 600px", "400px < width <= 700px".
        parts = [p.strip() for p in _RANGE_OPS.split(body)]
        if len(parts) not in (3, 5):
            return None
        names = [p.lower() for p in parts[0::2]]
        feature = next((n for n in names if _feature_value(n, browser)[0] is not None), None)
        if feature is None:
            return None
        value, parse = _feature_value(feature, browser)
        assert parse is not None and value is not None
        terms: list[float] = []
        for p in parts[0::2]:
            if p.lower() == feature:
                terms.append(float(value))
            else:
                parsed = parse(p)
                if parsed is None:
                    return None
                terms.append(float(parsed))
        ops = parts[1::2]
        return all(_compare(terms[i], ops[i], terms[i + 1]) for i in range(len(ops)))
    name = body.lower()
    if name in ("orientation",):
        return True
    if name in ("color", "hover", "pointer", "any-hover", "any-pointer", "width", "height",
                "resolution", "grid"):
        return name != "grid"
    if name in ("monochrome", "prefers-reduced-motion", "prefers-contrast", "forced-colors",
                "inverted-colors", "prefers-reduced-transparency", "prefers-reduced-data"):
        return False
    if name == "scripting":
        return browser.scripting
    return None


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif ch == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


_CONDITION_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def _condition(text: str, browser: Browser) -> bool | None:
    """A media condition: features joined by ``and``/``or``, ``not`` and parentheses."""
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        m = _CONDITION_TOKEN.match(text, pos)
        if m is None:
            break
        tok = m.group(1)
        if tok == "(":
            depth, end = 0, m.start(1)
            for end in range(m.start(1), len(text)):
                if text[end] == "(":
                    depth += 1
                elif text[end] == ")":
                    depth -= 1
                    if depth == 0:
                        break
            else:
                return None
            tokens.append(text[m.start(1) : end + 1])
            pos = end + 1
        else:
            tokens.append(tok)
            pos = m.end()
        if len(tokens) > 64:
            return None
    return _evaluate(tokens, browser)


def _three(a: bool | None, b: bool | None, op: str) -> bool | None:
    if op == "and":
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _evaluate(tokens: list[str], browser: Browser) -> bool | None:
    if not tokens:
        return None
    result: bool | None = None
    op: str | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        negate = False
        if tok.lower() == "not":
            negate = True
            i += 1
            if i >= len(tokens):
                return None
            tok = tokens[i]
        if not tok.startswith("("):
            return None
        inner = tok[1:-1]
        value = _condition(inner, browser) if inner.lstrip().startswith(("(", "not ")) else _feature(inner, browser)
        if negate and value is not None:
            value = not value
        result = value if op is None else _three(result, value, op)
        i += 1
        if i < len(tokens):
            op = tokens[i].lower()
            if op not in ("and", "or"):
                return None
            i += 1
    return result


def _query(text: str, browser: Browser) -> bool | None:
    words = text.strip()
    if not words:
        return True
    lower = words.lower()
    negate = False
    if lower.startswith("not "):
        negate, words = True, words[4:].lstrip()
    elif lower.startswith("only "):
        words = words[5:].lstrip()
    if words.startswith("("):
        value = _condition(words, browser)
        if negate:
            # "not (cond)" without a type: the condition negated.
            return None if value is None else not value
        return value
    media_type, _, rest = words.partition(" ")
    media_type = media_type.lower()
    if media_type not in _MEDIA_TYPES_KNOWN:
        return None if not negate else None
    shown = media_type in _MEDIA_TYPES_SHOWN
    rest = rest.strip()
    if rest:
        if not rest.lower().startswith("and"):
            return None
        cond = _condition(rest[3:], browser)
        value = _three(shown, cond, "and")
    else:
        value = shown
    if negate:
        return None if value is None else not value
    return value


def media_matches(media: str, browser: Browser) -> bool | None:
    """Whether a media query list applies to the device; ``None`` if it cannot tell."""
    if len(media) > 200:
        return _media_matches(media, browser)
    return _cached_media_matches(media, browser)


def _media_matches(media: str, browser: Browser) -> bool | None:
    text = media.strip()
    if not text:
        return True
    if len(text) > 2000:
        return None
    result: bool | None = False
    for query in _split_top(text, ","):
        result = _three(result, _query(query, browser), "or")
        if result is True:
            return True
    return result


# A page repeats the same few queries (every <source> of a gallery).
_cached_media_matches = functools.lru_cache(maxsize=512)(_media_matches)

# ---------------------------------------------------------------------------
# srcset, sizes, <source type>


def source_size(sizes: str | None, browser: Browser) -> float | None:
    """The width in CSS pixels a ``sizes`` attribute gives (``100vw`` when absent or all fail).

    ``None`` when a condition or length cannot be evaluated before one applies.
    """
    if not sizes or not sizes.strip():
        return float(browser.width)
    for part in _split_top(sizes, ","):
        part = part.strip()
        if not part:
            continue
        if part.endswith(")") and "(" in part and not part.lower().startswith(("calc(", "min(", "max(", "clamp(")):
            # "(max-width: 600px)" alone: a condition with no length, invalid.
            continue
        condition, length = _split_condition(part)
        if condition:
            verdict = _condition(condition, browser)
            if verdict is None:
                return None
            if not verdict:
                continue
        if length.lower() == "auto":
            return None
        px = _length_px(length, browser)
        if px is None:
            return None
        if px < 0:
            continue
        return px
    return float(browser.width)


def _split_condition(part: str) -> tuple[str, str]:
    """``"(max-width: 600px) 50vw"`` → the condition and the length."""
    depth = 0
    last_close = -1
    for i, ch in enumerate(part):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                last_close = i
    if last_close < 0:
        return "", part
    tail = part[last_close + 1 :].strip()
    head = part[: last_close + 1]
    if not tail:
        return "", part  # a lone length such as calc(...)
    if re.search(r"\b(?:calc|min|max|clamp)\s*\(", head.lower()) and not head.lstrip().startswith(("(", "not")):
        return "", part
    return head, tail


# Types Chromium decodes: a <source type> naming another is skipped.
_IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/gif", "image/webp",
     "image/avif", "image/svg+xml", "image/apng", "image/bmp", "image/x-ms-bmp",
     "image/x-icon", "image/vnd.microsoft.icon", "image/x-png", "image/x-xbitmap"}
)


# Decoded by some Chromium builds, not others: such a source is kept, and so is the next.
_MAYBE_TYPES = frozenset({"image/jxl", "image/heic", "image/heif", "image/jpeg-xl"})


def type_supported(mime: str | None) -> bool | None:
    """Whether the browser decodes images of ``<source type>`` ``mime`` (``None``: some builds do)."""
    if mime is None or not mime.strip():
        return True
    name = mime.split(";", 1)[0].strip().lower()
    if name in _MAYBE_TYPES:
        return None
    return name in _IMAGE_TYPES


def choose_candidate(
    candidates: Sequence[Candidate], browser: Browser, sizes: str | None = None,
) -> tuple[Candidate | None, str]:
    """The candidate Chromium's selection picks, and why; ``None`` when it cannot tell.

    Densities come from ``x`` descriptors (1 when none) or from ``w``
    descriptors divided by the ``sizes`` width.  Candidates are sorted by
    density (the first of equal ones kept) and the first whose density
    reaches the DPR is chosen, else the densest.
    """
    if not candidates:
        return None, "srcset: no candidate"
    width_based = any(c.width is not None for c in candidates)
    size: float | None = None
    if width_based:
        size = source_size(sizes, browser)
        if size is None:
            return None, f"srcset: sizes {sizes!r} not evaluated"
        size = max(size, 1.0)
    scored: list[tuple[float, int, Candidate]] = []
    for index, c in enumerate(candidates):
        if c.width is not None and size is not None:
            density = c.width / size
        elif width_based:
            # Mixed descriptors: the spec drops x candidates from a w srcset.
            continue
        else:
            d = c.density
            density = 1.0 if d is None else d
        scored.append((density, index, c))
    if not scored:
        return None, "srcset: no usable candidate"
    scored.sort(key=lambda t: (t[0], t[1]))
    unique: list[tuple[float, int, Candidate]] = []
    for item in scored:
        if not unique or not math.isclose(unique[-1][0], item[0]):
            unique.append(item)
    dpr = browser.dpr
    # The smallest density that reaches the DPR, else the largest: what Chromium
    # picked in every case tools/browser_compare.py measured (its older rule of
    # a geometric mean between neighbours chose the smaller one more often).
    chosen = next((i for i, item in enumerate(unique) if item[0] >= dpr - 1e-9), len(unique) - 1)
    candidate = unique[chosen][2]
    label = " ".join(candidate.descriptors) or "1x"
    where = f" (sizes {size:g}px)" if size is not None else ""
    return candidate, f"srcset: chose {label} for dpr {dpr:g}{where}"


# ---------------------------------------------------------------------------
# CSS selectors

_USER_ACTION = re.compile(r":(?:hover|focus|focus-within|focus-visible|active|visited)\b", re.IGNORECASE)
_PSEUDO_ELEMENT = re.compile(
    r"::?(?:before|after|first-line|first-letter)\b|::[-a-zA-Z]+(?:\([^)]*\))?",
    re.IGNORECASE,
)
_MAX_SELECTOR = 1000


def selector_verdict(selectors: str, match: Callable[[str], bool | None]) -> tuple[bool, str]:
    """Whether a rule with selector list ``selectors`` could apply, and why.

    ``match(selector)`` says whether a selector matches an element of the
    document (``None``: it could not be evaluated).  A selector list applies
    when one of its selectors does; selectors that need a user action
    (``:hover``, ``:focus`` …, ``:visited``) are skipped, the others are
    evaluated with pseudo-elements stripped; one that cannot be evaluated
    keeps the rule.
    """
    text = " ".join(selectors.split())
    if len(text) > _MAX_SELECTOR * 4 or "&" in text:
        return True, f"css: rule {_short(text)} kept (selector not evaluated)"
    user_action = False
    unknown = False
    for raw in _split_top(text, ","):
        selector = raw.strip()
        if not selector:
            continue
        if _USER_ACTION.search(selector) and ":not(" not in selector.lower():
            user_action = True
            continue
        bare = _PSEUDO_ELEMENT.sub("", selector).strip()
        bare = _USER_ACTION.sub("", bare).strip() if ":not(" in bare.lower() else bare
        if not bare or bare[-1] in ">+~":
            bare = (bare.rstrip(">+~ ") + " *").strip() if bare else "*"
        if len(bare) > _MAX_SELECTOR:
            unknown = True
            continue
        verdict = match(bare)
        if verdict:
            return True, f"css: rule matched {_short(selector)}"
        if verdict is None:
            unknown = True
    if unknown:
        return True, f"css: rule {_short(text)} kept (selector not evaluated)"
    if user_action:
        return False, f"css: rule {_short(text)} applies only under :hover/:focus/:active"
    return False, f"css: rule {_short(text)} matches no element"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
