"""Gopher menus (RFC 1436 directory listings), parsed without any I/O.

A menu is a series of lines ``<type><display>\\t<selector>\\t<host>\\t<port>``
ending with CRLF, closed by a line holding a single ``.``.  Real servers bend
every part of that, so the parser is tolerant (bytes in, items out, in the
spirit of h11):

* bare LF line ends are accepted, and a menu that simply stops without the
  ``.`` line is complete;
* missing fields default to the menu's own host and port (selector ``""``);
  a bad port becomes 70;
* a line without any TAB is kept as an informational item showing the whole
  line (many servers send plain text lines that way), except ``i``/``3``
  lines, which keep their type;
* blank lines and bytes after the terminator are ignored;
* Gopher+ servers add a fifth field (``+``), kept in :attr:`MenuItem.gopher_plus`.

One thing is not tolerated: a line longer than :data:`MAX_LINE` bytes.  No
server writes such a menu line (RFC 1436 caps selectors at 255 characters, and
display strings are meant for a 70-column screen); a line that long is a broken
or hostile server streaming one endless line, and the only bounded answers are
to stop or to throw bytes away unseen.  Stopping with a ``ProtocolError`` that
names the menu's URL tells the user what happened, where skipping would turn
megabytes of noise into a silently shorter menu.  The parser never holds more
than :data:`MAX_LINE` bytes of an unfinished line, however the input is chunked.

:class:`MenuParser` is incremental (feed it chunks as they arrive);
:func:`parse_menu` parses a complete body.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loader import ProtocolError

from ._urls import DEFAULT_PORT, format_url

if TYPE_CHECKING:
    from loader import Limits

__all__ = [
    "MAX_LINE",
    "MAX_MENU",
    "ItemKind",
    "Menu",
    "MenuEnd",
    "MenuItem",
    "MenuParser",
    "item_kind",
    "menu_limit",
    "parse_menu",
]

#: Longest menu line accepted, in bytes, its line end not counted (64 KiB); a longer
#: line is a ``ProtocolError``.
MAX_LINE = 64 * 1024

#: Largest menu read when the loader sets neither ``Limits.max_body`` nor
#: ``Limits.max_page`` (64 MiB: a million items of 64 bytes; real menus are kilobytes).
MAX_MENU = 64 << 20


def menu_limit(limits: Limits | None) -> int:
    """The most bytes one menu may have under ``limits`` (none: :data:`MAX_MENU`).

    The smaller of ``max_body`` (any body) and ``max_page`` (a document read for
    discovery, which a menu is) when set, else :data:`MAX_MENU`: a server that
    never ends its menu must not grow the process without bound.
    """
    if limits is None:
        return MAX_MENU
    caps = [cap for cap in (limits.max_body, limits.max_page) if cap is not None]
    return min(caps) if caps else MAX_MENU


class ItemKind(enum.StrEnum):
    """What an item type character means (RFC 1436 plus the common extensions)."""

    TEXT = "text"
    MENU = "menu"
    CSO = "cso"
    ERROR = "error"
    BINHEX = "binhex"
    DOS = "dos"
    UUENCODED = "uuencoded"
    SEARCH = "search"
    TELNET = "telnet"
    BINARY = "binary"
    MIRROR = "mirror"
    GIF = "gif"
    IMAGE = "image"
    TN3270 = "tn3270"
    PNG = "png"
    SOUND = "sound"
    VIDEO = "video"
    DOCUMENT = "document"
    HTML = "html"
    INFO = "info"
    CALENDAR = "calendar"
    MIME = "mime"
    PDF = "pdf"
    XML = "xml"
    UNKNOWN = "unknown"


_KINDS: dict[str, ItemKind] = {
    "0": ItemKind.TEXT,
    "1": ItemKind.MENU,
    "2": ItemKind.CSO,
    "3": ItemKind.ERROR,
    "4": ItemKind.BINHEX,
    "5": ItemKind.DOS,
    "6": ItemKind.UUENCODED,
    "7": ItemKind.SEARCH,
    "8": ItemKind.TELNET,
    "9": ItemKind.BINARY,
    "+": ItemKind.MIRROR,
    "g": ItemKind.GIF,
    "I": ItemKind.IMAGE,
    "T": ItemKind.TN3270,
    "p": ItemKind.PNG,
    "s": ItemKind.SOUND,
    ";": ItemKind.VIDEO,
    "d": ItemKind.DOCUMENT,
    "h": ItemKind.HTML,
    "i": ItemKind.INFO,
    "c": ItemKind.CALENDAR,
    "M": ItemKind.MIME,
    "P": ItemKind.PDF,
    "x": ItemKind.XML,
}

# Item types with no document to fetch (informational lines, errors, and the
# sessions RFC 1436 hands to other programs).
_NOT_FETCHABLE = frozenset("i328T")


def item_kind(item_type: str) -> ItemKind:
    """The kind of an item type character; ``ItemKind.UNKNOWN`` for types nobody defined."""
    return _KINDS.get(item_type, ItemKind.UNKNOWN)


@dataclass(frozen=True, slots=True)
class MenuItem:
    """One line of a menu.

    ``selector`` is decoded as UTF-8 with ``surrogateescape`` so the exact
    bytes can be sent back; ``display`` is decoded leniently for people.
    ``gopher_plus`` is the optional fifth field.  ``secure`` says whether the
    item should be fetched over TLS (inherited from the menu for items on the
    menu's own server).
    """

    type: str
    display: str
    selector: str
    host: str
    port: int
    gopher_plus: str | None = None
    secure: bool = False

    @property
    def kind(self) -> ItemKind:
        """What the item is (``ItemKind.IMAGE`` for ``I`` …)."""
        return item_kind(self.type)

    @property
    def is_info(self) -> bool:
        """True for informational (``i``) lines, which name nothing to fetch."""
        return self.type == "i"

    @property
    def is_error(self) -> bool:
        """True for error (``3``) items."""
        return self.type == "3"

    @property
    def fetchable(self) -> bool:
        """True when :attr:`url` names something a loader can fetch."""
        if self.type in _NOT_FETCHABLE or not self.host:
            return False
        return True

    @property
    def url(self) -> str:
        """The item as a gopher URL (RFC 4266), whatever :attr:`target` says."""
        return format_url(self.host, self.port, self.type, self.selector, secure=self.secure)

    @property
    def target(self) -> str:
        """Where the item leads: the ``URL:`` selector's address for links to
        other schemes (the convention for ``h`` items), else :attr:`url`."""
        if self.selector[:4].upper() == "URL:" and len(self.selector) > 4:
            return self.selector[4:].strip()
        return self.url


class Menu:
    """A parsed menu: its URL and its items, in order (``i`` lines included).

    Iterating yields every item; :attr:`links` only the ones that lead somewhere.
    """

    __slots__ = ("items", "url")

    def __init__(self, url: str, items: list[MenuItem] | tuple[MenuItem, ...]) -> None:
        self.url = url
        self.items: tuple[MenuItem, ...] = tuple(items)

    @property
    def links(self) -> list[MenuItem]:
        """The items that name something to fetch (no ``i``, ``3`` or session items)."""
        return [item for item in self.items if item.fetchable]

    @property
    def errors(self) -> list[MenuItem]:
        """The error (``3``) items."""
        return [item for item in self.items if item.is_error]

    def __iter__(self) -> Iterator[MenuItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> MenuItem:
        return self.items[index]

    def __repr__(self) -> str:
        return f"<Menu {self.url} ({len(self.items)} items)>"


class MenuParser:
    """Incremental menu parser: :meth:`feed` bytes, get the items completed so far.

    ``host``/``port`` are the server the menu came from, used for items whose
    host or port field is missing; ``secure`` marks items on that same server
    as reachable over TLS; ``url`` is the menu's address, named in errors.
    After the ``.`` line, :attr:`done` is true and further input is ignored.
    :attr:`malformed` counts lines that needed guessing (no TAB, bad port).
    A line longer than :data:`MAX_LINE` raises ``ProtocolError``.
    """

    def __init__(
        self, *, host: str = "", port: int = DEFAULT_PORT, secure: bool = False, url: str = ""
    ) -> None:
        self.host = host
        self.port = port
        self.secure = secure
        self.url = url
        self.done = False
        self.malformed = 0
        self._buffer = bytearray()  # the unfinished last line, at most MAX_LINE + 1 bytes

    def feed(self, data: bytes) -> list[MenuItem]:
        """Parse ``data`` (any chunk size); return the items whose lines are complete.

        Raises ``ProtocolError`` as soon as a line passes :data:`MAX_LINE` bytes.
        """
        items: list[MenuItem] = []
        if self.done or not data:
            return items
        start = 0
        while True:
            # Only the new bytes are searched: a line arriving a byte at a time
            # costs linear time, not quadratic.
            end = data.find(b"\n", start)
            if end == -1:
                # Room for MAX_LINE bytes and the CR of a CRLF still to come.
                self._check_length(len(self._buffer) + len(data) - start, MAX_LINE + 1)
                self._buffer += data[start:]
                return items
            length = len(self._buffer) + end - start
            if (data[end - 1] == 0x0D) if end > start else self._buffer.endswith(b"\r"):
                length -= 1
            self._check_length(length, MAX_LINE)
            if self._buffer:
                self._buffer += data[start:end]
                line = bytes(self._buffer)
                self._buffer.clear()
            else:
                line = data[start:end]
            start = end + 1
            if self._line(line, items):
                return items

    def close(self) -> list[MenuItem]:
        """Signal the end of the body; return the item on an unterminated last line, if any."""
        items: list[MenuItem] = []
        if not self.done and self._buffer:
            self._check_length(len(self._buffer.removesuffix(b"\r")), MAX_LINE)
            self._line(bytes(self._buffer), items)
        self._buffer.clear()
        self.done = True
        return items

    def _check_length(self, length: int, limit: int) -> None:
        if length > limit:
            self._buffer.clear()
            self.done = True  # nothing after a refused line can be trusted to line up
            raise ProtocolError(
                f"menu line longer than {MAX_LINE} bytes (MAX_LINE): not a Gopher menu",
                url=self.url or None,
            )

    def _line(self, line: bytes, items: list[MenuItem]) -> bool:
        """Parse one line into ``items``; return True at the terminator."""
        if line.endswith(b"\r"):
            line = line[:-1]
        if line == b".":
            self.done = True
            self._buffer.clear()
            return True
        if not line.strip():
            return False
        item = self._item(line)
        if item is not None:
            items.append(item)
        return False

    def _item(self, line: bytes) -> MenuItem | None:
        fields = line.split(b"\t")
        if len(fields) == 1:
            self.malformed += 1
            text = line.decode("utf-8", "replace")
            if text[0] in "i3":
                return MenuItem(text[0], text[1:], "", "", 0)
            return MenuItem("i", text, "", "", 0)
        head = fields[0].decode("utf-8", "replace")
        if not head:
            self.malformed += 1
            return None
        item_type, display = head[0], head[1:]
        if item_type == "i":
            # Informational lines carry placeholder fields ("fake", "(NULL)", 0).
            return MenuItem("i", display, "", "", 0)
        selector = fields[1].decode("utf-8", "surrogateescape")
        host = self.host
        raw_host = fields[2].strip() if len(fields) > 2 else b""
        if raw_host:
            host = _host(raw_host)
            if not host:
                self.malformed += 1  # not a host name: the item leads nowhere
        port = self.port
        if len(fields) > 3:
            digits = fields[3].strip()
            if digits.isdigit() and 0 < int(digits) < 65536:
                port = int(digits)
            else:
                self.malformed += 1
        gopher_plus = fields[4].decode("utf-8", "replace") if len(fields) > 4 else None
        secure = self.secure and host == self.host and port == self.port
        return MenuItem(item_type, display, selector, host, port, gopher_plus, secure)


class MenuEnd:
    """Finds the end of a menu's ``.`` line in a stream of chunks (no I/O).

    A server may send the terminator and keep the connection open; a reader
    that waits for the close then fails on its idle timeout instead of having a
    complete menu.  :meth:`feed` passes the bytes up to and including the
    terminator line, and nothing after it (:attr:`done` is then true).
    """

    __slots__ = ("_tail", "done")

    def __init__(self) -> None:
        self._tail = b"\n"  # the menu's start counts as a line start
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` that belongs to the menu."""
        if self.done:
            return b""
        tail = self._tail
        # A terminator split across chunks lies within the tail and data's first bytes.
        end = _terminator_end(tail + data[:3])
        if end == -1:
            end = _terminator_end(data)
        else:
            end -= len(tail)
        if end != -1:
            self.done = True
            return data[:end]
        self._tail = data[-3:] if len(data) >= 3 else (tail + data)[-3:]
        return data


def _terminator_end(data: bytes) -> int:
    """Where the first ``\\n.\\r\\n`` or ``\\n.\\n`` in ``data`` ends, or -1."""
    ends = [i + len(p) for p in (b"\n.\r\n", b"\n.\n") if (i := data.find(p)) != -1]
    return min(ends, default=-1)


def _host(raw: bytes) -> str:
    """A host field as a lower-case name, or ``""`` when it cannot be one."""
    try:
        host = raw.decode("ascii").lower()
    except UnicodeDecodeError:
        return ""
    if not host.isprintable() or " " in host or "/" in host:
        return ""
    return host


def parse_menu(
    data: bytes,
    *,
    host: str = "",
    port: int = DEFAULT_PORT,
    secure: bool = False,
    url: str = "",
) -> list[MenuItem]:
    """Parse a complete menu body into items (see :class:`MenuParser` for the leniency rules)."""
    parser = MenuParser(host=host, port=port, secure=secure, url=url)
    items = parser.feed(data)
    items.extend(parser.close())
    return items
