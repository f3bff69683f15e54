"""Import httpx without its command-line interface.

``import httpx`` also imports ``httpx._main`` (its own CLI: click, rich,
pygments), about 45 ms of a ~200 ms start for ``loader fetch``, though the
loader never uses it.  Before httpx is first imported, a stand-in module takes
its place; calling ``httpx.main`` still works: it loads the real one then.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def _real_main(*args: Any, **kwargs: Any) -> Any:
    sys.modules.pop("httpx._main", None)
    try:
        from httpx._main import main
    except ImportError as exc:  # as httpx says it without its CLI extra
        raise ImportError("the httpx command line needs: pip install 'httpx[cli]'") from exc
    return main(*args, **kwargs)


if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    stand_in = types.ModuleType("httpx._main", "stand-in: the real httpx CLI loads on first use")
    stand_in.main = _real_main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in

import httpx  # noqa: E402

__all__ = ["httpx"]
