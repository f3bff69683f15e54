"""Which event loop the shell and ``SyncLoader`` run on.

On asyncio, uvloop is used when it is installed (it is a dependency where it
builds): the same code, two to three times less time per event-loop round.
``LOADER_UVLOOP=0`` turns it off, for comparisons and for hunting a bug that
might be the loop's.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

__all__ = ["backend_options"]


def backend_options(backend: str = "asyncio") -> dict[str, Any]:
    """``anyio.run`` options for ``backend``: uvloop on asyncio when available."""
    if backend != "asyncio" or os.environ.get("LOADER_UVLOOP", "1") == "0":
        return {}
    if importlib.util.find_spec("uvloop") is None:
        return {}
    return {"use_uvloop": True}
