"""What discovery produces: found resources and the documents they came from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "KIND_BY_EXTENSION",
    "LINK_KINDS",
    "MAX_LINKS",
    "Document",
    "Found",
    "check_kinds",
    "kind_for_name",
    "parse_kinds",
]

#: Every kind discovery can report.  ``style`` resources are always fetched
#: for discovery (their images count as images) but saved only when asked for.
#: ``icon``: the icon links a browser tab does not load (touch icons, startup
#: images, mask icons, other sizes); the tab's own favicon is an ``image``.
KINDS = ("image", "sound", "style", "script", "font", "video", "frame", "meta", "icon")
DEFAULT_KINDS = frozenset({"image", "sound"})
#: Kinds of outgoing links (``Discovery.links``, ``PageResult.links``): ``link`` for
#: ``a``/``area[href]``, ``link rel=next|prev|alternate``, Gopher menu items and FTP
#: directory entries; ``frame`` for ``iframe``/``frame[src]`` (also a requisite kind).
LINK_KINDS = frozenset({"link", "frame"})
#: Most outgoing links kept per document (the rest are counted in ``links_skipped``).
MAX_LINKS = 10_000

#: The kind a file extension suggests: for URLs discovery cannot type otherwise
#: (``embed``, lazy ``data-src``) and for names in listings (FTP directories).
KIND_BY_EXTENSION: dict[str, str] = {
    ext: kind
    for kind, extensions in {
        "image": "png jpg jpeg jpe jfif pjpeg pjp gif webp avif svg svgz bmp ico cur tif tiff "
        "jxl apng heic heif xbm pcx",
        "sound": "mp3 wav wave ogg oga opus m4a aac flac mid midi kar wma aif aiff aifc au snd "
        "weba ra mka amr",
        "video": "mp4 m4v webm ogv mov avi mkv wmv flv mpg mpeg 3gp m3u8 mpd",
        "style": "css",
        "script": "js mjs",
        "font": "woff woff2 ttf otf eot",
    }.items()
    for ext in extensions.split()
}


def kind_for_name(name: str) -> str | None:
    """The kind (``image``, ``sound`` …) a file name's extension says, or ``None``."""
    stem, dot, ext = name.rpartition(".")
    return KIND_BY_EXTENSION.get(ext.lower()) if dot and stem else None


def parse_kinds(spec: str | None) -> frozenset[str]:
    """Parse a ``--kinds`` value: ``"images,sounds"``, ``"all"``, singular or plural names."""
    if not spec:
        return DEFAULT_KINDS
    kinds: set[str] = set()
    for raw in spec.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name == "all":
            # "meta" (og:image and the like) stays opt-in even under "all".
            kinds.update(k for k in KINDS if k != "meta")
            continue
        if name not in KINDS and name.endswith("s") and name[:-1] in KINDS:
            name = name[:-1]
        if name not in KINDS:
            raise ValueError(f"unknown kind {raw.strip()!r}; choose from {', '.join(KINDS)} or all")
        kinds.add(name)
    return frozenset(kinds)


def check_kinds(kinds: str | Iterable[str]) -> frozenset[str]:
    """``kinds`` as a frozenset of requisite kinds; ``ValueError`` naming any unknown one.

    ``link`` is not a requisite kind: outgoing links are always collected, in
    ``PageResult.links``, and never fetched as requisites.
    """
    if isinstance(kinds, str):
        kinds = [kinds]
    chosen = frozenset(kinds)
    unknown = sorted(str(kind) for kind in chosen - frozenset(KINDS))
    if unknown:
        hint = " (outgoing links are always in PageResult.links)" if "link" in unknown else ""
        raise ValueError(f"unknown kinds {', '.join(map(repr, unknown))}; "
                         f"known kinds: {', '.join(KINDS)}{hint}")
    return chosen


@dataclass(frozen=True, slots=True)
class Found:
    """One resource a document uses, and why it was found.

    ``url`` is absolute with the fragment dropped (extractors from hooks may
    return relative URLs; discovery resolves them).  ``kind`` is one of
    :data:`KINDS`; ``element`` and ``attribute`` say where it was found
    (``"img"``/``"srcset"``, ``"style"``/``"url()"``, ``"css"``/``"@import"`` …);
    ``source`` is the URL of the document it was found in.  ``also`` records
    the provenance of duplicates that were merged into this one (the first
    few: discovery keeps at most ``MAX_ALSO``).  ``why`` names the rule of
    the browser model that selected it (``"srcset: chose 2x for dpr 2"``,
    ``"css: rule matched .hero"``) or, for an item discovery left out
    (``Discovery.dropped``), why it was skipped.
    """

    url: str
    kind: str
    element: str
    attribute: str
    source: str | None = None
    also: tuple[tuple[str, str, str | None], ...] = ()
    why: str = ""

    def provenance(self) -> str:
        """``"img[srcset]"``-style description."""
        return f"{self.element}[{self.attribute}]"


@dataclass(slots=True)
class Document:
    """A fetched document handed to extractors (built-in and ``loader_extract`` hooks).

    ``type`` is ``"html"``, ``"css"``, ``"gopher-menu"`` or ``"ftp-listing"``;
    ``base_url`` is the URL relative references resolve against (``<base href>``
    applied); ``tree`` is the selectolax ``HTMLParser`` for HTML, else ``None``.
    """

    url: str
    type: str
    content: bytes
    base_url: str
    content_type: str | None = None
    tree: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
