"""Building a loader's own plugin manager, and calling its hooks through pluggy.

Entry-point plugins are loaded by pluggy's public ``load_setuptools_entrypoints``.
A third-party plugin that fails to import or to register is skipped: the
manager :func:`make_plugin_manager` builds lists it in ``failed`` (name to
cause), logs one warning line naming it, and every other plugin still loads.

Every hook is called through ``pm.hook.<name>``, so pluggy's first-result,
wrappers, tracing and ``add_hookcall_monitoring`` all apply.  pluggy does not say
which implementation raised; :func:`call_hook` finds it, only on the error path,
from the exception's traceback: the deepest frame that runs one of the hook's
implementations (``HookImpl.function``'s code object) names the plugin.  No
implementation is called twice to find it.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pluggy

from . import hookspecs
from ._errors import LoaderError, PluginError
from ._urls import redact_url

__all__ = [
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "LoaderPluginManager",
    "answers_by_plugin",
    "call_hook",
    "describe_plugins",
    "hook_unheard",
    "load_entry_points",
    "make_plugin_manager",
    "plugin_error",
    "raising_plugin",
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
        #: Entry-point plugins registered from the start-up cache, with their distributions.
        self.cached_distinfo: list[tuple[Any, CachedDistribution]] = []
        #: How many ``add_hookcall_monitoring`` (so also ``enable_tracing``) are in place.
        self.monitors = 0

    def add_hookcall_monitoring(
        self,
        before: Callable[[str, Sequence[pluggy.HookImpl], Mapping[str, Any]], None],
        after: Callable[[pluggy.Result[Any], str, Sequence[pluggy.HookImpl], Mapping[str, Any]], None],
    ) -> Callable[[], None]:
        """pluggy's, counted in ``monitors`` (while any is in place, every hook call is made)."""
        undo = super().add_hookcall_monitoring(before, after)
        self.monitors += 1
        undone = False

        def undo_monitoring() -> None:
            nonlocal undone
            undo()
            if not undone:
                undone = True
                self.monitors -= 1

        return undo_monitoring

    def list_plugin_distinfo(self) -> list[tuple[Any, Any]]:
        """pluggy's list, plus the plugins loaded from the entry-point cache (``_entry_cache``)."""
        return [*super().list_plugin_distinfo(), *self.cached_distinfo]


class CachedDistribution:
    """What ``list_plugin_distinfo`` tells of a distribution whose plugin came from the cache."""

    def __init__(self, project_name: str, version: str, location: str) -> None:
        self.project_name = project_name
        self.version = version
        self.location = location

    def locate_file(self, path: str) -> str:
        """``path`` inside the folder the distribution is installed in."""
        return os.path.join(self.location, path) if path else self.location

    def __repr__(self) -> str:
        return f"<CachedDistribution {self.project_name} {self.version}>"


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

#: What ``load_entry_points`` calls for a plugin it skipped: ``(name, value, exception)``.
OnError = Callable[[str, str, BaseException], None]


def load_entry_points(pm: pluggy.PluginManager, group: str, *, on_error: OnError | None = None) -> int:
    """``pm.load_setuptools_entrypoints(group)``, going on past a plugin that fails.

    Without ``on_error`` the first plugin that fails to import or register
    raises, as in pluggy; with it, that plugin is left unregistered (its name
    blocked while loading goes on), ``on_error`` is told, and pluggy is asked
    again for the rest: those already registered are skipped by pluggy itself.
    """
    from . import _entry_cache

    skipped: list[str] = []
    try:
        cached = _entry_cache.lookup(group)
        if cached is not None and isinstance(pm, LoaderPluginManager):
            return _load_cached(pm, cached, on_error, skipped)
        count = _load_with_pluggy(pm, group, on_error, skipped)
        _entry_cache.store(group, _entry_cache.scan(group))
        return count
    finally:
        # A failed name was blocked only so that no attempt repeats it; a plugin
        # passed by the caller may still take the name.
        for name in skipped:
            pm.unblock(name)


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


