"""Decoding fetched HTML and CSS bytes to text, the way browsers pick the encoding.

HTML: a byte-order mark, else the ``charset`` of the ``Content-Type``, else a
``<meta charset>`` / ``<meta http-equiv=content-type>`` in the first 1024
bytes, else UTF-8.  CSS: BOM, ``Content-Type``, ``@charset``, else UTF-8.
Only encodings of the WHATWG Encoding Standard are honoured (so a page cannot
pick ``utf-7`` or a binary codec such as ``base64``), with its label mapping
(``iso-8859-1`` reads as ``windows-1252``, ``gb2312`` as ``gb18030`` …).
Decoding never fails: undecodable bytes become U+FFFD.
"""

from __future__ import annotations

import codecs
import re

__all__ = [
    "charset_from_content_type",
    "decode_css",
    "decode_html",
    "html_codec",
    "lookup_encoding",
]

# WHATWG labels whose decoder is not the Python codec of the same name.
_WHATWG_ALIASES = {
    **dict.fromkeys(
        (
            "ansi_x3.4-1968",
            "ascii",
            "cp1252",
            "cp819",
            "csisolatin1",
            "ibm819",
            "iso-8859-1",
            "iso-ir-100",
            "iso8859-1",
            "iso88591",
            "iso_8859-1",
            "iso_8859-1:1987",
            "l1",
            "latin1",
            "us-ascii",
            "windows-1252",
            "x-cp1252",
        ),
        "cp1252",
    ),
    **dict.fromkeys(
        ("iso-8859-9", "iso8859-9", "iso88599", "iso_8859-9", "l5", "latin5", "windows-1254"),
        "cp1254",
    ),
    **dict.fromkeys(("iso-8859-11", "iso8859-11", "tis-620", "windows-874", "dos-874"), "cp874"),
    **dict.fromkeys(
        (
            "gb2312",
            "gbk",
            "x-gbk",
            "chinese",
            "csgb2312",
            "csiso58gb231280",
            "gb_2312",
            "gb_2312-80",
            "iso-ir-58",
            "gb18030",
        ),
        "gb18030",
    ),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"), "big5hkscs"),
    **dict.fromkeys(
        (
            "shift_jis",
            "shift-jis",
            "sjis",
            "x-sjis",
            "ms_kanji",
            "ms932",
            "windows-31j",
            "csshiftjis",
        ),
        "cp932",
    ),
    **dict.fromkeys(
        (
            "euc-kr",
            "ks_c_5601-1987",
            "ks_c_5601-1989",
            "ksc5601",
            "ksc_5601",
            "korean",
            "windows-949",
            "cseuckr",
            "csksc56011987",
            "iso-ir-149",
        ),
        "cp949",
    ),
    **dict.fromkeys(("utf-16", "utf-16le", "unicode", "ucs-2", "unicodefeff"), "utf-16-le"),
    **dict.fromkeys(("utf-16be", "unicodefffe"), "utf-16-be"),
    **dict.fromkeys(("x-mac-roman", "macintosh", "mac", "csmacintosh"), "mac-roman"),
    **dict.fromkeys(("x-mac-cyrillic", "x-mac-ukrainian"), "mac-cyrillic"),
}

# Python codec names of the WHATWG Encoding Standard's encodings.
_ALLOWED_CODECS = frozenset(
    {
        "utf-8",
        "utf-16-le",
        "utf-16-be",
        "cp866",
        "koi8-r",
        "koi8-u",
        "mac-roman",
        "mac-cyrillic",
        "gb18030",
        "big5hkscs",
        "euc_jp",
        "iso2022_jp",
        "cp932",
        "cp949",
        *(f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)),
        *(f"cp{n}" for n in (874, 1250, 1251, 1252, 1253, 1254, 1255, 1256, 1257, 1258)),
    }
)

_CODEC_REMAP = {
    "ascii": "cp1252",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "utf-16": "utf-16-le",
}

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([^\s"';,]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([^\s"'/>;]+)""", re.IGNORECASE
)
_CSS_CHARSET = re.compile(rb'@charset "([^"]{1,40})";')


def lookup_encoding(label: str | None) -> str | None:
    """Return the Python codec name for a WHATWG encoding ``label``, or ``None`` if unsupported."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    name = _WHATWG_ALIASES.get(name, name)
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    # Python spellings of labels the standard maps elsewhere ("latin-1", "ascii" ...).
    codec = _CODEC_REMAP.get(codec, codec)
    return codec if codec in _ALLOWED_CODECS else None


def charset_from_content_type(content_type: str | None) -> str | None:
    """The codec named by a ``Content-Type`` header's ``charset`` parameter, if supported."""
    if not content_type:
        return None
    match = _CHARSET_PARAM.search(content_type)
    return lookup_encoding(match.group(1)) if match else None


def _bom(content: bytes) -> tuple[str | None, int]:
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return codec, len(bom)
    return None, 0


def _choose(
    content: bytes, content_type: str | None, declared: re.Match[bytes] | None
) -> tuple[str, int]:
    """BOM, then the Content-Type charset, then the document's own declaration, else UTF-8.

    Returns the codec and the length of the byte-order mark to skip.
    """
    codec, skip = _bom(content)
    if codec is None:
        codec = charset_from_content_type(content_type)
    if codec is None and declared is not None:
        codec = lookup_encoding(declared.group(1).decode("latin-1"))
        # A document that could be read far enough to find its declaration
        # is not UTF-16 (the standard reads such a declaration as UTF-8).
        if codec in ("utf-16-le", "utf-16-be"):
            codec = "utf-8"
    if codec is None:
        codec = "utf-8"
    return codec, skip


def _decode(
    content: bytes, content_type: str | None, declared: re.Match[bytes] | None
) -> tuple[str, str]:
    codec, skip = _choose(content, content_type, declared)
    return content[skip:].decode(codec, errors="replace"), codec


def html_codec(content: bytes, content_type: str | None = None) -> tuple[str, int]:
    """The codec :func:`decode_html` would use, and the length of the BOM before the text.

    For reading a document in pieces without decoding all of it at once.
    """
    return _choose(content, content_type, _META_CHARSET.search(content[:1024]))


def decode_html(content: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode an HTML document (``<meta charset>`` in its first 1024 bytes); return ``(text, codec)``."""
    return _decode(content, content_type, _META_CHARSET.search(content[:1024]))


def decode_css(content: bytes, content_type: str | None = None) -> tuple[str, str]:
    """Decode a stylesheet (``@charset`` at its very start); return ``(text, codec)``."""
    return _decode(content, content_type, _CSS_CHARSET.match(content))
