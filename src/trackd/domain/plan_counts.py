"""A plan's task counters: how many of its tasks are in each state, and the first and newest
event times of its tasks. Kept up to date by ingest from each task's old and new record, so
a plan's status reads one row instead of counting its tasks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from trackd.domain.states import TaskState
from trackd.domain.tasks import TaskRecord

STATES: tuple[str, ...] = tuple(s.value for s in TaskState)
"""The counter columns, one per task state."""


@dataclass(slots=True)
class PlanTaskDelta:
    """What one batch changes in one plan's counters: per state, tasks in minus tasks out;
    the earliest first-seen and the newest last-event time of the tasks it touched."""

    tenant_id: str
    plan_id: str
    first_seen_at: datetime
    last_event_at: datetime
    states: dict[str, int] = field(default_factory=dict)


def plan_task_deltas(
    changes: Iterable[tuple[TaskRecord | None, TaskRecord]],
) -> list[PlanTaskDelta]:
    """The counter changes of (record before, record after) pairs, one per plan touched.

    A task's plan never changes once known (the fold keeps the first), its first-seen time
    only moves back and its last-event time only forward: so adding these deltas, and keeping
    the earliest and newest times, gives the counts of the stored tasks exactly.
    """
    out: dict[tuple[str, str], PlanTaskDelta] = {}

    def delta(rec: TaskRecord, plan_id: str) -> PlanTaskDelta:
        d = out.get((rec.tenant_id, plan_id))
        if d is None:
            d = PlanTaskDelta(rec.tenant_id, plan_id, rec.first_seen_at, rec.last_event_at)
            out[(rec.tenant_id, plan_id)] = d
        return d

    for old, new in changes:
        if old is not None and old.plan_id is not None:
            d = delta(old, old.plan_id)
            d.states[old.state.value] = d.states.get(old.state.value, 0) - 1
        if new.plan_id is not None:
            d = delta(new, new.plan_id)
            d.first_seen_at = min(d.first_seen_at, new.first_seen_at)
            d.last_event_at = max(d.last_event_at, new.last_event_at)
            d.states[new.state.value] = d.states.get(new.state.value, 0) + 1
    return [out[k] for k in sorted(out)]
