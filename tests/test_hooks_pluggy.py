"""Hooks are called through pluggy: wrappers, monitors and first-result are pluggy's own.

The core calls ``pm.hook.<name>``; these tests plug into the public plugin
manager (``Loader.plugin_manager``) the way any pluggy user would, and check
that a plugin's exception is still a ``PluginError`` naming that plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from loader import Loader, Phase, PluginError, PolicyDenied, hookimpl
from loader._plugins import call_hook, raising_plugin

pytestmark = pytest.mark.anyio


async def test_a_wrapper_and_a_monitor_see_loader_allow_during_a_fetch(http_server: Any) -> None:
    wrapped: list[tuple[str, str, Any]] = []
    monitored: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def loader_allow(self, url: str, purpose: str) -> Iterator[None]:
            verdicts = yield
            wrapped.append((url, purpose, verdicts))
            return verdicts

    async with Loader(plugins=[("wrapper", Wrapper())]) as loader:
        assert loader.plugin_manager is loader.pm
        undo = loader.plugin_manager.add_hookcall_monitoring(
            lambda hook_name, hook_impls, kwargs: monitored.append(hook_name), lambda *args: None
        )
        try:
            result = await loader.fetch(http_server.url("/bytes/3"))
        finally:
            undo()
    assert result.ok
    assert wrapped == [(http_server.url("/bytes/3"), "fetch", [])]
    assert "loader_allow" in monitored and "loader_prepare_request" in monitored


async def test_a_monitor_alone_sees_the_policy_hooks_and_undo_stops_it(http_server: Any) -> None:
    # With no implementation the core may skip loader_allow and loader_prepare_request
    # (nothing would answer), but never while a monitor or tracer would see the call.
    monitored: list[str] = []
    traced: list[str] = []
    async with Loader() as loader:
        pm = loader.plugin_manager
        assert not pm.hook.loader_allow.get_hookimpls()
        undo = pm.add_hookcall_monitoring(
            lambda hook_name, hook_impls, kwargs: monitored.append(hook_name), lambda *args: None
        )
        pm.trace.root.setwriter(traced.append)
        undo_tracing = pm.enable_tracing()
        assert (await loader.fetch(http_server.url("/bytes/3"))).ok
        undo_tracing()
        undo()
        undo()  # a second undo changes nothing
        assert pm.monitors == 0
        seen = list(monitored)
        assert (await loader.fetch(http_server.url("/bytes/4"))).ok
    assert seen.count("loader_allow") == 1 and seen.count("loader_prepare_request") == 1
    assert any("loader_allow" in line for line in traced)
    assert monitored == seen  # undone: the second fetch was not seen


async def test_a_wrapper_can_turn_a_verdict_into_a_denial(http_server: Any) -> None:
    class Strict:
        @hookimpl(wrapper=True)
        def loader_allow(self, url: str, purpose: str) -> Iterator[None]:
            verdicts = yield
            return [*verdicts, "closed for the day"]

    async with Loader(plugins=[("strict", Strict())]) as loader:
        result = await loader.fetch(http_server.url("/bytes/7"))
    # No plugin of its own said no, so none is named; the wrapper's reason is kept.
    assert isinstance(result.error, PolicyDenied) and "a plugin refused it: closed for the day" in str(result.error)
    assert http_server.hits("/bytes/7") == 0


async def test_loader_allow_is_asked_for_data_urls_and_reused_results(http_server: Any) -> None:
    asked: list[tuple[str, str]] = []
    deny: set[str] = set()

    class Policy:
        @hookimpl
        def loader_allow(self, url: str, purpose: str) -> Any:
            asked.append((url, purpose))
            return "not today" if url in deny else None

    url = http_server.url("/bytes/6")
    data = "data:text/plain,hi"
    hits = http_server.hits("/bytes/6")
    async with Loader(plugins=[("policy", Policy())], reuse=True) as loader:
        first = await loader.fetch(url)
        deny.update({url, data})
        events: list[Any] = []
        reused = await loader.fetch(url, callback=events.append)
        inline = await loader.fetch(data)
    # A denial is asked once more, plugin by plugin, to name who refused.
    assert first.ok and asked.count((url, "fetch")) == 3 and asked.count((data, "fetch")) == 2
    for result in (reused, inline):
        assert isinstance(result.error, PolicyDenied) and "'policy' refused it: not today" in str(result.error)
    # Denied where it would have completed at once: still the synchronous pair of events.
    assert [(e.phase, e.synchronous) for e in events] == [(Phase.HANDLE_CREATED, True), (Phase.FAILED, True)]
    assert http_server.hits("/bytes/6") - hits == 1


async def test_a_raising_hook_is_a_plugin_error_naming_that_plugin(http_server: Any) -> None:
    class Quiet:
        @hookimpl
        def loader_allow(self, url: str, purpose: str) -> Any:
            return None

    class Loud:
        @hookimpl
        def loader_allow(self, url: str, purpose: str) -> Any:
            raise ValueError("no opinion")

    async with Loader(plugins=[("quiet", Quiet()), ("loud", Loud()), ("quiet2", Quiet())]) as loader:
        result = await loader.fetch(http_server.url("/bytes/1"))
        inline = await loader.fetch("data:,x")
    for failed in (result, inline):
        assert isinstance(failed.error, PluginError) and failed.error.plugin == "loud"
        assert "loader_allow raised ValueError: no opinion" in str(failed.error)


async def test_an_observer_that_raises_does_not_keep_the_event_from_the_others(http_server: Any) -> None:
    seen: dict[str, list[Phase]] = {"first": [], "last": []}

    class Seeing:
        def __init__(self, name: str) -> None:
            self.name = name

        @hookimpl
        def loader_event(self, event: Any) -> None:
            seen[self.name].append(event.phase)

    class Raising:
        @hookimpl
        def loader_event(self, event: Any) -> None:
            raise RuntimeError("observer down")

    plugins = [("last", Seeing("last")), ("raising", Raising()), ("first", Seeing("first"))]
    async with Loader(plugins=plugins) as loader:
        result = await loader.fetch(http_server.url("/bytes/2"))
    assert result.ok
    # pluggy calls the last registered first: "first", then "raising", then "last".
    for name in ("first", "last"):
        phases = [p for p in seen[name] if p is not Phase.CALLBACK_ERROR]
        assert phases[0] is Phase.HANDLE_CREATED and phases[-1] is Phase.REQUEST_COMPLETE, name
    errors = [p for p in seen["last"] if p is Phase.CALLBACK_ERROR]
    assert errors and seen["first"].count(Phase.HANDLE_CREATED) == 1 and seen["last"].count(Phase.HANDLE_CREATED) == 1


def test_the_raising_plugin_is_found_from_the_traceback_also_for_generators() -> None:
    class Lazy:
        @hookimpl
        def loader_schemes(self) -> Iterator[str]:
            yield "lazy"
            raise KeyError("late")

    class Fine:
        @hookimpl
        def loader_schemes(self) -> tuple[str, ...]:
            return ("fine",)

    loader = Loader(plugins=[("lazy", Lazy()), ("fine", Fine())], entry_points=False)
    answers = call_hook(loader.plugin_manager, "loader_schemes")
    with pytest.raises(KeyError) as info:
        [scheme for schemes in answers for scheme in schemes]
    assert raising_plugin(loader.plugin_manager, "loader_schemes", info.value) == "lazy"
    assert raising_plugin(loader.plugin_manager, "loader_schemes", KeyError("never raised")) is None
