"""The core engine against a real HTTP server: lifecycle, events, callbacks, limits, control."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from loader import (
    ConnectError,
    DeadlineExceeded,
    Event,
    HTTPStatusError,
    IdleTimeout,
    Limits,
    Loader,
    NameResolutionError,
    Origin,
    Phase,
    PluginError,
    PolicyDenied,
    RedirectError,
    RequestCancelled,
    Retries,
    SyncLoader,
    Timeouts,
    UnsupportedScheme,
    hookimpl,
)

pytestmark = pytest.mark.anyio

FAST_RETRIES = Retries(attempts=3, backoff=0.01, max_backoff=0.02)


def pattern_bytes(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


class Recorder:
    """A short callback that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def phases(self, request_id: int | None = None) -> list[Phase]:
        return [e.phase for e in self.events if request_id is None or e.request_id == request_id]


def _key() -> str:
    return uuid.uuid4().hex


# -- the exact grammar of a request --------------------------------------------------


async def test_exact_phases_of_a_first_request(http_server: Any) -> None:
    rec = Recorder()
    async with Loader() as loader:
        result = await loader.fetch(http_server.alt_url("/bytes/10"), callback=rec, context="ctx")
    assert result.ok and result.content == pattern_bytes(10)
    assert rec.phases() == [
        Phase.HANDLE_CREATED,
        Phase.RESOLVING_NAME,
        Phase.NAME_RESOLVED,
        Phase.CONNECTING_TO_SERVER,
        Phase.CONNECTED_TO_SERVER,
        Phase.SENDING_REQUEST,
        Phase.REQUEST_SENT,
        Phase.RECEIVING_RESPONSE,
        Phase.RESPONSE_RECEIVED,
        Phase.PROGRESS,
        Phase.REQUEST_COMPLETE,
    ]
    assert {e.context for e in rec.events} == {"ctx"}
    assert len({e.request_id for e in rec.events}) == 1
    assert rec.events[0].parent_id is None
    progress = rec.events[-2]
    assert (progress.bytes_done, progress.bytes_total) == (10, 10)
    assert rec.events[8].status == 200
    times = [e.time for e in rec.events]
    assert times == sorted(times)


async def test_reused_connection_skips_connect_phases(http_server: Any) -> None:
    rec = Recorder()
    async with Loader() as loader:
        await loader.fetch(http_server.url("/bytes/5"))
        await loader.fetch(http_server.url("/bytes/6"), callback=rec)
    assert rec.phases() == [
        Phase.HANDLE_CREATED,
        Phase.SENDING_REQUEST,
        Phase.REQUEST_SENT,
        Phase.RECEIVING_RESPONSE,
        Phase.RESPONSE_RECEIVED,
        Phase.PROGRESS,
        Phase.REQUEST_COMPLETE,
    ]


async def test_progress_reports_growing_byte_counts(http_server: Any, tmp_path: Path) -> None:
    rec = Recorder()
    n = 3_000_000
    async with Loader() as loader:
        result = await loader.fetch(http_server.url(f"/bytes/{n}"), to=tmp_path / "big", callback=rec)
    assert result.ok and result.size == n and result.path == tmp_path / "big"
    assert (tmp_path / "big").read_bytes() == pattern_bytes(n)
    progress = [e for e in rec.events if e.phase is Phase.PROGRESS]
    assert len(progress) > 1
    assert [e.bytes_done for e in progress] == sorted(e.bytes_done or 0 for e in progress)
    assert progress[-1].bytes_done == n and progress[-1].bytes_total == n


# -- failures are values, each with a clear error ------------------------------------


async def test_404_is_a_failed_result_not_retried(http_server: Any) -> None:
    rec = Recorder()
    url = http_server.url("/status/404")
    async with Loader(retries=FAST_RETRIES) as loader:
        result = await loader.fetch(url, callback=rec)
    assert not result.ok and result.status == 404 and result.attempts == 1
    assert isinstance(result.error, HTTPStatusError)
    assert str(result.error).startswith(url) and "404" in str(result.error)
    assert rec.phases()[-1] is Phase.FAILED and Phase.RETRY not in rec.phases()


async def test_connection_refused_is_retried_then_fails(refused_port: int) -> None:
    rec = Recorder()
    url = f"http://127.0.0.1:{refused_port}/x"
    async with Loader(retries=FAST_RETRIES) as loader:
        result = await loader.fetch(url, callback=rec)
    assert isinstance(result.error, ConnectError) and result.attempts == 3
    assert rec.phases().count(Phase.RETRY) == 2
    assert url in str(result.error)


