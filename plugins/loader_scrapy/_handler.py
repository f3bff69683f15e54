"""``LoaderDownloadHandler``: Scrapy downloads through the loader's protocol plugins."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import anyio
from scrapy import signals
from scrapy.exceptions import (
    CannotResolveHostError,
    CloseSpider,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
)
from scrapy.http import Headers, Request, Response, TextResponse
from scrapy.responsetypes import responsetypes

from loader import (
    ConnectError,
    Event,
    LoaderError,
    NameResolutionError,
    NetworkError,
    NotFound,
    Phase,
    Result,
    TimeoutError,
)

from ._shared import ReactorError, require_asyncio, shared_loader

__all__ = ["LoaderDownloadError", "LoaderDownloadHandler", "to_scrapy_error"]

logger = logging.getLogger(__name__)

#: Documents the loader makes of a protocol's own formats, answered as text.
_TEXT_DOCUMENTS = {"ftp-listing", "gopher-menu"}
#: Request headers the loader writes itself: it offers only the codings it undoes (Scrapy's
#: HttpCompressionMiddleware offers zstd and br whenever their packages are installed).
_OWN = ("accept-encoding",)
#: Response headers that describe the body as sent, not as handed over (already decoded).
_AS_SENT = (b"content-encoding", b"content-length", b"transfer-encoding")


class LoaderDownloadError(Exception):
    """A download that failed for good (not retried): the loader's error, URL and cause."""


def to_scrapy_error(error: BaseException) -> Exception:
    """The exception Scrapy expects for a loader failure: the transient ones are those
    Scrapy's ``RetryMiddleware`` retries (``RETRY_EXCEPTIONS``); the message names the URL
    and the cause."""
    message = str(error)
    if isinstance(error, TimeoutError):
        return DownloadTimeoutError(message)
    if isinstance(error, NameResolutionError):
        return CannotResolveHostError(message)
    if isinstance(error, ConnectError):
        return DownloadConnectionRefusedError(message)
    if isinstance(error, NetworkError):
        return ResponseDataLossError(message)
    if isinstance(error, LoaderError) and error.transient:
        return DownloadFailedError(message)
    return LoaderDownloadError(message)


class LoaderDownloadHandler:
    """A Scrapy download handler fetching through a :class:`~loader.Loader`.

    Map the schemes Scrapy should fetch this way in ``DOWNLOAD_HANDLERS``: ``ftp``,
    ``ftps``, ``gopher``, ``gophers`` (Scrapy has no handler for the last three), and
    ``http``/``https`` too for one per-host limit shared with the requisites
    (see :class:`~loader_scrapy.RequisitesMiddleware`).  The crawler's one loader is
    made from its settings (``loader_scrapy._shared.loader_options``).

    Each request is one ``Loader.fetch(url, as_is=True)``: a 3xx comes back as a response
    for Scrapy's ``RedirectMiddleware``, an error status as a response for
    ``HttpErrorMiddleware`` and ``RetryMiddleware``, and the loader neither retries nor
    answers from its memory.  The request's headers are sent but ``Accept-Encoding``
    (the loader offers the codings it decodes); ``download_timeout`` (meta) bounds the
    request; ``ftp_user``/``ftp_password`` (meta) log in to FTP as with Scrapy's own
    handler.  Cookies are Scrapy's (``CookiesMiddleware``), never the loader's jar.  Header
    lines are kept as received (two ``Set-Cookie`` lines stay two).  The body is handed
    over decoded, so ``Content-Encoding`` and ``Content-Length`` are left out.  FTP listings (JSON lines) and Gopher menus are
    :class:`~scrapy.http.TextResponse` objects with the loader's content type and the
    flag ``loader:<document>``; FTP's and Gopher's "not found" is a 404 response.
    A transport failure raises what ``RetryMiddleware`` retries (a timeout, a refused
    connection, a lost one); other failures raise :class:`LoaderDownloadError`.

    Under a non-asyncio reactor it logs one error naming ``TWISTED_REACTOR`` and closes
    the spider as it opens, before any request.
    """

    lazy = False

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self._shared = shared_loader(crawler)
        self._refused: ReactorError | None = None
        try:
            require_asyncio(type(self).__name__)
        except ReactorError as exc:
            # Raising here, Scrapy would log it and then fail each request of the scheme:
            # instead it is said once, and the spider is closed as it opens (before any request).
            self._refused = exc
            if not self._shared.refused:  # one handler a scheme: said once a crawl
                self._shared.refused = True
                logger.error("%s", exc)
                crawler.signals.connect(self._refuse, signal=signals.spider_opened)

    def _refuse(self) -> None:
        raise CloseSpider(reason="loader_scrapy: TWISTED_REACTOR is not asyncio's")

    @classmethod
    def from_crawler(cls, crawler: Any) -> LoaderDownloadHandler:
        return cls(crawler)

    async def download_request(self, request: Request) -> Response:
        if self._refused is not None:
            raise self._refused
        loader = await self._shared.get()
        lines: list[Sequence[tuple[str, str]]] = []

        def heard(event: Event) -> None:
            # The response's header lines as received (a proxy's CONNECT has a message).
            if event.phase is Phase.RESPONSE_RECEIVED and event.headers is not None and not event.message:
                lines.append(event.headers)

        method = request.method.upper()
        timeout = request.meta.get("download_timeout")
        with anyio.move_on_after(timeout if timeout else None) as scope:
            result = await loader.fetch(
                _with_login(request), as_is=True, headers=_request_headers(request.headers),
                callback=heard, method=method, content=request.body or None,
            )
        if scope.cancelled_caught:
            raise DownloadTimeoutError(f"{request.url}: no response within download_timeout of {timeout:g}s")
        if not result.ok:
            error = result.error or LoaderError("failed", url=result.url)
            if isinstance(error, NotFound):  # FTP 550, a Gopher error item: what a server's 404 says
                return Response(url=request.url, status=404, body=str(error).encode(), request=request)
            raise to_scrapy_error(error) from error
        return _response(request, result, lines[-1] if lines else None)

    async def close(self) -> None:
        await self._shared.aclose()


