"""What ``-v`` prints: request and response heads, credentials hidden.

Loaded only with ``-v`` (it needs the protocol seam, which ``--help`` does not).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ._protocol import Channel, ProtocolHandler, Response

if TYPE_CHECKING:
    from ._models import Request

__all__ = ["SECRET_HEADERS", "ShowResponseHead", "request_head", "response_head"]

#: Header names whose values ``-v`` never shows (of a request's, only the scheme, e.g. ``Basic``).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def request_head(method: str, url: str, headers: dict[str, str]) -> str:
    """The head ``-v`` shows: ``> METHOD target``, ``> Host``, the loader's headers, secrets hidden.

    The HTTP library adds its defaults (``Accept``, ``Accept-Encoding``, ``Connection``,
    ``User-Agent`` unless given) when it writes the head.
    """
    from ._display import printable

    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    lines = [f"> {method} {printable(target)}", f"> Host: {printable(host)}"]
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} <hidden>".strip()
        lines.append(f"> {printable(name)}: {printable(value)}")
    return "\n".join(lines) + "\n"


def response_head(response: Response) -> str:
    """The head ``-v`` shows for a response: ``< HTTP/1.1 200 OK`` and its headers, secrets hidden."""
    from ._display import printable

    version = response.http_version or "HTTP"
    lines = [f"< {version} {response.status} {printable(response.reason or '')}".rstrip()]
    for name, value in (response.headers or {}).items():
        if name.lower() in SECRET_HEADERS:
            value = "<hidden>"
        lines.append(f"< {printable(name)}: {printable(value)}")
    return "\n".join(lines) + "\n"


class ShowResponseHead(ProtocolHandler):
    """A protocol handler that prints each response's head (``-v``) before its body is read."""

    def __init__(self, inner: ProtocolHandler, write: Callable[[str], None]) -> None:
        self.inner = inner
        self.schemes = inner.schemes
        self.sends_bodies = getattr(inner, "sends_bodies", False)  # -v must not refuse -d or -T
        self._write = write

    @asynccontextmanager
    async def open(self, request: Request, channel: Channel) -> AsyncIterator[Response]:
        """The inner handler's response, its head printed first."""
        async with self.inner.open(request, channel) as response:
            self._write(response_head(response))
            yield response

    def warm_up(self) -> None:
        """The inner handler's warm-up."""
        self.inner.warm_up()

    async def aclose(self) -> None:
        """Close the inner handler."""
        await self.inner.aclose()
