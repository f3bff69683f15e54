"""URL helpers shared by the core and plugins."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["plain_origin", "redact_url"]

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
