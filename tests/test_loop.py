"""The event loop the shell and SyncLoader use: uvloop on asyncio when installed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loader import Event, SyncLoader
from loader._loop import backend_options

uvloop = pytest.importorskip("uvloop")


def test_uvloop_is_chosen_on_asyncio_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOADER_UVLOOP", raising=False)
    assert backend_options("asyncio") == {"use_uvloop": True}
    assert backend_options("trio") == {}
    monkeypatch.setenv("LOADER_UVLOOP", "0")
    assert backend_options("asyncio") == {}


@pytest.mark.parametrize(("setting", "expected"), [("1", "uvloop"), ("0", "asyncio")])
def test_sync_loader_runs_on_the_chosen_loop(
    http_server: Any, monkeypatch: pytest.MonkeyPatch, setting: str, expected: str
) -> None:
    monkeypatch.setenv("LOADER_UVLOOP", setting)
    loops: list[str] = []

    def callback(event: Event) -> None:  # short callbacks run on the loop's thread
        loops.append(type(asyncio.get_running_loop()).__module__.split(".")[0])

    with SyncLoader() as loader:
        result = loader.fetch(http_server.url("/bytes/5000"), callback=callback)
    assert result.ok and result.size == 5000
    assert loops and set(loops) == {expected}
