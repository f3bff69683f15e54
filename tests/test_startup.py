"""Start-up: what a command loads before its first request, and what it leaves for later.

Entry-point plugins are read without ``importlib.metadata`` (``loader._plugins``);
the tests here hold that reader to ``importlib.metadata`` and pluggy, entry by
entry, and pin each module left to load on first use in a fresh process (never
timings).
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from support import plain_http_environ

from loader import hookspecs
from loader._plugins import ENTRY_POINT_GROUP, load_entry_points, read_entry_points

# -- the entry-point reader against importlib.metadata ---------------------------------


def _metadata_entry_points(group: str) -> list[tuple[str, str, str]]:
    """What pluggy walks: every distribution in ``distributions()`` order, its entry points of ``group``."""
    import importlib.metadata

    importlib.invalidate_caches()  # importlib.metadata caches directory listings
    return [
        (str(dist._path), ep.name, ep.value)  # type: ignore[attr-defined]
        for dist in importlib.metadata.distributions()
        for ep in dist.entry_points
        if ep.group == group
    ]


def _read(group: str) -> list[tuple[str, str, str]]:
    found = read_entry_points(group)
    assert found is not None, "the plain reader gave up on a plain environment"
    return [(str(pathlib.Path(entry, info)), name, value) for entry, info, name, value in found]


def _dist(where: Path, name: str, entry_points: str | bytes | None, version: str = "1.0") -> Path:
    """A ``*.dist-info`` (or other metadata) directory with METADATA and, if given, entry_points.txt."""
    info = where / name
    info.mkdir(parents=True)
    project = name.split("-")[0]
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n")
    if isinstance(entry_points, bytes):
        (info / "entry_points.txt").write_bytes(entry_points)
    elif entry_points is not None:
        (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    return info


@pytest.fixture
def plain_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """``sys.path`` as in an installed command (no source checkout's ``*.egg-info``), cwd in tmp."""
    monkeypatch.chdir(tmp_path)
    entries = []
    for entry in sys.path:
        try:
            children = os.listdir(entry or ".")
        except OSError:
            if not os.path.exists(entry or "."):
                entries.append(entry)
            continue
        if not any(child.lower().endswith(".egg-info") for child in children):
            entries.append(entry)
    monkeypatch.setattr(sys, "path", entries)
    return entries


@pytest.mark.parametrize("group", [ENTRY_POINT_GROUP, "console_scripts", "pytest11", "no-such-group"])
def test_reader_finds_what_importlib_metadata_finds_here(plain_path: list[str], group: str) -> None:
    assert _read(group) == _metadata_entry_points(group)
    if group == ENTRY_POINT_GROUP:
        assert {name for _, name, _ in _read(group)} >= {"http", "ftp", "gopher"}


def test_reader_follows_importlib_metadata_on_awkward_layouts(
    plain_path: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second, cwd = tmp_path / "first", tmp_path / "second", tmp_path / "cwd"
    # Grouped by normalized project name, in listing order; sections, comments and
    # spacing as importlib.metadata's Sectioned parser reads them.
    _dist(first, "Zeta_Pkg-1.0.dist-info", "[loader]\nz1 = zeta.one\n")
    _dist(first, "alpha-2.0.dist-info", (
        "# a comment\n\n  [console_scripts]  \nalpha = alpha.cli:main\n"
        "[loader]\n  a=alpha.plugin:thing.attr [extra1, extra2]  \n; semicolon = kept.as.a.name\n"
        "[ loader ]\nspaced = not.our.group\n[[loader]]\nbrackets = stripped.like.ours\n"
    ))
    _dist(first, "zeta.pkg-2.0.dist-info", "[loader]\nz2 = zeta.two\n")
    _dist(first, "Upper-1.0.DIST-INFO", "[loader]\nupper = upper.mod\n")
    _dist(first, "empty-1.0.dist-info", None)
    _dist(first, "blank-1.0.dist-info", "")
    (_dist(first, "dirent-1.0.dist-info", None) / "entry_points.txt").mkdir()
    (first / "not-metadata.txt").write_text("[loader]\nnope = nope\n")
    _dist(second, "alpha-3.0.dist-info", "[loader]\na = alpha.again\n")  # a duplicate name
    _dist(second, "crlf-1.0.dist-info", b"[loader]\r\ncrlf = crlf.mod\r\n\r\n")
    _dist(cwd, "here-1.0.dist-info", "[loader]\nhere = here.mod\n")  # '' is the current directory
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "missing"), str(second), "", *plain_path])

    expected = _metadata_entry_points(ENTRY_POINT_GROUP)
    assert sorted(name for _, name, _ in expected[:9]) == sorted(
        ["z1", "z2", "a", "; semicolon", "brackets", "upper", "a", "crlf", "here"]
    )
    assert _read(ENTRY_POINT_GROUP) == expected
    assert _read("console_scripts") == _metadata_entry_points("console_scripts")
    assert _read(" loader ") == _metadata_entry_points(" loader ")


