"""Every protocol plugin speaks the same event grammar (checked against real servers).

The grammar: ``HANDLE_CREATED`` first; exactly one terminal phase, last; one
request id and one context throughout; byte counts that only grow and end at the
result's size; and the plugin's phases in protocol order (a connection is
attempted before it is established, a request sent before its response is
received, a name resolved before connecting).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loader import Event, Loader, Phase, Result

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parents[1] / "fixtures"

#: (earlier, later): when both occur, the first ``earlier`` precedes the first ``later``.
ORDER = [
    (Phase.RESOLVING_NAME, Phase.NAME_RESOLVED),
    (Phase.NAME_RESOLVED, Phase.CONNECTING_TO_SERVER),
    (Phase.CONNECTING_TO_SERVER, Phase.CONNECTED_TO_SERVER),
    (Phase.CONNECTED_TO_SERVER, Phase.SENDING_REQUEST),
    (Phase.SENDING_REQUEST, Phase.REQUEST_SENT),
    (Phase.REQUEST_SENT, Phase.RESPONSE_RECEIVED),
    (Phase.RECEIVING_RESPONSE, Phase.RESPONSE_RECEIVED),
    (Phase.RESPONSE_RECEIVED, Phase.PROGRESS),
    (Phase.CLOSING_CONNECTION, Phase.CONNECTION_CLOSED),
]

CORE_ONLY = {Phase.HANDLE_CREATED, Phase.REQUEST_COMPLETE, Phase.FAILED, Phase.CANCELLED}


def check_grammar(events: list[Event], result: Result, context: object) -> None:
    phases = [e.phase for e in events]
    assert phases[0] is Phase.HANDLE_CREATED
    assert phases[-1].terminal and sum(p.terminal for p in phases) == 1
    assert phases.count(Phase.HANDLE_CREATED) == 1
    assert {e.request_id for e in events} == {result.request_id}
    assert {e.context for e in events} == {context}
    progress = [e.bytes_done for e in events if e.phase is Phase.PROGRESS]
    assert progress == sorted(progress)
    if result.ok:
        assert phases[-1] is Phase.REQUEST_COMPLETE
        assert events[-1].bytes_done == result.size
        if progress:
            assert progress[-1] == result.size
    for earlier, later in ORDER:
        if earlier in phases and later in phases:
            assert phases.index(earlier) < phases.index(later), (earlier, later, phases)
    middle = phases[1:-1]
    assert not CORE_ONLY & set(middle), middle


def _expected(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


async def _fetch(url: str) -> tuple[list[Event], Result]:
    events: list[Event] = []
    async with Loader() as loader:
        result = await loader.fetch(url, callback=events.append, context=("ctx", url))
    return events, result


async def test_http_grammar(http_server: Any) -> None:
    events, result = await _fetch(http_server.alt_url("/files/http/logo.png"))
    assert result.content == _expected("http/logo.png")
    check_grammar(events, result, ("ctx", http_server.alt_url("/files/http/logo.png")))


async def test_ftp_grammar(ftp_server: Any) -> None:
    url = ftp_server.url("/pub/media/photo.png")
    events, result = await _fetch(url)
    assert result.content == _expected("ftp/pub/media/photo.png")
    check_grammar(events, result, ("ctx", url))
    replies = [e for e in events if e.phase is Phase.CTL_RESPONSE_RECEIVED]
    assert replies and all(isinstance(e.status, int) and e.message is not None for e in replies)


async def test_gopher_grammar(gopher_server: Any) -> None:
    url = gopher_server.url("I", "/pics/dog.png")
    events, result = await _fetch(url)
    assert result.content == _expected("gopher/pics/dog.png")
    check_grammar(events, result, ("ctx", url))


async def test_failure_grammar_is_the_same_everywhere(http_server: Any, ftp_server: Any, gopher_server: Any) -> None:
    for url in (
        http_server.url("/status/404"),
        ftp_server.url("/pub/no-such-file.png"),
        gopher_server.url("I", "/pics/no-such.png"),
    ):
        events, result = await _fetch(url)
        assert not result.ok and result.error is not None
        check_grammar(events, result, ("ctx", url))
        assert events[-1].phase is Phase.FAILED and events[-1].error is result.error
