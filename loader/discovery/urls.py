"""Turning the URL text found in a document into an absolute URL, or nothing.

Browsers are forgiving about what they accept in ``src`` and ``url()``; this
module follows them where it matters for finding the same resources they
load (the WHATWG URL standard's trimming, tab/newline removal and backslash
handling) and otherwise leans on :mod:`urllib.parse`.  Nothing here raises:
text that cannot become a fetchable URL resolves to ``None``.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urljoin, urlsplit, uses_relative

__all__ = ["IGNORED_SCHEMES", "MAX_DATA_URL_LENGTH", "MAX_URL_LENGTH", "Resolver", "resolve"]

#: Schemes that never name a resource to fetch (they run code, open other
#: applications, or only make sense inside the browser that made them).
IGNORED_SCHEMES = frozenset(
    {"javascript", "vbscript", "livescript", "about", "blob", "mailto", "tel", "sms", "callto"}
)

#: Longest network URL kept (Chrome's limit); longer ones are ignored.
MAX_URL_LENGTH = 2 * 1024 * 1024
#: Longest ``data:`` URL kept; the core decodes these without the network.
MAX_DATA_URL_LENGTH = 16 * 1024 * 1024

# Schemes whose URLs always have a host (WHATWG "special" schemes, minus file).
_HOST_REQUIRED = frozenset({"http", "https", "ftp", "ws", "wss", "gopher"})
_BACKSLASH_SCHEMES = frozenset({"http", "https", "ftp", "ws", "wss", "file"})

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# The WHATWG URL parser strips leading/trailing C0 controls and spaces and
# removes every tab and newline inside.
_C0_AND_SPACE = "".join(chr(i) for i in range(0x21))
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
# A plain relative path with nothing urljoin would have to think about.
_SIMPLE_RELATIVE = re.compile(r"[\w\-.~!$&'()*+,;=@%/]+")


def _percent_encode_unsafe(url: str) -> str:
    return _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", url)


# Default ports of the WHATWG special schemes (others keep theirs as written).
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}


def _normalize_origin(url: str, parts: SplitResult, scheme: str) -> str:
    """Lower-case the scheme and host and drop a default port, as browsers do."""
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    new_hostport = hostport.lower()
    if parts.port is not None and parts.port == _DEFAULT_PORTS.get(scheme):
        new_hostport = new_hostport[: new_hostport.rfind(":")]
    if url.startswith(scheme + ":") and new_hostport == hostport:
        return url
    rest = url[len(scheme) + 1 :]
    if netloc and rest.startswith("//" + netloc):
        rest = "//" + userinfo + at + new_hostport + rest[2 + len(netloc) :]
    return scheme + ":" + rest


class Resolver:
    """Resolves references against one base URL, with a fast path for plain relative paths.

    ``document_scheme`` is the scheme of the document the references come
    from: ``file:`` URLs are only followed from ``file:`` documents, as in
    browsers (a web page must not make us copy local files).
    """

    __slots__ = ("base", "_base_scheme", "_document_scheme", "_dir", "_origin", "_swap")

    def __init__(self, base: str, document_scheme: str | None = None) -> None:
        self.base = base
        match = _SCHEME.match(base)
        self._base_scheme = match.group(1).lower() if match else ""
        self._document_scheme = (document_scheme or self._base_scheme).lower()
        # urljoin only resolves relative references for schemes it knows;
        # for a plugin's scheme (gemini:, s3: ...) resolve as if it were https
        # and put the real scheme back.
        self._swap = bool(match) and self._base_scheme not in uses_relative
        self._dir: str | None = None
        self._origin: str | None = None
        try:
            parts = urlsplit(base)
            if parts.scheme in ("http", "https") and parts.netloc and not parts.query:
                self._origin = f"{parts.scheme}://{parts.netloc}"
                path = parts.path or "/"
                self._dir = self._origin + path[: path.rfind("/") + 1]
        except ValueError:
            pass

    def __call__(self, raw: str) -> str | None:
        """Return the absolute URL ``raw`` refers to (fragment dropped), or ``None``."""
        if (
            self._dir is not None
            and raw[:1] != "."
            and "/." not in raw
            and raw[:2] != "//"  # protocol-relative
            and len(raw) <= MAX_URL_LENGTH
            and _SIMPLE_RELATIVE.fullmatch(raw)
        ):
            # No scheme, no dot segments, nothing to trim or encode: just join.
            return self._origin + raw if raw[0] == "/" else self._dir + raw  # type: ignore[operator]
        return self._resolve(raw)

    def _resolve(self, raw: str) -> str | None:
        url = raw.strip(_C0_AND_SPACE)
        if not url:
            return None
        if "\t" in url or "\n" in url or "\r" in url:
            url = url.translate(_TAB_NEWLINE)
        if not url or url[0] == "#":
            # Fragment-only references point into the document itself
            # (SVG ``use href="#icon"``, CSS ``url(#filter)``).
            return None
        match = _SCHEME.match(url)
        scheme = match.group(1).lower() if match else None
        if scheme == "data":
            return url if len(url) <= MAX_DATA_URL_LENGTH else None
        if len(url) > MAX_URL_LENGTH:
            return None
        if scheme in IGNORED_SCHEMES:
            return None
        effective = scheme or self._base_scheme
        if effective == "file" and self._document_scheme != "file":
            return None
        if "\\" in url and effective in _BACKSLASH_SCHEMES:
            head, sep, query = url.partition("?")
            url = head.replace("\\", "/") + sep + query
        try:
            if scheme is not None and not (
                # "http:img.png" on an http page is relative (WHATWG special schemes).
                scheme == self._base_scheme
                and scheme in uses_relative
                and not url[len(scheme) + 1 :].startswith("//")
            ):
                absolute = url
            elif self._swap:
                fake = "https" + self.base[len(self._base_scheme) :]
                absolute = urljoin(fake, url)
                if absolute.startswith("https:"):
                    absolute = self._base_scheme + absolute[5:]
            else:
                absolute = urljoin(self.base, url)
            absolute = absolute.partition("#")[0]
            parts = urlsplit(absolute)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            return None
        if not parts.scheme:
            return None
        scheme = parts.scheme.lower()
        if scheme in _HOST_REQUIRED and not parts.hostname:
            return None
        absolute = _normalize_origin(absolute, parts, scheme)
        if _UNSAFE.search(absolute):
            absolute = _percent_encode_unsafe(absolute)
        return absolute


def resolve(raw: str, base: str, *, document_scheme: str | None = None) -> str | None:
    """Resolve one reference ``raw`` against ``base``; ``None`` when it is not fetchable.

    Leading/trailing whitespace and control characters are trimmed, tabs and
    newlines removed, the fragment dropped; ``javascript:``, ``about:``,
    ``blob:``, ``mailto:``, ``tel:``, fragment-only and empty references are
    ignored; ``data:`` URLs are returned as they are (up to
    :data:`MAX_DATA_URL_LENGTH`).
    """
    return Resolver(base, document_scheme)(raw)
