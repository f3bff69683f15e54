"""Building a loader's own plugin manager, and calling hooks one plugin at a time."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import pluggy

from . import hookspecs
from ._errors import LoaderError, PluginError
from ._urls import redact_url

__all__ = ["DISABLE_ENV", "ENTRY_POINT_GROUP", "call_each", "make_plugin_manager"]

ENTRY_POINT_GROUP = "loader"
#: Comma-separated plugin names to disable, e.g. ``LOADER_DISABLE_PLUGINS=gopher,ftp``.
DISABLE_ENV = "LOADER_DISABLE_PLUGINS"


def disabled_names(disable: Iterable[str] = ()) -> set[str]:
    """The plugin names disabled by argument and by the environment."""
    names = {n.strip() for n in disable if n.strip()}
    names.update(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())
    return names


def make_plugin_manager(
    *, plugins: Iterable[Any] = (), disable: Iterable[str] = (), entry_points: bool = True
) -> pluggy.PluginManager:
    """A fresh plugin manager: entry-point plugins, then ``plugins``, minus the disabled ones.

    ``plugins`` items are plugin objects (named after their ``__name__`` or class)
    or ``(name, plugin)`` pairs.
    """
    pm = pluggy.PluginManager("loader")
    pm.add_hookspecs(hookspecs)
    for name in disabled_names(disable):
        pm.set_blocked(name)
    if entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for item in plugins:
        name, plugin = item if isinstance(item, tuple) else (_name_of(item), item)
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    return pm


def _name_of(plugin: Any) -> str:
    return str(getattr(plugin, "__name__", None) or type(plugin).__name__)


def call_each(
    pm: pluggy.PluginManager, hook_name: str, for_url: str | None = None, **kwargs: Any
) -> Iterator[tuple[str, Any]]:
    """Call each implementation of a hook in pluggy's order, yielding ``(plugin name, result)``.

    An exception from a plugin becomes a ``PluginError`` naming it and
    ``for_url`` (its password redacted); loader errors pass through unchanged,
    so a plugin may deny with ``PolicyDenied``.
    """
    hook = getattr(pm.hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):
        try:
            result = impl.function(**{k: kwargs[k] for k in impl.argnames})
        except LoaderError:
            raise
        except Exception as exc:
            raise PluginError(
                f"{hook_name} raised {type(exc).__name__}: {exc}", plugin=impl.plugin_name,
                url=None if for_url is None else redact_url(for_url),
            ) from exc
        yield impl.plugin_name, result
