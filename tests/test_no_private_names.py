"""No private name of another project is used in ``loader/`` or ``plugins/``.

An AST scan of every module.  It fails, naming ``file:line``, on:

* ``X._name`` or ``getattr(X, "_name")`` (not a dunder) where ``X`` is, or is an
  attribute chain from, a name bound by importing httpx, httpcore, anyio, pluggy,
  h11, h2 or a module of the standard library (``sys.stdlib_module_names``), or a
  name spelled like one of those modules;
* ``obj._name`` or ``getattr(obj, "_name")`` on any object, when ``_name`` is
  defined nowhere in our own code (a def, class, assignment, attribute assignment,
  parameter or ``__slots__`` entry): then it can only be someone else's;
* ``import pkg._private`` / ``from pkg._private import ...`` /
  ``from pkg import _private`` of those packages;
* any write to ``sys.modules`` (item assignment or deletion, ``pop``, ``update``,
  ``setdefault``, ``clear``, ``popitem``).

The only underscore names let through are ones their project documents as public
API: the named-tuple methods (``_replace``, ``_asdict``, ``_fields``, ``_make``,
``_field_defaults``) and ``os._exit``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = frozenset({"httpx", "httpcore", "anyio", "pluggy", "h11", "h2"}) | frozenset(sys.stdlib_module_names)
DOCUMENTED_PUBLIC = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults", "_exit"})
SYS_MODULES_WRITES = frozenset({"pop", "update", "setdefault", "clear", "popitem", "__setitem__", "__delitem__"})


def _sources() -> list[Path]:
    return sorted(p for top in ("loader", "plugins") for p in (ROOT / top).rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_names(trees: dict[Path, ast.Module]) -> set[str]:
    """Every name our own code defines (so ``obj._name`` of it is ours)."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                names.add(node.attr)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
                if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                    names.add(node.args[1].value)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
            ):
                names.update(
                    c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)
                )
    return names


def _foreign_module(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in PACKAGES


def _imported_names(tree: ast.Module) -> set[str]:
    """Names bound (anywhere in the module) by importing one of PACKAGES."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _foreign_module(alias.name):
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _foreign_module(node.module):
            bound.update(alias.asname or alias.name for alias in node.names)
    return bound


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_sys_modules(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "modules" and _root(node) == "sys"


def findings() -> Iterator[str]:
    """``file:line: what`` for every use of another project's private name."""
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in _sources()}
    own = _own_names(trees)
    for path, tree in trees.items():
        where = path.relative_to(ROOT).as_posix()
        foreign = _imported_names(tree) | PACKAGES
        for node in ast.walk(tree):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _foreign_module(alias.name) and any(_private(p) for p in alias.name.split(".")):
                        yield f"{where}:{line}: import {alias.name}"
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and _foreign_module(node.module):
                assert node.module is not None
                if any(_private(p) for p in node.module.split(".")):
                    yield f"{where}:{line}: from {node.module} import ..."
                for alias in node.names:
                    if _private(alias.name):
                        yield f"{where}:{line}: from {node.module} import {alias.name}"
            elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in DOCUMENTED_PUBLIC:
                if _root(node.value) in foreign:
                    yield f"{where}:{line}: {ast.unparse(node)}"
                elif node.attr not in own:
                    yield f"{where}:{line}: {ast.unparse(node)} (defined nowhere in our code)"
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and _private(node.args[1].value)
            ):
                name = node.args[1].value
                if _root(node.args[0]) in foreign or name not in own:
                    yield f"{where}:{line}: {ast.unparse(node)}"
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Subscript) and _is_sys_modules(target.value):
                        yield f"{where}:{line}: writes sys.modules"
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SYS_MODULES_WRITES
                and _is_sys_modules(node.func.value)
            ):
                yield f"{where}:{line}: sys.modules.{node.func.attr}(...)"


def test_no_private_names_of_other_projects() -> None:
    found = list(findings())
    assert found == [], "\n".join(found)


def test_the_scan_sees_what_it_should(tmp_path: Path) -> None:
    """The rules themselves, on a small module of every kind of finding."""
    source = (
        "import atexit, sys\nimport httpx\nfrom anyio import _backends\nimport httpcore._sync\n"
        "atexit._run_exitfuncs()\nx = httpx._client.ACCEPT_ENCODING\nsys.modules['a'] = 1\n"
        "sys.modules.pop('a')\ngetattr(client, '_transport_for_url')\nclient._event_hooks\n"
        "os._exit(0)\nt._replace(a=1)\nsys.modules.get('a')\n"
    )
    tree = ast.parse(source)
    own = _own_names({tmp_path: tree})
    assert "_transport_for_url" not in own and "_event_hooks" not in own
    tmp = tmp_path / "loader"
    tmp.mkdir()
    (tmp / "m.py").write_text(source)
    global ROOT
    saved = ROOT
    ROOT = tmp_path
    try:
        lines = sorted(int(f.split(":")[1]) for f in findings())
    finally:
        ROOT = saved
    assert lines == [3, 4, 5, 6, 7, 8, 9, 10]
