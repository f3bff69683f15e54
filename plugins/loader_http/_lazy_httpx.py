"""``httpx``, imported when one of its names is first read.

A plain GET over the direct lane (``_direct.py``) reads none of them, so
``loader fetch`` of an ``http://`` page never imports httpx unless a response
needs it: a redirect, a cookie, an error, HTTPS, a proxy.  Nothing is put in
``sys.modules``: the first name read runs a plain ``import httpx``, so httpx is
exactly what it is for any other code in the process.
"""

from __future__ import annotations

from typing import Any

__all__ = ["httpx"]


class _OnFirstUse:
    """Stands for the module ``httpx`` in this plugin; each name is looked up once."""

    def __getattr__(self, name: str) -> Any:
        import httpx as real

        value = getattr(real, name)
        setattr(self, name, value)
        return value


httpx: Any = _OnFirstUse()
