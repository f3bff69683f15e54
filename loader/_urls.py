"""URL helpers shared by the core and plugins."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["DEFAULT_PORTS", "canonical_url", "plain_origin", "redact_url", "split_origin"]

#: ``scheme://host[:port]`` then the end or ``/``, ``?``, ``#``: no user info, no IPv6
#: brackets, no percent escapes, nothing ``urlsplit`` would strip or reject.
_PLAIN_ORIGIN = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([A-Za-z0-9._~-]+)(?::([0-9]{1,5}))?(?=[/?#]|\Z)")


def plain_origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, hostname, port)`` of a plain URL as ``urlsplit`` gives them, cheaply.

    The scheme and host lowercased, the port as a number (``None`` without one);
    ``None`` for any URL that is not plain (then ask ``urlsplit``).  About a fifth of
    the cost of ``urlsplit`` and its ``hostname`` and ``port``; a test compares them.
    """
    match = _PLAIN_ORIGIN.match(url)
    if match is None:
        return None
    scheme, host, port = match.groups()
    if port is None:
        return scheme.lower(), host.lower(), None
    number = int(port)
    if number > 65535:
        return None  # urlsplit's port raises: its error, its words
    return scheme.lower(), host.lower(), number


def split_origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, hostname, port)`` as ``urlsplit`` gives them (lowercased, port ``None``
    when absent), through :func:`plain_origin` when the URL is plain; ``None`` when
    ``urlsplit`` cannot parse it (a bad port, brackets …)."""
    plain = plain_origin(url)
    if plain is not None:
        return plain
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


#: Each scheme's own port: dropped from a canonical URL (and never refused by the port policy).
DEFAULT_PORTS = {
    "http": 80, "https": 443, "ftp": 21, "ftps": 21, "gopher": 70, "gophers": 70,
}
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: A URL already in canonical form, plain: scheme and host in lower case, no user info,
#: fragment nor percent escape (the form nearly every URL of a page has).
_CANONICAL = re.compile(r"([a-z][a-z0-9+.-]*)://[a-z0-9._~-]+(?::([0-9]{1,5}))?([/?][A-Za-z0-9._~/?=&+,;:@!$'()*-]*)?")


def _escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def canonical_url(url: str) -> str:
    """The form of ``url`` by which the loader tells two requests for one resource apart.

    Scheme and host lowercased, the scheme's default port dropped, the fragment dropped,
    percent escapes of unreserved characters decoded and the others' hex digits
    uppercased; an empty HTTP path becomes ``/``.  Nothing else changes (the order of
    query parameters, a trailing slash and dot segments stay as they are: servers may
    tell them apart).  A URL that cannot be parsed is returned as it is.  The
    ``loader_url_key`` hook can replace this function.
    """
    match = _CANONICAL.fullmatch(url)
    if match is not None:
        scheme, port, rest = match.groups()
        if (port is None or int(port) != DEFAULT_PORTS.get(scheme)) and (rest or scheme not in ("http", "https")):
            return url  # already canonical: the common case costs one regex match
    url = url.partition("#")[0]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host = hostport.lower()
    if port is not None and port == DEFAULT_PORTS.get(scheme):
        host = host[: host.rfind(":")]
    path = _ESCAPE.sub(_escape, parts.path)
    if not path and scheme in ("http", "https") and parts.netloc:
        path = "/"
    query = _ESCAPE.sub(_escape, parts.query)
    return urlunsplit((scheme, userinfo + at + host, path, query, ""))


def redact_url(url: str) -> str:
    """The URL with any password in its user-info replaced by ``***``.

    Every URL the core reports (events, results, errors, manifests, logs) goes
    through this, so ``ftp://user:secret@host/`` never shows its password.
    """
    if "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))
