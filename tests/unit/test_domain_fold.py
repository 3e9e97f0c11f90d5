"""Example-based tests of each rule of the task fold (DESIGN §4)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trackd.domain.states import TaskState
from trackd.domain.tasks import (
    DEFAULT_MAX_ATTEMPTS,
    AnomalyKind,
    EventKind,
    Folded,
    TaskEvent,
    TaskRecord,
    fold,
    new_record,
)

T0 = datetime(2026, 1, 11, 10, 0, tzinfo=UTC)
TENANT = "tenant-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(
    event_id: str,
    state: TaskState,
    t: float = 0.0,
    *,
    seq: int | None = None,
    attempt: int = 1,
    kind: EventKind = EventKind.PROGRESS,
    source: str = "worker-a",
    event_type: str | None = None,
    progress: float | None = None,
    message: str | None = None,
    reason: str | None = None,
    max_attempts: int | None = None,
    data: dict[str, Any] | None = None,
    plan_id: str | None = None,
    trace_id: str | None = None,
    parent_event_id: str | None = None,
    task_id: str = "task-1",
) -> TaskEvent:
    default_type = {
        EventKind.REQUEST: "web.search.requested",
        EventKind.PROGRESS: "task.progress",
        EventKind.STATE: "task.state_changed",
        EventKind.RESULT: "web.search.completed",
    }[kind]
    return TaskEvent(
        event_id=event_id,
        task_id=task_id,
        kind=kind,
        state=state,
        time=at(t),
        source=source,
        event_type=event_type or default_type,
        attempt=attempt,
        sequence=seq,
        progress=progress,
        message=message,
        reason=reason,
        plan_id=plan_id,
        trace_id=trace_id,
        parent_event_id=parent_event_id,
        max_attempts=max_attempts,
        data=data,
    )


def request(event_id: str = "req", t: float = 0.0, **kw: Any) -> TaskEvent:
    kw.setdefault("source", "planner")
    return ev(event_id, TaskState.RUNNING, t, kind=EventKind.REQUEST, **kw)


def result(event_id: str, success: bool, t: float, **kw: Any) -> TaskEvent:
    state = TaskState.COMPLETED if success else TaskState.FAILED
    return ev(event_id, state, t, kind=EventKind.RESULT, **kw)


def step(rec: TaskRecord | None, event: TaskEvent) -> Folded:
    return new_record(TENANT, event) if rec is None else fold(rec, event)


def run(events: Iterable[TaskEvent]) -> TaskRecord:
    """Fold events in the order given; every one of them must be accepted."""
    rec: TaskRecord | None = None
    for event in events:
        out = step(rec, event)
        assert out.anomaly is None, out.anomaly
        rec = out.record
    assert rec is not None
    return rec


def refused(rec: TaskRecord, event: TaskEvent, kind: AnomalyKind) -> Folded:
    """Fold an event the fold must refuse and check the record is left as it was."""
    snapshot = copy.deepcopy(rec)
    out = fold(rec, event)
    assert out.anomaly is not None
    assert out.anomaly.kind is kind
    assert out.anomaly.event_id == event.event_id
    assert out.anomaly.task_id == rec.task_id
    assert out.anomaly.from_state is rec.state
    assert out.anomaly.to_state is event.state
    assert out.anomaly.at == event.time
    assert out.anomaly.message
    assert out.transition is None
    assert out.record == snapshot
    assert rec == snapshot
    return out


# --- creation ----------------------------------------------------------------------------


def test_first_event_creates_the_record() -> None:
    out = new_record(
        TENANT,
        ev(
            "e1",
            TaskState.RUNNING,
            5,
            progress=0.2,
            message="go",
            plan_id="plan-1",
            trace_id="trace-1",
        ),
    )
    rec = out.record
    assert (rec.tenant_id, rec.task_id, rec.state, rec.attempt) == (
        TENANT,
        "task-1",
        TaskState.RUNNING,
        1,
    )
    assert (rec.progress, rec.message, rec.plan_id, rec.trace_id) == (
        0.2,
        "go",
        "plan-1",
        "trace-1",
    )
    assert rec.first_seen_at == rec.last_event_at == rec.started_at == at(5)
    assert rec.completed_at is None
    assert rec.head_key == "000001|00000000000000000|2026-01-11T10:00:05+00:00|e1"
    assert out.anomaly is None
    assert out.transition is not None
    assert (out.transition.from_state, out.transition.to_state) == (None, TaskState.RUNNING)


def test_a_pending_task_has_not_started() -> None:
    rec = new_record(TENANT, ev("e1", TaskState.PENDING, 0)).record
    assert rec.started_at is None
    assert rec.duration_seconds is None


# --- duplicates --------------------------------------------------------------------------


def test_duplicate_of_the_head_is_a_no_op() -> None:
    e1 = ev("e1", TaskState.RUNNING, 1, seq=1, progress=0.3, message="m")
    rec = new_record(TENANT, e1).record
    out = fold(rec, e1)
    assert out.record is rec
    assert (out.transition, out.anomaly) == (None, None)


def test_duplicates_of_every_event_change_nothing() -> None:
    events = [
        request("r", 0),
        ev("e1", TaskState.RUNNING, 1, progress=0.1, message="a"),
        ev("e2", TaskState.WAITING, 2, progress=0.5, message="b"),
        result("e3", True, 3, data={"success": True}),
    ]
    rec = run(events)
    for event in events:
        out = fold(rec, event)
        assert out.record == rec
        assert (out.transition, out.anomaly) == (None, None)


def test_duplicate_terminal_event_is_not_a_conflict() -> None:
    done = ev("done", TaskState.COMPLETED, 5)
    rec = run([ev("e1", TaskState.RUNNING, 1), done])
    out = fold(rec, done)
    assert out.record is rec
    assert out.anomaly is None


# --- ordering within an attempt ----------------------------------------------------------


def test_late_event_is_kept_but_not_applied() -> None:
    rec = run([ev("e2", TaskState.WAITING, 20, progress=0.6, message="newer")])
    out = fold(rec, ev("e1", TaskState.RUNNING, 10, progress=0.4, message="older"))
    assert out.anomaly is None
    assert out.transition is None
    assert out.record.state is TaskState.WAITING
    assert out.record.head_key == rec.head_key
    assert out.record.progress == 0.6
    assert out.record.message == "newer"
    # ... but it is part of the history the record summarises
    assert out.record.first_seen_at == at(10)
    assert out.record.started_at == at(10)
    assert out.record.last_event_at == at(20)


def test_sequence_orders_events_before_time() -> None:
    # The producer's counter says e1 came first although its clock says otherwise.
    e1 = ev("e1", TaskState.RUNNING, 50, seq=1, message="first")
    e2 = ev("e2", TaskState.WAITING, 10, seq=2, message="second")
    for order in ([e1, e2], [e2, e1]):
        rec = run(order)
        assert rec.state is TaskState.WAITING
        assert rec.message == "second"
        assert rec.head_key == e2.key


def test_events_without_a_sequence_are_ordered_by_time() -> None:
    e1 = ev("e1", TaskState.RUNNING, 10, message="first")
    e2 = ev("e2", TaskState.DELEGATED, 20, message="second")
    for order in ([e1, e2], [e2, e1]):
        rec = run(order)
        assert (rec.state, rec.message) == (TaskState.DELEGATED, "second")


def test_same_time_is_broken_by_event_id() -> None:
    a = ev("a", TaskState.RUNNING, 10)
    b = ev("b", TaskState.WAITING, 10)
    assert run([a, b]) == run([b, a])
    assert run([b, a]).state is TaskState.WAITING


def test_key_orders_attempt_then_sequence_then_time() -> None:
    keys = [
        ev("x", TaskState.RUNNING, 99, attempt=1).key,
        ev("x", TaskState.RUNNING, 0, seq=0, attempt=1).key,
        ev("x", TaskState.RUNNING, 0, seq=2, attempt=1).key,
        ev("x", TaskState.RUNNING, 0, seq=10, attempt=1).key,
        ev("x", TaskState.RUNNING, 0, attempt=2).key,
    ]
    assert keys == sorted(keys)
    sub_second = ev("x", TaskState.RUNNING, 0.5).key
    assert ev("x", TaskState.RUNNING, 0).key < sub_second < ev("x", TaskState.RUNNING, 1).key


def test_progress_never_goes_backwards_within_an_attempt() -> None:
    rec = run([ev("e1", TaskState.RUNNING, 1, progress=0.7)])
    out = fold(rec, ev("e2", TaskState.RUNNING, 2, progress=0.2))
    assert out.record.head_key != rec.head_key  # the newer event is applied ...
    assert out.record.progress == 0.7  # ... but its lower progress is not
    out = fold(out.record, ev("e3", TaskState.RUNNING, 3))
    assert out.record.progress == 0.7  # no progress given keeps the last one


def test_completed_means_all_done() -> None:
    rec = run([ev("e1", TaskState.RUNNING, 1, progress=0.3), ev("e2", TaskState.COMPLETED, 2)])
    assert rec.progress == 1.0
    failed = run([ev("e1", TaskState.RUNNING, 1, progress=0.3), ev("e2", TaskState.FAILED, 2)])
    assert failed.progress == 0.3


# --- illegal transitions -----------------------------------------------------------------


def test_back_to_pending_within_an_attempt_is_an_anomaly() -> None:
    rec = run([ev("e1", TaskState.RUNNING, 1)])
    refused(
        rec, ev("e2", TaskState.PENDING, 2, message="requeued?"), AnomalyKind.ILLEGAL_TRANSITION
    )


def test_request_then_pending_is_an_illegal_transition() -> None:
    rec = run([request("r", 0)])
    assert rec.state is TaskState.RUNNING
    refused(rec, ev("e1", TaskState.PENDING, 1), AnomalyKind.ILLEGAL_TRANSITION)


@pytest.mark.parametrize("terminal", [TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED])
@pytest.mark.parametrize(
    "later", [TaskState.PENDING, TaskState.RUNNING, TaskState.DELEGATED, TaskState.WAITING]
)
def test_terminal_to_active_in_the_same_attempt_is_an_anomaly(
    terminal: TaskState, later: TaskState
) -> None:
    rec = run([ev("e1", TaskState.RUNNING, 1), ev("e2", terminal, 2)])
    out = refused(
        rec, ev("e3", later, 3, progress=0.9, message="zombie"), AnomalyKind.ILLEGAL_TRANSITION
    )
    assert out.anomaly is not None
    assert out.anomaly.message == f"illegal transition {terminal} -> {later} within attempt 1"


@pytest.mark.parametrize("terminal", [TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED])
def test_active_event_older_than_the_terminal_one_is_just_late(terminal: TaskState) -> None:
    rec = run([ev("e2", terminal, 20)])
    out = fold(rec, ev("e1", TaskState.RUNNING, 10, message="working"))
    assert out.anomaly is None
    assert out.transition is None
    assert out.record.state is terminal
    assert out.record.started_at == at(10)
    assert out.record.message == "working"


def test_terminal_beats_an_active_event_in_any_order() -> None:
    running = ev("e1", TaskState.RUNNING, 10)
    done = ev("e2", TaskState.COMPLETED, 20)
    assert run([running, done]) == run([done, running])


# --- conflicting terminal events ---------------------------------------------------------


def test_later_conflicting_terminal_event_is_refused() -> None:
    rec = run([ev("e1", TaskState.RUNNING, 1), ev("e2", TaskState.COMPLETED, 2)])
    out = refused(
        rec, ev("e3", TaskState.FAILED, 3, reason="boom"), AnomalyKind.CONFLICTING_TERMINAL
    )
    assert out.anomaly is not None
    assert "the earlier one is kept" in out.anomaly.message


def test_earlier_conflicting_terminal_event_wins_even_when_it_arrives_second() -> None:
    rec = run([ev("e1", TaskState.RUNNING, 1), ev("e3", TaskState.FAILED, 3, reason="boom")])
    out = fold(rec, ev("e2", TaskState.COMPLETED, 2))
    assert out.anomaly is not None
    assert out.anomaly.kind is AnomalyKind.CONFLICTING_TERMINAL
    assert (out.anomaly.from_state, out.anomaly.to_state) == (TaskState.FAILED, TaskState.COMPLETED)
    assert out.record.state is TaskState.COMPLETED
    assert out.record.completed_at == at(2)
    assert out.record.error is None
    assert out.transition is not None
    assert (out.transition.from_state, out.transition.to_state) == (
        TaskState.FAILED,
        TaskState.COMPLETED,
    )


def test_conflicting_terminal_events_end_the_same_way_in_either_order() -> None:
    running = ev("e1", TaskState.RUNNING, 1)
    cancelled = ev("e2", TaskState.CANCELLED, 2, reason="user")
    completed = ev("e3", TaskState.COMPLETED, 3)
    for second, third in ((cancelled, completed), (completed, cancelled)):
        rec = new_record(TENANT, running).record
        rec = fold(rec, second).record
        out = fold(rec, third)
        assert out.anomaly is not None
        assert out.anomaly.kind is AnomalyKind.CONFLICTING_TERMINAL
        assert out.record.state is TaskState.CANCELLED
        assert out.record.completed_at == at(2)
        assert out.record.error == "user"
        assert out.record.head_key == cancelled.key


def test_a_task_is_typed_by_the_event_that_names_it_in_either_order() -> None:
    # A revoke the worker never saw carries no task name; the task's other events do.
    unnamed = ev("e1", TaskState.PENDING, 1, data={"task_id": "task-1"})
    named = ev("e2", TaskState.CANCELLED, 2, data={"event_type": "billing.invoice"})
    for first, second in ((unnamed, named), (named, unnamed)):
        assert run([first, second]).event_type == "billing.invoice"


def test_a_requested_type_is_not_renamed_by_a_later_event() -> None:
    rec = run([request(event_type="task"), ev("e2", TaskState.RUNNING, 1, data={"name": "x"})])
    assert rec.event_type == "task"


# --- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize("terminal", [TaskState.COMPLETED, TaskState.CANCELLED])
@pytest.mark.parametrize("state", [TaskState.PENDING, TaskState.RUNNING, TaskState.FAILED])
def test_retry_after_completed_or_cancelled_is_an_anomaly(
    terminal: TaskState, state: TaskState
) -> None:
    rec = run([ev("e1", TaskState.RUNNING, 1), ev("e2", terminal, 2)])
    out = refused(
        rec, ev("e3", state, 3, attempt=2, source="worker-b"), AnomalyKind.RETRY_AFTER_TERMINAL
    )
    assert out.anomaly is not None
    assert "only failed tasks retry" in out.anomaly.message


@pytest.mark.parametrize("state", [TaskState.PENDING, TaskState.RUNNING])
def test_failed_task_retries_with_a_higher_attempt(state: TaskState) -> None:
    rec = run(
        [
            request("r", 0),
            ev("e1", TaskState.RUNNING, 1, progress=0.8, message="almost"),
            result("e2", False, 2, reason="timeout", data={"success": False}),
        ]
    )
    assert (rec.state, rec.error, rec.result) == (TaskState.FAILED, "timeout", {"success": False})
    out = fold(rec, ev("e3", state, 3, attempt=2, source="worker-b"))
    assert out.anomaly is None
    new = out.record
    assert (new.state, new.attempt) == (state, 2)
    assert (new.progress, new.message, new.error, new.result, new.completed_at) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert new.started_at == at(0)  # the task started with its first attempt
    assert new.agent_id == "worker-b"
    assert new.requester == "planner"
    assert out.transition is not None
    assert (out.transition.from_state, out.transition.to_state, out.transition.attempt) == (
        TaskState.FAILED,
        state,
        2,
    )
    assert out.transition.reason == "retry: attempt 2"


def test_retry_reason_is_kept_when_given() -> None:
    rec = run([ev("e1", TaskState.FAILED, 1)])
    out = fold(rec, ev("e2", TaskState.PENDING, 2, attempt=2, reason="backoff elapsed"))
    assert out.transition is not None
    assert out.transition.reason == "backoff elapsed"


def test_same_attempt_cannot_reopen_a_failed_task() -> None:
    rec = run([ev("e1", TaskState.FAILED, 1)])
    refused(rec, ev("e2", TaskState.RUNNING, 2), AnomalyKind.ILLEGAL_TRANSITION)


def test_attempts_beyond_the_default_maximum_are_refused() -> None:
    assert DEFAULT_MAX_ATTEMPTS == 3
    events = []
    for attempt in (1, 2, 3):
        events += [
            ev(f"r{attempt}", TaskState.RUNNING, 10 * attempt, attempt=attempt),
            ev(f"f{attempt}", TaskState.FAILED, 10 * attempt + 1, attempt=attempt),
        ]
    rec = run(events)
    assert (rec.state, rec.attempt) == (TaskState.FAILED, 3)
    out = refused(rec, ev("r4", TaskState.PENDING, 40, attempt=4), AnomalyKind.ATTEMPTS_EXCEEDED)
    assert out.anomaly is not None
    assert out.anomaly.message == "attempt 4 exceeds max_attempts 3"


def test_max_attempts_from_the_request_allows_more_attempts() -> None:
    rec = run([request("r", 0, max_attempts=5), ev("f1", TaskState.FAILED, 1)])
    out = fold(rec, ev("p5", TaskState.PENDING, 2, attempt=5))
    assert out.anomaly is None
    assert out.record.attempt == 5
    refused(rec, ev("p6", TaskState.PENDING, 2, attempt=6), AnomalyKind.ATTEMPTS_EXCEEDED)


def test_max_attempts_on_the_retry_event_itself_counts() -> None:
    rec = run([ev("f1", TaskState.FAILED, 1, max_attempts=1)])
    refused(rec, ev("p2", TaskState.PENDING, 2, attempt=2), AnomalyKind.ATTEMPTS_EXCEEDED)
    out = fold(rec, ev("p2", TaskState.PENDING, 2, attempt=2, max_attempts=2))
    assert out.anomaly is None
    assert (out.record.attempt, out.record.max_attempts) == (2, 2)


def test_single_attempt_task_cannot_retry() -> None:
    rec = run([request("r", 0, max_attempts=1), ev("f1", TaskState.FAILED, 1)])
    refused(rec, ev("p2", TaskState.PENDING, 2, attempt=2), AnomalyKind.ATTEMPTS_EXCEEDED)


def test_an_attempt_beyond_the_default_must_carry_its_max_attempts() -> None:
    """The limit known when a retry arrives decides; a refusal cannot be undone later.

    If the request that declares max_attempts=5 arrives after attempt 4, attempt 4 was
    judged against the default of 3 and refused. A producer that retries beyond the default
    must therefore put max_attempts on the retry's own events (the property tests generate
    streams that do). Pinned here so a change to this trade-off is a deliberate one.
    """
    earlier = [
        ev("f1", TaskState.FAILED, 1),
        ev("f2", TaskState.FAILED, 2, attempt=2),
        ev("f3", TaskState.FAILED, 3, attempt=3),
    ]
    late_request = request("req", 0, max_attempts=5)
    rec = run(earlier)
    refused(rec, ev("r4", TaskState.RUNNING, 4, attempt=4), AnomalyKind.ATTEMPTS_EXCEEDED)
    assert fold(rec, late_request).record.attempt == 3
    # In order, or with the limit on the retry itself, attempt 4 is accepted whatever the order.
    assert run([late_request, *earlier, ev("r4", TaskState.RUNNING, 4, attempt=4)]).attempt == 4
    declared = ev("r4", TaskState.RUNNING, 4, attempt=4, max_attempts=5)
    assert run([*earlier, declared, late_request]) == run([late_request, *earlier, declared])


def test_new_attempt_while_the_old_one_looks_active_is_accepted() -> None:
    # The failure of attempt 1 is still on its way: attempt 2 proves attempt 1 ended.
    rec = run([ev("e1", TaskState.RUNNING, 1, progress=0.4)])
    out = fold(rec, ev("e2", TaskState.RUNNING, 3, attempt=2, source="worker-b"))
    assert out.anomaly is None
    assert (out.record.state, out.record.attempt, out.record.progress) == (
        TaskState.RUNNING,
        2,
        None,
    )
    late = fold(out.record, ev("f1", TaskState.FAILED, 2, reason="lost worker"))
    assert late.anomaly is None
    assert late.transition is None
    assert late.record.state is TaskState.RUNNING
    assert late.record.error is None


def test_events_of_an_earlier_attempt_are_history_only() -> None:
    rec = run(
        [
            ev(
                "a2",
                TaskState.RUNNING,
                10,
                attempt=2,
                source="worker-b",
                progress=0.1,
                message="second try",
            )
        ]
    )
    out = fold(
        rec,
        ev(
            "a1",
            TaskState.WAITING,
            1,
            attempt=1,
            source="worker-a",
            progress=0.9,
            message="first try",
            plan_id="plan-1",
            trace_id="trace-1",
        ),
    )
    new = out.record
    assert (out.anomaly, out.transition) == (None, None)
    assert (new.state, new.attempt, new.head_key) == (TaskState.RUNNING, 2, rec.head_key)
    assert (new.progress, new.message, new.agent_id) == (0.1, "second try", "worker-b")
    assert (new.first_seen_at, new.started_at, new.last_event_at) == (at(1), at(1), at(10))
    assert (new.plan_id, new.trace_id) == ("plan-1", "trace-1")


# --- times and duration ------------------------------------------------------------------


def test_started_at_completed_at_and_duration() -> None:
    rec = run(
        [
            ev("p", TaskState.PENDING, 0),
            ev("r", TaskState.RUNNING, 5),
            ev("w", TaskState.WAITING, 30),
        ]
    )
    assert rec.started_at == at(5)
    assert rec.completed_at is None
    assert rec.duration_seconds is None
    rec = fold(rec, ev("c", TaskState.COMPLETED, 95)).record
    assert rec.completed_at == at(95)
    assert rec.duration_seconds == 90.0
    assert (rec.first_seen_at, rec.last_event_at) == (at(0), at(95))


def test_request_time_is_the_start() -> None:
    rec = run([request("r", 0), result("d", True, 90.5)])
    assert rec.started_at == at(0)
    assert rec.duration_seconds == 90.5


def test_duration_spans_all_attempts() -> None:
    rec = run(
        [
            ev("r1", TaskState.RUNNING, 10),
            ev("f1", TaskState.FAILED, 20),
            ev("p2", TaskState.PENDING, 30, attempt=2),
            ev("r2", TaskState.RUNNING, 40, attempt=2),
            ev("c2", TaskState.COMPLETED, 70, attempt=2),
        ]
    )
    assert (rec.started_at, rec.completed_at) == (at(10), at(70))
    assert rec.duration_seconds == 60.0


def test_duration_is_never_negative() -> None:
    # Ordered by sequence, the clocks disagree: the end stamped before the start.
    rec = run([ev("r", TaskState.RUNNING, 50, seq=1), ev("c", TaskState.COMPLETED, 40, seq=2)])
    assert rec.completed_at == at(40)
    assert rec.started_at == at(40)
    assert rec.duration_seconds == 0.0


def test_completed_at_is_cleared_when_a_retry_reopens_the_task() -> None:
    rec = run([ev("f1", TaskState.FAILED, 10)])
    assert rec.completed_at == at(10)
    rec = fold(rec, ev("p2", TaskState.PENDING, 20, attempt=2)).record
    assert rec.completed_at is None
    assert rec.duration_seconds is None


# --- messages ----------------------------------------------------------------------------


def test_message_is_the_newest_by_order_key_whatever_the_arrival_order() -> None:
    events = [
        ev("e1", TaskState.RUNNING, 1, seq=1, message="one"),
        ev("e2", TaskState.RUNNING, 2, seq=2, message="two"),
        ev("e3", TaskState.RUNNING, 3, seq=3),
        ev("e4", TaskState.WAITING, 4, seq=4, message="four"),
        ev("e5", TaskState.WAITING, 5, seq=5),
    ]
    for order in (events, events[::-1], [events[3], events[0], events[4], events[2], events[1]]):
        rec = run(order)
        assert rec.message == "four"
        assert rec.state is TaskState.WAITING
        assert rec.head_key == events[4].key


def test_event_without_a_message_keeps_the_last_one() -> None:
    rec = run([ev("e1", TaskState.RUNNING, 1, message="working"), ev("e2", TaskState.WAITING, 2)])
    assert rec.message == "working"


def test_messages_of_an_earlier_attempt_do_not_leak() -> None:
    rec = run([ev("a2", TaskState.RUNNING, 10, attempt=2)])
    rec = fold(rec, ev("a1", TaskState.RUNNING, 1, message="old attempt")).record
    assert rec.message is None


# --- who and what ------------------------------------------------------------------------


def test_agent_is_the_worker_and_requester_is_the_request_source() -> None:
    events = [
        request("r", 0, source="planner"),
        ev("e1", TaskState.RUNNING, 1, source="worker-a"),
        result("e2", True, 2, source="worker-a"),
    ]
    for order in (events, events[::-1]):
        rec = run(order)
        assert rec.requester == "planner"
        assert rec.agent_id == "worker-a"


def test_request_only_task_has_a_requester_and_no_agent() -> None:
    rec = run([request("r", 0, source="planner")])
    assert (rec.requester, rec.agent_id) == ("planner", None)


def test_agent_follows_the_worker_of_the_current_attempt() -> None:
    rec = run(
        [
            ev("r1", TaskState.RUNNING, 1, source="worker-a"),
            ev("f1", TaskState.FAILED, 2, source="worker-a"),
            ev("r2", TaskState.RUNNING, 3, attempt=2, source="worker-b"),
        ]
    )
    assert rec.agent_id == "worker-b"
    rec = fold(rec, ev("late", TaskState.RUNNING, 1.5, source="worker-a")).record
    assert rec.agent_id == "worker-b"


def test_event_type_comes_from_the_request_in_any_order() -> None:
    events = [
        ev("e1", TaskState.RUNNING, 1),
        request("r", 0, event_type="pdf.render"),
        result("e2", True, 2),
    ]
    for order in (events, events[::-1]):
        assert run(order).event_type == "pdf.render"


@pytest.mark.parametrize("name", ["event_type", "task_type", "name"])
def test_event_type_without_a_request_comes_from_the_payload(name: str) -> None:
    data = {"task_id": "task-1", "state": "running", name: "thumbnail"}
    assert run([ev("e1", TaskState.RUNNING, 1, data=data)]).event_type == "thumbnail"


def test_event_type_without_a_request_defaults_to_task() -> None:
    assert run([ev("e1", TaskState.RUNNING, 1)]).event_type == "task"


def test_request_data_trace_and_parent_are_recorded() -> None:
    rec = run(
        [
            ev("e1", TaskState.RUNNING, 1, trace_id="trace-w", parent_event_id="r"),
            request("r", 0, data={"query": "q"}, trace_id="trace-r", parent_event_id="goal-1"),
        ]
    )
    assert rec.data == {"query": "q"}
    assert (rec.trace_id, rec.parent_event_id) == ("trace-r", "goal-1")


def test_result_payload_and_error_are_recorded() -> None:
    rec = run(
        [
            request("r", 0),
            result(
                "d",
                False,
                5,
                reason="403 from upstream",
                data={"success": False, "error": "403 from upstream"},
            ),
        ]
    )
    assert rec.state is TaskState.FAILED
    assert rec.error == "403 from upstream"
    assert rec.result == {"success": False, "error": "403 from upstream"}


def test_state_changed_terminal_keeps_no_result_payload() -> None:
    rec = run(
        [
            ev("e1", TaskState.RUNNING, 1),
            ev("e2", TaskState.CANCELLED, 2, kind=EventKind.STATE, reason="user"),
        ]
    )
    assert (rec.state, rec.error, rec.result) == (TaskState.CANCELLED, "user", None)


# --- purity ------------------------------------------------------------------------------


def test_fold_does_not_modify_its_input() -> None:
    rec = run([request("r", 0, data={"k": "v"}), ev("e1", TaskState.RUNNING, 1, progress=0.1)])
    snapshot = copy.deepcopy(rec)
    for event in (
        ev("e2", TaskState.WAITING, 2, progress=0.5, message="m"),
        ev("e0", TaskState.RUNNING, 0.5, progress=0.9),
        ev("e3", TaskState.COMPLETED, 3),
        ev("e9", TaskState.FAILED, 9),
        ev("a2", TaskState.RUNNING, 4, attempt=2),
    ):
        fold(rec, event)
        assert rec == snapshot
        assert dataclasses.asdict(rec) == dataclasses.asdict(snapshot)
