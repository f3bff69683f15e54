"""The shared network steps (``loader._net``) against real servers."""

from __future__ import annotations

from typing import Any

import pytest

from loader import Loader
from loader._errors import ConnectError

pytestmark = pytest.mark.anyio


async def test_local_address_binds_gopher_and_ftp_connections_too(gopher_server: Any, ftp_server: Any) -> None:
    # -4/-6 are Loader(local_address=...): an IPv6 source cannot reach an IPv4 server.
    async with Loader(local_address="0.0.0.0") as loader:
        ok = [await loader.fetch(gopher_server.url("0", "/about.txt")),
              await loader.fetch(ftp_server.url("/pub/hello.txt"))]
    assert all(r.ok for r in ok), ok
    async with Loader(local_address="::") as loader:
        refused = [await loader.fetch(gopher_server.url("0", "/about.txt")),
                   await loader.fetch(ftp_server.url("/pub/hello.txt"))]
    assert all(isinstance(r.error, ConnectError) for r in refused), refused
