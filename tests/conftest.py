"""Shared fixtures: real servers on 127.0.0.1 (see ``support/``) and the anyio backends."""

import os
from collections.abc import Iterator

import pytest
from support.asgi_server import *  # noqa: F401,F403 - fixtures
from support.ftp_server import *  # noqa: F401,F403 - fixtures
from support.gopher_server import *  # noqa: F401,F403 - fixtures
from support.http_server import *  # noqa: F401,F403 - fixtures
from support.raw_server import *  # noqa: F401,F403 - fixtures


@pytest.fixture(autouse=True, scope="session")
def _own_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's processes keep their entry-point cache (``loader._entry_cache``) to themselves."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return request.param
