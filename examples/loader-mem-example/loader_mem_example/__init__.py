"""An example loader plugin: the ``mem:`` scheme, files served from memory.

Importing this module must stay cheap: it is imported for every ``loader`` run
(``--help`` included), so the handler lives in ``_handler`` and is imported only
when a ``mem:`` URL is first fetched.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from loader import PluginContext, hookimpl

if TYPE_CHECKING:  # for annotations only: importing this module must stay cheap
    import argparse

    from loader import Loader, ProtocolHandler
    from loader.discovery import Document, Found

SCHEMES = ("mem",)


@hookimpl
def loader_schemes() -> tuple[str, ...]:
    """The schemes listed by ``loader plugins`` and named when a scheme is unsupported."""
    return SCHEMES


@hookimpl
def loader_protocol(scheme: str, context: PluginContext) -> ProtocolHandler | None:
    """A handler for ``mem:``; ``None`` leaves every other scheme to other plugins."""
    if scheme not in SCHEMES:
        return None
    from ._handler import MemHandler

    return MemHandler()


@hookimpl
def loader_allow(url: str, purpose: str) -> bool | str | None:
    """Refuse ``mem://…/private/…``: a reason string denies with ``PolicyDenied``."""
    if url.lower().startswith("mem:") and "/private/" in url:
        return "mem: files under private/ are never served"
    return None  # no opinion: other plugins (and the core's own policy) decide


@hookimpl
def loader_extract(document: Document) -> Iterable[Found] | None:
    """The requisites of a ``mem-index`` document: one relative URL per line."""
    if document.type != "mem-index":
        return None
    from loader.discovery import Found, kind_for_name

    found = []
    for line in document.content.decode("utf-8").splitlines():
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        # The kind ("image", "sound" …) decides whether --kinds wants it; the element
        # and attribute are the provenance `loader fetch --list` prints.
        kind = kind_for_name(name) or "meta"
        # Relative URLs are fine: discovery resolves them against document.base_url.
        found.append(Found(url=name, kind=kind, element="mem-index", attribute="line",
                           source=document.url))
    return found


@hookimpl
def loader_add_commands(subparsers: Any) -> None:
    """``loader mem``: list the files the ``mem:`` scheme serves."""
    from loader.cli import add_common_options

    parser = subparsers.add_parser("mem", help="list the files of the mem: example scheme")
    add_common_options(parser)
    parser.set_defaults(run=_list_files)


async def _list_files(args: argparse.Namespace, loader: Loader) -> int:
    from ._handler import FILES

    for path, (body, content_type, _document) in sorted(FILES.items()):
        print(f"mem://example/{path}\t{len(body)} bytes\t{content_type}")
    return 0
