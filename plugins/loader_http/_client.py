"""The HTTP plugin's pieces that are httpx classes: imported when the httpx client is built.

``_handler.py`` imports this module only when a request needs httpx's client (see
``_quiet_httpx.py``), so a fetch that never does never imports httpx.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ._handler import _sets_cookie
from ._quiet_httpx import httpx

__all__ = ["Client", "Cookies", "Deferred", "proxy_mounts", "uses_proxy"]


class Deferred(httpx.AsyncBaseTransport):
    """A transport built on its first request (httpcore's import and pool cost nothing unused)."""

    def __init__(self, build: Callable[[], httpx.AsyncBaseTransport]) -> None:
        self._build = build
        self._transport: httpx.AsyncBaseTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._transport is None:
            self._transport = self._build()
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()


def proxy_mounts(
    standard: Callable[..., httpx.AsyncBaseTransport],
) -> dict[str, httpx.AsyncBaseTransport | None] | None:
    """httpx's own reading of the proxy environment (``*_PROXY``, ``NO_PROXY``) as mounts.

    httpx reads it only when it builds its default transport itself; ``None``
    when this httpx no longer offers the reader (then the standard transport is used).
    """
    try:
        from httpx._utils import get_environment_proxies
    except ImportError:
        return None
    return {
        pattern: None if url is None else Deferred(functools.partial(standard, url))
        for pattern, url in get_environment_proxies().items()
    }


def uses_proxy(client: httpx.AsyncClient, url: httpx.URL) -> bool:
    """Whether ``client`` sends ``url`` through a proxy (then the proxy resolves the name).

    Asked of httpx's own routing, so it agrees with where the request really goes.
    """
    route = getattr(client, "_transport_for_url", None)
    return route is not None and route(url) is not getattr(client, "_transport", None)


class Cookies(httpx.Cookies):
    """httpx's cookie jar, skipped for a response that sets no cookie.

    ``http.cookiejar`` builds urllib request and response stand-ins for every
    response before it looks for ``Set-Cookie``: about 8% of a small request's CPU.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if _sets_cookie(response.headers):
            super().extract_cookies(response)


class Client(httpx.AsyncClient):
    """httpx's client with :class:`Cookies` as its jar (``cookies=`` keeps working)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._jar = Cookies(super().cookies)

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = Cookies(cookies)