def _unusual_egg_info(tmp_path: Path) -> list[str]:
    _dist(tmp_path, "legacy-1.0.egg-info", "[loader]\nlegacy = legacy.mod\n")
    return [str(tmp_path)]


def _unusual_egg(tmp_path: Path) -> list[str]:
    egg = tmp_path / "old-1.0-py3.11.egg"
    _dist(egg, "EGG-INFO", "[loader]\nold = old.mod\n")
    return [str(egg)]


def _unusual_zip(tmp_path: Path) -> list[str]:
    tmp_path.mkdir()
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        z.writestr("zipped-1.0.dist-info/entry_points.txt", "[loader]\nzipped = zipped.mod\n")
    return [str(archive)]


def _unusual_no_equals(tmp_path: Path) -> list[str]:
    _dist(tmp_path, "bad-1.0.dist-info", "[other]\nno equals sign here\n")
    return [str(tmp_path)]


def _unusual_value(tmp_path: Path) -> list[str]:
    _dist(tmp_path, "bad-1.0.dist-info", "[loader]\nbad = not a module path\n")
    return [str(tmp_path)]


def _unusual_encoding(tmp_path: Path) -> list[str]:
    _dist(tmp_path, "bad-1.0.dist-info", b"[loader]\nbad = mod # \xff\n")
    return [str(tmp_path)]


def _unusual_path_object(tmp_path: Path) -> list[Any]:
    _dist(tmp_path, "fine-1.0.dist-info", "[loader]\nfine = fine.mod\n")
    return [tmp_path]


@pytest.mark.parametrize(
    "layout",
    [_unusual_egg_info, _unusual_egg, _unusual_zip, _unusual_no_equals, _unusual_value,
     _unusual_encoding, _unusual_path_object],
)
def test_reader_gives_up_on_anything_unusual(
    plain_path: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layout: Any
) -> None:
    monkeypatch.setattr(sys, "path", [*layout(tmp_path / "site"), *plain_path])
    assert read_entry_points(ENTRY_POINT_GROUP) is None


def test_reader_gives_up_on_another_distribution_finder(
    plain_path: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Finder:
        @staticmethod
        def find_spec(*args: Any) -> None:
            return None

        @staticmethod
        def find_distributions(*args: Any, **kwargs: Any) -> Iterator[Any]:
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder()])
    assert read_entry_points(ENTRY_POINT_GROUP) is None


# -- loading: the same plugins as pluggy's own loader -------------------------------------


_PLUGIN_MODULES = {
    "st_one.py": "from loader import hookimpl\n\n@hookimpl\ndef loader_schemes():\n    return ('one',)\n",
    "st_two.py": (
        "from loader import hookimpl\n\nclass Plugin:\n    class inner:\n        @staticmethod\n"
        "        @hookimpl\n        def loader_schemes():\n            return ('two',)\n\nplugin = Plugin()\n"
    ),
    "st_three.py": "from loader import hookimpl\n\n@hookimpl\ndef loader_schemes():\n    return ('three',)\n",
    "st_legacy.py": "from loader import hookimpl\n\n@hookimpl\ndef loader_schemes():\n    return ('legacy',)\n",
    "st_blocked.py": "raise ImportError('a blocked plugin is never imported')\n",
}


