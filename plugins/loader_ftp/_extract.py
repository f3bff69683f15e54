"""Requisites of an FTP directory listing: the files whose extension names a kind (no I/O).

A directory is a page: ``loader fetch ftp://host/pub/media/ -o DIR`` gets the
images and sounds it lists.  Each file whose extension says image, sound,
video, style, script or font (:func:`~loader_ftp._listing.kind_for_name`) is
reported with ``element="ftp-listing"`` and ``attribute="name"``;
discovery keeps the kinds the caller asked for.  Directories and entries
the server called neither file nor link are skipped.
"""

from __future__ import annotations

from urllib.parse import quote

from loader.discovery import Document, Found

from ._listing import kind_for_name, load_listing

__all__ = ["directory_base", "extract_listing"]

# Characters a file name keeps unescaped in its URL; ";" is not among them
# (it would start a ";type=" parameter), nor "/", "?" or "#".
_SAFE = "-._~!$&'()*+,=:@"


def directory_base(url: str) -> str:
    """The URL a listing's names resolve against: ``;type=d`` dropped, ending in ``/``."""
    if url.lower().endswith(";type=d"):
        url = url[: -len(";type=d")]
    return url if url.endswith("/") else url + "/"


def extract_listing(document: Document) -> list[Found]:
    """The requisites an ``ftp-listing`` document lists, in listing order."""
    base = directory_base(document.base_url or document.url)
    found: list[Found] = []
    for entry in load_listing(document.content):
        if entry.type not in (None, "file", "link"):
            continue
        kind = kind_for_name(entry.name)
        if kind is None:
            continue
        url = base + quote(entry.name, safe=_SAFE, errors="surrogateescape")
        found.append(Found(url, kind, "ftp-listing", "name", document.url))
    return found
