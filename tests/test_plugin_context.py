"""Plugins see a typed PluginContext, never the Loader; hook wrappers on loader_protocol run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from loader import (
    Channel,
    Limits,
    Loader,
    PluginContext,
    ProtocolHandler,
    Request,
    Response,
    Timeouts,
    hookimpl,
)

pytestmark = pytest.mark.anyio


class _Handler(ProtocolHandler):
    schemes = ("ctx",)

    def __init__(self, context: PluginContext) -> None:
        self.context = context
        self.channel_contexts: list[PluginContext] = []

    @asynccontextmanager
    async def open(self, request: Request, channel: Channel) -> AsyncIterator[Response]:
        self.channel_contexts.append(channel.context)

        async def body() -> AsyncIterator[bytes]:
            yield b"ok"

        yield Response(url=request.url, stream=body(), status=200)


class _Plugin:
    def __init__(self) -> None:
        self.handlers: list[_Handler] = []
        self.wrapped: list[str] = []

    @hookimpl
    def loader_schemes(self) -> tuple[str, ...]:
        return ("ctx",)

    @hookimpl
    def loader_protocol(self, scheme: str, context: PluginContext) -> Any:
        if scheme != "ctx":
            return None
        handler = _Handler(context)
        self.handlers.append(handler)
        return handler

    @hookimpl(wrapper=True)
    def loader_allow(self, url: str, purpose: str) -> Generator[None, Any, Any]:
        self.wrapped.append(purpose)
        return (yield)


class _Wrapper:
    """A second plugin wrapping whatever handler the others give."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl(wrapper=True)
    def loader_protocol(self, scheme: str, context: PluginContext) -> Generator[None, Any, Any]:
        handler = yield
        self.seen.append((scheme, handler))
        return handler


async def test_handlers_get_the_loaders_settings_not_the_loader() -> None:
    plugin, wrapper = _Plugin(), _Wrapper()
    limits, timeouts = Limits(per_host=3), Timeouts(connect=2.0)
    async with Loader(plugins=[plugin, wrapper], entry_points=False, limits=limits,
                      timeouts=timeouts, verify=False, proxy="http://127.0.0.1:9",
                      deny_private=True, reuse=False) as loader:
        first = await loader.fetch("ctx://a/1")
        second = await loader.fetch("ctx://a/2")
    assert first.ok and second.content == b"ok"
    (handler,) = plugin.handlers  # one handler per loader and scheme
    context = handler.context
    assert isinstance(context, PluginContext) and not isinstance(context, Loader)
    assert handler.channel_contexts == [context, context]
    assert context.limits is limits and context.timeouts is timeouts
    assert context.verify is False and context.proxy == "http://127.0.0.1:9" and context.deny_private
    assert context.ssl_context.check_hostname is False  # what verify=False asks for
    assert loader.ssl_context is context.ssl_context
    assert wrapper.seen == [("ctx", handler)]
    assert plugin.wrapped == ["fetch", "fetch"]
    with pytest.raises(AttributeError):
        context.verify = True  # type: ignore[misc]


def test_resolved_names_expire_and_stay_bounded() -> None:
    from loader._context import ResolvedNames

    names = ResolvedNames(ttl=60.0, most=3)
    for n in range(5):
        names.note(f"h{n}.test", 80)
    assert not names.fresh("h0.test", 80) and not names.fresh("h1.test", 80)
    assert all(names.fresh(f"H{n}.test", 80) for n in (2, 3, 4))  # names are case-blind
    assert not names.fresh("h4.test", 81)
    stale = ResolvedNames(ttl=-1.0)
    stale.note("h.test", 80)
    assert not stale.fresh("h.test", 80)
