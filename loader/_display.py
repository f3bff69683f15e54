"""Text shown to a person: nothing a server or a page sent may control the terminal.

Server text (an FTP reply, a Gopher error item, an HTTP reason phrase) and URLs
reach progress lines, errors and listings.  :func:`printable` escapes what a
terminal would act on or what would hide or reorder text: C0/C1 controls
(ESC sequences), DEL, bidirectional overrides and isolates (U+202E …), zero-width
and other invisible format characters, and line/paragraph separators.  Each is
written as a visible ``\\xNN``/``\\uNNNN`` escape, so nothing is silently lost.
:func:`shown_url` also redacts a password.
"""

from __future__ import annotations

import json
import re
import unicodedata

from ._urls import redact_url

__all__ = ["json_line", "printable", "shown_url", "size_text"]

#: Controls, DEL, C1, and the format (Cf) / separator (Zl, Zp) characters that hide or
#: reorder text; checked with unicodedata only for characters past Latin-1.
_SUSPECT = re.compile(r"[\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u115f\u1160"
                      r"\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f"
                      r"\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\U000e0000-\U000e0fff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control, bidi and invisible character written as an escape."""
    if text.isprintable() and text.isascii():
        return text
    escaped = _SUSPECT.sub(_escape, text)
    if escaped.isascii():
        return escaped
    # Any other format character (category Cf) unicodedata knows of, e.g. newer ones.
    return "".join(
        _escape(re.match(".", c, re.S)) if unicodedata.category(c) in ("Cf", "Cc", "Zl", "Zp", "Co", "Cn")  # type: ignore[arg-type]
        else c
        for c in escaped
    )


def shown_url(url: str) -> str:
    """A URL as it may be shown: password redacted, controls and bidi characters escaped."""
    return printable(redact_url(url))


def size_text(size: int) -> str:
    """A byte count as a person reads it: ``512 bytes``, ``64 MiB``, ``1.5 GiB``."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def json_line(record: object) -> str:
    """One JSON value for a terminal or a pipe: what a terminal would act on or hide is
    a JSON escape, ordinary non-ASCII text stays readable.

    ``json.dumps`` escapes C0 controls but, without ``ensure_ascii``, writes DEL, C1
    controls, bidi overrides and zero-width characters raw.  Such characters can only
    stand inside strings, where JSON's ``\\uXXXX`` keeps the data exact for a program
    and inert on a terminal.
    """
    text = json.dumps(record, ensure_ascii=False)
    if printable(text) == text:
        return text
    return "".join(c if printable(c) == c else json.dumps(c)[1:-1] for c in text)
