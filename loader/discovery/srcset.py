"""``srcset`` parsing, following the HTML standard's algorithm step by step.

https://html.spec.whatwg.org/multipage/images.html#parsing-a-srcset-attribute

The standard's tricky parts matter in practice: a URL may contain commas
(``data:`` URLs, CDN transformation paths like ``/w_100,h_50/a.jpg``) because
a URL runs to the next whitespace and only *trailing* commas end it;
descriptors may be glued to the next candidate by a comma (``a.png 1x,b.png 2x``);
parentheses inside descriptors protect commas; and a candidate whose
descriptors are invalid is dropped.  Every candidate keeps the span of its URL
in the attribute so that :mod:`~loader.discovery.rewrite` can replace the URL
and keep everything else byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Candidate", "parse_srcset"]

_SKIP_WS = re.compile(r"[ \t\n\f\r]*")
_SKIP_WS_COMMA = re.compile(r"[ \t\n\f\r,]*")
_RUN_NON_WS = re.compile(r"[^ \t\n\f\r]*")
_RUN_DESCRIPTOR = re.compile(r"[^ \t\n\f\r,(]*")
_INTEGER = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One image candidate: ``url`` is ``value[start:end]``; ``descriptors`` as written."""

    url: str
    descriptors: tuple[str, ...]
    start: int
    end: int
    valid: bool = True

    @property
    def width(self) -> int | None:
        """The ``w`` descriptor, if any."""
        for d in self.descriptors:
            if d.endswith("w") and _INTEGER.fullmatch(d[:-1]):
                return int(d[:-1])
        return None

    @property
    def density(self) -> float | None:
        """The ``x`` descriptor, if any."""
        for d in self.descriptors:
            if d.endswith("x") and _FLOAT.fullmatch(d[:-1]):
                return float(d[:-1])
        return None


def _descriptors_valid(descriptors: list[str]) -> bool:
    """Step 13 of the algorithm: the descriptor parser."""
    width = density = height = False
    for d in descriptors:
        value, unit = d[:-1], d[-1:]
        if unit == "w":
            if width or density or not _INTEGER.fullmatch(value) or int(value) == 0:
                return False
            width = True
        elif unit == "x":
            if width or density or height or not _FLOAT.fullmatch(value):
                return False
            if float(value) < 0:
                return False
            density = True
        elif unit == "h":
            if height or density or not _INTEGER.fullmatch(value) or int(value) == 0:
                return False
            height = True
        else:
            return False
    # A height descriptor without a width descriptor is an error.
    return not (height and not width)


def parse_srcset(value: str, *, keep_invalid: bool = False) -> list[Candidate]:
    """Parse a ``srcset`` value into its image candidates, in order.

    Candidates with invalid descriptors are dropped, as browsers drop them,
    unless ``keep_invalid`` is true (then they are returned with
    ``valid=False``; rewriting uses this to leave no URL behind).  Runs in
    time linear in ``len(value)`` and never raises.
    """
    candidates: list[Candidate] = []
    n = len(value)
    pos = 0
    while True:
        # Splitting loop: skip whitespace and commas.
        pos = _SKIP_WS_COMMA.match(value, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            return candidates
        start = pos
        pos = _RUN_NON_WS.match(value, pos).end()  # type: ignore[union-attr]
        url = value[start:pos]
        descriptors: list[str] = []
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            pos = _tokenize_descriptors(value, pos, descriptors)
        valid = _descriptors_valid(descriptors)
        if url and (valid or keep_invalid):
            candidates.append(Candidate(url, tuple(descriptors), start, start + len(url), valid))


def _tokenize_descriptors(value: str, pos: int, descriptors: list[str]) -> int:
    """The descriptor tokeniser (step 8); consumes runs with regexes, returns the new position."""
    n = len(value)
    pos = _SKIP_WS.match(value, pos).end()  # type: ignore[union-attr]
    current = ""
    in_descriptor = True  # else: "after descriptor"
    while True:
        if in_descriptor:
            run = _RUN_DESCRIPTOR.match(value, pos).end()  # type: ignore[union-attr]
            current += value[pos:run]
            pos = run
            c = value[pos] if pos < n else ""
            if not c:
                if current:
                    descriptors.append(current)
                return pos
            if c == ",":
                if current:
                    descriptors.append(current)
                return pos + 1
            if c == "(":
                # "In parens": everything up to the closing parenthesis, commas too.
                close = value.find(")", pos)
                if close < 0:
                    descriptors.append(current + value[pos:])
                    return n
                current += value[pos : close + 1]
                pos = close + 1
                continue
            # Whitespace ends the descriptor.
            if current:
                descriptors.append(current)
                current = ""
                in_descriptor = False
            pos += 1
        else:
            pos = _SKIP_WS.match(value, pos).end()  # type: ignore[union-attr]
            if pos >= n:
                return pos
            in_descriptor = True
