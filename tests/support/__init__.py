"""Helpers shared by the tests (real servers live in the sibling modules)."""

import os
import shutil
import sys
from pathlib import Path
from typing import Any


def loader_command() -> str:
    """The installed ``loader`` console script: beside this Python first, else on PATH."""
    beside = Path(sys.executable).with_name("loader")
    if beside.exists():
        return str(beside)
    found = shutil.which("loader")
    assert found, "the loader console script is not installed"
    return found


def _proxy_names() -> list[str]:
    return [name for name in os.environ if name.lower().endswith("_proxy")]


def plain_http_environ() -> dict[str, str]:
    """This environment without proxies or ``LOADER_HTTP_*`` settings, for a subprocess:
    a proxy makes the HTTP plugin build httpx's client before the first request."""
    proxies = set(_proxy_names())
    return {name: value for name, value in os.environ.items()
            if name not in proxies and not name.startswith("LOADER_HTTP_")}


def direct_lane_without_proxies(monkeypatch: Any) -> None:
    """The direct lane on over the fast transport, and no proxy in the environment
    (otherwise the HTTP plugin builds httpx's client first)."""
    monkeypatch.setenv("LOADER_HTTP_DIRECT", "1")
    monkeypatch.delenv("LOADER_HTTP_TRANSPORT", raising=False)
    for name in _proxy_names():
        monkeypatch.delenv(name)
