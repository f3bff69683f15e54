"""The library API: menus as typed items, and any item as a stream.

These are the Gopher operations WinINet offers asynchronously (``GopherFindFirstFile``
/ ``InternetFindNextFile`` over a menu, ``GopherOpenFile``), as operations of a
:class:`~loader.Loader`: each is one request with its own id, reporting its
phases to ``callback`` with ``context``, from ``HANDLE_CREATED`` to
``REQUEST_COMPLETE`` (or ``FAILED``).  Failures raise :mod:`loader` errors
(``NotFound`` for a server's error item …), as ``Loader.operation`` does.

::

    async with Loader() as ld:
        menu = await loader_gopher.read_menu(ld, "gopher://example.org/1/")
        for item in menu.links:
            print(item.kind, item.display, item.url)
        async with loader_gopher.open_item(ld, menu.links[0]) as response:
            async for chunk in response.stream:
                ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from loader import Channel, Event, Loader, Request, Response

from ._menu import Menu, MenuItem, MenuParser
from ._urls import parse_url

__all__ = ["MenuReader", "open_item", "open_menu", "read_menu", "search"]

#: Called with each :class:`~loader.Event` of the operation (awaited if it returns an awaitable).
Callback = Callable[[Event], object]


class MenuReader:
    """The items of a menu as they arrive (``async for item in reader``): find-first/next.

    ``url`` is the menu's URL; after iteration, ``malformed`` counts the lines
    the parser had to guess at.
    """

    def __init__(self, url: str, response: Response, parser: MenuParser, channel: Channel) -> None:
        self.url = url
        self._stream = channel.progress(response.stream)
        self._parser = parser
        self._ready: list[MenuItem] = []
        self._index = 0
        self._finished = False

    @property
    def malformed(self) -> int:
        """Lines that needed guessing so far (no TAB, bad port)."""
        return self._parser.malformed

    def __aiter__(self) -> MenuReader:
        return self

    async def __anext__(self) -> MenuItem:
        while self._index >= len(self._ready):
            if self._finished:
                raise StopAsyncIteration
            self._ready, self._index = await self._more(), 0
        item = self._ready[self._index]
        self._index += 1
        return item

    async def _more(self) -> list[MenuItem]:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._finished = True
            return self._parser.close()
        items = self._parser.feed(chunk)
        # After the "." line nothing more belongs to the menu: stop reading.
        self._finished = self._parser.done
        return items


@asynccontextmanager
async def open_menu(
    loader: Loader,
    url: str,
    *,
    search: str | None = None,
    callback: Callback | None = None,
    context: object = None,
) -> AsyncIterator[MenuReader]:
    """Open a menu (or, with ``search``, a type-7 search's results) and yield a :class:`MenuReader`.

    The connection stays open while the block runs; items are parsed as
    bytes arrive, so a huge menu never has to be held whole.
    """
    target = parse_url(url)
    if search is not None:
        target = target.with_search(search)
    menu_url = target.url
    async with loader.operation(menu_url, callback=callback, context=context) as channel:
        handler = loader.handler(target.scheme)
        async with handler.open(Request(url=menu_url, kind="gopher-menu"), channel) as response:
            parser = MenuParser(
                host=target.host, port=target.port, secure=target.secure, url=menu_url
            )
            yield MenuReader(menu_url, response, parser, channel)


async def read_menu(
    loader: Loader,
    url: str,
    *,
    search: str | None = None,
    callback: Callback | None = None,
    context: object = None,
) -> Menu:
    """Read a whole menu (or a search's results) into a :class:`~loader_gopher.Menu`."""
    async with open_menu(loader, url, search=search, callback=callback, context=context) as reader:
        items = [item async for item in reader]
    return Menu(reader.url, items)


async def search(
    loader: Loader,
    url: str,
    terms: str,
    *,
    callback: Callback | None = None,
    context: object = None,
) -> Menu:
    """Run a type-7 search at ``url`` for ``terms`` and return the result menu."""
    return await read_menu(loader, url, search=terms, callback=callback, context=context)


@asynccontextmanager
async def open_item(
    loader: Loader,
    item: MenuItem | str,
    *,
    callback: Callback | None = None,
    context: object = None,
) -> AsyncIterator[Response]:
    """Open a menu item (or a gopher URL) and yield its :class:`~loader.Response` to stream.

    Text items arrive with dot-stuffing undone; ``response.content_type`` and
    ``response.document`` say what the body is.  ``PROGRESS`` events follow
    the caller's reading.
    """
    url = item.url if isinstance(item, MenuItem) else item
    target = parse_url(url)
    async with loader.operation(url, callback=callback, context=context) as channel:
        handler = loader.handler(target.scheme)
        async with handler.open(Request(url=url), channel) as response:
            response.stream = channel.progress(response.stream)
            yield response
