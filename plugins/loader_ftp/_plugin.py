"""The hook implementations that make this package a ``loader`` plugin."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from loader import hookimpl

if TYPE_CHECKING:
    from loader import PluginContext, ProtocolHandler
    from loader.discovery import Document, Found


__all__ = ["SCHEMES", "loader_add_commands", "loader_extract", "loader_protocol", "loader_schemes"]

#: ``ftp`` and ``ftps`` (explicit FTPS: ``AUTH TLS`` on the plain port).
SCHEMES = ("ftp", "ftps")


@hookimpl
def loader_schemes() -> Sequence[str]:
    """``ftp`` and ``ftps``."""
    return SCHEMES


@hookimpl
def loader_protocol(scheme: str, context: PluginContext) -> ProtocolHandler | None:
    """An :class:`FtpHandler` (with its own connection pool) for the FTP schemes."""
    if scheme in SCHEMES:
        from ._handler import FtpHandler  # on first use: keeps `loader --help` fast

        return FtpHandler(context)
    return None


@hookimpl
def loader_extract(document: Document) -> Iterable[Found] | None:
    """The images, sounds … an FTP directory listing lists."""
    if document.type == "ftp-listing":
        from ._extract import extract_listing

        return extract_listing(document)
    return None


@hookimpl
def loader_add_commands(subparsers: Any) -> None:
    """``loader ftp ls|mkdir|rmdir|rm|mv|put|get|pwd``."""
    from ._cli import add_commands

    add_commands(subparsers)
