"""What discovery produces: found resources and the documents they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "DEFAULT_KINDS", "Document", "Found", "parse_kinds"]

#: Every kind discovery can report.  ``style`` resources are always fetched
#: for discovery (their images count as images) but saved only when asked for.
KINDS = ("image", "sound", "style", "script", "font", "video", "frame", "meta")
DEFAULT_KINDS = frozenset({"image", "sound"})


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


@dataclass(frozen=True, slots=True)
class Found:
    """One resource a document uses, and why it was found.

    ``url`` is absolute with the fragment dropped (extractors from hooks may
    return relative URLs; discovery resolves them).  ``kind`` is one of
    :data:`KINDS`; ``element`` and ``attribute`` say where it was found
    (``"img"``/``"srcset"``, ``"style"``/``"url()"``, ``"css"``/``"@import"`` …);
    ``source`` is the URL of the document it was found in.  ``also`` records
    the provenance of duplicates that were merged into this one.
    """

    url: str
    kind: str
    element: str
    attribute: str
    source: str | None = None
    also: tuple[tuple[str, str, str | None], ...] = ()

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
