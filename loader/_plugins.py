"""Building a loader's own plugin manager, and calling hooks one plugin at a time.

Entry-point plugins are found as pluggy's ``load_setuptools_entrypoints`` finds
them, but without ``importlib.metadata`` when the environment is the usual
one: :func:`read_entry_points` reads the ``entry_points.txt`` of every
``*.dist-info`` directory on ``sys.path`` itself, in the order
``importlib.metadata.distributions()`` yields them, and :func:`load_entry_points`
then loads, blocks and registers them exactly as pluggy does.  Importing
``importlib.metadata`` and parsing every installed distribution's entry points
with it cost ~5 ms of ``loader fetch``'s start, ~15 ms of ``loader --help``.  Anything unusual (``.egg-info``
metadata, zipped or non-string ``sys.path`` entries, another distribution
finder on ``sys.meta_path``, an entry point ``importlib.metadata`` would
reject or read differently) hands the whole job to pluggy's own loader.

A third-party plugin that fails to import or to register is skipped: the
manager :func:`make_plugin_manager` builds lists it in ``failed`` (name to
cause), logs one warning line naming it, and every other plugin still loads.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pluggy

from . import hookspecs
from ._errors import LoaderError, PluginError
from ._urls import redact_url

#: What pluggy wraps an entry-point plugin's distribution in (``None``: a pluggy
#: without it, whose own loader then does everything).
_DistFacade: Any = getattr(sys.modules.get("pluggy._manager"), "DistFacade", None)

__all__ = [
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "LoaderPluginManager",
    "call_each",
    "describe_plugins",
    "load_entry_points",
    "make_plugin_manager",
    "read_entry_points",
]

ENTRY_POINT_GROUP = "loader"
#: Comma-separated plugin names to disable, e.g. ``LOADER_DISABLE_PLUGINS=gopher,ftp``.
DISABLE_ENV = "LOADER_DISABLE_PLUGINS"


def disabled_names(disable: Iterable[str] = ()) -> set[str]:
    """The plugin names disabled by argument and by the environment."""
    names = {n.strip() for n in disable if n.strip()}
    names.update(n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip())
    return names


class LoaderPluginManager(pluggy.PluginManager):
    """pluggy's manager, plus the entry-point plugins that could not be loaded.

    ``failed`` maps each skipped plugin's name to its cause, e.g.
    ``"ImportError: No module named 'x' (entry point x = x_plugin)"``.
    """

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.failed: dict[str, str] = {}


#: Warnings already logged in this process: the CLI builds one manager for its
#: parser and another in its Loader, and a person should read each cause once.
_warned: set[tuple[str, str]] = set()


def make_plugin_manager(
    *, plugins: Iterable[Any] = (), disable: Iterable[str] = (), entry_points: bool = True
) -> LoaderPluginManager:
    """A fresh plugin manager: entry-point plugins, then ``plugins``, minus the disabled ones.

    ``plugins`` items are plugin objects (named after their ``__name__`` or class)
    or ``(name, plugin)`` pairs; one that cannot register raises, as it is the
    caller's own.  An entry-point plugin that fails to import or register is
    skipped with a warning on the ``loader.plugins`` logger and listed in the
    manager's ``failed``: one broken installed plugin must not stop the others.
    """
    pm = LoaderPluginManager("loader")
    pm.add_hookspecs(hookspecs)
    for name in disabled_names(disable):
        pm.set_blocked(name)
    if entry_points:
        load_entry_points(pm, ENTRY_POINT_GROUP, on_error=functools.partial(_skip, pm))
    for item in plugins:
        name, plugin = item if isinstance(item, tuple) else (_name_of(item), item)
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    return pm


def _skip(pm: LoaderPluginManager, name: str, value: str, exc: BaseException) -> None:
    from ._display import printable

    # One line, whatever the exception's text holds (pluggy's own spans three lines;
    # a plugin's may hold terminal escapes).
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    cause = printable(f"{type(exc).__name__}: {text} (entry point {name} = {value})")
    pm.failed[name] = cause
    if (name, cause) not in _warned:
        _warned.add((name, cause))
        import logging  # only now: logging costs a few ms of every command's start

        logging.getLogger("loader.plugins").warning("warning: plugin %r skipped, it failed to load: %s", name, cause)


# -- entry points ------------------------------------------------------------------------

#: ``importlib.metadata.EntryPoint.pattern``: a value it could not load sends us to pluggy.
_ENTRY_POINT_VALUE = (
    r"(?P<module>[\w.]+)\s*"
    r"(:\s*(?P<attr>[\w.]+)\s*)?"
    r"((?P<extras>\[.*\])\s*)?$"
)
#: The errors ``PathDistribution.read_text`` turns into "no such file" (``KeyError``: zips).
_NO_FILE = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def read_entry_points(group: str) -> list[tuple[str, str, str, str]] | None:
    """The entry points of ``group`` as ``importlib.metadata`` would list them, or ``None``.

    Each is ``(sys.path entry, metadata directory name, name, value)``, in the
    order pluggy meets them walking ``importlib.metadata.distributions()``:
    ``sys.path`` in order; in each directory, ``*.dist-info`` grouped by
    normalized project name in listing order; in each file, line order.
    ``None`` means "not a plain environment, ask ``importlib.metadata``".
    """
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None) is not None:
            return None  # another distribution finder: only importlib.metadata knows it
    if PathFinder not in sys.meta_path:
        return None
    found: list[tuple[str, str, str, str]] = []
    for entry in list(sys.path):
        if not isinstance(entry, str) or os.path.basename(entry).lower().endswith(".egg"):
            return None
        try:
            children = os.listdir(entry or ".")
        except Exception:
            if os.path.exists(entry or "."):
                return None  # maybe a zip archive, whose metadata importlib.metadata reads
            continue
        projects: dict[str, list[str]] = {}
        for child in children:
            if child[-5:-4] != "-":
                continue  # the quick test: not "….dist-info" nor "….egg-info"
            low = child.lower()
            if low.endswith(".dist-info"):
                project = re.sub(r"[-_.]+", "-", low.rpartition(".")[0].partition("-")[0])
                projects.setdefault(project.lower().replace("-", "_"), []).append(child)
            elif low.endswith(".egg-info"):
                return None
        for infos in projects.values():
            for info in infos:
                entries = _read_entry_points_txt(entry, info, group)
                if entries is None:
                    return None
                found.extend(entries)
    return found


def _read_entry_points_txt(entry: str, info: str, group: str) -> list[tuple[str, str, str, str]] | None:
    """One ``entry_points.txt``, parsed as ``importlib.metadata.Sectioned`` does; ``None``: unusual."""
    try:
        with open(os.path.join(entry, info, "entry_points.txt"), encoding="utf-8") as file:
            text = file.read()
    except _NO_FILE:
        return []
    except Exception:  # importlib.metadata would raise it (while pluggy loads): let it
        return None
    found = []
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section is None:
            continue
        name, equals, value = line.partition("=")
        if not equals:
            return None  # importlib.metadata raises ValueError for it
        if section == group:
            value = value.strip()
            if re.match(_ENTRY_POINT_VALUE, value) is None:
                return None
            found.append((entry, info, name.strip(), value))
    return found


#: What ``load_entry_points`` calls for a plugin it skipped: ``(name, value, exception)``.
OnError = Callable[[str, str, BaseException], None]


def load_entry_points(pm: pluggy.PluginManager, group: str, *, on_error: OnError | None = None) -> int:
    """``pm.load_setuptools_entrypoints(group)``, without ``importlib.metadata`` when it can.

    The same plugins, loaded, skipped (already registered or blocked) and
    registered under the same names in the same order; ``pm.list_plugin_distinfo()``
    gives the same distributions (each built on first use).  Without
    ``on_error`` the first plugin that fails to import or register raises, as
    in pluggy; with it, that plugin is left unregistered, ``on_error`` is told,
    and loading goes on with the next entry point.
    """
    skipped: list[str] = []
    try:
        return _load_entry_points(pm, group, on_error, skipped)
    finally:
        # A failed name was blocked only so that no attempt repeats it; a plugin
        # passed by the caller may still take the name.
        for name in skipped:
            pm.unblock(name)


def _load_entry_points(
    pm: pluggy.PluginManager, group: str, on_error: OnError | None, skipped: list[str]
) -> int:
    distinfo = getattr(pm, "_plugin_distinfo", None)
    found = None
    if (
        _DistFacade is not None
        and isinstance(distinfo, list)
        and type(pm).load_setuptools_entrypoints is pluggy.PluginManager.load_setuptools_entrypoints
    ):
        found = read_entry_points(group)
    if found is None:
        return _load_with_pluggy(pm, group, on_error, skipped)
    assert isinstance(distinfo, list)
    count = 0
    for entry, info, name, value in found:
        if pm.get_plugin(name) or pm.is_blocked(name):
            continue
        try:
            plugin = _load_entry_point(value)
            pm.register(plugin, name=name)
        except Exception as exc:
            if on_error is None:
                raise
            _drop(pm, name, skipped)
            on_error(name, value, exc)
            continue
        distinfo.append((plugin, _DistFacade(_LazyPathDistribution(entry, info))))
        count += 1
    return count


def _drop(pm: pluggy.PluginManager, name: str, skipped: list[str]) -> None:
    # pluggy's register() records the name before it checks the hooks: blocking
    # the name also unregisters whatever part of the plugin got in.
    pm.set_blocked(name)
    skipped.append(name)


def _load_with_pluggy(
    pm: pluggy.PluginManager, group: str, on_error: OnError | None, skipped: list[str]
) -> int:
    """pluggy's own loader; with ``on_error``, a failed plugin is skipped and pluggy asked again."""
    if on_error is None:
        return pm.load_setuptools_entrypoints(group)
    before = _registered(pm)
    while True:
        try:
            pm.load_setuptools_entrypoints(group)
        except Exception as exc:
            # pluggy stopped at the first entry point, in its own order, that is
            # neither blocked nor registered with its distribution: that one failed.
            failed = _first_unloaded(pm, group, before)
            if failed is None:
                raise
            _drop(pm, failed[0], skipped)
            on_error(*failed, exc)
            continue
        return len(_registered(pm) - before)


