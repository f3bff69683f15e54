"""Discovery: find the resources a document uses (see ``_types`` for the data)."""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from .._lazy import lazy_exports as _lazy_exports
from ._types import (
    DEFAULT_KINDS,
    KIND_BY_EXTENSION,
    KINDS,
    LINK_KINDS,
    MAX_LINKS,
    Document,
    Found,
    check_kinds,
    kind_for_name,
    parse_kinds,
)

# The parsers (selectolax) load on first use: plugins importing Found stay light.
_EXPORTS = {
    "ARCHIVER": ".browser",
    "Browser": ".browser",
    "DEFAULT_BROWSER": ".browser",
    "MAX_DROPPED": ".discover",
    "Discovery": ".discover",
    "Extractor": ".discover",
    "decode_data_url": ".data_url",
    "discover": ".discover",
    "parse_document": ".discover",
    "rewrite_css": ".rewrite",
    "rewrite_html": ".rewrite",
}

if _TYPE_CHECKING:
    from .browser import ARCHIVER, DEFAULT_BROWSER, Browser
    from .data_url import decode_data_url
    from .discover import MAX_DROPPED, Discovery, Extractor, discover, parse_document
    from .rewrite import rewrite_css, rewrite_html

__all__ = [
    "ARCHIVER",
    "DEFAULT_BROWSER",
    "DEFAULT_KINDS",
    "KINDS",
    "KIND_BY_EXTENSION",
    "LINK_KINDS",
    "MAX_DROPPED",
    "MAX_LINKS",
    "Browser",
    "Discovery",
    "Document",
    "Extractor",
    "Found",
    "check_kinds",
    "decode_data_url",
    "discover",
    "kind_for_name",
    "parse_document",
    "parse_kinds",
    "rewrite_css",
    "rewrite_html",
]

__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, __all__)
