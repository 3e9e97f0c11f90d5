"""track() and @tracked: the events a task emits, nesting, retries, progress and heartbeats."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sdk_fakes import Event, RecordingBus, states

from trackd.sdk import (
    TaskHandle,
    Tracker,
    TrackerNotConfigured,
    configure,
    current_task,
    track,
    tracked,
)


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


@pytest.fixture
def tracker(bus: RecordingBus) -> Iterator[Tracker]:
    t = Tracker(bus=bus, source="unit-tests", tenant_id="acme")
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def default(tracker: Tracker) -> Iterator[Tracker]:
    """`tracker` as the configured default, unset again afterwards."""
    previous = configure(tracker)
    try:
        yield tracker
    finally:
        configure(previous)


def sent(tracker: Tracker, bus: RecordingBus, task: TaskHandle) -> list[Event]:
    tracker.flush()
    return bus.of_task(task.task_id)


def test_a_task_goes_pending_running_completed_with_its_duration(
    tracker: Tracker, bus: RecordingBus
) -> None:
    with tracker.track("index.build") as task:
        assert task.state == "running"
        time.sleep(0.02)

    events = sent(tracker, bus, task)
    assert states(events) == ["pending", "running", "completed"]
    assert [e["sequence"] for e in events] == [0, 1, 2]
    assert {e["type"] for e in events} == {"task.state_changed"}
    assert {e["topic"] for e in events} == {"system-events"}
    assert [e["data"].get("previous_state") for e in events] == [None, "pending", "running"]
    assert {e["data"]["event_type"] for e in events} == {"index.build"}
    assert {e["attempt"] for e in events} == {1}
    assert {e["source"] for e in events} == {"unit-tests"}
    assert {e["tenant_id"] for e in events} == {"acme"}
    assert set(bus.keys) == {task.task_id}  # partitioned by task: its events keep their order
    done = events[-1]["data"]
    assert done["duration_seconds"] >= 0.02
    assert task.state == "completed"
    assert task.duration == done["duration_seconds"]
    assert "error_type" not in done
    assert events[0]["id"] == task.event_id


def test_a_failure_carries_the_error_and_the_attempt(tracker: Tracker, bus: RecordingBus) -> None:
    with (
        pytest.raises(KeyError),
        tracker.track("fetch", task_id="fetch-7", attempt=2, max_attempts=3) as task,
    ):
        raise KeyError("no such page")

    events = sent(tracker, bus, task)
    assert states(events) == ["pending", "running", "failed"]
    assert {e["attempt"] for e in events} == {2}
    assert {e["data"]["max_attempts"] for e in events} == {3}
    failed = events[-1]["data"]
    assert failed["error_type"] == "KeyError"
    assert failed["error_message"] == "'no such page'"
    assert failed["reason"] == "KeyError: 'no such page'"
    assert failed["duration_seconds"] >= 0
    assert task.state == "failed"


def test_an_error_type_outside_builtins_is_named_with_its_module(
    tracker: Tracker, bus: RecordingBus
) -> None:
    with pytest.raises(TimeoutError), tracker.track("slow") as task:
        raise TimeoutError("gave up")
    assert sent(tracker, bus, task)[-1]["data"]["error_type"] == "TimeoutError"

    class QuotaExceeded(Exception):
        pass

    with pytest.raises(QuotaExceeded), tracker.track("quota") as other:
        raise QuotaExceeded
    data = sent(tracker, bus, other)[-1]["data"]
    assert data["error_type"] == f"{__name__}.{QuotaExceeded.__qualname__}"
    assert data["reason"] == "QuotaExceeded"


def test_progress_reports_state_fraction_and_message_in_sequence(
    tracker: Tracker, bus: RecordingBus
) -> None:
    with tracker.track("report") as task:
        task.progress(0.25, 'reading "a"')
        task.progress(1)

    events = sent(tracker, bus, task)
    assert [e["type"] for e in events] == [
        "task.state_changed",
        "task.state_changed",
        "task.progress",
        "task.progress",
        "task.state_changed",
    ]
    assert [e["sequence"] for e in events] == [0, 1, 2, 3, 4]
    first, second = events[2]["data"], events[3]["data"]
    assert (first["state"], first["progress"], first["message"]) == ("running", 0.25, 'reading "a"')
    assert (second["progress"], "message" in second) == (1.0, False)
    assert events[2]["parent_event_id"] == task.event_id


@pytest.mark.parametrize("fraction", [-0.01, 1.000001, math.nan, math.inf, True, "0.5", None])
def test_progress_outside_0_to_1_is_a_value_error_and_sends_nothing(
    tracker: Tracker, bus: RecordingBus, fraction: Any
) -> None:
    with tracker.track("report") as task:
        with pytest.raises(ValueError, match="from 0 to 1"):
            task.progress(fraction)
    assert states(sent(tracker, bus, task)) == ["pending", "running", "completed"]


def test_progress_outside_the_block_is_refused(tracker: Tracker) -> None:
    task = tracker.track("report")
    with pytest.raises(RuntimeError, match="not started"):
        task.progress(0.5)
    with task:
        pass
    with pytest.raises(RuntimeError, match="completed"):
        task.progress(0.5)


def test_a_handle_is_entered_once(tracker: Tracker) -> None:
    task = tracker.track("once")
    with task:
        pass
    with pytest.raises(RuntimeError, match="already entered"), task:
        pass


def test_nested_tasks_share_the_trace_and_point_at_their_parent(
    default: Tracker, bus: RecordingBus
) -> None:
    @tracked
    def leaf() -> str:
        task = current_task()
        assert task is not None
        return task.task_id

    @tracked(name="middle")
    def middle() -> tuple[str, str]:
        task = current_task()
        assert task is not None
        return task.task_id, leaf()

    assert current_task() is None
    with track("plan-root", plan_id="plan-9") as root:
        assert current_task() is root
        middle_id, leaf_id = middle()
        assert current_task() is root
    assert current_task() is None

    default.flush()
    by_task = {t: bus.of_task(t) for t in (root.task_id, middle_id, leaf_id)}
    assert {e["trace_id"] for events in by_task.values() for e in events} == {root.trace_id}
    assert {e.get("plan_id") for events in by_task.values() for e in events} == {"plan-9"}
    assert {e["data"].get("plan_id") for events in by_task.values() for e in events} == {"plan-9"}
    start = {t: events[0]["id"] for t, events in by_task.items()}
    assert "parent_event_id" not in by_task[root.task_id][0]
    assert by_task[middle_id][0]["parent_event_id"] == start[root.task_id]
    assert by_task[leaf_id][0]["parent_event_id"] == start[middle_id]
    for task_id, events in by_task.items():  # the rest of a task hangs off its first event
        assert {e["parent_event_id"] for e in events[1:]} == {start[task_id]}
    assert by_task[leaf_id][0]["data"]["event_type"] == f"{__name__}.{leaf.__qualname__}"
    assert by_task[middle_id][0]["data"]["event_type"] == "middle"


def test_separate_top_level_tasks_get_separate_traces(tracker: Tracker) -> None:
    with tracker.track("a") as a:
        pass
    with tracker.track("b") as b:
        pass
    assert a.trace_id != b.trace_id
    assert a.parent_event_id is None and b.parent_event_id is None


async def test_async_siblings_each_nest_under_the_parent_not_under_each_other() -> None:
    bus = RecordingBus()
    async with Tracker(bus=bus, tenant_id="acme") as tracker:

        @tracked(tracker=tracker)
        async def fetch(delay: float) -> TaskHandle:
            await asyncio.sleep(delay)
            task = current_task()
            assert task is not None
            return task

        async with tracker.track("crawl", plan_id="plan-a") as root:
            first, second = await asyncio.gather(fetch(0.02), fetch(0.01))
        await tracker.aflush()

    assert bus.closed is False  # a bus passed in belongs to the caller
    for child in (first, second):
        assert child.trace_id == root.trace_id
        assert child.parent_event_id == root.event_id
        assert child.plan_id == "plan-a"
        assert states(bus.of_task(child.task_id)) == ["pending", "running", "completed"]
    assert states(bus.of_task(root.task_id)) == ["pending", "running", "completed"]


async def test_a_cancelled_task_is_recorded_as_cancelled() -> None:
    bus = RecordingBus()
    started = asyncio.Event()
    async with Tracker(bus=bus) as tracker:

        async def work() -> None:
            async with tracker.track("long") as task:
                handles.append(task)
                started.set()
                await asyncio.sleep(10)

        handles: list[TaskHandle] = []
        job = asyncio.create_task(work())
        await started.wait()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        await tracker.aflush()

    events = bus.of_task(handles[0].task_id)
    assert states(events) == ["pending", "running", "cancelled"]
    assert events[-1]["data"]["reason"] == "cancelled"


def test_tracked_works_bare_and_with_arguments_and_keeps_the_function(
    default: Tracker, bus: RecordingBus
) -> None:
    def add(x: int, y: int = 1) -> int:
        """Adds."""
        return x + y

    bare = tracked(add)
    named = tracked(name="math.add")(add)
    assert bare(2) == 3
    assert named(2, y=5) == 7
    assert bare.__name__ == "add" and bare.__doc__ == "Adds."
    assert bare.__wrapped__ is add  # type: ignore[attr-defined]
    assert bare.__trackd_name__ == f"{__name__}.{add.__qualname__}"  # type: ignore[attr-defined]
    assert named.__trackd_name__ == "math.add"  # type: ignore[attr-defined]
    default.flush()
    assert sorted(e["data"]["event_type"] for e in bus.events if e["sequence"] == 0) == sorted(
        [f"{__name__}.{add.__qualname__}", "math.add"]
    )


async def test_tracked_async_functions_are_awaited_inside_the_task(
    default: Tracker, bus: RecordingBus
) -> None:
    @tracked
    async def double(x: int) -> int:
        await asyncio.sleep(0.01)
        return 2 * x

    assert asyncio.iscoroutinefunction(double)
    assert await double(21) == 42
    # The first event came from this event loop, so the tracker publishes as a task in it.
    with pytest.raises(RuntimeError, match="aflush"):
        default.flush()
    await default.aflush()
    done = [e for e in bus.events if e["data"].get("new_state") == "completed"]
    assert len(done) == 1 and done[0]["data"]["duration_seconds"] >= 0.01


def test_tracked_retries_as_new_attempts_of_the_same_task(
    default: Tracker, bus: RecordingBus
) -> None:
    calls = 0

    @tracked(max_attempts=3)
    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"try {calls}")
        return "ok"

    assert flaky() == "ok"
    default.flush()
    assert len({e["data"]["task_id"] for e in bus.events}) == 1
    assert [(e["attempt"], s) for e, s in zip(bus.events, states(bus.events), strict=True)] == [
        (1, "pending"),
        (1, "running"),
        (1, "failed"),
        (2, "pending"),
        (2, "running"),
        (2, "failed"),
        (3, "pending"),
        (3, "running"),
        (3, "completed"),
    ]
    assert bus.events[2]["data"]["error_message"] == "try 1"
    assert {e["data"]["max_attempts"] for e in bus.events} == {3}


def test_tracked_raises_the_last_error_when_the_attempts_run_out(
    default: Tracker, bus: RecordingBus
) -> None:
    @tracked(max_attempts=2)
    def broken() -> None:
        raise ValueError("still broken")

    with pytest.raises(ValueError, match="still broken"):
        broken()
    default.flush()
    assert states(bus.events).count("failed") == 2
    assert [e["attempt"] for e in bus.events if e["data"].get("new_state") == "failed"] == [1, 2]


def test_without_a_configured_tracker_the_error_says_what_to_do() -> None:
    previous = configure(None)
    try:

        @tracked  # decorating needs no tracker: it is looked up at each call
        def job() -> None:
            pass

        with pytest.raises(TrackerNotConfigured, match=r"configure\(Tracker"):
            job()
        with pytest.raises(TrackerNotConfigured):
            track("x")
    finally:
        configure(previous)


def test_configure_returns_the_previous_tracker(tracker: Tracker) -> None:
    previous = configure(tracker)
    try:
        assert configure(tracker) is tracker
    finally:
        configure(previous)


def test_the_producers_data_rides_on_the_first_event_without_replacing_trackds(
    tracker: Tracker, bus: RecordingBus
) -> None:
    with tracker.track("ingest", data={"batch": [1, 2], "task_id": "forged", "when": time}) as t:
        pass
    first = sent(tracker, bus, t)[0]["data"]
    assert first["batch"] == [1, 2]
    assert first["task_id"] == t.task_id
    assert first["when"] == str(time)  # what JSON cannot hold is sent as text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "task name"),
        ({"name": "x" * 256}, "task name"),
        ({"task_id": "x" * 101}, "task_id"),
        ({"task_id": "bad\nid"}, "control characters"),
        ({"plan_id": ""}, "plan_id"),
        ({"attempt": 0}, "attempt"),
        ({"attempt": 4, "max_attempts": 3}, "past max_attempts"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_bad_arguments_fail_at_the_call(
    tracker: Tracker, kwargs: dict[str, Any], message: str
) -> None:
    name = kwargs.pop("name", "ok")
    with pytest.raises(ValueError, match=message):
        tracker.track(name, **kwargs)


def test_bad_decorator_arguments_fail_at_decoration() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        tracked(max_attempts=0)(lambda: None)


class BeatCounting(Tracker):
    """A tracker whose delivery thread's heartbeat ticks can be waited for."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ticks = 0
        self._ticked = threading.Condition()

    def _beat(self) -> None:
        super()._beat()
        with self._ticked:
            self.ticks += 1
            self._ticked.notify_all()

    def wait_ticks(self, count: int, within: float = 5.0) -> None:
        """Wait until the delivery loop has looked for quiet tasks `count` more times."""
        with self._ticked:
            target = self.ticks + count
            assert self._ticked.wait_for(lambda: self.ticks >= target, within)


def test_heartbeats_report_a_quiet_running_task_and_stop_when_it_ends(bus: RecordingBus) -> None:
    def beats(task: TaskHandle) -> list[Event]:
        return [e for e in bus.of_task(task.task_id) if e["type"] == "task.progress"]

    with BeatCounting(bus=bus, heartbeat_interval=0.01, flush_interval=0.01) as tracker:
        with tracker.track("quiet") as task:
            for _ in range(1000):  # ticks, each at most a flush interval apart
                if len(beats(task)) >= 2:
                    break
                tracker.wait_ticks(1)
                tracker.flush()
        tracker.flush()
        told = len(bus.of_task(task.task_id))
        tracker.wait_ticks(3)  # the delivery loop looked again, and no heartbeat followed the end
        tracker.flush()
        assert len(bus.of_task(task.task_id)) == told

    events = bus.of_task(task.task_id)
    beats = [e for e in events if e["type"] == "task.progress"]
    assert len(beats) >= 2
    assert all(b["data"]["state"] == "running" and "progress" not in b["data"] for b in beats)
    assert states(events)[-1] == "completed"
    assert [e["sequence"] for e in events] == sorted(e["sequence"] for e in events)
    assert events[-1]["sequence"] == max(e["sequence"] for e in events)