def _load_cached(
    pm: LoaderPluginManager, entries: list[Any], on_error: OnError | None, skipped: list[str]
) -> int:
    """Register the cached entry points as pluggy would: in order, a name once, blocked ones not."""
    from . import _entry_cache

    count = 0
    for name, value, project, version, location in entries:
        if pm.get_plugin(name) is not None or pm.is_blocked(name):
            continue
        try:
            plugin = _entry_cache.load(value)
            pm.register(plugin, name=name)
        except Exception as exc:
            if on_error is None:
                raise
            _drop(pm, name, skipped)
            on_error(name, value, exc)
            continue
        pm.cached_distinfo.append((plugin, CachedDistribution(project, version, location)))
        count += 1
    return count


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


def _name_of(plugin: Any) -> str:
    return str(getattr(plugin, "__name__", None) or type(plugin).__name__)


# -- calling hooks -----------------------------------------------------------------------


def call_hook(pm: pluggy.PluginManager, hook_name: str, for_url: str | None = None, **kwargs: Any) -> Any:
    """``pm.hook.<hook_name>(**kwargs)``; a plugin's exception becomes a ``PluginError`` naming it.

    The error also names ``for_url`` (its password redacted); loader errors
    pass through unchanged, so a plugin may deny with ``PolicyDenied``.
    """
    try:
        return getattr(pm.hook, hook_name)(**kwargs)
    except LoaderError:
        raise
    except Exception as exc:
        raise plugin_error(pm, hook_name, exc, for_url) from exc


def hook_unheard(pm: pluggy.PluginManager, hook_name: str) -> bool:
    """True when a call of ``hook_name`` would reach no one: no implementation (so no
    wrapper either) and no monitor or tracer.  Then a per-request caller may skip it.

    Only for the loader's own manager, which counts its monitors; any other manager's
    hooks are always called.
    """
    return (
        isinstance(pm, LoaderPluginManager)
        and not pm.monitors
        and not getattr(pm.hook, hook_name).get_hookimpls()
    )


def plugin_error(pm: pluggy.PluginManager, hook_name: str, exc: Exception, for_url: str | None = None) -> PluginError:
    """The ``PluginError`` for ``exc``, raised by an implementation of ``hook_name``."""
    return PluginError(
        f"{hook_name} raised {type(exc).__name__}: {exc}", plugin=raising_plugin(pm, hook_name, exc),
        url=None if for_url is None else redact_url(for_url),
    )


def raising_plugin(pm: pluggy.PluginManager, hook_name: str, exc: BaseException) -> str | None:
    """The name of the plugin whose implementation of ``hook_name`` raised ``exc`` (``None``: unknown).

    The deepest traceback frame running an implementation's code decides, so
    an implementation that calls into another plugin's implementation is not
    blamed for it.  A generator implementation is found too when its items
    raise later, outside the hook call.
    """
    codes: dict[Any, str] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        code = getattr(inspect.unwrap(impl.function), "__code__", None)
        if code is not None:
            codes[code] = impl.plugin_name
    found = None
    tb = exc.__traceback__
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found


def answers_by_plugin(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
    """Each plugin's own answer to ``hook_name``, in pluggy's calling order: ``(name, result)``.

    For the few places that must say *which* plugin answered (the owners of
    ``loader_schemes``, the plugin that denied a request): each plugin is asked
    through ``pm.subset_hook_caller`` with the others removed, so its own
    wrappers and every monitor still run.  Exceptions are mapped as in
    :func:`call_hook`.
    """
    impls = [impl for impl in getattr(pm.hook, hook_name).get_hookimpls() if not (impl.wrapper or impl.hookwrapper)]
    plugins = [impl.plugin for impl in impls]
    for impl in reversed(impls):
        others = [plugin for plugin in plugins if plugin is not impl.plugin]
        caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
        try:
            result = caller(**kwargs)
        except LoaderError:
            raise
        except Exception as exc:
            raise plugin_error(pm, hook_name, exc) from exc
        for item in result if isinstance(result, list) else [result]:
            yield impl.plugin_name, item


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
