"""A synchronous facade for scripts: the same Loader, run on a private event loop thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._loader import Loader

if TYPE_CHECKING:
    from ._models import Result
    from ._page import PageResult

__all__ = ["SyncLoader"]

_T = TypeVar("_T")


class SyncLoader:
    """``with SyncLoader(...) as loader: loader.fetch(url)``.

    Takes the same keyword arguments as :class:`Loader` plus ``backend``
    (``"asyncio"`` or ``"trio"``).  Every method blocks until its result is
    ready.  Short callbacks run on the loader's event-loop thread, not the
    caller's: the source documents' "the callback may run on any thread".

    A failure while starting (a wrong keyword, a plugin that cannot register,
    an unknown backend) raises from ``with`` in the caller's thread, and no
    event-loop thread is left running.
    """

    def __init__(self, *, backend: str = "asyncio", **options: Any) -> None:
        self._backend = backend
        self._options = options
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self.loader: Loader | None = None

    def __enter__(self) -> SyncLoader:
        from ._loop import backend_options

        # The Loader is built before the event-loop thread starts: a wrong keyword or
        # a plugin that cannot register then raises here, with no thread to leave behind.
        loader = Loader(**self._options)
        portal_cm = start_blocking_portal(self._backend, backend_options(self._backend))
        portal = portal_cm.__enter__()
        try:
            portal.call(loader.__aenter__)
        except BaseException as exc:
            # Without this exit the portal's non-daemon thread would keep the
            # process alive after the error was printed.
            portal_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._portal_cm, self._portal, self.loader = portal_cm, portal, loader
        return self

    def __exit__(self, *exc_info: Any) -> None:
        portal_cm, portal, loader = self._portal_cm, self._portal, self.loader
        self._portal_cm = self._portal = None
        if portal_cm is None:
            return
        try:
            if portal is not None and loader is not None:
                portal.call(loader.aclose)
        finally:
            portal_cm.__exit__(*exc_info)

    def _call(self, method: Callable[[Loader], Awaitable[_T]]) -> _T:
        portal, loader = self._portal, self.loader
        if portal is None or loader is None:
            raise RuntimeError("use SyncLoader as 'with SyncLoader(...) as loader:'")
        return portal.call(method, loader)

    def fetch(self, url: str, **kwargs: Any) -> Result:
        """Blocking :meth:`Loader.fetch`."""
        return self._call(lambda loader: loader.fetch(url, **kwargs))

    def fetch_all(self, urls: Iterable[str], **kwargs: Any) -> list[Result]:
        """Blocking :meth:`Loader.fetch_all`."""
        return self._call(lambda loader: loader.fetch_all(urls, **kwargs))

    def fetch_page(self, url: str, **kwargs: Any) -> PageResult:
        """Blocking :meth:`Loader.fetch_page`."""
        return self._call(lambda loader: loader.fetch_page(url, **kwargs))
