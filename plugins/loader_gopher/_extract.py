"""Requisites of a gopher menu: the images, sounds and videos it lists (no I/O).

A menu is a page: its ``I``, ``g`` and ``p`` items are images and its ``s``
items sounds, fetched like a web page's ``<img>`` and ``<audio>``; ``;``
items are videos (a kind discovery offers on request).  Each is reported with
``element="gopher-menu"`` and ``attribute`` set to its item type.

``h`` items are *not* requisites: they are links to other documents, as an
``<a href>`` is on a web page, not content the menu shows.  Fetching an ``h``
item's URL directly makes its HTML document a page of its own.  The menu's
outgoing links (``PageResult.links``) are its items of types ``1`` (menus),
``0`` (text), ``h`` (HTML) and ``7`` (search), of kind ``link``.
"""

from __future__ import annotations

from loader.discovery import Document, Found

from ._menu import parse_menu
from ._urls import parse_url

__all__ = ["LINK_TYPES", "REQUISITE_KINDS", "extract_menu"]

#: Item type → discovery kind, for the item types a menu "shows".
REQUISITE_KINDS = {"I": "image", "g": "image", "p": "image", "s": "sound", ";": "video"}
#: Item types that are links to other documents (a crawl follows them).
LINK_TYPES = frozenset("10h7")


def extract_menu(document: Document) -> list[Found]:
    """The requisites and links listed in a ``gopher-menu`` document, in menu order.

    Items on the menu's own server inherit its scheme (``gophers`` menus link
    ``gophers`` items); a ``URL:`` selector names its target directly.
    """
    base = parse_url(document.url)
    found: list[Found] = []
    kinds = REQUISITE_KINDS
    for item in parse_menu(
        document.content, host=base.host, port=base.port, secure=base.secure, url=document.url
    ):
        kind = kinds.get(item.type)
        if kind is None and item.type in LINK_TYPES:
            kind = "link"
        if kind is None or not item.host:
            continue
        found.append(Found(item.target, kind, "gopher-menu", item.type, document.url))
    return found
