"""What a tenant's Prometheus gauges read from the store at scrape time.

Every query is grouped per tenant over an indexed column (task state, poll status, outbox
status, schedule status) and returns a handful of rows whatever the tables hold. Tasks are
counted only while live (pending, running, delegated, waiting): terminal tasks grow without
bound and are counted as they finish by ingest's counters instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.polls import PollStatus
from trackd.domain.schedules import ScheduleStatus
from trackd.domain.states import TERMINAL_STATES, TaskState
from trackd.store.models import DeadLetter, PollRow, ScheduleRow, TaskExecution
from trackd.store.repos import outbox

OTHER = "other"
LIVE_STATES = tuple(str(s) for s in TaskState if s not in TERMINAL_STATES)


@dataclass(slots=True)
class TenantGauges:
    """One tenant's store-derived gauges, keyed by their label values."""

    live_tasks: dict[tuple[str, str], int] = field(default_factory=dict)  # (state, type)
    dead_letters: int = 0
    polls: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, status)
    blocked_hosts: dict[str, int] = field(default_factory=dict)  # host -> blocked polls
    outbox: dict[str, int] = field(default_factory=dict)  # status -> messages
    schedules_late: int = 0


def top_types(counts: dict[tuple[str, str], int], limit: int) -> dict[tuple[str, str], int]:
    """(state, type) counts with the types past the `limit` most numerous summed as `other`."""
    by_type: Counter[str] = Counter()
    for (_state, kind), n in counts.items():
        by_type[kind] += n
    kept = {kind for kind, _ in by_type.most_common(limit)}
    out: Counter[tuple[str, str]] = Counter()
    for (state, kind), n in counts.items():
        out[(state, kind if kind in kept else OTHER)] += n
    return dict(out)


async def read(
    session: AsyncSession,
    tenant_id: str,
    *,
    now: datetime,
    type_limit: int,
    late_after: timedelta,
) -> TenantGauges:
    """A tenant's gauges as the store has them `now`."""
    out = TenantGauges()
    rows = await session.execute(
        select(TaskExecution.state, TaskExecution.event_type, func.count())
        .where(TaskExecution.tenant_id == tenant_id, TaskExecution.state.in_(LIVE_STATES))
        .group_by(TaskExecution.state, TaskExecution.event_type)
    )
    out.live_tasks = top_types({(s, t): int(n) for s, t, n in rows.all()}, type_limit)
    out.dead_letters = int(
        await session.scalar(
            select(func.count()).select_from(DeadLetter).where(DeadLetter.tenant_id == tenant_id)
        )
        or 0
    )
    poll_rows = await session.execute(
        select(PollRow.source, PollRow.status, func.count())
        .where(PollRow.tenant_id == tenant_id)
        .group_by(PollRow.source, PollRow.status)
    )
    out.polls = {(src, status): int(n) for src, status, n in poll_rows.all()}
    host_rows = await session.execute(
        select(PollRow.blocked_host, func.count())
        .where(PollRow.tenant_id == tenant_id, PollRow.status == PollStatus.BLOCKED.value)
        .group_by(PollRow.blocked_host)
    )
    out.blocked_hosts = {host or "unknown": int(n) for host, n in host_rows.all()}
    out.outbox = await outbox.counts(session, tenant_id)
    out.schedules_late = int(
        await session.scalar(
            select(func.count())
            .select_from(ScheduleRow)
            .where(
                ScheduleRow.tenant_id == tenant_id,
                ScheduleRow.status == ScheduleStatus.ACTIVE.value,
                ScheduleRow.enabled.is_(True),
                ScheduleRow.next_run_at < now - late_after,
            )
        )
        or 0
    )
    return out
