"""Name resolution reported as its own phase, shared by every protocol plugin."""

from __future__ import annotations

import ipaddress
import socket
import time

import anyio

from ._errors import ConnectTimeout, NameResolutionError
from ._events import Phase
from ._protocol import Channel

__all__ = ["resolve_host"]

#: How long a resolved name is trusted before the next request resolves (and reports) it again.
RESOLVE_TTL = 60.0


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def resolve_host(channel: Channel, host: str, port: int, *, url: str | None = None) -> str | None:
    """Resolve ``host`` once per TTL per loader, emitting ``RESOLVING_NAME`` / ``NAME_RESOLVED``.

    Returns the first address (``None`` for an IP literal or a cached name,
    which emit nothing).  The socket library resolves again when connecting;
    the system resolver's cache makes that cheap, and this way a bad name fails
    here, with a ``NameResolutionError`` naming the host, before any connect.
    """
    if _is_ip(host):
        return None
    cache: dict[tuple[str, int], float] = channel.loader._resolved
    key = (host.lower(), port)
    now = time.monotonic()
    if cache.get(key, 0.0) > now:
        return None
    await channel.emit(Phase.RESOLVING_NAME, message=host)
    try:
        with anyio.fail_after(channel.timeouts.connect):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise ConnectTimeout(f"resolving {host} timed out", url=url) from exc
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise NameResolutionError(f"cannot resolve host {host!r}: {reason}", url=url) from exc
    address = str(infos[0][4][0]) if infos else None
    cache[key] = now + RESOLVE_TTL
    await channel.emit(Phase.NAME_RESOLVED, message=address)
    return address
