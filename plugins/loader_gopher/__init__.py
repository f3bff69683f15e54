"""The built-in Gopher protocol plugin for loader (RFC 1436, URLs per RFC 4266).

Registered through the ``loader`` entry-point group exactly as a third-party
plugin is (``gopher = "loader_gopher"``).  It provides:

* a protocol handler for ``gopher://`` and ``gophers://`` (TLS) URLs;
* discovery of a menu's requisites (``I``/``g``/``p`` images, ``s`` sounds,
  ``;`` videos), so a menu is a page;
* ``loader gopher ls URL`` and ``loader gopher search URL TERMS``;
* a library API: :func:`read_menu` / :func:`open_menu` (menus as typed
  items), :func:`search`, and :func:`open_item` (any item as a stream);
* the I/O-free pieces it is built from: :func:`parse_url`,
  :class:`MenuParser` / :func:`parse_menu`, :class:`TextDecoder`.

Against hostile servers and pages: a selector, search string or Gopher+
string holding CR, LF, TAB or NUL, or longer than :data:`MAX_SELECTOR` (4 KiB),
is an ``InvalidURL`` before any connection; a menu line longer than
:data:`MAX_LINE` (64 KiB) is a ``ProtocolError``; a menu body stops at its
``.`` line and at :func:`menu_limit` bytes (``Limits.max_body`` /
``Limits.max_page``, else :data:`MAX_MENU`, 64 MiB) with ``SizeLimitExceeded``;
server text shown by ``loader gopher`` goes through ``loader._display.printable``.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from loader._lazy import lazy_exports as _lazy_exports

from ._plugin import loader_add_commands, loader_extract, loader_protocol, loader_schemes

# `loader --help` loads every plugin: names are imported on first use (PEP 562).
_EXPORTS = {
    "DEFAULT_PORT": "._urls",
    "GopherHandler": "._handler",
    "GopherURL": "._urls",
    "ItemKind": "._menu",
    "MAX_LINE": "._menu",
    "MAX_MENU": "._menu",
    "MAX_SELECTOR": "._urls",
    "Menu": "._menu",
    "MenuItem": "._menu",
    "MenuParser": "._menu",
    "MenuReader": "._api",
    "REQUISITE_KINDS": "._extract",
    "SCHEMES": "._schemes",
    "TextDecoder": "._text",
    "check_selector": "._urls",
    "content_type_for": "._handler",
    "decode_text": "._text",
    "extract_menu": "._extract",
    "format_url": "._urls",
    "item_kind": "._menu",
    "menu_limit": "._menu",
    "open_item": "._api",
    "open_menu": "._api",
    "parse_menu": "._menu",
    "parse_url": "._urls",
    "read_menu": "._api",
    "search": "._api",
}

if _TYPE_CHECKING:
    from ._api import MenuReader, open_item, open_menu, read_menu, search
    from ._extract import REQUISITE_KINDS, extract_menu
    from ._handler import GopherHandler, content_type_for
    from ._menu import (
        MAX_LINE,
        MAX_MENU,
        ItemKind,
        Menu,
        MenuItem,
        MenuParser,
        item_kind,
        menu_limit,
        parse_menu,
    )
    from ._schemes import SCHEMES
    from ._text import TextDecoder, decode_text
    from ._urls import DEFAULT_PORT, MAX_SELECTOR, GopherURL, check_selector, format_url, parse_url

__all__ = [
    "DEFAULT_PORT",
    "MAX_LINE",
    "MAX_MENU",
    "MAX_SELECTOR",
    "REQUISITE_KINDS",
    "SCHEMES",
    "GopherHandler",
    "GopherURL",
    "ItemKind",
    "Menu",
    "MenuItem",
    "MenuParser",
    "MenuReader",
    "TextDecoder",
    "check_selector",
    "content_type_for",
    "decode_text",
    "extract_menu",
    "format_url",
    "item_kind",
    "menu_limit",
    "open_item",
    "open_menu",
    "parse_menu",
    "parse_url",
    "read_menu",
    "search",
]

# The hook implementations must be attributes of this module for pluggy to
# find them; they are not part of the library API.
_HOOKS = (loader_add_commands, loader_extract, loader_protocol, loader_schemes)

# No __dir__: pluggy looks at every name dir() lists, which would import them all.
__getattr__, _ = _lazy_exports(__name__, _EXPORTS, __all__)
