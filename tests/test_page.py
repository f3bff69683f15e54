"""Whole pages: requisites fetched concurrently, saved safely, reported with provenance."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from loader import Event, Limits, Loader, Phase, RequestCancelled, hookimpl
from loader.discovery import Document, Found

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parents[1] / "fixtures"


def site_dir(root: Path, server: Any) -> Path:
    return root / f"127.0.0.1_{server.port}" / "files" / "http"


async def test_page_events_carry_the_page_id_and_context(http_server: Any) -> None:
    events: list[Event] = []
    async with Loader() as loader:
        page = await loader.fetch_page(http_server.url("/files/http/index.html"), callback=events.append, context=42)
    assert page.ok and {Path(r.url).name for r in page.resources} == {"logo.png", "sound.wav", "pixel.gif"}
    page_id = page.document.request_id
    assert {e.context for e in events} == {42}
    children = {e.request_id for e in events if e.parent_id == page_id}
    assert {r.request_id for r in page.resources} <= children
    for request_id in {e.request_id for e in events}:
        phases = [e.phase for e in events if e.request_id == request_id]
        assert phases[0] is Phase.HANDLE_CREATED and phases[-1].terminal
        assert sum(p.terminal for p in phases) == 1


async def test_in_memory_page_keeps_bodies(http_server: Any) -> None:
    async with Loader() as loader:
        page = await loader.fetch_page(http_server.url("/files/http/index.html"))
    logo = next(r for r in page.resources if r.url.endswith("logo.png"))
    assert logo.content == (FIXTURES / "http/logo.png").read_bytes()
    assert page.found and page.path is None and page.manifest is None


async def test_failed_resource_does_not_sink_the_page(http_server: Any, tmp_path: Path) -> None:
    async with Loader() as loader:
        page = await loader.fetch_page(http_server.url("/files/http/partial.html"), output=tmp_path)
    assert page.document.ok and not page.ok
    assert [Path(r.url).name for r in page.failed] == ["not-here.png"]
    assert (site_dir(tmp_path, http_server) / "logo.png").is_file()
    manifest = json.loads(page.manifest.read_text())
    failed = [r for r in manifest["resources"] if not r["ok"]]
    assert failed[0]["status"] == 404 and "404" in failed[0]["error"]
    ok = next(r for r in manifest["resources"] if r["ok"])
    assert ok["found_by"][0] == {"element": "img", "attribute": "src", "source": http_server.url("/files/http/partial.html")}
    assert ok["path"] and ok["size"] == 75 and ok["content_type"] == "image/png" and ok["kind"] == "image"
    # When and how long the whole page took (the benchmark harness reads "duration").
    assert abs(manifest["started"] - time.time()) < 60
    assert manifest["duration"] >= max(r["elapsed"] for r in manifest["resources"]) - 0.01


async def test_per_page_cap_is_applied_and_reported(http_server: Any, tmp_path: Path) -> None:
    page_file = FIXTURES / "http" / "many.html"
    async with Loader(limits=Limits(per_page=5)) as loader:
        page = await loader.fetch_page(http_server.url("/files/http/many.html"), output=tmp_path)
    assert page_file.is_file()
    assert len(page.resources) == 5 and page.skipped == 45
    assert any("per-page cap" in w for w in page.warnings)
    assert json.loads(page.manifest.read_text())["skipped"] == 45


async def test_same_host_skips_other_hosts(http_server: Any) -> None:
    async with Loader() as loader:
        everything = await loader.fetch_page(http_server.url("/files/http/hosts.html"), list_only=True)
        local = await loader.fetch_page(http_server.url("/files/http/hosts.html"), list_only=True, same_host=True)
    assert {Path(f.url).name for f in everything.found} == {"logo.png", "pixel.gif"}
    assert {Path(f.url).name for f in local.found} == {"logo.png"}


async def test_list_only_fetches_nothing_but_the_page_and_stylesheets(http_server: Any) -> None:
    http_server.reset()
    async with Loader() as loader:
        page = await loader.fetch_page(http_server.url("/files/http/index.html"), list_only=True)
    assert page.resources == () and {Path(f.url).name for f in page.found} >= {"logo.png", "sound.wav", "pixel.gif"}
    fetched = {path for _, path, _ in http_server.requests}
    assert "/files/http/logo.png" not in fetched


async def test_convert_links_makes_an_offline_copy(http_server: Any, tmp_path: Path) -> None:
    async with Loader() as loader:
        page = await loader.fetch_page(http_server.url("/files/http/index.html"), output=tmp_path, convert_links=True)
    html = page.path.read_text()
    assert 'src="logo.png"' in html and 'src="sound.wav"' in html
    css = (site_dir(tmp_path, http_server) / "style.css").read_text()
    assert "pixel.gif" in css and "http://" not in css


async def test_data_urls_in_a_page_complete_synchronously(http_server: Any) -> None:
    events: list[Event] = []
    async with Loader() as loader:
        page = await loader.fetch_page(http_server.url("/files/http/data-url.html"), callback=events.append)
    data = [r for r in page.resources if r.url.startswith("data:")]
    assert len(data) == 1 and data[0].completed_synchronously and data[0].content == b"GIF89a"
    data_events = [e.phase for e in events if e.request_id == data[0].request_id]
    assert data_events == [Phase.HANDLE_CREATED, Phase.REQUEST_COMPLETE]


async def test_extractor_hook_adds_resources(http_server: Any) -> None:
    class SiteLazy:
        @hookimpl
        def loader_extract(self, document: Document) -> Iterable[Found]:
            if document.type != "html":
                return []
            return [
                Found(url=node.attributes["data-hero"], kind="image", element=node.tag, attribute="data-hero")
                for node in document.tree.css("[data-hero]")
            ]

    async with Loader(plugins=[("site-lazy", SiteLazy())]) as loader:
        page = await loader.fetch_page(http_server.url("/files/http/hero.html"))
    hero = [r for r in page.resources if r.url.endswith("logo.png")]
    assert hero and hero[0].ok
    assert page.by_url[hero[0].url].attribute == "data-hero"


async def test_a_raising_extractor_is_a_warning(http_server: Any) -> None:
    class Broken:
        @hookimpl
        def loader_extract(self, document: Document) -> Iterable[Found]:
            raise RuntimeError("extractor bug")

    async with Loader(plugins=[("broken-extractor", Broken())]) as loader:
        page = await loader.fetch_page(http_server.url("/files/http/index.html"))
    assert page.ok and any("broken-extractor" in w for w in page.warnings)


async def test_cancel_page_leaves_no_partial_files(http_server: Any, tmp_path: Path) -> None:
    def cancel_on_first_progress(event: Event) -> None:
        if event.phase is Phase.PROGRESS and event.parent_id is not None:
            event.cancel_page()

    async with Loader() as loader:
        page = await loader.fetch_page(
            http_server.url("/files/http/slow-page.html"), output=tmp_path, callback=cancel_on_first_progress
        )
    assert page.resources and all(isinstance(r.error, RequestCancelled) for r in page.resources)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and ".part-" in p.name]
    assert leftovers == []
    names = {p.name for p in tmp_path.rglob("*") if p.is_file()}
    assert not any(name.startswith("bytes") for name in names)


async def test_nothing_is_written_outside_the_output_dir(http_server: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    async with Loader() as loader:
        page = await loader.fetch_page(http_server.url("/files/http/escape.html"), output=out)
    assert page.document.ok
    for path in tmp_path.rglob("*"):
        assert path == out or out in path.parents, path
    assert all(r.path is None or out in r.path.parents for r in page.resources)
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("exists", ["overwrite", "skip"])
async def test_a_symlinked_directory_leading_outside_is_refused(
    http_server: Any, tmp_path: Path, exists: str
) -> None:
    # The output holds a host directory that is a symlink to elsewhere (planted, or left
    # by an earlier run): nothing may be written, or reported as ours, through it.
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "logo.png").write_bytes(b"not ours")
    async with Loader() as loader:
        probe = await loader.fetch_page(http_server.url("/files/http/partial.html"), list_only=True)
    host_dir = out / Path(probe.found[0].url.split("://", 1)[1]).parts[0].replace(":", "_")
    out.mkdir()
    host_dir.symlink_to(elsewhere, target_is_directory=True)
    async with Loader() as loader:
        page = await loader.fetch_page(http_server.url("/files/http/partial.html"), output=out, exists=exists)
    assert not page.document.ok and "outside" in str(page.document.error)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["logo.png"]
    assert (elsewhere / "logo.png").read_bytes() == b"not ours"


async def test_many_workers_start_in_batches_so_the_first_requests_go_out_early(http_server: Any) -> None:
    """With a high per-host limit, early connections send while later workers are still starting.

    Started all at once, every worker would open its connection before any could send
    (the loop runs each new task's first step before it looks at a connection again).
    """
    events: list[Event] = []
    async with Loader(limits=Limits(per_host=64)) as loader:
        page = await loader.fetch_page(http_server.url("/files/http/many.html"), callback=events.append)
    assert page.ok and len(page.resources) == 50
    page_id = page.document.request_id
    phases = [e.phase for e in events if e.parent_id == page_id]
    first_connected = phases.index(Phase.CONNECTED_TO_SERVER)
    last_created = len(phases) - 1 - phases[::-1].index(Phase.HANDLE_CREATED)
    assert first_connected < last_created  # a new connection was up before the last worker began
    assert phases.count(Phase.HANDLE_CREATED) == 50
