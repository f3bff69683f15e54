"""Discovery: find the resources a document uses (see ``_types`` for the data)."""

from ._types import DEFAULT_KINDS, KINDS, Document, Found, parse_kinds

__all__ = ["DEFAULT_KINDS", "KINDS", "Document", "Found", "parse_kinds"]
