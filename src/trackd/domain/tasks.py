"""The task record and the pure fold of events into it (DESIGN §4).

The fold is written so that the final record depends on the *set* of events, not on the order
they arrive in: within an attempt the event with the highest order key is the head and sets
the state, a terminal event always beats a non-terminal one, and the fields every event adds to
(progress, first and last times) combine with max/min. Duplicates change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from trackd.domain.states import TaskState, is_legal

DEFAULT_MAX_ATTEMPTS = 3


class EventKind(StrEnum):
    """What an event says about its task."""

    REQUEST = "request"  # action-requests: the task was asked for and starts
    PROGRESS = "progress"  # task.progress
    STATE = "state"  # task.state_changed
    RESULT = "result"  # action-results: the task ended


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """An envelope reduced to what the fold needs."""

    event_id: str
    task_id: str
    kind: EventKind
    state: TaskState
    time: datetime
    source: str
    event_type: str
    attempt: int = 1
    sequence: int | None = None
    progress: float | None = None
    message: str | None = None
    reason: str | None = None
    plan_id: str | None = None
    trace_id: str | None = None
    parent_event_id: str | None = None
    max_attempts: int | None = None
    data: dict[str, Any] | None = None
    key: str = field(init=False, repr=False, compare=False)
    """Order of this event among its task's events; compares as a string.

    Attempt first, then the producer's sequence (events without one sort before those with
    one), then time, then the event id so that the order is total. Computed once: the fold
    compares it several times per event.
    """

    def __post_init__(self) -> None:
        seq = -1 if self.sequence is None else self.sequence
        key = f"{self.attempt:06d}|{seq + 1:017d}|{self.time.isoformat()}|{self.event_id}"
        object.__setattr__(self, "key", key)


@dataclass
class TaskRecord:
    """What trackd knows about one task; one row of task_executions.

    Not slotted: the fold copies a record per event, and copying a __dict__ is several times
    faster than rebuilding a slotted instance field by field.
    """

    tenant_id: str
    task_id: str
    state: TaskState
    event_type: str
    attempt: int
    head_key: str
    first_seen_at: datetime
    last_event_at: datetime
    plan_id: str | None = None
    progress: float | None = None
    message: str | None = None
    message_key: str = ""
    parent_key: str = "\uffff"  # key of the event that named the parent; "" for a request
    started_at: datetime | None = None
    completed_at: datetime | None = None
    trace_id: str | None = None
    parent_event_id: str | None = None
    agent_id: str | None = None
    requester: str | None = None
    error: str | None = None
    max_attempts: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    owner_user_id: str | None = None  # set by ingest from the first event's publisher

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def duration_seconds(self) -> float | None:
        return duration_between(self.started_at, self.completed_at)

    def copy(self) -> TaskRecord:
        out = object.__new__(TaskRecord)
        out.__dict__.update(self.__dict__)
        return out

    def allowed_attempts(self) -> int:
        return self.max_attempts or DEFAULT_MAX_ATTEMPTS


def duration_between(started: datetime | None, completed: datetime | None) -> float | None:
    """Seconds from a task's first start to its end; None while it has not ended."""
    if started is None or completed is None:
        return None
    return max(0.0, (completed - started).total_seconds())


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of state the fold applied."""

    task_id: str
    event_id: str
    from_state: TaskState | None
    to_state: TaskState
    attempt: int
    at: datetime
    reason: str | None = None


class AnomalyKind(StrEnum):
    ILLEGAL_TRANSITION = "illegal_transition"
    RETRY_AFTER_TERMINAL = "retry_after_terminal"
    ATTEMPTS_EXCEEDED = "attempts_exceeded"
    CONFLICTING_TERMINAL = "conflicting_terminal"


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An event the fold refused; the record was left as it was."""

    task_id: str
    event_id: str
    kind: AnomalyKind
    message: str
    from_state: TaskState
    to_state: TaskState
    at: datetime


@dataclass(frozen=True, slots=True)
class Folded:
    """The result of folding one event."""

    record: TaskRecord
    transition: Transition | None = None
    anomaly: Anomaly | None = None


def new_record(tenant_id: str, ev: TaskEvent) -> Folded:
    """The record a task's first event creates."""
    rec = TaskRecord(
        tenant_id=tenant_id,
        task_id=ev.task_id,
        state=ev.state,
        event_type=ev.event_type if ev.kind is EventKind.REQUEST else _event_type_of(ev),
        attempt=ev.attempt,
        head_key=ev.key,
        first_seen_at=ev.time,
        last_event_at=ev.time,
        max_attempts=ev.max_attempts,
    )
    _absorb(rec, ev)
    _set_head(rec, ev)
    return Folded(rec, Transition(ev.task_id, ev.event_id, None, ev.state, ev.attempt, ev.time))


def fold(rec: TaskRecord, ev: TaskEvent) -> Folded:
    """Fold one event into a task record: `(record, event) -> (record', transition?, anomaly?)`.

    The input record is not modified.
    """
    if ev.attempt > rec.attempt:
        return _new_attempt(rec, ev)
    if ev.attempt < rec.attempt:
        return _late(rec, ev)  # an earlier attempt: history only
    key = ev.key
    if key == rec.head_key:
        return Folded(rec)  # the same event again
    if rec.terminal:
        if not ev.state.terminal:
            if key > rec.head_key:
                return _refuse(rec, ev, AnomalyKind.ILLEGAL_TRANSITION)
            return _late(rec, ev)
        # Two terminal events in one attempt: the earlier one wins whichever arrives first.
        if key > rec.head_key:
            return _refuse(rec, ev, AnomalyKind.CONFLICTING_TERMINAL)
        out = _advance(rec, ev)
        anomaly = _anomaly(rec, ev, AnomalyKind.CONFLICTING_TERMINAL)
        return Folded(out.record, out.transition, anomaly)
    if ev.state.terminal or key > rec.head_key:
        if not ev.state.terminal and not is_legal(rec.state, ev.state):
            return _refuse(rec, ev, AnomalyKind.ILLEGAL_TRANSITION)
        return _advance(rec, ev)
    return _late(rec, ev)


