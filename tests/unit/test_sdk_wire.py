"""The SDK's envelopes as JSON: what trackd reads from them, escaping, ids, times."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from trackd.domain.events import decode_envelope
from trackd.domain.interpret import interpret
from trackd.domain.lifecycle import epoch_time, format_time
from trackd.domain.states import TaskState
from trackd.sdk.handle import TaskHandle
from trackd.sdk.wire import Pending, _Clock, encode, to_envelope


class Capture:
    """Stands in for a Tracker: keeps what a handle emits instead of publishing it."""

    source = 'worker "7"'
    tenant_id = "acme"
    _heartbeat_interval = None

    def __init__(self) -> None:
        self.items: list[Pending] = []

    def _emit(self, *items: Pending) -> None:
        self.items.extend(items)

    def _register(self, handle: TaskHandle) -> None:
        pass

    def _unregister(self, handle: TaskHandle) -> None:
        pass


def run(name: str = "job", **kwargs: Any) -> tuple[TaskHandle, list[Pending]]:
    capture = Capture()
    with TaskHandle(capture, name, **kwargs) as task:  # type: ignore[arg-type]
        task.progress(0.5, 'line 1\nline 2\t\u00e9\u4e2d\U0001f600 \\ "q"')
    return task, capture.items


def test_every_event_is_one_trackd_reads_as_intended() -> None:
    task, items = run("index \u00e9", task_id='t "1"', plan_id="plan \\1", max_attempts=2)
    folded = [interpret(decode_envelope(encode(i)[2])).task for i in items]
    assert [f.state if f else None for f in folded] == [
        TaskState.PENDING,
        TaskState.RUNNING,
        TaskState.RUNNING,
        TaskState.COMPLETED,
    ]
    for f in folded:
        assert f is not None
        assert (f.task_id, f.plan_id, f.attempt, f.max_attempts) == ('t "1"', "plan \\1", 1, 2)
        assert f.trace_id == task.trace_id
        assert f.source == 'worker "7"'
    assert folded[0] is not None and folded[0].data is not None
    assert folded[0].data["event_type"] == "index \u00e9"
    assert folded[2] is not None
    assert folded[2].message == 'line 1\nline 2\t\u00e9\u4e2d\U0001f600 \\ "q"'
    assert folded[2].progress == 0.5


def test_ids_follow_from_the_task_and_the_sequence_so_encoding_again_repeats_them() -> None:
    task, items = run()
    first = [encode(i) for i in items]
    again = [encode(i) for i in items]
    assert first == again
    assert [w[0] for w in first] == [task.event_id] + [f"{task.event_id}.{n}" for n in (1, 2, 3)]
    assert {w[1] for w in first} == {task.task_id}  # the partition key


def test_event_times_are_utc_to_the_microsecond() -> None:
    _, items = run()
    when = items[-1][0]
    stamp = to_envelope(items[-1])["time"]
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp)
    assert abs(parsed.timestamp() - when) < 1e-5
    assert parsed.tzinfo == UTC
    assert abs(time.time() - when) < 5


def test_data_json_cannot_hold_is_refused_for_that_event_only() -> None:
    capture = Capture()
    with TaskHandle(capture, "x", data={"ratio": math.nan}):  # type: ignore[arg-type]
        pass
    with pytest.raises(ValueError, match="Out of range float"):
        encode(capture.items[0])
    assert json.loads(encode(capture.items[1])[2])["data"]["new_state"] == "running"


def test_event_times_match_the_lifecycle_format_repeated_or_not() -> None:
    clock = _Clock()
    base = 1_767_225_599.0  # one second before a new year, so the formatted second changes
    times = [base + 0.25, base + 0.25, base + 0.999999, base + 1.0, base + 1.0, base + 1.5, base]
    assert [clock.iso(t) for t in times] == [format_time(epoch_time(t)) for t in times]