async def test_dns_failure_names_the_host() -> None:
    async with Loader(retries=FAST_RETRIES) as loader:
        result = await loader.fetch("http://no-such-host.invalid/x")
    assert isinstance(result.error, NameResolutionError)
    assert "no-such-host.invalid" in str(result.error) and result.attempts == 1


async def test_idle_timeout(http_server: Any) -> None:
    timeouts = Timeouts(connect=2, idle=0.3, total=10)
    async with Loader(timeouts=timeouts, retries=Retries(attempts=1)) as loader:
        result = await loader.fetch(http_server.url("/stall?after=100"))
    assert isinstance(result.error, IdleTimeout)


async def test_total_deadline(http_server: Any) -> None:
    rec = Recorder()
    timeouts = Timeouts(connect=2, idle=5, total=0.3)
    async with Loader(timeouts=timeouts) as loader:
        started = time.monotonic()
        result = await loader.fetch(http_server.url("/slow?delay=3"), callback=rec)
    assert isinstance(result.error, DeadlineExceeded)
    assert time.monotonic() - started < 2
    assert rec.phases()[-1] is Phase.FAILED


async def test_dropped_connection_is_retried_and_leaves_no_file(http_server: Any, tmp_path: Path) -> None:
    async with Loader(retries=FAST_RETRIES) as loader:
        result = await loader.fetch(http_server.url("/drop?after=5000"), to=tmp_path / "f")
    assert not result.ok and result.attempts == 3
    assert list(tmp_path.iterdir()) == []


async def test_retry_then_success(http_server: Any) -> None:
    rec = Recorder()
    async with Loader(retries=FAST_RETRIES) as loader:
        result = await loader.fetch(http_server.url(f"/flaky/{_key()}/2"), callback=rec)
    assert result.ok and result.content == b"recovered" and result.attempts == 3
    retries = [e for e in rec.events if e.phase is Phase.RETRY]
    assert [e.attempt for e in retries] == [1, 2]
    assert all(isinstance(e.error, HTTPStatusError) for e in retries)
    assert rec.events[-1].attempt == 3


async def test_retry_after_is_honoured_and_bounded(http_server: Any) -> None:
    retries = Retries(attempts=3, backoff=5, max_retry_after=1)
    async with Loader(retries=retries) as loader:
        started = time.monotonic()
        ok = await loader.fetch(http_server.url(f"/flaky/{_key()}/1?status=429&retry_after=0"))
        assert ok.ok and ok.attempts == 2 and time.monotonic() - started < 1
        too_long = await loader.fetch(http_server.url(f"/flaky/{_key()}/1?status=503&retry_after=60"))
    assert not too_long.ok and too_long.attempts == 1 and too_long.status == 503


async def test_4xx_is_never_retried(http_server: Any) -> None:
    async with Loader(retries=FAST_RETRIES) as loader:
        result = await loader.fetch(http_server.url(f"/flaky/{_key()}/1?status=403"))
    assert result.status == 403 and result.attempts == 1


# -- redirects ---------------------------------------------------------------------------


async def test_redirects_are_followed_and_reported(http_server: Any) -> None:
    rec = Recorder()
    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/redirect/3"), callback=rec)
    assert result.ok and result.content == b"done"
    assert result.final_url == http_server.url("/redirect/0")
    redirects = [e.new_url for e in rec.events if e.phase is Phase.REDIRECT]
    assert redirects == [http_server.url(f"/redirect/{n}") for n in (2, 1, 0)]


async def test_redirect_loop_and_limit(http_server: Any) -> None:
    async with Loader(max_redirects=2) as loader:
        loop = await loader.fetch(http_server.url("/loop"))
        many = await loader.fetch(http_server.url("/redirect/5"))
    assert isinstance(loop.error, RedirectError) and "loop" in str(loop.error)
    assert isinstance(many.error, RedirectError) and "more than 2" in str(many.error)


async def test_redirect_to_another_scheme_is_refused(http_server: Any) -> None:
    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/redirect-to?url=ftp://127.0.0.1/x"))
    assert isinstance(result.error, RedirectError) and "ftp" in str(result.error)