def _new_attempt(rec: TaskRecord, ev: TaskEvent) -> Folded:
    if rec.state in (TaskState.COMPLETED, TaskState.CANCELLED):
        return _refuse(rec, ev, AnomalyKind.RETRY_AFTER_TERMINAL)
    limit = max(rec.allowed_attempts(), ev.max_attempts or 0)
    if ev.attempt > limit:
        return _refuse(rec, ev, AnomalyKind.ATTEMPTS_EXCEEDED, limit=limit)
    out = rec.copy()
    out.attempt = ev.attempt
    out.progress = out.message = out.error = out.result = out.completed_at = None
    out.message_key = ""
    _absorb(out, ev)
    _set_head(out, ev)
    reason = ev.reason or f"retry: attempt {ev.attempt}"
    return Folded(
        out, Transition(rec.task_id, ev.event_id, rec.state, ev.state, ev.attempt, ev.time, reason)
    )


def _advance(rec: TaskRecord, ev: TaskEvent) -> Folded:
    out = rec.copy()
    _absorb(out, ev)
    _set_head(out, ev)
    if out.state == rec.state:
        return Folded(out)
    return Folded(
        out,
        Transition(rec.task_id, ev.event_id, rec.state, out.state, ev.attempt, ev.time, ev.reason),
    )


def _late(rec: TaskRecord, ev: TaskEvent) -> Folded:
    """An event older than the head: it adds to the history but sets no state."""
    out = rec.copy()
    _absorb(out, ev)
    return Folded(out)


def _refuse(rec: TaskRecord, ev: TaskEvent, kind: AnomalyKind, *, limit: int = 0) -> Folded:
    return Folded(rec, anomaly=_anomaly(rec, ev, kind, limit=limit))


def _anomaly(rec: TaskRecord, ev: TaskEvent, kind: AnomalyKind, *, limit: int = 0) -> Anomaly:
    a, was, now = ev.attempt, rec.state, ev.state
    messages = {
        AnomalyKind.ILLEGAL_TRANSITION: f"illegal transition {was} -> {now} within attempt {a}",
        AnomalyKind.RETRY_AFTER_TERMINAL: f"attempt {a} after the task was {was}; "
        "only failed tasks retry",
        AnomalyKind.ATTEMPTS_EXCEEDED: f"attempt {a} exceeds max_attempts {limit}",
        AnomalyKind.CONFLICTING_TERMINAL: f"conflicting terminal events in attempt {a}: "
        f"{was} and {now}; the earlier one is kept",
    }
    return Anomaly(rec.task_id, ev.event_id, kind, messages[kind], rec.state, ev.state, ev.time)


def _set_head(rec: TaskRecord, ev: TaskEvent) -> None:
    """Make `ev` the event that decides the record's state."""
    rec.state = ev.state
    rec.head_key = ev.key
    if ev.state.terminal:
        rec.completed_at = ev.time
        if ev.state is TaskState.COMPLETED:
            rec.progress = 1.0
            rec.error = None
        else:
            rec.error = ev.reason
        if ev.kind is EventKind.RESULT:
            rec.result = ev.data
    else:
        rec.completed_at = None
        rec.error = None


def _absorb(rec: TaskRecord, ev: TaskEvent) -> None:
    """Fields every accepted event of the current attempt adds to, whatever its order."""
    rec.first_seen_at = min(rec.first_seen_at, ev.time)
    rec.last_event_at = max(rec.last_event_at, ev.time)
    if ev.state is not TaskState.PENDING:
        rec.started_at = ev.time if rec.started_at is None else min(rec.started_at, ev.time)
    if ev.max_attempts is not None:
        rec.max_attempts = max(rec.max_attempts or 0, ev.max_attempts)
    if ev.kind is EventKind.REQUEST:
        rec.event_type = ev.event_type
        rec.requester = ev.source
        rec.data = ev.data or {}
        rec.trace_id = ev.trace_id or rec.trace_id
        # The request says who asked for the task: its parent is the task's parent.
        rec.parent_event_id = ev.parent_event_id
        rec.parent_key = ""
    else:
        rec.trace_id = rec.trace_id or ev.trace_id
        # A task never requested is typed by the first event that names it, whichever
        # arrived first: an unnamed first event (a revoke) leaves only the fallback.
        if rec.event_type == UNNAMED and rec.requester is None:
            rec.event_type = _event_type_of(ev)
        # Without a request, the task's parent is the one its earliest event names; later
        # events of a task usually hang under the task's own first event.
        if rec.parent_key and ev.key <= rec.parent_key:
            rec.parent_event_id = ev.parent_event_id
            rec.parent_key = ev.key
        if ev.attempt == rec.attempt:
            rec.agent_id = ev.source
    rec.plan_id = rec.plan_id or ev.plan_id
    if ev.attempt != rec.attempt:
        return
    if ev.progress is not None and (rec.progress is None or ev.progress > rec.progress):
        rec.progress = ev.progress
    if ev.message is not None and ev.key > rec.message_key:
        rec.message = ev.message
        rec.message_key = ev.key


# The type of a task whose events never named it.
UNNAMED: Final = "task"


def _event_type_of(ev: TaskEvent) -> str:
    """The task's type when it was never requested: the producer's name for it, if given."""
    if ev.data:
        for name in ("event_type", "task_type", "name"):
            value = ev.data.get(name)
            if isinstance(value, str) and value:
                return value[:255]
    return UNNAMED
