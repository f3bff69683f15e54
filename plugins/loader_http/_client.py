"""The HTTP plugin's pieces that are httpx classes: imported when the httpx client is built.

``_handler.py`` imports this module only when a request needs httpx's client (see
``_lazy_httpx.py``), so a fetch that never does never imports httpx.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ._direct import sets_cookie
from ._lazy_httpx import httpx

__all__ = ["Client", "Cookies", "Deferred", "Routes"]


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


class Routes(httpx.AsyncBaseTransport):
    """The client's one transport: sends each request directly or through a proxy.

    The loader's own ``proxy`` takes everything; otherwise the environment's, read by
    the standard library's public ``urllib.request.getproxies`` (``*_proxy``
    variables, macOS/Windows settings) and ``proxy_bypass_environment``
    (``no_proxy``).  Routing here rather than in httpx's mounts lets the handler ask
    :meth:`proxied` of the very rule that sends the request.
    """

    def __init__(
        self,
        default: httpx.AsyncBaseTransport,
        build: Callable[[str], httpx.AsyncBaseTransport],
        proxy: str | None = None,
    ) -> None:
        import urllib.request

        self.default = default
        self._build = build
        self._proxy = proxy
        self._proxies = {} if proxy else {k: v for k, v in urllib.request.getproxies().items() if v}
        self._bypass = urllib.request.proxy_bypass_environment
        self._through: dict[str, httpx.AsyncBaseTransport] = {}

    def proxy_for(self, url: httpx.URL) -> str | None:
        """The proxy URL a request for ``url`` goes through (None: directly)."""
        if self._proxy:
            return self._proxy
        if not self._proxies:
            return None
        found = self._proxies.get(url.scheme) or self._proxies.get("all")
        if not found:
            return None
        host = url.host if url.port is None else f"{url.host}:{url.port}"
        if "no" in self._proxies and self._bypass(host, self._proxies):
            return None
        return found

    def proxied(self, url: httpx.URL) -> bool:
        """Whether a request for ``url`` goes through a proxy (then the proxy resolves the name)."""
        return self.proxy_for(url) is not None

    def route(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        """The transport a request for ``url`` is sent on."""
        proxy = self.proxy_for(url)
        if proxy is None:
            return self.default
        transport = self._through.get(proxy)
        if transport is None:
            self._through[proxy] = transport = Deferred(functools.partial(self._build, proxy))
        return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.route(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self.default, *self._through.values()):
            await transport.aclose()


class Cookies(httpx.Cookies):
    """httpx's cookie jar, skipped for a response that sets no cookie.

    ``http.cookiejar`` builds urllib request and response stand-ins for every
    response before it looks for ``Set-Cookie``: about 8% of a small request's CPU.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        if sets_cookie(response.headers):
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
