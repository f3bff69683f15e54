"""Requisites of an FTP directory listing: the files whose extension names a kind (no I/O).

A directory is a page: ``loader fetch ftp://host/pub/media/ -o DIR`` gets the
images and sounds it lists.  Each file whose extension says image, sound,
video, style, script or font (:func:`~loader_ftp._listing.kind_for_name`) is
reported with ``element="ftp-listing"`` and ``attribute="name"``;
discovery keeps the kinds the caller asked for.  Every entry is also an
outgoing link (kind ``link``, ``PageResult.links``): files as they are,
directories with a trailing ``/`` (a crawl descends into them); entries the
server called neither file, directory nor link, and ``.``/``..``, are skipped.
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
    """The requisites and links an ``ftp-listing`` document lists, in listing order."""
    base = directory_base(document.base_url or document.url)
    found: list[Found] = []
    for entry in load_listing(document.content):
        if entry.type not in (None, "file", "link", "dir") or entry.name in (".", "..", ""):
            continue
        url = base + quote(entry.name, safe=_SAFE, errors="surrogateescape")
        if entry.type == "dir":
            found.append(Found(url + "/", "link", "ftp-listing", "dir", document.url))
            continue
        kind = kind_for_name(entry.name)
        if kind is not None:
            found.append(Found(url, kind, "ftp-listing", "name", document.url))
        found.append(Found(url, "link", "ftp-listing", "name", document.url))
    return found
