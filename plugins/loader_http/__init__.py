"""The built-in HTTP/HTTPS protocol plugin (httpx underneath).

Registered through the ``loader`` entry-point group (``http = "loader_http"``)
exactly as a third-party plugin would be; read it as the example to copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loader import hookimpl

if TYPE_CHECKING:
    from loader import PluginContext

__all__ = ["loader_protocol", "loader_schemes"]

SCHEMES = ("http", "https")


@hookimpl
def loader_schemes() -> tuple[str, ...]:
    return SCHEMES


@hookimpl
def loader_protocol(scheme: str, context: PluginContext) -> Any:
    if scheme in SCHEMES:
        from ._handler import HttpHandler  # imported on first use: keeps `loader --help` fast

        return HttpHandler(context)
    return None
