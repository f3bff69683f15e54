"""A synchronous facade for scripts: the same Loader, run on a private event loop thread."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._loader import Loader

__all__ = ["SyncLoader"]

T = TypeVar("T")


class SyncLoader:
    """``with SyncLoader(...) as loader: loader.fetch(url)``.

    Takes the same keyword arguments as :class:`Loader` plus ``backend``
    (``"asyncio"`` or ``"trio"``).  Every method blocks until its result is
    ready.  Short callbacks run on the loader's event-loop thread, not the
    caller's: the source documents' "the callback may run on any thread".
    """

    def __init__(self, *, backend: str = "asyncio", **options: Any) -> None:
        self._backend = backend
        self._options = options
        self._portal_cm: Any = None
        self._portal: BlockingPortal | None = None
        self.loader: Loader | None = None

    def __enter__(self) -> SyncLoader:
        from ._loop import backend_options

        self._portal_cm = start_blocking_portal(self._backend, backend_options(self._backend))
        self._portal = self._portal_cm.__enter__()
        self.loader = Loader(**self._options)
        self._portal.call(self.loader.__aenter__)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            if self._portal is not None and self.loader is not None:
                self._portal.call(self.loader.aclose)
        finally:
            self._portal_cm.__exit__(*exc_info)
            self._portal = None

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._portal is None:
            raise RuntimeError("use SyncLoader as 'with SyncLoader(...) as loader:'")
        return self._portal.call(functools.partial(fn, *args, **kwargs))

    def fetch(self, url: str, **kwargs: Any) -> Any:
        """Blocking :meth:`Loader.fetch`."""
        assert self.loader is not None
        return self._call(self.loader.fetch, url, **kwargs)

    def fetch_all(self, urls: Any, **kwargs: Any) -> Any:
        """Blocking :meth:`Loader.fetch_all`."""
        assert self.loader is not None
        return self._call(self.loader.fetch_all, urls, **kwargs)

    def fetch_page(self, url: str, **kwargs: Any) -> Any:
        """Blocking :meth:`Loader.fetch_page`."""
        assert self.loader is not None
        return self._call(self.loader.fetch_page, url, **kwargs)
