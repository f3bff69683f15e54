"""Start-up: what a command loads before its first request, and what it leaves for later.

Entry-point plugins are loaded by pluggy's ``load_setuptools_entrypoints``
(``loader._plugins``); the tests here hold ``load_entry_points`` to pluggy's own
loader and pin each module left to load on first use in a fresh process (never
timings).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pluggy
import pytest
from support import plain_http_environ

from loader import hookspecs
from loader._plugins import ENTRY_POINT_GROUP, load_entry_points


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
    assert _summary(ours, count) == _summary(theirs, theirs.load_setuptools_entrypoints(ENTRY_POINT_GROUP))
    names = [name for name, _ in ours.list_name_plugin()]
    assert names[:4] == ["blocked", "two", "one", "three"]  # "one" from st_a, not st_c
    assert "st_blocked" not in sys.modules


def test_egg_info_plugins_load_as_in_pluggy(plugin_site: list[Path]) -> None:
    _dist(plugin_site[2], "legacy-1.0.egg-info", "[loader]\nlegacy = st_legacy\n")
    ours, theirs = _manager(), _manager()
    count = load_entry_points(ours, ENTRY_POINT_GROUP)
    assert _summary(ours, count) == _summary(theirs, theirs.load_setuptools_entrypoints(ENTRY_POINT_GROUP))
    assert "legacy" in dict(ours.list_name_plugin())


def test_a_failing_plugin_is_skipped_and_the_rest_load(plugin_site: list[Path]) -> None:
    """With ``on_error``, the plugin that fails is reported and every other one registers."""
    failed: list[tuple[str, str, str]] = []
    ours = _manager(blocked=())
    count = load_entry_points(ours, ENTRY_POINT_GROUP, on_error=lambda n, v, e: failed.append((n, v, type(e).__name__)))
    assert failed == [("blocked", "st_blocked", "ImportError")]
    assert not ours.is_blocked("blocked")  # the name is free again
    names = [name for name, _ in ours.list_name_plugin()]
    assert names[:3] == ["two", "one", "three"] and "blocked" not in names and count == len(names)


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


def test_plugins_and_help_load_no_protocol_stack(tmp_path: Path) -> None:
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
        assert "loader_gopher._urls" not in modules, args
        # crawl-status's parser is built for --help; the frontiers it uses load when it runs.
        assert [m for m in ("loader._frontier", "loader._frontier_redis", "sqlite3") if m in modules] == [], args
    listing = subprocess.run([sys.executable, "-m", "loader", "plugins"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path).stdout.splitlines()
    assert [line.split("\t")[:2] for line in listing] == [
        ["ftp", "loader_ftp"], ["gopher", "loader_gopher"], ["http", "loader_http"]
    ]


def test_plugin_distribution_info_is_pluggys(tmp_path: Path) -> None:
    probe = (
        "import json, sys\n"
        "from loader._plugins import make_plugin_manager\n"
        "pm = make_plugin_manager()\n"
        "dists = sorted({(d.project_name, d.version) for _, d in pm.list_plugin_distinfo()})\n"
        "print(json.dumps(dists))\n"
    )
    assert _run(probe, cwd=tmp_path) == [["loader-fetch", "0.1.0"]]


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
    # A browser at DPR 1 loads d.png, not e.png (2x); the p rule matches no element: no f.png.
    assert found == ["http://h/a.png", "http://h/b.wav", "http://h/c.png", "http://h/d.png",
                     "http://h/h.png", "http://h/g.css"]


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


# -- the entry-point cache (loader._entry_cache) -------------------------------------------


def _loader_manager(blocked: tuple[str, ...] = ("blocked",)) -> Any:
    from loader._plugins import LoaderPluginManager

    pm = LoaderPluginManager("loader")
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    return pm


def _state(pm: Any, count: int) -> tuple[Any, ...]:
    return (
        count,
        pm.list_name_plugin(),
        [(plugin, dist.project_name, dist.version) for plugin, dist in pm.list_plugin_distinfo()],
    )


def test_a_cached_start_registers_what_pluggy_registered(
    plugin_site: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loader import _entry_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = _loader_manager()
    scanned = _state(first, load_entry_points(first, ENTRY_POINT_GROUP))  # a miss: pluggy's scan
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is not None and not first.cached_distinfo
    second = _loader_manager()
    cached = _state(second, load_entry_points(second, ENTRY_POINT_GROUP))
    assert second.cached_distinfo  # this time from the cache …
    assert cached == scanned  # … with the same plugins, order and distributions
    # A name blocked when the cache was written is still known to a run that allows it.
    third = _loader_manager(blocked=("one",))
    load_entry_points(third, ENTRY_POINT_GROUP, on_error=lambda *a: None)
    assert third.get_plugin("one") is None and third.get_plugin("two") is not None


def test_installing_a_distribution_invalidates_the_cache(
    plugin_site: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loader import _entry_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    load_entry_points(_loader_manager(), ENTRY_POINT_GROUP)
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is not None
    _dist(plugin_site[1], "st_d-1.0.dist-info", "[loader]\nlegacy = st_legacy\n")
    os.utime(plugin_site[1], ns=(1, 1))  # whatever the filesystem's clock resolution: changed
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is None
    pm = _loader_manager()
    load_entry_points(pm, ENTRY_POINT_GROUP)
    assert "legacy" in dict(pm.list_name_plugin())


def test_a_changed_folder_time_alone_is_still_a_hit(
    plugin_site: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `python -m loader` has the working folder on sys.path: a file saved there changes
    # the folder's time, not the distributions in it.
    from loader import _entry_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    load_entry_points(_loader_manager(), ENTRY_POINT_GROUP)
    (plugin_site[1] / "index.html").write_text("saved")
    os.utime(plugin_site[1], ns=(2, 2))
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is not None
    _dist(plugin_site[1], "st_e-1.0.dist-info", "[loader]\nlegacy = st_legacy\n")
    os.utime(plugin_site[1], ns=(3, 3))
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is None


def test_a_damaged_or_disabled_cache_is_a_miss(
    plugin_site: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loader import _entry_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    load_entry_points(_loader_manager(), ENTRY_POINT_GROUP)
    (record,) = (tmp_path / "cache" / "loader").glob("entry-points-*.json")
    record.write_text("{not json")
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is None
    record.write_text(json.dumps({"key": "another", "entries": [], "folders": {}}))
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is None
    monkeypatch.setenv("LOADER_NO_CACHE", "1")
    load_entry_points(_loader_manager(), ENTRY_POINT_GROUP)
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is None


def test_a_cached_start_does_not_import_importlib_metadata(tmp_path: Path) -> None:
    probe = (
        "import json, sys\n"
        "from loader._plugins import make_plugin_manager\n"
        "pm = make_plugin_manager()\n"
        "print(json.dumps({'metadata': 'importlib.metadata' in sys.modules,\n"
        "                  'plugins': sorted(n for n, p in pm.list_name_plugin() if p is not None)}))\n"
    )
    first = _run(probe, cwd=tmp_path)
    second = _run(probe, cwd=tmp_path)
    assert first["metadata"] and not second["metadata"]
    assert first["plugins"] == second["plugins"] and {"ftp", "gopher", "http"} <= set(second["plugins"])


def test_the_working_folder_matters_only_when_sys_path_is_relative_to_it(
    plugin_site: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An installed command has only absolute folders on sys.path: run from a new folder,
    # it still starts from the cache; `python -m` ('' on sys.path) does not.
    from loader import _entry_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert all(os.path.isabs(entry) for entry in sys.path)
    load_entry_points(_loader_manager(), ENTRY_POINT_GROUP)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is not None
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    load_entry_points(_loader_manager(), ENTRY_POINT_GROUP)
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is not None
    monkeypatch.chdir(tmp_path)
    assert _entry_cache.lookup(ENTRY_POINT_GROUP) is None
