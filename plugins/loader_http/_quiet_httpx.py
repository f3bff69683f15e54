"""httpx, imported on first use, without its command-line interface.

``httpx`` here stands in for the module until one of its names is read: then the
real httpx is imported and its names are copied in, so every later read is a plain
attribute.  A plain GET over the direct lane (``_direct.py``) reads none of them,
so ``loader fetch`` of an ``http://`` page never imports httpx (about 30 ms of a
~120 ms start) unless a response needs it: a redirect, a cookie, a
``Content-Encoding``, an error, HTTPS, a proxy.

``import httpx`` also imports ``httpx._main`` (its own CLI: click, rich, pygments),
about 45 ms more, though the loader never uses it.  Before httpx is first imported,
a stand-in module takes its place; calling ``httpx.main`` still works: it loads the
real one then.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["httpx", "loaded"]


def _real_main(*args: Any, **kwargs: Any) -> Any:
    sys.modules.pop("httpx._main", None)
    try:
        from httpx._main import main
    except ImportError as exc:  # as httpx says it without its CLI extra
        raise ImportError("the httpx command line needs: pip install 'httpx[cli]'") from exc
    return main(*args, **kwargs)


def _import() -> types.ModuleType:
    if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
        stand_in = types.ModuleType("httpx._main", "stand-in: the real httpx CLI loads on first use")
        stand_in.main = _real_main  # type: ignore[attr-defined]
        sys.modules["httpx._main"] = stand_in
    import httpx as real

    return real


class _OnFirstUse(types.ModuleType):
    """The name ``httpx`` until httpx is needed; then it holds all of httpx's names."""

    def __getattr__(self, name: str) -> Any:
        real = _import()
        for key, value in vars(real).items():
            if not key.startswith("__"):
                setattr(self, key, value)
        self.__version__ = real.__version__
        return getattr(real, name)


httpx: Any = _OnFirstUse("httpx", "httpx, imported when one of its names is first read")


def loaded() -> bool:
    """Whether httpx has been imported (by this process, for any reason)."""
    return "httpx" in sys.modules
