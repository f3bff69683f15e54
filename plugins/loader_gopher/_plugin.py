"""The hook implementations that make this package a ``loader`` plugin."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from loader import hookimpl

from ._schemes import SCHEMES

if TYPE_CHECKING:
    from loader import PluginContext, ProtocolHandler
    from loader.discovery import Document, Found

__all__ = ["SCHEMES", "loader_add_commands", "loader_extract", "loader_protocol", "loader_schemes"]


@hookimpl
def loader_schemes() -> Sequence[str]:
    """``gopher`` and ``gophers`` (Gopher over TLS)."""
    return SCHEMES


@hookimpl
def loader_protocol(scheme: str, context: PluginContext) -> ProtocolHandler | None:
    """A :class:`GopherHandler` for the gopher schemes."""
    if scheme in SCHEMES:
        from ._handler import GopherHandler  # on first use: keeps `loader --help` fast

        return GopherHandler(context)
    return None


@hookimpl
def loader_extract(document: Document) -> Iterable[Found] | None:
    """The images, sounds and videos a gopher menu lists."""
    if document.type == "gopher-menu":
        from ._extract import extract_menu

        return extract_menu(document)
    return None


@hookimpl
def loader_add_commands(subparsers: Any) -> None:
    """``loader gopher ls`` and ``loader gopher search``."""
    from ._cli import add_commands

    add_commands(subparsers)
