"""Reads: a tracking row with what is derived from it and its neighbours (blocked, stale)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.jobs import Readiness, Verdict, is_stale, prerequisites_verdict
from trackd.domain.states import TaskState
from trackd.domain.tasks import duration_between
from trackd.jobs.crud import BaseTaskTrackingCRUD
from trackd.jobs.events import trackd_task_id
from trackd.jobs.models import BaseTaskTracking
from trackd.jobs.service.graph import prerequisite_facts

M = TypeVar("M", bound=BaseTaskTracking)


@dataclass(frozen=True, slots=True)
class TaskView(Generic[M]):
    """A tracking row with what is derived from it and its neighbours, not stored."""

    task: M
    domain: str
    trackd_task_id: str
    blocked_by: tuple[int, ...]
    blocked_reason: str | None
    stale: bool

    @property
    def duration_seconds(self) -> float | None:
        return duration_between(self.task.started_at, self.task.completed_at)


async def describe_rows(
    db: AsyncSession,
    crud: BaseTaskTrackingCRUD[M],
    rows: Sequence[M],
    *,
    domain: str,
    now: datetime,
    stale_after: timedelta,
) -> list[TaskView[M]]:
    """Derived fields for a page of rows, reading their prerequisites in one query."""
    wanted = {p for r in rows if r.status == TaskState.PENDING for p in r.depends_on}
    found = await crud.get_many(db, wanted)
    views = []
    for row in rows:
        verdict = Verdict(Readiness.READY)
        if row.status == TaskState.PENDING and row.depends_on:
            verdict = prerequisites_verdict(prerequisite_facts(row.depends_on, found))
        views.append(
            TaskView(
                task=row,
                domain=domain,
                trackd_task_id=trackd_task_id(domain, row.id),
                blocked_by=verdict.waiting_on,
                blocked_reason=verdict.reason,
                stale=is_stale(row.facts(), now, stale_after),
            )
        )
    return views
