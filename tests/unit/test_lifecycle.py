"""The lifecycle envelope builder, and the SDK's templates held byte for byte to it."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackd.domain import lifecycle
from trackd.domain.events import decode_envelope
from trackd.domain.ids import id_problem
from trackd.domain.interpret import interpret
from trackd.domain.states import TaskState
from trackd.sdk.handle import TaskHandle
from trackd.sdk.wire import KIND_END, Pending, encode


class Capture:
    """Stands in for a Tracker: keeps what a handle emits instead of publishing it."""

    _heartbeat_interval = None

    def __init__(self, source: str, tenant_id: str | None) -> None:
        self.source = source
        self.tenant_id = tenant_id
        self.items: list[Pending] = []

    def _emit(self, *items: Pending) -> None:
        self.items.extend(items)

    def _register(self, handle: TaskHandle) -> None:
        pass

    def _unregister(self, handle: TaskHandle) -> None:
        pass


ids = st.text(min_size=1, max_size=40).filter(lambda s: id_problem(s) is None)
names = st.text(min_size=1, max_size=60)
# Any text a producer may pass, lone surrogates aside (they cannot be UTF-8 at all).
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
metadata = st.none() | st.dictionaries(
    texts | st.sampled_from(sorted(lifecycle.RESERVED)), json_value, max_size=5
)
# 2001 to 2100, as time.time() gives them.
epoch_times = st.floats(min_value=978_307_200.0, max_value=4_102_444_800.0)


class Boom(Exception):
    pass


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=names,
    tenant_id=st.none() | ids,
    name=names,
    task_id=st.none() | ids,
    plan_id=st.none() | ids,
    attempt=st.integers(1, 5),
    extra_attempts=st.none() | st.integers(0, 5),
    data=metadata,
    nested=st.booleans(),
    fraction=st.floats(0.0, 1.0),
    message=st.none() | texts,
    ending=st.sampled_from(["completed", "failed"]),
    error=texts,
    times=st.lists(epoch_times, min_size=5, max_size=5),
    duration=st.floats(0.0, 1e6),
)
def test_the_sdk_templates_write_exactly_what_the_domain_builder_writes(
    source: str,
    tenant_id: str | None,
    name: str,
    task_id: str | None,
    plan_id: str | None,
    attempt: int,
    extra_attempts: int | None,
    data: dict[str, Any] | None,
    nested: bool,
    fraction: float,
    message: str | None,
    ending: str,
    error: str,
    times: list[float],
    duration: float,
) -> None:
    capture = Capture(source, tenant_id)
    max_attempts = None if extra_attempts is None else attempt + extra_attempts
    kwargs: dict[str, Any] = {
        "task_id": task_id,
        "plan_id": plan_id,
        "attempt": attempt,
        "max_attempts": max_attempts,
        "data": data,
    }
    parent: TaskHandle | None = None
    if nested:
        parent = TaskHandle(capture, "outer")  # type: ignore[arg-type]
        parent.__enter__()
    with pytest.raises(Boom) if ending == "failed" else _nothing():
        with TaskHandle(capture, name, **kwargs) as task:  # type: ignore[arg-type]
            task.progress(fraction, message)
            beat = task._heartbeat(math.inf, 0.0)  # as the publisher's thread asks for one
            assert beat is not None
            capture.items.append(beat)
            if ending == "failed":
                raise Boom(error)
    if parent is not None:
        parent.__exit__(None, None, None)
    items = [i for i in capture.items if i[1] is task]
    # The drawn times and duration stand in for the clock's.
    items = [(when, *item[1:]) for when, item in zip(times, items, strict=True)]
    end = items[-1]
    items[-1] = (end[0], end[1], KIND_END, end[3], (*end[4][:2], duration, *end[4][3:]))

    head: dict[str, Any] = {
        "source": source,
        "task_id": task.task_id,
        "plan_id": task.plan_id,
        "max_attempts": max_attempts,
        "trace_id": task.trace_id,
        "attempt": attempt,
        "tenant_id": tenant_id,
    }
    start = task.event_id
    first_parent = parent.event_id if parent is not None else None
    failed: dict[str, Any] = {}
    if ending == "failed":
        failed = {
            "reason": f"Boom: {error}" if error else "Boom",
            "error_type": f"{Boom.__module__}.{Boom.__qualname__}",
            "error_message": error,
        }
    expected = [
        lifecycle.state_changed(
            event_id=start,
            time=lifecycle.epoch_time(times[0]),
            new_state="pending",
            event_type=name,
            sequence=0,
            parent_event_id=first_parent,
            extra=data,
            **head,
        ),
        lifecycle.state_changed(
            event_id=f"{start}.1",
            time=lifecycle.epoch_time(times[1]),
            previous_state="pending",
            new_state="running",
            event_type=name,
            sequence=1,
            parent_event_id=start,
            **head,
        ),
        lifecycle.progress(
            event_id=f"{start}.2",
            time=lifecycle.epoch_time(times[2]),
            state="running",
            fraction=fraction,
            message=message,
            sequence=2,
            parent_event_id=start,
            **head,
        ),
        lifecycle.progress(
            event_id=f"{start}.3",
            time=lifecycle.epoch_time(times[3]),
            state="running",
            sequence=3,
            parent_event_id=start,
            **head,
        ),
        lifecycle.state_changed(
            event_id=f"{start}.4",
            time=lifecycle.epoch_time(times[4]),
            previous_state="running",
            new_state=ending,
            event_type=name,
            duration_seconds=duration,
            sequence=4,
            parent_event_id=start,
            **failed,
            **head,
        ),
    ]
    assert [encode(i)[2] for i in items] == [lifecycle.encode(e) for e in expected]
    assert {encode(i)[1] for i in items} == {task.task_id}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_fields_trackd_writes_win_over_the_producers_data() -> None:
    event = lifecycle.state_changed(
        event_id="e1",
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        source="app",
        task_id="t1",
        new_state="pending",
        extra={"task_id": "other", "new_state": "completed", "plan_id": "p", "region": "eu"},
    )
    assert event["data"] == {"region": "eu", "task_id": "t1", "new_state": "pending"}
    folded = interpret(decode_envelope(lifecycle.encode(event))).task
    assert folded is not None
    assert (folded.task_id, folded.state, folded.plan_id) == ("t1", TaskState.PENDING, None)


def test_times_are_written_in_utc_to_the_microsecond_and_naive_ones_taken_as_utc() -> None:
    aware = datetime(2026, 1, 2, 5, 4, 5, 120, tzinfo=timezone(timedelta(hours=2)))
    assert lifecycle.format_time(aware) == "2026-01-02T03:04:05.000120Z"
    assert lifecycle.format_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"
    assert lifecycle.epoch_time(1_767_323_045.25) == datetime(2026, 1, 2, 3, 4, 5, 250000, UTC)


def test_only_the_fields_given_are_written_and_in_one_order() -> None:
    event = lifecycle.progress(
        event_id="e2",
        time=datetime(2026, 1, 2, tzinfo=UTC),
        source="poll.x",
        task_id="t2",
        state="running",
        attempt=2,
        tenant_id="acme",
    )
    assert lifecycle.encode(event) == (
        b'{"id":"e2","type":"task.progress","topic":"system-events",'
        b'"time":"2026-01-02T00:00:00.000000Z","source":"poll.x","attempt":2,'
        b'"tenant_id":"acme","data":{"task_id":"t2","state":"running"}}'
    )


def test_data_json_cannot_hold_is_refused_when_encoded() -> None:
    event = lifecycle.state_changed(
        event_id="e3",
        time=datetime(2026, 1, 2, tzinfo=UTC),
        source="app",
        task_id="t3",
        new_state="running",
        extra={"ratio": math.inf},
    )
    with pytest.raises(ValueError, match="Out of range float"):
        lifecycle.encode(event)
    event["data"]["ratio"] = datetime(2026, 1, 2, tzinfo=UTC)
    assert json.loads(lifecycle.encode(event))["data"]["ratio"] == "2026-01-02T00:00:00+00:00"
