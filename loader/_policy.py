"""Request policies that guard against what pages and servers make the loader do.

Two checks, both pure (no I/O), applied by the core and the shared network steps:

* **Ports** (:func:`port_refusal`): a page or a redirect must not make the loader
  send bytes to another protocol's port.  A Gopher selector or an HTTP request
  line ends in CRLF, so to a Redis, SMTP or memcached port it is a command.  The
  ports refused are the Fetch standard's "bad ports" plus well-known datastore
  ports, for every scheme, except a scheme's own default port (``ftp://`` on 21).
  URLs the user typed are not checked; requisites and redirects are, unless the
  port is in ``Loader(allow_ports=...)`` (``--allow-port``).
* **Private addresses** (:func:`address_refusal`): with ``Loader(deny_private=True)``
  (``--deny-private``) no connection may reach a loopback, link-local, private,
  unique-local or otherwise non-global address.  It is checked on the address a
  connection actually reached, before a byte is sent, so a name that resolves
  differently the second time (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import functools
import ipaddress

from ._urls import DEFAULT_PORTS, split_origin

__all__ = ["BLOCKED_PORTS", "DEFAULT_PORTS", "address_refusal", "port_refusal"]

#: The Fetch standard's "bad ports" (https://fetch.spec.whatwg.org/#port-blocking).
FETCH_BAD_PORTS = frozenset({
    0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87,
    95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143,
    161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556,
    563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190,
    5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
})
#: Datastores and brokers that read line-based commands (a CRLF-terminated request is one).
DATASTORE_PORTS = frozenset({
    1433,   # SQL Server
    1521,   # Oracle
    2375, 2376,  # Docker's API
    2379, 2380,  # etcd
    3306,   # MySQL
    4369,   # Erlang port mapper
    5432,   # PostgreSQL
    5672,   # AMQP
    5984,   # CouchDB
    6379, 6380,  # Redis
    7000, 7001,  # Cassandra cluster
    8086,   # InfluxDB
    9042,   # Cassandra
    9200, 9300,  # Elasticsearch
    11211,  # memcached
    26379,  # Redis Sentinel
    27017, 27018, 27019,  # MongoDB
})
BLOCKED_PORTS = FETCH_BAD_PORTS | DATASTORE_PORTS
def port_refusal(
    url: str, allowed: frozenset[int] = frozenset(), origin: tuple[str, str, int | None] | None = None
) -> str | None:
    """Why ``url``'s port must not be reached from a page or a redirect, or ``None``.

    ``origin``: ``split_origin(url)``, when the caller has it already.  A URL that
    cannot be parsed is not refused here: it fails later with its own error.
    """
    if origin is None:
        origin = split_origin(url)
    if origin is None:
        return None
    scheme, _, port = origin
    if port is None or port not in BLOCKED_PORTS:
        return None
    if port == DEFAULT_PORTS.get(scheme) or (scheme == "ftps" and port == 990):
        return None
    if port not in allowed:
        return (
            f"port {port} belongs to another protocol (a blocked port: "
            "allow it with --allow-port or Loader(allow_ports=...))"
        )
    return None


@functools.lru_cache(maxsize=1024)
def address_refusal(address: str) -> str | None:
    """Why a connection to ``address`` is refused under ``deny_private``, or ``None``.

    Anything but a globally routable unicast address is refused: loopback,
    link-local (``169.254.169.254``, cloud metadata), private (RFC 1918),
    unique-local (``fc00::/7``), carrier-grade NAT, unspecified, multicast and
    reserved ranges; an IPv4-mapped IPv6 address is judged as its IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        what = "a loopback"
    elif ip.is_link_local:
        what = "a link-local"
    elif ip.is_private:
        what = "a private"
    elif ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        what = "a non-public"
    else:
        return None
    return f"{address} is {what} address (refused by --deny-private)"
