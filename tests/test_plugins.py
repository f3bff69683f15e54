"""Installed plugins: a broken one is skipped with a warning, ``loader plugins`` lists all.

The broken plugins are real installed distributions (a ``*.dist-info`` with an
``entry_points.txt``) in a temporary directory on ``sys.path`` of a fresh
``python -m loader`` process, as ``pip install --target`` would leave them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import plain_http_environ

from loader import hookimpl
from loader._plugins import describe_plugins, make_plugin_manager

#: Module name -> source of the plugins installed for these tests.
_MODULES = {
    # Fails to import: the commonest breakage (a missing dependency).
    "lt_broken_import": "import lt_no_such_dependency\n",
    # Imports, but pluggy refuses to register it (a hook with an unknown argument).
    "lt_broken_hook": (
        "from loader import hookimpl\n\n"
        "@hookimpl\ndef loader_allow(url, purpose, no_such_argument):\n    return None\n"
    ),
    # A working third-party plugin beside them.
    "lt_fine": "from loader import hookimpl\n\n@hookimpl\ndef loader_schemes():\n    return ('fine',)\n",
}


def _install(site: Path, *, egg_info: bool = False) -> dict[str, str]:
    site.mkdir()
    for module, source in _MODULES.items():
        (site / f"{module}.py").write_text(source)
    info = site / "lt_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lt-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[loader]\nbroken-import = lt_broken_import\nbroken-hook = lt_broken_hook\nfine = lt_fine\n"
    )
    if egg_info:
        # An *.egg-info beside them sends loading down pluggy's own path.
        legacy = site / "lt_legacy.egg-info"
        legacy.mkdir()
        (legacy / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: lt-legacy\nVersion: 1.0\n")
    env = plain_http_environ()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.pop("LOADER_DISABLE_PLUGINS", None)
    return env


def _loader(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loader", *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=cwd)


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "skipped" in line]


@pytest.mark.parametrize("path", ["plain", "pluggy"])
def test_a_broken_plugin_is_skipped_with_one_warning(
    path: str, http_server: Any, tmp_path: Path
) -> None:
    env = _install(tmp_path / "site", egg_info=path == "pluggy")

    help_run = _loader("--help", env=env, cwd=tmp_path)
    assert help_run.returncode == 0, help_run.stderr
    assert "gopher" in help_run.stdout  # the built-in plugins' commands are still there
    assert "Traceback" not in help_run.stderr
    warned = _warnings(help_run.stderr)
    assert len(warned) == 2, help_run.stderr
    assert "'broken-import'" in warned[0] and "ModuleNotFoundError" in warned[0]
    assert "lt_no_such_dependency" in warned[0]
    assert "'broken-hook'" in warned[1] and "no_such_argument" in warned[1]

    listing = _loader("plugins", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in listing.stdout.splitlines()}
    assert rows["broken-import"][0].startswith("(failed: ModuleNotFoundError")
    assert rows["broken-hook"][0].startswith("(failed: PluginValidationError")
    assert rows["fine"] == ["lt_fine", "schemes: fine", "hooks: loader_schemes"]
    assert {"http", "ftp", "gopher"} <= set(rows)

    target = tmp_path / "hello.txt"
    fetched = _loader("get", http_server.url("/files/http/hello.txt"), "-o", str(target), "-q",
                      env=env, cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert target.read_bytes() == b"hello, world\n"
    assert len(_warnings(fetched.stderr)) == 2 and "Traceback" not in fetched.stderr


def test_a_plugin_subcommand_warns_once_per_plugin(tmp_path: Path) -> None:
    """The parser and the Loader each build a manager; a person reads each cause once."""
    env = _install(tmp_path / "site")
    run = _loader("gopher", "--help", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(_warnings(run.stderr)) == 2, run.stderr


def test_the_library_skips_it_and_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.chdir(tmp_path)
    for module in _MODULES:
        monkeypatch.delitem(sys.modules, module, raising=False)
    pm = make_plugin_manager()
    assert set(pm.failed) == {"broken-import", "broken-hook"}
    assert "entry point broken-hook = lt_broken_hook" in pm.failed["broken-hook"]
    # Nothing of the plugin that failed half-way through registering is left behind.
    assert pm.get_plugin("broken-hook") is None and not pm.is_blocked("broken-hook")
    assert [impl.plugin_name for impl in pm.hook.loader_allow.get_hookimpls()] == []
    assert pm.get_plugin("fine") is not None

    # A plugin the caller passes under a failed plugin's name takes the name.
    class Stand:
        @hookimpl
        def loader_schemes(self) -> tuple[str, ...]:
            return ("stand",)

    pm = make_plugin_manager(plugins=[("broken-import", Stand())])
    assert pm.get_plugin("broken-import") is not None


def test_disabled_plugins_are_listed_once_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """``LOADER_DISABLE_PLUGINS=ftp loader plugins`` printed a ``ftp NoneType schemes: -`` row too."""
    monkeypatch.setenv("LOADER_DISABLE_PLUGINS", "ftp")
    from loader._plugins import disabled_names

    lines = list(describe_plugins(make_plugin_manager(), disabled_names()))
    assert [line for line in lines if line.startswith("ftp\t")] == ["ftp\t(disabled)"]
    assert not any("NoneType" in line for line in lines)


def test_a_plugin_whose_schemes_hook_raises_is_still_listed() -> None:
    class Moody:
        @hookimpl
        def loader_schemes(self) -> tuple[str, ...]:
            raise RuntimeError("no schemes today")

    pm = make_plugin_manager(plugins=[("moody", Moody())], entry_points=False)
    (line,) = describe_plugins(pm)
    assert line.split("\t")[:3] == [
        "moody", "Moody", "schemes: (loader_schemes raised RuntimeError: no schemes today)"
    ]


def test_disabled_plugin_row_from_the_command(tmp_path: Path) -> None:
    env = {**plain_http_environ(), "LOADER_DISABLE_PLUGINS": "ftp"}
    listing = _loader("plugins", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert [line for line in listing.stdout.splitlines() if line.startswith("ftp")] == ["ftp\t(disabled)"]


# -- the errors a plugin raises ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("status", [404, 410])
async def test_http_404_and_410_are_not_found(http_server: Any, status: int) -> None:
    from loader import HTTPNotFound, HTTPStatusError, Loader, NotFound

    async with Loader() as loader:
        result = await loader.fetch(http_server.url(f"/status/{status}"))
    assert isinstance(result.error, NotFound) and isinstance(result.error, HTTPStatusError)
    assert isinstance(result.error, HTTPNotFound)
    assert result.error.status == status and not result.error.transient
    with pytest.raises(NotFound):  # what code catching NotFound sees
        raise result.error


@pytest.mark.anyio
async def test_other_http_failures_are_not_not_found(http_server: Any) -> None:
    from loader import HTTPStatusError, Loader, NotFound, Retries

    async with Loader(retries=Retries(attempts=1)) as loader:
        result = await loader.fetch(http_server.url("/status/500"))
    assert isinstance(result.error, HTTPStatusError) and not isinstance(result.error, NotFound)


def test_error_constructors_as_the_plugin_guide_shows_them() -> None:
    from loader import HTTPNotFound, LoginFailed, NotFound, PluginError, ProtocolError

    assert str(NotFound(url="ftp://h/x")) == "ftp://h/x: not found"
    assert str(NotFound("no such file", url="ftp://h/x")) == "ftp://h/x: no such file"
    assert NotFound(url="u", status=550).status == 550
    assert str(LoginFailed(url="ftp://h/")) == "ftp://h/: login failed"
    assert str(ProtocolError("bad reply")) == "bad reply"
    assert str(PluginError("oops", plugin="echo")) == "plugin 'echo' failed: oops"
    assert HTTPNotFound(url="u", status=410).status == 410


# -- the plugin guide tells the truth -----------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"


def _section(title: str) -> str:
    text = GUIDE.read_text()
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start:] if end == -1 else text[start:end]


def test_every_hook_is_documented_in_the_guide() -> None:
    import inspect

    from loader import hookspecs

    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("loader_")]
    assert len(hooks) >= 7
    text = GUIDE.read_text()
    missing = [name for name in hooks if f"### `{name}(" not in text]
    assert missing == [], f"hooks without a section in docs/plugins.md: {missing}"
    for name in hooks:  # the section names the hook's real arguments
        args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### `{name}({args})`" in text, name


def test_every_field_and_member_is_in_its_table() -> None:
    import dataclasses

    from loader import Channel, ProtocolHandler, Request, Response

    tables = {
        "### `Response`": [f.name for f in dataclasses.fields(Response)],
        "### `Request`": [f.name for f in dataclasses.fields(Request)],
        "### `Channel`": [name for name in vars(Channel) if not name.startswith("_")]
        + list(Channel.__annotations__),
        "### `ProtocolHandler`": [name for name in vars(ProtocolHandler) if not name.startswith("_")],
    }
    for title, names in tables.items():
        rows = [line for line in _section(title).splitlines() if line.startswith("| `")]
        documented = {line[3:].split("`")[0].removeprefix("await ").split("(")[0] for line in rows}
        assert sorted(set(names) - documented) == [], title


def test_every_error_and_its_constructor_is_documented() -> None:
    import inspect

    import loader._errors as errors

    table = _section("## 5. Errors")
    for name in errors.__all__:
        assert f"| `{name}` |" in table, name
        if name != "PluginError":
            cls = getattr(errors, name)
            cls(url="x://y")  # the message may be left out, as the guide says
            assert inspect.signature(cls).parameters["message"].default is None, name


def test_the_guide_quotes_the_example_files_as_they_are() -> None:
    import re

    text = GUIDE.read_text()
    quoted = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```\n", text, flags=re.S)
    paths = {path for path, _ in quoted}
    shipped = {str(p.relative_to(ROOT)) for p in (ROOT / "examples" / "loader-mem-example").rglob("*")
               if p.suffix in (".py", ".toml") and "build" not in p.parts}
    assert paths == shipped
    for path, body in quoted:
        assert body == (ROOT / path).read_text(), f"docs/plugins.md quotes an old {path}"


# -- the README's library example runs, offline, and prints what the README shows -----------


def _readme_blocks(section: str) -> list[str]:
    import re

    text = (ROOT / "README.md").read_text()
    start = text.index(section)
    end = text.index("\n## ", start + len(section))
    return re.findall(r"```\w*\n(.*?)```", text[start:end], flags=re.S)


def test_readme_library_example_runs_against_the_demo(tmp_path: Path) -> None:
    import re

    from loader.demo import demo_servers

    code, shown = _readme_blocks("## Library\n")[:2]
    (tmp_path / "example.py").write_text(code)
    with demo_servers() as servers:
        proc = subprocess.run([sys.executable, "example.py", f"{servers.http}/index.html"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path,
                              env=plain_http_environ())
        out = proc.stdout.replace(servers.http, "http://127.0.0.1:PORT")
    assert proc.returncode == 0, proc.stderr

    def shape(text: str) -> list[str]:
        # Sizes and counts follow the demo page (its URLs carry the port): compare the rest.
        return [re.sub(r"\d+", "N", line) for line in text.splitlines()]

    def head(lines: list[str]) -> list[str]:
        return [line for line in lines if not line.startswith("failed:")]

    def failures(lines: list[str]) -> set[str]:
        return {line for line in lines if line.startswith("failed:")}

    assert head(shape(out)) == head(shape(shown))
    # The demo's deliberately missing image fails, and nothing else (its Gopher requisites
    # once failed here: pygopherd's module-wide root was another pygopherd's in the process).
    assert failures(shape(shown)) == failures(shape(out))
    assert (tmp_path / "logo.png").is_file() and (tmp_path / "out").is_dir()


def test_a_plugin_whose_commands_hook_raises_cannot_break_help(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "lt_bad_commands.py").write_text(
        "from loader import hookimpl\n\n"
        "@hookimpl\ndef loader_add_commands(subparsers):\n    raise RuntimeError('no commands today')\n"
    )
    info = site / "lt_bad_commands-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lt-bad-commands\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[loader]\nbad-commands = lt_bad_commands\n")
    env = plain_http_environ()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.pop("LOADER_DISABLE_PLUGINS", None)
    done = _loader("--help", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "ftp" in done.stdout and "gopher" in done.stdout  # the other plugins' commands stay
    (line,) = [line for line in done.stderr.splitlines() if "bad-commands" in line]
    assert "no commands today" in line
