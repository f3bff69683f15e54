"""A per-user cache of the ``loader`` entry points, so start-up need not scan every distribution.

pluggy's ``load_setuptools_entrypoints`` asks ``importlib.metadata`` for every installed
distribution's entry points: importing ``importlib.metadata`` (and the ``email`` package
it parses metadata with) and reading ~160 distributions costs a command ~20 ms, more than
the rest of its start-up work.  What it finds changes only when a distribution is
installed or removed, which changes the modification time of the folder on ``sys.path``
that holds its ``*.dist-info``.  So the first run records what pluggy found (name, value
and distribution folder of each entry point, in pluggy's order) under a key made of
``sys.path`` (and the working folder, when ``sys.path`` names one relative to it) and
those folders' times (a folder whose time changed still matches
when the distributions in it, ``*.dist-info``, ``*.egg-info`` and ``*.egg`` with
their own times, are the same: a command run as ``python -m loader`` has its working
folder on ``sys.path``, and saving a file there changes that folder's time); a
later run with the same key imports and
registers the same plugins itself, through the public ``importlib.import_module`` and
``PluginManager.register``, and reads nothing else.  Any doubt (a folder gone, a time
changed, an unreadable or foreign file) is a miss: pluggy scans as before.

The cache lives in ``$XDG_CACHE_HOME/loader`` (``~/.cache/loader``); ``LOADER_NO_CACHE=1``
turns it off.  Only public names of the standard library are used.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

__all__ = ["Entry", "load", "lookup", "scan", "store"]

#: ``(name, value, distribution name, version, folder)`` of one entry point, in the order
#: pluggy meets them (every one of the group, whether or not a run blocked it).
Entry = tuple[str, str, str, str, str]

_VERSION = 2


def _folder() -> str | None:
    if os.environ.get("LOADER_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    return os.path.join(base, "loader")


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


_DISTRIBUTIONS = (".dist-info", ".egg-info", ".egg")


def _distributions(path: str) -> list[list[Any]]:
    """The distributions ``importlib.metadata`` may find in folder ``path``, with their times."""
    found: list[list[Any]] = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name.endswith(_DISTRIBUTIONS):
                    found.append([entry.name, entry.stat().st_mtime_ns])
    except OSError:
        return []
    found.sort()
    return found


def _key(group: str) -> str:
    """What the entry points depend on: the interpreter and ``sys.path`` (its folders'
    contents are checked by :func:`lookup`), and the working folder only when ``sys.path``
    names a folder relative to it (``''`` under ``python -m``): an installed command in a
    new folder finds its entry points in the cache (a miss costs ~40 ms)."""
    relative = any(not os.path.isabs(entry) for entry in sys.path)
    parts: list[Any] = [_VERSION, group, sys.version, os.getcwd() if relative else None, sys.path]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def _path_state() -> dict[str, list[Any]]:
    """Each ``sys.path`` folder's time and distributions."""
    return {where: [_mtime(where), _distributions(where)] for where in (e or os.curdir for e in sys.path)}


def lookup(group: str) -> list[Entry] | None:
    """The cached entry points of ``group`` for this ``sys.path``, or ``None`` (a miss)."""
    folder = _folder()
    if folder is None:
        return None
    key = _key(group)
    try:
        with open(os.path.join(folder, f"entry-points-{key}.json"), encoding="utf-8") as file:
            record = json.load(file)
        if record.get("key") != key:
            return None
        entries = [(str(n), str(v), str(p), str(ver), str(d)) for n, v, p, ver, d in record["entries"]]
        folders: dict[str, list[Any]] = record["folders"]
        paths: dict[str, list[Any]] = record["paths"]
        # The sys.path folders, and each entry point's distribution folder: a folder whose
        # time changed matches still when its distributions (and their times) did not.
        for where, (when, dists) in (*paths.items(), *folders.items()):
            if _mtime(where) != when and _distributions(where) != dists:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return entries


def store(group: str, entries: Sequence[Entry]) -> None:
    """Record ``entries`` for this ``sys.path`` (atomically; silently not, when it cannot)."""
    folder = _folder()
    if folder is None:
        return
    key = _key(group)
    folders = {path: [_mtime(path), _distributions(path)] for *_, path in entries}
    if any(when is None for when, _ in folders.values()):
        return
    record = {"key": key, "entries": [list(e) for e in entries], "folders": folders, "paths": _path_state()}
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".entry-points-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(record, file)
        os.replace(tmp, os.path.join(folder, f"entry-points-{key}.json"))
        _prune(folder)
    except OSError:
        return


def _prune(folder: str, keep: int = 16) -> None:
    """Keep the ``keep`` most recent records: each virtualenv or ``sys.path`` makes its own."""
    records = [e for e in os.scandir(folder) if e.name.startswith("entry-points-")]
    if len(records) > keep:
        records.sort(key=lambda e: e.stat().st_mtime_ns)
        for old in records[:-keep]:
            os.unlink(old.path)


def scan(group: str) -> list[Entry]:
    """Every entry point of ``group``, as pluggy meets them (``importlib.metadata``'s order)."""
    import importlib.metadata

    found: list[Entry] = []
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == group:
                found.append((ep.name, ep.value, dist.metadata["Name"] or "", dist.version or "",
                              str(dist.locate_file(""))))
    return found


def load(value: str) -> Any:
    """The object an entry point's ``value`` (``module`` or ``module:attr.attr``) names."""
    import importlib

    module, _, attrs = value.partition("[")[0].partition(":")
    obj: Any = importlib.import_module(module.strip())
    for attr in filter(None, attrs.strip().split(".")):
        obj = getattr(obj, attr)
    return obj