async def test_credentials_and_cookies_stay_on_their_host(http_server: Any) -> None:
    same = http_server.url("/headers")
    other = http_server.alt_url("/headers")
    headers = {"Authorization": "Bearer secret"}
    async with Loader() as loader:
        await loader.fetch(http_server.url("/set-cookie?session=abc"))
        kept = await loader.fetch(http_server.url(f"/redirect-to?url={same}"), headers=headers)
        crossed = await loader.fetch(http_server.url(f"/redirect-to?url={other}"), headers=headers)
    import json

    assert json.loads(kept.content)["authorization"] == "Bearer secret"
    assert json.loads(kept.content)["cookie"] == "session=abc"
    crossed_headers = json.loads(crossed.content)
    assert "authorization" not in crossed_headers and "cookie" not in crossed_headers


# -- callbacks -------------------------------------------------------------------------


async def test_cancel_from_a_callback_leaves_nothing_behind(http_server: Any, tmp_path: Path) -> None:
    rec = Recorder()

    def cancel_on_progress(event: Event) -> None:
        rec(event)
        if event.phase is Phase.PROGRESS:
            event.cancel()

    url = http_server.url("/bytes/200000?chunk=1000&delay=0.01")
    async with Loader() as loader:
        result = await loader.fetch(url, to=tmp_path / "f.bin", callback=cancel_on_progress)
    assert isinstance(result.error, RequestCancelled)
    assert rec.phases()[-1] is Phase.CANCELLED
    assert list(tmp_path.iterdir()) == []


async def test_page_callback_cancels_every_request(http_server: Any) -> None:
    urls = [http_server.url(f"/slow?delay=2&n={i}") for i in range(4)]

    def cancel_all(event: Event) -> None:
        if event.phase is Phase.SENDING_REQUEST:
            event.cancel_page()

    async with Loader() as loader:
        started = time.monotonic()
        results = await loader.fetch_all(urls, callback=cancel_all)
    assert time.monotonic() - started < 1.5
    assert [type(r.error) for r in results] == [RequestCancelled] * 4


async def test_long_callbacks_run_off_the_loop_in_order(http_server: Any) -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[int, Phase, int]] = []

    def slow(event: Event) -> None:
        time.sleep(0.005)  # blocks: allowed in a long callback
        seen.append((threading.get_ident(), event.phase, event.request_id))

    urls = [http_server.url(f"/bytes/{n}") for n in (100, 200, 300)]
    async with Loader() as loader:
        results = await loader.fetch_all(urls, callback=slow, callback_mode="long")
    assert all(r.ok for r in results)
    assert seen and all(thread != loop_thread for thread, _, _ in seen)
    for request_id in {r.request_id for r in results}:
        phases = [p for _, p, rid in seen if rid == request_id]
        assert phases[0] is Phase.HANDLE_CREATED and phases[-1] is Phase.REQUEST_COMPLETE


async def test_long_callback_can_cancel(http_server: Any, tmp_path: Path) -> None:
    def cancel(event: Event) -> None:
        if event.phase is Phase.PROGRESS:
            event.cancel()

    url = http_server.url("/bytes/500000?chunk=1000&delay=0.01")
    async with Loader() as loader:
        result = await loader.fetch(url, to=tmp_path / "x", callback=cancel, callback_mode="long")
    assert isinstance(result.error, RequestCancelled)
    assert list(tmp_path.iterdir()) == []


async def test_async_callback_is_awaited(http_server: Any) -> None:
    phases: list[Phase] = []

    async def callback(event: Event) -> None:
        await anyio.sleep(0)
        phases.append(event.phase)

    async with Loader() as loader:
        await loader.fetch(http_server.url("/bytes/3"), callback=callback)
    assert phases[0] is Phase.HANDLE_CREATED and phases[-1] is Phase.REQUEST_COMPLETE


async def test_async_callback_cannot_be_long(http_server: Any) -> None:
    async def callback(event: Event) -> None:
        pass

    async with Loader() as loader:
        with pytest.raises(TypeError):
            await loader.fetch(http_server.url("/bytes/3"), callback=callback, callback_mode="long")


async def test_a_raising_callback_is_reported_and_harmless(http_server: Any) -> None:
    observed: list[Event] = []

    class Observer:
        @hookimpl
        def loader_event(self, event: Event) -> None:
            observed.append(event)

    def bad(event: Event) -> None:
        raise ValueError("boom")

    async with Loader(plugins=[("observer", Observer())]) as loader:
        result = await loader.fetch(http_server.url("/bytes/50"), callback=bad)
    assert result.ok and result.content == pattern_bytes(50)
    errors = [e for e in observed if e.phase is Phase.CALLBACK_ERROR]
    assert errors and isinstance(errors[0].error, ValueError)
    assert "boom" in (errors[0].message or "")


# -- completing at once --------------------------------------------------------------