@pytest.fixture
def plugin_site(plain_path: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Plugin modules, and three sys.path entries in order, each with one dist-info declaring some."""
    modules = tmp_path / "modules"
    modules.mkdir()
    for name, source in _PLUGIN_MODULES.items():
        (modules / name).write_text(source)
    sites = [tmp_path / "site1", tmp_path / "site2", tmp_path / "site3"]
    _dist(sites[0], "st_b-1.0.dist-info", "[loader]\ntwo = st_two:plugin.inner\nblocked = st_blocked\n", "1.0")
    _dist(sites[1], "st_a-2.0.dist-info", "[loader]\none = st_one\n", "2.0")
    _dist(sites[2], "st_c-3.0.dist-info", "[loader]\none = st_three\nthree = st_three\n", "3.0")
    monkeypatch.setattr(sys, "path", [str(modules), *map(str, sites), *plain_path])
    for module in _PLUGIN_MODULES:
        monkeypatch.delitem(sys.modules, module[:-3], raising=False)
    return sites


def _manager(blocked: tuple[str, ...] = ("blocked",)) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("loader")
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    return pm


def _summary(pm: pluggy.PluginManager, count: int) -> tuple[Any, ...]:
    return (
        count,
        pm.list_name_plugin(),
        [impl.plugin_name for impl in pm.hook.loader_schemes.get_hookimpls()],
        [(plugin, dist.project_name, dist.version, str(dist.locate_file("")), sorted(set(dir(dist))))
         for plugin, dist in pm.list_plugin_distinfo()],
    )


def test_loading_registers_what_pluggy_registers(plugin_site: list[Path]) -> None:
    ours, theirs = _manager(), _manager()
    count = load_entry_points(ours, ENTRY_POINT_GROUP)
    assert read_entry_points(ENTRY_POINT_GROUP) is not None  # the plain path was taken
    assert _summary(ours, count) == _summary(theirs, theirs.load_setuptools_entrypoints(ENTRY_POINT_GROUP))
    names = [name for name, _ in ours.list_name_plugin()]
    assert names[:4] == ["blocked", "two", "one", "three"]  # "one" from st_a, not st_c
    assert "st_blocked" not in sys.modules


def test_loading_falls_back_to_pluggy_and_matches_it(plugin_site: list[Path]) -> None:
    _dist(plugin_site[2], "legacy-1.0.egg-info", "[loader]\nlegacy = st_legacy\n")
    assert read_entry_points(ENTRY_POINT_GROUP) is None
    ours, theirs = _manager(blocked=()), _manager(blocked=())
    with pytest.raises(ImportError, match="never imported"):
        load_entry_points(ours, ENTRY_POINT_GROUP)
    with pytest.raises(ImportError, match="never imported"):
        theirs.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    ours, theirs = _manager(), _manager()
    count = load_entry_points(ours, ENTRY_POINT_GROUP)
    assert _summary(ours, count) == _summary(theirs, theirs.load_setuptools_entrypoints(ENTRY_POINT_GROUP))
    assert "legacy" in dict(ours.list_name_plugin())


def test_loading_errors_are_pluggys(plugin_site: list[Path]) -> None:
    """A plugin that fails to import fails the same way, after the same plugins registered."""
    ours, theirs = _manager(blocked=()), _manager(blocked=())
    with pytest.raises(ImportError, match="never imported"):
        load_entry_points(ours, ENTRY_POINT_GROUP)
    with pytest.raises(ImportError, match="never imported"):
        theirs.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    assert ours.list_name_plugin() == theirs.list_name_plugin()


# -- fresh processes: what start-up loads, and what waits for first use -------------------


def _run(script: str, *args: str, cwd: Path) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter (from ``cwd``: no source checkout on sys.path),
    with no proxy in its environment (a proxy makes the HTTP plugin build httpx's client)
    and the HTTP plugin's defaults."""
    env = plain_http_environ()
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


_FETCH_PROBE = """
import atexit, json, sys
import loader.cli as cli
seen = {}
real_started = cli._started
def started():
    if "start" not in seen:
        from loader.discovery import html
        seen["start"] = sorted(sys.modules)
        seen["nesting"] = html._nesting_regexes.cache_info().currsize
    real_started()
cli._started = started
atexit.register(lambda: print(json.dumps({**seen, "end": sorted(sys.modules)}), flush=True))
sys.argv[0] = "loader"
cli.console()
"""

#: Left for first use by ``loader fetch`` of an HTML page with neither CSS nor a srcset.
_LATER = (
    "importlib.metadata",  # entry points are read without it
    "loader_ftp._handler", "loader_ftp._session", "loader_ftp._url",
    "loader_gopher._urls", "loader_gopher._handler",
    "loader.discovery.css", "loader.discovery.srcset",
    "rich",
)


def test_fetch_start_up_loads_the_page_stack_and_nothing_else(http_server: Any, tmp_path: Path) -> None:
    seen = _run(_FETCH_PROBE, "fetch", http_server.url("/files/http/many.html"), "-o", str(tmp_path / "out"),
                "-q", "--no-progress", cwd=tmp_path)
    # The warm-up still loads the protocol stack and the HTML parser before the first request.
    assert {"loader.discovery.html", "loader.discovery.discover", "selectolax.lexbor", "loader_http._handler",
            "loader_http._transport"} <= set(seen["start"])
    assert [m for m in _LATER if m in seen["start"] or m in seen["end"]] == []
    # Plain GETs answered 200 with plain bodies: httpx was never needed, so never imported.
    assert [m for m in _WITH_HTTPX if m in seen["end"]] == []


#: What the HTTP plugin imports only once a request needs httpx's client.
_WITH_HTTPX = ("httpx", "httpcore", "loader_http._client", "http.cookiejar", "urllib.request")


def test_a_response_that_needs_httpx_imports_it(http_server: Any, tmp_path: Path) -> None:
    seen = _run(_FETCH_PROBE, "fetch", http_server.url("/redirect/1"), "-o", str(tmp_path / "out"),
                "-q", "--no-progress", cwd=tmp_path)
    assert {"httpx", "loader_http._client"} <= set(seen["end"])
    assert seen["nesting"] == 0  # limit_nesting's regexes: only for pages of > 512 tags
    assert (tmp_path / "out").is_dir()


def test_plugins_and_help_do_not_import_importlib_metadata(tmp_path: Path) -> None:
    probe = (
        "import atexit, json, sys\n"
        "import loader.cli as cli\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), flush=True))\n"
        "sys.argv[0] = 'loader'\n"
        "cli.console()\n"
    )
    for args in (("plugins",), ("--help",)):
        proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        modules = json.loads(proc.stdout.strip().splitlines()[-1])
        assert "importlib.metadata" not in modules, args
        assert "loader_gopher._urls" not in modules, args
    listing = subprocess.run([sys.executable, "-m", "loader", "plugins"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path).stdout.splitlines()
    assert [line.split("\t")[:2] for line in listing] == [
        ["ftp", "loader_ftp"], ["gopher", "loader_gopher"], ["http", "loader_http"]
    ]


def test_plugin_distribution_info_loads_on_first_use(tmp_path: Path) -> None:
    probe = (
        "import json, sys\n"
        "from loader._plugins import make_plugin_manager\n"
        "pm = make_plugin_manager()\n"
        "before = 'importlib.metadata' in sys.modules\n"
        "dists = sorted({(d.project_name, d.version) for _, d in pm.list_plugin_distinfo()})\n"
        "print(json.dumps([before, 'importlib.metadata' in sys.modules, dists]))\n"
    )
    before, after, dists = _run(probe, cwd=tmp_path)
    assert (before, after) == (False, True)
    assert dists == [["loader-fetch", "0.1.0"]]


def test_css_and_srcset_parsers_load_on_first_use(tmp_path: Path) -> None:
    probe = (
        "import json, sys\n"
        "from loader.discovery import discover, parse_document\n"
        "plain = parse_document(b'<img src=a.png><audio src=b.wav>', 'http://h/')\n"
        "found = [f.url for f in discover(plain).found]\n"
        "lazy = [m for m in ('loader.discovery.css', 'loader.discovery.srcset') if m in sys.modules]\n"
        "rich = parse_document(b'<div style=\"background: url(c.png)\"></div>'\n"
        "                      b'<img srcset=\"d.png 1x, e.png 2x\"><style>p { background: url(f.png) }</style>',\n"
        "                      'http://h/')\n"
        "found += [f.url for f in discover(rich).found]\n"
        "sheet = parse_document(b'@import \"g.css\"; a { background: url(h.png) }', 'http://h/s.css', 'text/css')\n"
        "styles = discover(sheet)\n"
        "found += [f.url for f in styles.found] + [f.url for f in styles.stylesheets]\n"
        "loaded = [m for m in ('loader.discovery.css', 'loader.discovery.srcset') if m in sys.modules]\n"
        "print(json.dumps([lazy, loaded, found]))\n"
    )
    lazy, loaded, found = _run(probe, cwd=tmp_path)
    assert lazy == []
    assert loaded == ["loader.discovery.css", "loader.discovery.srcset"]
    assert found == ["http://h/a.png", "http://h/b.wav", "http://h/c.png", "http://h/d.png",
                     "http://h/e.png", "http://h/f.png", "http://h/h.png", "http://h/g.css"]


def test_deep_documents_still_have_their_nesting_limited(tmp_path: Path) -> None:
    probe = (
        "import json\n"
        "from loader.discovery.html import NESTED_ATTRIBUTE, _nesting_regexes, limit_nesting\n"
        "before = _nesting_regexes.cache_info().currsize\n"
        "flat = limit_nesting('<div>' * 600 + '<img src=x.png>' + '</div>' * 600)\n"
        "print(json.dumps([before, _nesting_regexes.cache_info().currsize, flat.count(NESTED_ATTRIBUTE)]))\n"
    )
    before, after, flattened = _run(probe, cwd=tmp_path)
    assert (before, after) == (0, 1)
    assert flattened == 600 - 512


def test_ftp_and_gopher_load_on_first_use_and_work(
    ftp_server: Any, gopher_server: Any, tmp_path: Path
) -> None:
    probe = (
        "import json, sys, anyio\n"
        "import loader\n"
        "PARTS = ('loader_ftp._handler', 'loader_ftp._connection', 'loader_gopher._urls', 'loader_gopher._handler')\n"
        "async def main(ftp_url, gopher_url):\n"
        "    async with loader.Loader() as l:\n"
        "        before = [m for m in PARTS if m in sys.modules]\n"
        "        ftp = await l.fetch(ftp_url)\n"
        "        gopher = await l.fetch(gopher_url)\n"
        "        after = [m for m in PARTS if m in sys.modules]\n"
        "        return [before, after, ftp.ok and ftp.content.decode(), gopher.ok]\n"
        "print(json.dumps(anyio.run(main, *sys.argv[1:])))\n"
    )
    before, after, ftp_text, gopher_ok = _run(
        probe, ftp_server.url("/pub/hello.txt"), gopher_server.url("1", "/docs"), cwd=tmp_path
    )
    assert before == []
    assert after == ["loader_ftp._handler", "loader_ftp._connection", "loader_gopher._urls", "loader_gopher._handler"]
    assert ftp_text == (ftp_server.root / "pub" / "hello.txt").read_text()
    assert gopher_ok is True


def test_gopher_schemes_are_one_object() -> None:
    import loader_gopher
    from loader_gopher import _plugin, _urls

    assert loader_gopher.SCHEMES == ("gopher", "gophers")
    assert loader_gopher.SCHEMES is _plugin.SCHEMES is _urls.SCHEMES
    assert importlib.import_module("loader_gopher._handler").SCHEMES is _plugin.SCHEMES
