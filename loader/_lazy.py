"""Lazy re-exports (PEP 562): a package's names are imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, importing ``exports[name]`` on first use."""
    namespace = importlib.import_module(package).__dict__
    public = list(public)

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        loaded = importlib.import_module(module, package)
        # Bind every name this module provides now: importing a submodule sets it
        # as a package attribute, which would shadow a same-named export
        # (``loader.discovery.discover`` the function vs the module).
        for other, where in exports.items():
            if where == module:
                namespace[other] = getattr(loaded, other)
        return namespace[name]

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