def _registered(pm: pluggy.PluginManager) -> set[str]:
    return {name for name, plugin in pm.list_name_plugin() if plugin is not None}


def _first_unloaded(
    pm: pluggy.PluginManager, group: str, before: set[str]
) -> tuple[str, str] | None:
    import importlib.metadata

    with_dist = {id(plugin) for plugin, _ in pm.list_plugin_distinfo()}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != group or ep.name in before or pm.is_blocked(ep.name):
                continue
            plugin = pm.get_plugin(ep.name)
            if plugin is None or id(plugin) not in with_dist:
                return ep.name, ep.value
    return None


def _load_entry_point(value: str) -> Any:
    """``importlib.metadata.EntryPoint.load``."""
    match = re.match(_ENTRY_POINT_VALUE, value)
    assert match is not None  # checked by read_entry_points
    module = importlib.import_module(match.group("module"))
    attrs = filter(None, (match.group("attr") or "").split("."))
    return functools.reduce(getattr, attrs, module)


class _LazyPathDistribution:
    """``importlib.metadata.PathDistribution`` of one metadata directory, made on first use.

    What pluggy's ``DistFacade`` wraps for :func:`load_entry_points`: every
    attribute is the real distribution's, and ``importlib.metadata`` is only
    imported when one is asked for.
    """

    __slots__ = ("_lazy_dist", "_lazy_where")

    def __init__(self, entry: str, info: str) -> None:
        self._lazy_where = (entry, info)
        self._lazy_dist: Any = None

    def _resolve(self) -> Any:
        if self._lazy_dist is None:
            import importlib.metadata
            import pathlib

            self._lazy_dist = importlib.metadata.PathDistribution(pathlib.Path(*self._lazy_where))
        return self._lazy_dist

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resolve(), name)

    def __dir__(self) -> list[str]:
        return dir(self._resolve())

    def __repr__(self) -> str:
        return repr(self._resolve())


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


def describe_plugins(pm: pluggy.PluginManager, disabled: Iterable[str] = ()) -> Iterator[str]:
    """``loader plugins``' lines: each plugin's module, schemes and hooks, then the others.

    A registered plugin gives ``name, module, schemes: …, hooks: …`` (tab-separated);
    a disabled one ``name (disabled)``; one that failed to load ``name (failed: cause)``.
    """
    from ._display import printable

    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue  # a blocked name holds no plugin: it is listed as disabled below
        impl = getattr(plugin, "loader_schemes", None)
        try:
            schemes = ", ".join(impl() or ()) if callable(impl) else ""
        except Exception as exc:
            schemes = f"(loader_schemes raised {type(exc).__name__}: {exc})"
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        module = getattr(plugin, "__name__", type(plugin).__name__)
        fields = [name, str(module), f"schemes: {schemes or '-'}", f"hooks: {', '.join(hooks)}"]
        yield "\t".join(map(printable, fields))
    for name in sorted(set(disabled)):
        yield f"{printable(name)}\t(disabled)"
    for name, cause in sorted(getattr(pm, "failed", {}).items()):
        yield f"{printable(name)}\t(failed: {printable(cause)})"
