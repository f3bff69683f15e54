"""Shared fixtures: real servers on 127.0.0.1 (see ``support/``) and the anyio backends."""

import pytest
from support.asgi_server import *  # noqa: F401,F403 - fixtures
from support.ftp_server import *  # noqa: F401,F403 - fixtures
from support.gopher_server import *  # noqa: F401,F403 - fixtures
from support.http_server import *  # noqa: F401,F403 - fixtures
from support.raw_server import *  # noqa: F401,F403 - fixtures


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on asyncio and on trio."""
    return request.param
