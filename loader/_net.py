"""Network steps every protocol plugin shares: resolving, connecting, TLS contexts.

Each reports its phases through the request's channel, so every plugin that
uses them produces the same events and the same errors.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl

import anyio
from anyio.abc import ByteStream, SocketAttribute
from anyio.streams.tls import TLSStream

from ._context import make_ssl_context
from ._errors import ConnectError, ConnectTimeout, NameResolutionError, PolicyDenied
from ._events import Phase
from ._protocol import Channel

__all__ = ["check_peer", "is_ip", "make_ssl_context", "open_connection", "resolve_host", "resolved_already"]


@functools.lru_cache(maxsize=1024)  # asked once per request: parsing an address each time shows
def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address literal (IPv6 with or without brackets)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def resolved_already(channel: Channel, host: str, port: int) -> bool:
    """Whether :func:`resolve_host` would return ``None`` at once, emitting nothing (an IP
    literal, or a name resolved within its TTL): then a caller may skip its coroutine."""
    return is_ip(host) or channel.context.resolved.fresh(host, port)


async def resolve_host(channel: Channel, host: str, port: int, *, url: str | None = None) -> str | None:
    """Resolve ``host`` once per TTL per loader, emitting ``RESOLVING_NAME`` / ``NAME_RESOLVED``.

    Returns the first address (``None`` for an IP literal or a cached name,
    which emit nothing).  The socket library resolves again when connecting;
    the system resolver's cache makes that cheap, and this way a bad name fails
    here, with a ``NameResolutionError`` naming the host, before any connect.
    """
    if resolved_already(channel, host, port):
        return None
    resolved = channel.context.resolved
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
    resolved.note(host, port)
    await channel.emit(Phase.NAME_RESOLVED, message=address)
    return address


def check_peer(channel: Channel, address: str, *, url: str | None = None) -> None:
    """Raise ``PolicyDenied`` when the loader refuses connections to ``address``.

    Call it with the address a connection actually reached, before sending
    anything on it (``Loader(deny_private=True)``; see ``loader._policy``).
    """
    if not channel.context.deny_private:
        return
    from ._policy import address_refusal

    refusal = address_refusal(address)
    if refusal is not None:
        raise PolicyDenied(refusal, url=url)


async def open_connection(
    channel: Channel,
    host: str,
    port: int,
    *,
    url: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    tls_standard_compatible: bool = True,
) -> ByteStream:
    """Resolve (see :func:`resolve_host`) and connect within ``channel.timeouts.connect``.

    Emits ``CONNECTING_TO_SERVER`` (``host:port``) and ``CONNECTED_TO_SERVER``
    (the address reached).  With ``ssl_context`` the TLS handshake is part of
    connecting.  Failures raise ``ConnectTimeout`` or ``ConnectError`` naming
    ``url``; a rejected certificate or failed handshake is not transient.
    """
    await resolve_host(channel, host, port, url=url)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    await channel.emit(Phase.CONNECTING_TO_SERVER, message=where)
    timeout = channel.timeouts.connect
    try:
        with anyio.fail_after(timeout):
            # -4/-6 (Loader(local_address=...)) hold for every protocol, not HTTP alone.
            local = channel.context.local_address
            stream: ByteStream = await anyio.connect_tcp(host, port, local_host=local)
            remote = stream.extra(SocketAttribute.remote_address)
            try:
                check_peer(channel, str(remote[0]), url=url)  # before a byte is sent, TLS's included
            except PolicyDenied:
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
                raise
            if ssl_context is not None:
                stream = await TLSStream.wrap(
                    stream, hostname=host, ssl_context=ssl_context,
                    standard_compatible=tls_standard_compatible,
                )
    except TimeoutError as exc:
        raise ConnectTimeout(f"connecting to {where} timed out after {timeout:g} s", url=url) from exc
    except ssl.SSLCertVerificationError as exc:
        error = ConnectError(f"TLS certificate rejected: {exc.verify_message or exc}", url=url)
        error.transient = False  # retrying will not make the certificate valid
        raise error from exc
    except (ssl.SSLError, anyio.BrokenResourceError) as exc:
        error = ConnectError(f"TLS handshake with {where} failed: {exc}", url=url)
        error.transient = False
        raise error from exc
    except socket.gaierror as exc:
        raise NameResolutionError(f"cannot resolve host {host!r}: {exc.strerror or exc}", url=url) from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}", url=url) from exc
    await channel.emit(Phase.CONNECTED_TO_SERVER, message=f"{remote[0]}:{remote[1]}")
    return stream
