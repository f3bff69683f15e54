"""The ``--events`` line writer: byte for byte what ``json.dumps(event.to_json())`` writes."""

from __future__ import annotations

import io
import json
import random

import pytest

from loader import Event, Phase
from loader._progress import EventLog, event_line


def reference(event: Event) -> str:
    return json.dumps(event.to_json()) + "\n"


TEXTS = [
    None, "", "plain", 'quote " and \\ backslash', "tab\tnew\nline\r", "\x00\x1f\x7f", "caf\u00e9",
    "\u2028\u2029", "\U0001f600 emoji", "\ud800 lone surrogate", "http://h/a b?c=d#e",
]
NUMBERS = [None, 0, 1, -1, 2**40, 2**70]


def random_event(rng: random.Random) -> Event:
    return Event(
        request_id=rng.choice([1, 7, 2**33]),
        parent_id=rng.choice([None, 1, 99]),
        url=rng.choice([t for t in TEXTS if t is not None]),
        phase=rng.choice(list(Phase)),
        time=rng.choice([0.0, 1.5, 1763750000.123456789, 1e-7, 1e22, 12345.0000005]),
        attempt=rng.choice([1, 2, 5]),
        kind=rng.choice(TEXTS),
        bytes_done=rng.choice(NUMBERS),
        bytes_total=rng.choice(NUMBERS),
        new_url=rng.choice(TEXTS),
        status=rng.choice([None, 200, 404]),
        message=rng.choice(TEXTS),
        error=rng.choice([None, ValueError("bad \"thing\"\n"), OSError(2, "No such file"), RuntimeError()]),
        synchronous=rng.choice([False, True]),
    )


def test_random_events_match_json_dumps() -> None:
    rng = random.Random(6)
    for _ in range(5000):
        event = random_event(rng)
        assert event_line(event) == reference(event)


@pytest.mark.parametrize("odd", [
    {"status": "200"},  # text where the schema has a number: quoted, as json.dumps does
    {"status": True},  # a bool is an int to isinstance, not to JSON
    {"bytes_done": 3.5},
    {"parent_id": "p"},
    {"message": 42},  # a number where the schema has text
    {"kind": ["a", "b"]},
    {"time": 3},  # an int time
    {"attempt": True},
])
def test_values_of_other_types_are_written_as_json_dumps_writes_them(odd: dict) -> None:
    fields = {"request_id": 3, "parent_id": None, "url": "http://h/", "phase": Phase.PROGRESS, "time": 2.5}
    fields.update(odd)
    event = Event(**fields)
    assert event_line(event) == reference(event)
    json.loads(event_line(event))  # and it is JSON


def test_unserializable_value_fails_as_json_dumps_does() -> None:
    event = Event(request_id=3, parent_id=None, url="http://h/", phase=Phase.PROGRESS, time=1.0, message=object())
    with pytest.raises(TypeError):
        reference(event)
    with pytest.raises(TypeError):
        event_line(event)


def test_event_log_writes_one_line_per_event() -> None:
    out = io.StringIO()
    log = EventLog(out)
    events = [random_event(random.Random(n)) for n in range(20)]
    for event in events:
        log.loader_event(event)
    lines = out.getvalue().splitlines(keepends=True)
    assert lines == [reference(event) for event in events]
    assert [json.loads(line)["request_id"] for line in lines] == [e.request_id for e in events]


def test_times_are_written_as_round_and_repr_write_them() -> None:
    from loader._progress import _json_time

    rng = random.Random(7)
    samples = [rng.uniform(1.0, 2**32) for _ in range(100_000)]
    samples += [rng.uniform(1.7e9, 1.8e9) for _ in range(100_000)]
    samples += [rng.randrange(1, 2**32) + rng.randrange(10**6) / 10**6 for _ in range(50_000)]
    samples += [rng.randrange(1, 2**32) + (rng.randrange(10**6) + 0.5) / 10**6 for _ in range(50_000)]  # ties
    samples += [0.0, 1e-7, 5e-05, 0.5, 1.0, 1.0000005, 2**32 - 1e-7, 2**32, 2**33 + 0.123, 1e16, 1e22, -1.5]
    for when in samples:
        assert _json_time(when) == repr(round(when, 6)), when