def _with_login(request: Request) -> str:
    """The URL, with ``ftp_user``/``ftp_password`` from the request's meta (Scrapy's own FTP
    handler's keys) put in when it names no user."""
    url = request.url
    user = request.meta.get("ftp_user")
    parts = urlsplit(url)
    if not user or parts.scheme not in ("ftp", "ftps") or "@" in parts.netloc:
        return url
    login = quote(str(user), safe="")
    password = request.meta.get("ftp_password")
    if password is not None:
        login += ":" + quote(str(password), safe="")
    return urlunsplit((parts.scheme, f"{login}@{parts.netloc}", parts.path, parts.query, parts.fragment))


def _request_headers(headers: Headers) -> dict[str, str]:
    """Scrapy's request headers as the loader takes them: one value a name (``Cookie``
    values joined with ``; ``, others with ``, ``, as RFC 9110 and 6265 say), but for
    ``Accept-Encoding``, which the loader writes."""
    out: dict[str, str] = {}
    for name, values in headers.items():
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        if key.lower() in _OWN:
            continue
        texts = [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in values]
        out[key] = ("; " if key.lower() == "cookie" else ", ").join(texts)
    return out


def _response(request: Request, result: Result, lines: Sequence[tuple[str, str]] | None) -> Response:
    headers = Headers()
    if lines is not None:
        for name, value in lines:
            headers.appendlist(name, value)
    else:
        for name, value in result.headers.items():
            headers.appendlist(name, value)
    for sent in _AS_SENT:
        headers.pop(sent, None)
    if result.content_type and b"content-type" not in headers:
        headers[b"Content-Type"] = result.content_type
    body = result.content or b""
    flags = [f"loader:{result.document}"] if result.document else []
    status = result.status if result.status is not None and result.status >= 100 else 200
    url = request.url if result.final_url == result.url else result.final_url
    kwargs: dict[str, Any] = {
        "url": url, "status": status, "headers": headers, "body": body, "request": request,
        "flags": flags, "protocol": result.http_version,
    }
    if result.document in _TEXT_DOCUMENTS:
        return TextResponse(encoding="utf-8", **kwargs)
    cls = responsetypes.from_args(headers=headers, url=url, body=body)
    return cls(**kwargs)
