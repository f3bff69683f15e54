"""Usage checks of ``fetch`` and ``get`` made before any request, and ``get``'s file name.

What is wrong with a command line is a usage error (exit 2) said in one line, found
before the first request: two outputs sharing stdout, a URL whose scheme nobody
handles.  A URL without a scheme is taken as ``http://``, as wget and curl take it.
"""

from __future__ import annotations

import argparse
import os
import re
from urllib.parse import urlsplit

__all__ = ["UsageProblem", "check_usage", "get_target", "with_scheme"]

#: Schemes the core and the bundled plugins handle: known without loading any plugin.
_COMMON_SCHEMES = frozenset({"http", "https", "ftp", "ftps", "gopher", "gophers", "data"})


#: A scheme and its colon, as RFC 3986 spells them.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


class UsageProblem(Exception):
    """A command line that cannot run: its message is the whole ``error:`` line."""


def _installed_schemes() -> set[str]:
    """Every scheme a plugin says it handles, and ``data`` (the core's own)."""
    from ._plugins import make_plugin_manager

    schemes = {"data"}
    for group in make_plugin_manager().hook.loader_schemes():
        schemes.update(s.lower() for s in group or ())
    return schemes


def with_scheme(url: str) -> str:
    """``url`` with ``http://`` in front when it has no scheme; raises :class:`UsageProblem`
    for a scheme no plugin handles, naming the closest one ("did you mean http?")."""
    from ._display import shown_url

    match = _SCHEME.match(url)
    scheme = match[1].lower() if match else ""
    if scheme in _COMMON_SCHEMES:
        return url
    if not match or not url[match.end():].startswith("//"):
        # "example.org/x", "localhost:8080/x" (a host, not a scheme), "//host/x"
        if scheme and scheme in _installed_schemes():
            return url  # a plugin's scheme written without '//'
        return "http:" + url if url.startswith("//") else "http://" + url
    known = _installed_schemes()  # loads the plugins: only for a scheme not in the common set
    if scheme in known:
        return url
    shown = shown_url(url)
    import difflib  # lazily: only an unknown scheme needs it

    close = difflib.get_close_matches(scheme, sorted(known), n=1, cutoff=0.5)
    hint = f": did you mean {close[0]}?" if close else ""
    raise UsageProblem(f"{shown}: unknown scheme {scheme!r}{hint} (installed: {', '.join(sorted(known))})")


def check_usage(args: argparse.Namespace) -> None:
    """Refuse what cannot work before any request; put ``http://`` on scheme-less URLs.

    Raises :class:`UsageProblem`.  ``--events -`` shares stdout with nothing: with
    ``-o -`` (``get``) or ``--list`` (``fetch``) the two would interleave.
    """
    if getattr(args, "events", None) == "-":
        if getattr(args, "output", None) == "-":
            raise UsageProblem("-o - and --events - would both write to stdout: give one of them a file")
        if getattr(args, "list", False):
            raise UsageProblem("--list and --events - would both write to stdout: give --events a file")
    command = getattr(args, "command", None)
    if command == "fetch" and getattr(args, "urls", None):
        args.urls = [with_scheme(url) for url in args.urls]
    elif command == "get" and getattr(args, "url", None):
        args.url = with_scheme(args.url)


def get_target(url: str, output: str | None) -> str:
    """Where ``get`` saves ``url``: ``output``, or inside it when it is a directory.

    The name is the URL's last path segment made safe; a URL naming a directory
    (its path empty or ending in ``/``) is saved as ``index.html``, as wget does.
    """
    from ._saving import safe_segment

    path = urlsplit(url).path if "://" in url else ""
    name = "index.html"
    if path and not path.endswith("/"):
        name = safe_segment(path.rsplit("/", 1)[-1]) or name
    if output is None:
        return name
    if os.path.isdir(output):
        return os.path.join(output, name)
    return output