async def test_data_url_completes_synchronously(http_server: Any) -> None:
    rec = Recorder()
    async with Loader() as loader:
        result = await loader.fetch("data:text/plain;base64,aGVsbG8=", callback=rec)
    assert result.ok and result.content == b"hello" and result.content_type == "text/plain"
    assert result.completed_synchronously and result.origin is Origin.DATA
    assert rec.phases() == [Phase.HANDLE_CREATED, Phase.REQUEST_COMPLETE]
    assert all(e.synchronous for e in rec.events)


async def test_second_fetch_completes_synchronously_without_network(http_server: Any, tmp_path: Path) -> None:
    url = http_server.url(f"/bytes/77?k={_key()}")
    path = url.split("/", 3)[3]
    rec = Recorder()
    async with Loader() as loader:
        first = await loader.fetch(url)
        hits = http_server.hits("/" + path.split("?")[0])
        second = await loader.fetch(url, callback=rec)
        copy = await loader.fetch(url, to=tmp_path / "copy")
        assert http_server.hits("/" + path.split("?")[0]) == hits
    assert not first.completed_synchronously
    assert second.origin is Origin.CACHE and second.content == first.content
    assert rec.phases() == [Phase.HANDLE_CREATED, Phase.REQUEST_COMPLETE]
    assert copy.ok and (tmp_path / "copy").read_bytes() == first.content


# -- plugins -------------------------------------------------------------------------


async def test_a_raising_plugin_fails_only_its_request(http_server: Any) -> None:
    class Grumpy:
        @hookimpl
        def loader_prepare_request(self, request: Any) -> Any:
            if "bad" in request.url:
                raise RuntimeError("cannot prepare")
            return None

    urls = [http_server.url("/bytes/1?bad"), http_server.url("/bytes/2")]
    async with Loader(plugins=[("grumpy", Grumpy())]) as loader:
        bad, good = await loader.fetch_all(urls)
    assert isinstance(bad.error, PluginError) and bad.error.plugin == "grumpy"
    assert "grumpy" in str(bad.error) and "cannot prepare" in str(bad.error)
    assert good.ok


async def test_prepare_request_adds_headers(http_server: Any) -> None:
    class Auth:
        @hookimpl
        def loader_prepare_request(self, request: Any) -> Any:
            return request.with_headers(X_Token="t0k")

    import json

    async with Loader(plugins=[("auth", Auth())], user_agent="loader-test/1") as loader:
        result = await loader.fetch(http_server.url("/headers"))
    echoed = json.loads(result.content)
    assert echoed["x-token"] == "t0k" and echoed["user-agent"] == "loader-test/1"


async def test_policy_hook_denies_urls_and_redirect_targets(http_server: Any) -> None:
    class Policy:
        @hookimpl
        def loader_allow(self, url: str, purpose: str) -> Any:
            return "private" if "private" in url else None

    async with Loader(plugins=[("policy", Policy())]) as loader:
        denied = await loader.fetch(http_server.url("/private"))
        redirected = await loader.fetch(http_server.url("/redirect-to?url=/private"))
    assert isinstance(denied.error, PolicyDenied) and "policy" in str(denied.error)
    assert isinstance(redirected.error, PolicyDenied)
    assert http_server.hits("/private") == 0


async def test_handler_that_raises_is_a_plugin_error() -> None:
    class Broken:
        @hookimpl
        def loader_schemes(self) -> tuple[str, ...]:
            return ("broken",)

        @hookimpl
        def loader_protocol(self, scheme: str, context: Any) -> Any:
            if scheme != "broken":
                return None
            from loader import ProtocolHandler

            class Handler(ProtocolHandler):
                def open(self, request: Any, channel: Any) -> Any:
                    raise KeyError("oops")

            return Handler()

    async with Loader(plugins=[("brokenplug", Broken())]) as loader:
        result = await loader.fetch("broken://x/y")
    assert isinstance(result.error, PluginError) and result.error.plugin == "brokenplug"


async def test_disable_plugin_by_argument_and_environment(monkeypatch: pytest.MonkeyPatch, http_server: Any) -> None:
    async with Loader(disable=["http"]) as loader:
        result = await loader.fetch(http_server.url("/bytes/1"))
    assert isinstance(result.error, UnsupportedScheme) and "'http'" in str(result.error)
    monkeypatch.setenv("LOADER_DISABLE_PLUGINS", "gopher, http")
    async with Loader() as loader:
        result = await loader.fetch(http_server.url("/bytes/1"))
        assert "http" not in loader.schemes()
    assert isinstance(result.error, UnsupportedScheme)


