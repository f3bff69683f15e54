"""Gopher URLs (RFC 4266), parsed and built without any I/O.

A gopher URL names one item on one server::

    gopher://<host>[:<port>]/<type><selector>[%09<search>[%09<gopher+ string>]]

The path's first character is the item type (``1``, a menu, when the path is
empty); the rest, percent-decoded, is the selector sent to the server.  ``%09``
(an encoded TAB) separates the search terms of a type-7 item and a Gopher+
string.  Selectors are byte strings on the wire: they are decoded as UTF-8 with
``surrogateescape`` so that any byte survives a round trip.

``gophers://`` is the same over TLS (a common, unregistered convention).

What may be sent is checked before any connection (:func:`check_selector`):
selectors, search terms and Gopher+ strings must not contain CR, LF or TAB
(they would end or split the request line: a URL could smuggle a second
command to whatever listens on the port) nor NUL (C servers cut the selector
there, so what is checked is not what is served), and each is at most
:data:`MAX_SELECTOR` bytes.  RFC 1436 says 255 characters, but real menus
carry longer selectors (query strings, ``URL:`` links, deep paths), so the cap
is set where no menu goes and a page cannot make the loader send megabytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote

from loader import InvalidURL

from ._schemes import SCHEMES

__all__ = [
    "DEFAULT_PORT",
    "MAX_SELECTOR",
    "SCHEMES",
    "GopherURL",
    "check_selector",
    "format_url",
    "parse_url",
]

#: The port RFC 1436 assigns to Gopher (TLS servers conventionally use it too).
DEFAULT_PORT = 70

#: Longest selector (and search string, and Gopher+ string) sent, in bytes once
#: encoded: 4 KiB, sixteen times RFC 1436's 255 characters.
MAX_SELECTOR = 4096

# Characters a selector may keep unencoded in a URL: RFC 3986 pchar minus
# ";" (RFC 4266 does not reserve it, but leaving it literal is harmless) and
# everything that would change how a generic URL parser splits the URL.
_SAFE = "/:@!$&'()*+,;=-._~"
_TAB_SPLIT = re.compile("%09", re.IGNORECASE)
_PLAIN = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=\-._~]*")
_FORBIDDEN = ("\r", "\n", "\t")
_FORBIDDEN_SENT = ("\r", "\n", "\t", "\x00")


@dataclass(frozen=True, slots=True)
class GopherURL:
    """One gopher item address.

    ``selector`` and ``search`` are decoded (UTF-8, ``surrogateescape``);
    ``search`` is ``None`` when the URL carries no ``%09`` part, and
    ``gopher_plus`` likewise.  ``secure`` is true for ``gophers://``.
    """

    host: str
    port: int = DEFAULT_PORT
    type: str = "1"
    selector: str = ""
    search: str | None = None
    gopher_plus: str | None = None
    secure: bool = False

    @property
    def scheme(self) -> str:
        """``"gophers"`` for TLS, else ``"gopher"``."""
        return "gophers" if self.secure else "gopher"

    @property
    def url(self) -> str:
        """The canonical URL string (port omitted when it is 70)."""
        return format_url(
            self.host,
            self.port,
            self.type,
            self.selector,
            search=self.search,
            gopher_plus=self.gopher_plus,
            secure=self.secure,
        )

    def request_line(self) -> bytes:
        """The bytes sent to the server: selector, optional TAB search / Gopher+ string, CRLF."""
        parts = [self.selector]
        if self.search is not None or self.gopher_plus is not None:
            parts.append(self.search or "")
        if self.gopher_plus is not None:
            parts.append(self.gopher_plus)
        return "\t".join(parts).encode("utf-8", "surrogateescape") + b"\r\n"

    def with_search(self, terms: str) -> GopherURL:
        """A copy that runs a search with ``terms`` (the item type becomes ``7``)."""
        check_selector(terms, what="search terms", url=self.url)
        return replace(self, type="7", search=terms)

    def __str__(self) -> str:
        return self.url


def check_selector(value: str, *, what: str = "selector", url: str | None = None) -> None:
    """Raise ``InvalidURL`` unless ``value`` may be sent as a selector (or search terms).

    CR, LF and TAB would end or split the request line on the wire; NUL ends a
    selector early in many servers; more than :data:`MAX_SELECTOR` bytes is no
    selector any menu holds.
    """
    if _PLAIN.fullmatch(value) and len(value) <= MAX_SELECTOR:
        return  # the common case: nothing to look for
    for char in _FORBIDDEN_SENT:
        if char in value:
            raise InvalidURL(f"{what} must not contain {char!r}", url=url)
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > MAX_SELECTOR:
        raise InvalidURL(
            f"{what} is {size} bytes long, more than the {MAX_SELECTOR} sent (MAX_SELECTOR)",
            url=url,
        )


def _format_host(host: str) -> str:
    # Only IPv6 literals contain colons; they need brackets in a URL.
    return f"[{host}]" if ":" in host else host


def _quote(text: str) -> str:
    if _PLAIN.fullmatch(text):
        return text  # the common case, and much faster than quote()
    return quote(text.encode("utf-8", "surrogateescape"), safe=_SAFE)


def format_url(
    host: str,
    port: int,
    item_type: str,
    selector: str,
    *,
    search: str | None = None,
    gopher_plus: str | None = None,
    secure: bool = False,
) -> str:
    """Build a gopher URL (RFC 4266) from its parts, percent-encoding the selector."""
    scheme = "gophers" if secure else "gopher"
    authority = _format_host(host)
    if port != DEFAULT_PORT:
        authority += f":{port}"
    path = item_type + _quote(selector)
    if search is not None or gopher_plus is not None:
        path += "%09" + _quote(search or "")
    if gopher_plus is not None:
        path += "%09" + _quote(gopher_plus)
    return f"{scheme}://{authority}/{path}"


def _split_authority(authority: str, url: str) -> tuple[str, int]:
    if "@" in authority:
        # RFC 4266 has no user information; refusing it avoids confusing
        # "gopher://trusted.example@evil.example/" with a trusted host.
        raise InvalidURL("gopher URLs carry no user information", url=url)
    port_text = ""
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            raise InvalidURL("unterminated IPv6 address", url=url)
        host, rest = authority[1:end], authority[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise InvalidURL("junk after the IPv6 address", url=url)
            port_text = rest[1:]
    else:
        host, _, port_text = authority.partition(":")
    if not host:
        raise InvalidURL("no host", url=url)
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidURL(f"bad port {port_text!r}", url=url)
        return host.lower(), int(port_text)
    return host.lower(), DEFAULT_PORT


def parse_url(url: str) -> GopherURL:
    """Parse a ``gopher://`` or ``gophers://`` URL; raise ``InvalidURL`` when it is not one.

    A ``#fragment`` is dropped (it is never sent); ``?`` is an ordinary
    selector character, as RFC 4266 gives it no meaning.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise InvalidURL("not a gopher URL", url=url)
    for char in _FORBIDDEN:
        if char in rest:
            raise InvalidURL(f"URL contains a raw {char!r}; percent-encode it", url=url)
    rest = rest.partition("#")[0]
    authority, slash, path = rest.partition("/")
    host, port = _split_authority(authority, url)
    if not slash or not path:
        return GopherURL(host=host, port=port, secure=scheme == "gophers")
    item_type, raw = path[0], path[1:]
    if item_type == "%":
        raise InvalidURL("the item type must be a literal character", url=url)
    pieces = _TAB_SPLIT.split(raw, maxsplit=2)
    decoded = [unquote(p, encoding="utf-8", errors="surrogateescape") for p in pieces]
    selector = decoded[0]
    search = decoded[1] if len(decoded) > 1 else None
    gopher_plus = decoded[2] if len(decoded) > 2 else None
    check_selector(selector, url=url)
    if search is not None:
        check_selector(search, what="search terms", url=url)
    if gopher_plus is not None:
        check_selector(gopher_plus, what="Gopher+ string", url=url)
    return GopherURL(
        host=host,
        port=port,
        type=item_type,
        selector=selector,
        search=search,
        gopher_plus=gopher_plus,
        secure=scheme == "gophers",
    )
