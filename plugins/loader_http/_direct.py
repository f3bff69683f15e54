"""The direct lane: a plain GET straight to the fast transport, past httpx's client layer.

httpx's client costs ~70 µs per small request (``benchmarks/layers.py``)
above the transport's own ~40: URL parsing and validation, header merging, the
auth and redirect generators, response wrapping, and the decoding layers of
``aiter_bytes``.  For most of a page's requisites none of that changes a byte
on the wire.  A request takes this lane only when httpx would add nothing:

* its URL is already in httpx's canonical form (:func:`plain_url`): scheme
  ``http``/``https``, a lowercase ASCII host (not IDNA), no user info, no default or
  zero-padded port, and a path and query of characters httpx leaves as they
  are, without dot segments.  httpx's request target is then the URL's own path
  and query, and ``str(httpx.URL(url)) == url``;
* the client has no auth, query parameters, base URL or event hooks, and its
  cookie jar is empty (so no ``Cookie`` header is due);
* the client's transport (``_client.Routes``) sends the origin to the fast
  transport (no proxy), and that transport serves the scheme itself (not HTTPS
  with HTTP/2 on).

The header lines come from httpx itself: :class:`DirectLane` builds a request
with ``client.build_request`` once per origin and header set, writes its
head, and reuses every line after the request line.  So ``Host``, ``Accept``,
``Accept-Encoding``, ``User-Agent`` and the caller's headers are byte for byte
what httpx sends (a test compares them); only the request target changes per
request.  The client's headers and timeout are watched: a change empties the
cache.  Before the handler has built its client (httpx not imported yet, see
``_lazy_httpx.py``), the lane writes those lines itself, as that client will:
the client is built with :func:`default_headers` (ours: they replace each of
httpx's defaults in place), merged as ``Headers.update`` merges, ``Host`` first;
a test holds them to ``build_request``'s, byte for byte.

Whatever a response needs httpx for goes back to httpx, in the handler: a
redirect (httpx builds the next request), ``Set-Cookie`` (httpx's jar); the
answer goes through ``client.send`` (see ``_transport.ANSWERED``).  A
``Content-Encoding`` is not one of them: the handler decodes it (``_decoding``), on
both lanes alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._http11 import BadHeader, header_block
from ._lazy_httpx import httpx
from ._transport import FastTransport, Trace, _How

__all__ = ["DirectLane", "default_headers", "header_dict", "plain_url", "sets_cookie"]

#: Characters httpx's URL parser leaves as they are, per component (its ``PATH_SAFE``,
#: ``QUERY_SAFE`` and ``FRAG_SAFE`` plus the unreserved ones, without space: printable ASCII).
_PATH_CHARS = "".join(chr(i) for i in range(0x21, 0x7F) if chr(i) not in '"#<>?`{}')
_QUERY_CHARS = "".join(chr(i) for i in range(0x21, 0x7F) if chr(i) not in '"#<>')
_FRAGMENT_CHARS = "".join(chr(i) for i in range(0x21, 0x7F) if chr(i) not in '"<>`')


def _chars(chars: str) -> str:
    return "[" + "".join(re.escape(c) for c in chars) + "]"


_PLAIN_URL = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([1-9][0-9]{0,4}))?"
    rf"(/{_chars(_PATH_CHARS)}*)(\?{_chars(_QUERY_CHARS)}*)?(?:#{_chars(_FRAGMENT_CHARS)}*)?",
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_URL = 65536  # httpx's own limit
_MAX_HEADS = 256  # cached request heads (origin, header set); emptied when full


def plain_url(url: str) -> tuple[str, str, int | None, bytes] | None:
    """``(scheme, host, port or None, request target)`` of a URL in httpx's canonical form.

    ``None`` for any URL httpx would change or reject (it takes the httpx lane).
    """
    if len(url) > _MAX_URL:
        return None
    match = _PLAIN_URL.fullmatch(url)
    if match is None:
        return None
    scheme, host, port_text, path, query = match.groups()
    if "xn--" in host:
        return None  # httpx.URL.host gives the Unicode form of an IDNA name
    port = None
    if port_text is not None:
        port = int(port_text)
        if port == _DEFAULT_PORTS[scheme]:
            return None  # httpx drops it from the URL
    if "/." in path and any(segment in (".", "..") for segment in path.split("/")):
        return None  # httpx removes dot segments
    target = path + query if query is not None else path
    return scheme, host, port, target.encode("ascii")


def header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str] | None:
    """Response header lines as ``dict(httpx.Headers(raw).items())`` gives them.

    Names lowercased, repeated lines joined with ", ".  ``None`` when a line is not
    ASCII (httpx then guesses one encoding for them all: left to httpx).
    """
    headers: dict[str, str] = {}
    for name, value in raw:
        if not (name.isascii() and value.isascii()):
            return None
        key = name.decode("ascii").lower()
        text = value.decode("ascii")
        if key in headers:
            headers[key] += ", " + text
        else:
            headers[key] = text
    return headers


def sets_cookie(headers: Any) -> bool:
    """Whether a response has cookies for the jar (header names as httpx or :func:`header_dict` give them)."""
    return "set-cookie" in headers or "set-cookie2" in headers


class DirectLane:
    """Decides per request whether it may skip httpx's client, and writes its head.

    Made with only the transport and the client's ``timeouts``, it serves before
    httpx's client exists (see ``HttpHandler``): the client that will be built has
    no auth, parameters, base URL, hooks or cookies, and its default headers are
    ours (:func:`default_headers`), so the head is written here.  Once the
    client is built it is :meth:`attach`-ed, and from then on its own
    ``build_request`` writes the heads, as before.
    """

    def __init__(
        self, transport: FastTransport, *, timeouts: dict[str, float | None] | None = None
    ) -> None:
        self.client: httpx.AsyncClient | None = None
        self.route: Callable[[httpx.URL], Any] | None = None
        self.transport = transport
        self._timeouts = timeouts
        self._heads: dict[tuple[Any, ...], tuple[bytes, bool, dict[str, Any]] | None] = {}
        self._client_headers: list[tuple[bytes, bytes]] = []
        self._client_timeout: Any = None

    def attach(self, client: httpx.AsyncClient, route: Callable[[httpx.URL], Any]) -> None:
        """From now on, ask ``client`` (built over this lane's transport) for heads and rules.

        ``route`` gives the transport the client sends a URL's request on.
        """
        self.client = client
        self.route = route
        self._heads.clear()
        self._client_headers = list(client.headers.raw)
        self._client_timeout = client.timeout

    def _client_is_plain(self) -> bool:
        client = self.client
        if client is None:
            return True  # the client the handler will build is plain
        hooks = client.event_hooks
        return (
            client.auth is None
            and not hooks["request"]
            and not hooks["response"]
            and not client.params
            and not client.base_url.raw_host
            and not client.cookies.jar
        )

    def plan(
        self, method: str, url: str, headers: dict[str, str], trace: Trace | None
    ) -> tuple[tuple[str, str, int], _How] | None:
        """The origin and request for :meth:`FastTransport.exchange`, or ``None``: take httpx."""
        if method != "GET" or not self._client_is_plain():
            return None
        parts = plain_url(url)
        if parts is None:
            return None
        scheme, host, port, target = parts
        cached = self._head(scheme, host, port, headers)
        if cached is None:
            return None
        rest, close, timeouts = cached
        head = b"GET " + target + b" HTTP/1.1\r\n" + rest
        origin = (scheme, host, port or _DEFAULT_PORTS[scheme])
        return origin, _How("GET", head, False, close, None, timeouts, None, trace, None)

    def _head(
        self, scheme: str, host: str, port: int | None, headers: dict[str, str]
    ) -> tuple[bytes, bool, dict[str, Any]] | None:
        client = self.client
        if client is not None and (
            client.timeout is not self._client_timeout or client.headers.raw != self._client_headers
        ):
            self._heads.clear()
            self._client_headers = list(client.headers.raw)
            self._client_timeout = client.timeout
        key = (scheme, host, port, *headers.items())
        try:
            return self._heads[key]
        except KeyError:
            pass
        if len(self._heads) >= _MAX_HEADS:
            self._heads.clear()
        self._heads[key] = found = self._build_head(scheme, host, port, headers)
        return found

    def _build_head(
        self, scheme: str, host: str, port: int | None, headers: dict[str, str]
    ) -> tuple[bytes, bool, dict[str, Any]] | None:
        """The header lines httpx writes for a GET to this origin with these headers (None: not ours)."""
        netloc = host if port is None else f"{host}:{port}"
        client = self.client
        if client is None:
            return self._head_before_client(netloc, scheme, headers)
        try:
            request = client.build_request("GET", f"{scheme}://{netloc}/", headers=headers)
            route = self.route
            if route is None or route(request.url) is not self.transport or not self.transport.serves(scheme):
                return None  # a proxy, or HTTP/2's fallback
            lines, chunked, close = header_block(request.headers.raw)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError):
            return None  # httpx will say what is wrong, in its own words (BadHeader is a ValueError)
        if chunked or request.url.host != host or request.url.port != port:
            return None
        return lines, close, request.extensions["timeout"]

    def _head_before_client(
        self, netloc: str, scheme: str, headers: dict[str, str]
    ) -> tuple[bytes, bool, dict[str, Any]] | None:
        """What ``build_request`` would write, for the client the handler builds (None: ask it)."""
        if self._timeouts is None or not self.transport.serves(scheme):
            return None
        lines = _merged(default_headers(), headers)
        if lines is None:
            return None  # not plain ASCII: httpx says what it makes of it
        if not any(name.lower() == b"host" for name, _ in lines):
            lines.insert(0, (b"Host", netloc.encode("ascii")))  # as httpx's Request puts it first
        try:
            block, chunked, close = header_block(lines)
        except BadHeader:
            return None  # httpx's lane raises its error
        if chunked:
            return None
        return block, close, dict(self._timeouts)


def _merged(defaults: list[tuple[str, str]], headers: dict[str, str]) -> list[tuple[bytes, bytes]] | None:
    """``Headers(defaults).update(headers)`` as httpx does it, as raw lines: every default
    line whose name (in any case) the request sets is dropped, and the request's lines follow."""
    if not all(name.isascii() and value.isascii() for name, value in headers.items()):
        return None
    names = {name.lower() for name in headers}
    lines = [(name, value) for name, value in defaults if name.lower() not in names]
    return [(name.encode("ascii"), value.encode("ascii")) for name, value in (*lines, *headers.items())]


def default_headers() -> list[tuple[str, str]]:
    """The headers of every request the HTTP plugin sends, in order, unless the caller's replace them.

    The client is built with them, and they take the places of httpx's own defaults
    (the same four names), so ``build_request`` writes them where httpx would.
    """
    from loader import __version__

    from ._decoding import accept_encoding

    return [("Accept", "*/*"), ("Accept-Encoding", accept_encoding()), ("Connection", "keep-alive"),
            ("User-Agent", f"loader/{__version__}")]
