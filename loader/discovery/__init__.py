"""Discovery: find the resources a document uses (see ``_types`` for the data)."""

from ._types import DEFAULT_KINDS, KINDS, Document, Found, parse_kinds
from .data_url import decode_data_url
from .discover import Discovery, Extractor, discover, parse_document
from .rewrite import rewrite_css, rewrite_html

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "Discovery",
    "Document",
    "Extractor",
    "Found",
    "decode_data_url",
    "discover",
    "parse_document",
    "parse_kinds",
    "rewrite_css",
    "rewrite_html",
]
