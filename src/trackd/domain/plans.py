"""The plan record and its fold: lifecycle from plan.* events, membership from task events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PlanStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self is not PlanStatus.RUNNING


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """What one event says about a plan.

    `status` is None for a task event that only shows the plan exists.
    """

    plan_id: str
    event_id: str
    time: datetime
    status: PlanStatus | None = None
    current_state: str | None = None
    trace_id: str | None = None
    session_id: str | None = None
    goal: str | None = None
    reason: str | None = None

    @property
    def key(self) -> str:
        return f"{self.time.isoformat()}|{self.event_id}"


@dataclass
class PlanRecord:
    """One row of plans. Its task counts are kept in plan_task_counts (domain.plan_counts)."""

    tenant_id: str
    plan_id: str
    status: PlanStatus
    first_seen_at: datetime
    last_event_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    current_state: str | None = None
    state_key: str = ""
    status_key: str = ""
    trace_id: str | None = None
    session_id: str | None = None
    goal: str | None = None
    reason: str | None = None


def new_plan(tenant_id: str, ev: PlanEvent) -> PlanRecord:
    rec = PlanRecord(tenant_id, ev.plan_id, PlanStatus.RUNNING, ev.time, ev.time)
    return fold_plan(rec, ev)


def fold_plan(rec: PlanRecord, ev: PlanEvent) -> PlanRecord:
    """Fold one event into a plan; independent of arrival order.

    The first terminal event (by time) decides how the plan ended; the start is the earliest
    plan.started, or the earliest event seen when no plan.started arrived.
    """
    if (
        ev.status is None
        and ev.current_state is None
        and rec.first_seen_at <= ev.time <= rec.last_event_at
        and (rec.trace_id or not ev.trace_id)
        and (rec.session_id or not ev.session_id)
        and not ev.goal
    ):
        return rec  # a task event inside the plan's known span: nothing new to learn
    out = object.__new__(PlanRecord)
    out.__dict__.update(rec.__dict__)
    out.first_seen_at = min(out.first_seen_at, ev.time)
    out.last_event_at = max(out.last_event_at, ev.time)
    out.trace_id = out.trace_id or ev.trace_id
    out.session_id = out.session_id or ev.session_id
    out.goal = out.goal or ev.goal
    if ev.status is PlanStatus.RUNNING:
        out.started_at = ev.time if out.started_at is None else min(out.started_at, ev.time)
    elif ev.status is not None and (not out.status.terminal or ev.key < out.status_key):
        out.status = ev.status
        out.status_key = ev.key
        out.completed_at = ev.time
        out.reason = ev.reason
    if ev.current_state is not None and ev.key > out.state_key:
        out.current_state = ev.current_state
        out.state_key = ev.key
    return out


def plan_started_at(rec: PlanRecord) -> datetime:
    """When the plan started: its plan.started event, else the first event seen."""
    return rec.started_at or rec.first_seen_at
