"""The package as installed: entry points, console script, public API in step with __all__."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from support import loader_command

import loader
from loader import hookspecs


def test_builtin_plugins_are_registered_as_entry_points() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="loader")}
    assert found["http"] == "loader_http"
    assert found["ftp"] == "loader_ftp"
    assert found["gopher"] == "loader_gopher"
    for ep in entry_points(group="loader"):
        assert ep.load() is not None


def test_console_script_is_declared() -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts["loader"] == "loader.cli:main"


def test_exported_members_match_all() -> None:
    public = {name for name in dir(loader) if not name.startswith("_")}
    modules = {"cli", "demo", "discovery", "hookspecs"}
    assert set(loader.__all__) == public - modules - {"annotations"}
    assert loader.__all__ == sorted(loader.__all__)


def test_every_hook_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("loader_")]
    assert hooks
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, f"{name} has no docstring"
        assert f"`{name}(" in readme, f"{name} is not in the README's hook table"


def test_python_dash_m_and_installed_command_run() -> None:
    version = subprocess.run([sys.executable, "-m", "loader", "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "loader" in version.stdout
    helped = subprocess.run([loader_command(), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    for command in ("fetch", "get", "plugins", "demo", "ftp", "gopher"):
        assert command in helped.stdout


def test_help_path_stays_light() -> None:
    """`loader --help` loads every plugin; none of them may pull in the heavy stacks at import."""
    code = (
        "import sys, loader.cli, loader._plugins\n"
        "loader._plugins.make_plugin_manager()\n"
        "loader.cli.build_parser(loader._plugins.make_plugin_manager())\n"
        "heavy = [m for m in ('httpx', 'httpcore', 'selectolax', 'rich', 'loader._loader', 'pygopherd') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
