"""The package as installed: entry points, console script, public API in step with __all__."""

from __future__ import annotations

import ast
import contextlib
import re
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from importlib.metadata import (
    PackageNotFoundError,
    distribution,
    entry_points,
    packages_distributions,
)
from pathlib import Path

import pytest
from support import loader_command, plain_http_environ

import loader
from loader import hookspecs

ROOT = Path(__file__).parents[1]
#: The distribution's name: "loader" on the package index is an unrelated project.
DISTRIBUTION = "loader-fetch"


def test_the_distribution_is_loader_fetch_and_holds_the_loader_package_and_command() -> None:
    dist = distribution(DISTRIBUTION)
    assert dist.metadata["Name"] == DISTRIBUTION
    assert dist.version == loader.__version__
    assert set(packages_distributions()["loader"]) == {DISTRIBUTION}
    points = {(ep.group, ep.name): ep.value for ep in dist.entry_points}
    assert points[("console_scripts", "loader")] == "loader.cli:console"
    assert {name: points[("loader", name)] for name in ("http", "ftp", "gopher")} == {
        "http": "loader_http", "ftp": "loader_ftp", "gopher": "loader_gopher"
    }
    # An install from before the rename (or its loader.egg-info left in the checkout) would
    # declare every built-in plugin a second time.
    with pytest.raises(PackageNotFoundError):
        distribution("loader")


def test_the_project_names_itself_loader_fetch_everywhere() -> None:
    """The extras that install the project itself, and every install line and plugin
    dependency in the docs, name the distribution, never the unrelated ``loader``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION
    for extra, requirements in project["optional-dependencies"].items():
        for requirement in requirements:
            assert not re.match(r"loader(?![-\w])", requirement), (extra, requirement)
    assert f"{DISTRIBUTION}[demo]" in project["optional-dependencies"]["test"]
    _assert_no_wrong_name([ROOT / "README.md", ROOT / "CONTRIBUTING.md",
                           *(p for p in ROOT.glob("docs/*.md") if p.name != "plugins.md")])
    assert f"pip install '{DISTRIBUTION}[http2]'" in (ROOT / "README.md").read_text()


def test_the_license_file_is_the_mit_license_pyproject_declares_and_is_shipped() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Permission is hereby granted, free of charge" in text
    assert "LICENSE" in (distribution(DISTRIBUTION).metadata.get_all("License-File") or [])


def test_ci_lints_the_tree_with_the_ruff_the_test_extra_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(re.match(r"ruff\b", r) for r in project["optional-dependencies"]["test"])
    steps = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line and not line.startswith("#")]
    assert steps.index("python -m ruff check .") < steps.index("python -m pytest")
    assert "ruff check ." in (ROOT / "README.md").read_text()


def test_contributing_names_only_files_that_exist() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    named = set(re.findall(r"(?<![\w/.])((?:benchmarks|tests|docs|loader|plugins|examples|fixtures)/[\w./-]*\w)", text))
    assert {"benchmarks/run.py", "tests/interop/install.sh", "docs/plugins.md"} <= named
    assert [path for path in sorted(named) if not (ROOT / path).exists()] == []


def test_the_plugin_guide_and_example_depend_on_loader_fetch() -> None:
    _assert_no_wrong_name([*ROOT.glob("docs/**/*.md"), *ROOT.glob("examples/**/*.md"),
                           *ROOT.glob("examples/**/pyproject.toml")])


#: ``pip install loader``, ``pip install 'loader[http2]'``, ``dependencies = ["loader"]``.
_WRONG_NAME = re.compile(
    r"""pip install (-\S+ )*['"]?loader(?![-\w])"""
    r"""|dependencies\s*=\s*\[[^\]]*['"]loader(?![-\w])"""
)


def _assert_no_wrong_name(paths: list[Path]) -> None:
    for path in paths:
        found = _WRONG_NAME.search(path.read_text())
        assert found is None, f"{path.relative_to(ROOT)} names the unrelated 'loader': {found.group(0)!r}"


def test_builtin_plugins_are_registered_as_entry_points() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="loader")}
    assert found["http"] == "loader_http"
    assert found["ftp"] == "loader_ftp"
    assert found["gopher"] == "loader_gopher"
    for ep in entry_points(group="loader"):
        assert ep.load() is not None


def test_console_script_is_declared() -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts["loader"] == "loader.cli:console"


def test_exported_members_match_all() -> None:
    # Every public name resolves and is then a real attribute of the package (vars(),
    # not dir(), which lists __all__ itself and so cannot miss a name).
    for name in loader.__all__:
        assert getattr(loader, name) is vars(loader)[name], name
    public = {name for name, value in vars(loader).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert public == set(loader.__all__) - {"annotations"}
    assert loader.__all__ == sorted(loader.__all__)


def test_type_checkers_see_the_same_exports() -> None:
    # The TYPE_CHECKING imports mirror the lazy export table, name for name and module for module.
    tree = ast.parse(Path(loader.__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "_TYPE_CHECKING")
    imported = {alias.name: "." * node.level + (node.module or "")
                for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported == loader._EXPORTS


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


def test_fetch_path_loads_only_what_plain_http_needs() -> None:
    """A plain-HTTP fetch loads no httpx at all (nor httpcore, h2, trio); when httpx is
    needed, the plugin imports it as it is (nothing stands in for any of its modules)."""
    code = (
        "import sys, anyio, loader\n"
        "async def main(url):\n"
        "    async with loader.Loader() as l:\n"
        "        r = await l.fetch(url)\n"
        "        assert r.ok, r.error\n"
        "anyio.run(main, sys.argv[1])\n"
        "print([m for m in ('httpx', 'httpx._main', 'click', 'rich', 'httpcore', 'h2', 'trio') if m in sys.modules])\n"
        "from loader_http._lazy_httpx import httpx as lazy\n"
        "assert lazy.URL is sys.modules['httpx'].URL\n"  # the first name read imports httpx
        "import httpx\n"  # the real module, as any other code in the process sees it
        "print(httpx.__spec__.origin == httpx.__file__, 'httpcore' in sys.modules)\n"
    )
    env = plain_http_environ()
    with _bytes_server() as url:
        out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "True False"]


@contextlib.contextmanager
def _bytes_server() -> Iterator[str]:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/x"
    finally:
        server.shutdown()
        server.server_close()