async def test_two_loaders_do_not_share_plugins(http_server: Any) -> None:
    class Deny:
        @hookimpl
        def loader_allow(self, url: str, purpose: str) -> bool:
            return False

    async with Loader(plugins=[("deny", Deny())]) as strict, Loader() as lenient:
        denied = await strict.fetch(http_server.url("/bytes/1"))
        allowed = await lenient.fetch(http_server.url("/bytes/1"))
    assert not denied.ok and allowed.ok


# -- limits --------------------------------------------------------------------------


async def test_per_host_and_total_limits(http_server: Any) -> None:
    http_server.reset()
    urls = [http_server.url(f"/latency/40/http/?n={i}&k={_key()}") for i in range(12)]
    async with Loader(limits=Limits(total=8, per_host=3)) as loader:
        results = await loader.fetch_all(urls)
    assert all(r.status in (200, 404) for r in results)
    assert 1 < http_server.max_concurrent <= 3


async def test_max_body_caps_a_response(http_server: Any) -> None:
    async with Loader(limits=Limits(max_body=1000), retries=Retries(attempts=1)) as loader:
        result = await loader.fetch(http_server.url("/bytes/5000"))
    assert not result.ok and "1000" in str(result.error)


async def test_results_stream_as_they_complete(http_server: Any) -> None:
    order: list[str] = []
    urls = [http_server.url("/slow?delay=0.4"), http_server.url("/bytes/1")]
    async with Loader() as loader:
        results = await loader.fetch_all(urls, on_result=lambda r: order.append(r.url))
    assert order == [urls[1], urls[0]]
    assert [r.url for r in results] == urls


# -- sync facade ---------------------------------------------------------------------


def test_sync_facade(http_server: Any) -> None:
    with SyncLoader() as loader:
        result = loader.fetch(http_server.url("/bytes/12"))
        many = loader.fetch_all([http_server.url("/bytes/1"), http_server.url("/status/500")])
    assert result.ok and result.content == pattern_bytes(12)
    assert [r.ok for r in many] == [True, False]


async def test_passwords_never_appear_in_events_results_or_errors(http_server: Any) -> None:
    rec = Recorder()
    secret_url = http_server.url("/status/404").replace("://", "://user:s3cret@")
    async with Loader() as loader:
        result = await loader.fetch(secret_url, callback=rec)
    assert result.status == 404
    shown = [result.url, result.final_url, str(result.error)] + [e.url for e in rec.events]
    shown += [str(e.error) for e in rec.events if e.error]
    assert all("s3cret" not in text for text in shown)
    assert result.url == http_server.url("/status/404").replace("://", "://user:***@")
    headers = next(h for m, p, h in http_server.requests if p == "/status/404" and "authorization" in h)
    assert headers["authorization"].startswith("Basic ")  # the credentials were still used


@pytest.mark.anyio
async def test_an_observer_naming_its_phases_gets_those_and_events_of_others_are_not_built(
    http_server: Any,
) -> None:
    from loader import Phase, hookimpl

    class Finished:
        loader_event_phases = frozenset({Phase.REQUEST_COMPLETE, Phase.FAILED})

        def __init__(self) -> None:
            self.phases: list[Phase] = []

        @hookimpl
        def loader_event(self, event: Any) -> None:
            self.phases.append(event.phase)

    class Everything:
        def __init__(self) -> None:
            self.phases: list[Phase] = []

        @hookimpl
        def loader_event(self, event: Any) -> None:
            self.phases.append(event.phase)

    finished = Finished()
    async with Loader(plugins=[finished]) as loader:
        await loader.fetch(http_server.url("/files/http/hello.txt"))
    assert finished.phases == [Phase.REQUEST_COMPLETE]
    # Another observer that names no phases, or a callback, sees them all again.
    finished2, everything = Finished(), Everything()
    async with Loader(plugins=[finished2, everything]) as loader:
        await loader.fetch(http_server.url("/files/http/hello.txt"))
    assert everything.phases[0] is Phase.HANDLE_CREATED and Phase.RESPONSE_RECEIVED in everything.phases
    seen: list[Phase] = []
    finished3 = Finished()
    async with Loader(plugins=[finished3]) as loader:
        await loader.fetch(http_server.url("/files/http/hello.txt"), callback=lambda e: seen.append(e.phase))
    assert Phase.RESPONSE_RECEIVED in seen and Phase.HANDLE_CREATED in finished3.phases
