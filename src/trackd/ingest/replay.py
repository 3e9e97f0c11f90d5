"""Rebuild every derived record from the stored event timeline (`trackd replay`).

    result = await replay(engine, batch_size=5000, progress=lambda done, total: ...)

The timeline keeps every event trackd folded, so the records derived from it (task
executions, state transitions, plans, agent metric buckets, anomalies) can be thrown away and
folded again: after a fix to the fold, or to repair a store. The events themselves, dead letters
and API tokens are kept.

Replay reuses live ingest's code path: each event is rebuilt as the envelope its producer sent
and handed to `apply_batch(..., replaying=True)`, which folds and writes exactly as ingest does
but neither dedupes against the timeline nor appends to it (the events are already there).

Events are read per tenant in (occurred_at, event_id) order with keyset pagination (never
OFFSET, so no page re-reads the pages before it). The timeline has no index on
(tenant_id, occurred_at, event_id) yet, so each page still sorts the tenant's events; with one,
each page would be an index range scan.

The whole run is one transaction: readers keep seeing the old records until it commits, and a
replay that fails leaves them as they were. Do not ingest while replaying: an event committed by
a consumer during the run may be missed by the pages already read, or be folded twice (on
PostgreSQL a consumer writing the same records also waits on the replay's locks until it ends).
Stop `trackd serve` / `trackd ingest` first, or run replay in a maintenance window.

What a replay gives back equals what live ingest wrote, with these limits (they come from the
fold and from what the timeline stores, not from replay itself):

- Records (tasks, plans) and metric buckets depend only on the set of events, except where the
  fold keeps the first or last value it *applied* (a task's `agent_id`, `trace_id` and `plan_id`,
  a plan's `trace_id`): when one task's events disagree on those and arrived out of order, live
  kept the arrival order's choice and replay keeps time order's.
- The plan an event named itself is kept in its attributes (`plan_id`), apart from the row's
  `plan_id` (the plan its task turned out to be in), so an event is replayed as it was sent.
- Transitions and anomalies record the order events were *applied* in. Replay applies them in
  time order; live ingest applied them in arrival order (time order within a batch). Where events
  arrived late across batches the history can differ: e.g. live saw `completed` before the
  `running` it followed (one transition) and replay sees both (two); a terminal event arriving
  after a later-keyed non-terminal one is an anomaly in one order and not in the other.
- Metric buckets that live ingest emptied by take-backs (a failure later retried) are rows of
  zeros; replay only creates them when the take-back crosses a page boundary.
- An event that no longer passes validation (a rule added after it was stored) is written to the
  dead letters with the reason, as live ingest would, and counted in `rejected`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, delete, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trackd.bus.base import Message
from trackd.ingest.batch import ENVELOPE_ATTRIBUTES, apply_batch
from trackd.store.engine import session_factory
from trackd.store.models import (
    AgentMetricBucket,
    AnomalyRow,
    Base,
    Plan,
    PlanTaskCount,
    StateTransition,
    TaskExecution,
    TimelineEvent,
    table_of,
)

if TYPE_CHECKING:
    _Row = Row[*tuple[Any, ...]]  # a row of any number of columns

__all__ = ["DERIVED_TABLES", "Progress", "ReplayResult", "envelope_of", "replay"]

# Children before parents, should foreign keys between them ever appear.
_DERIVED: tuple[type[Base], ...] = (
    StateTransition,
    AnomalyRow,
    AgentMetricBucket,
    PlanTaskCount,
    TaskExecution,
    Plan,
)
DERIVED_TABLES: tuple[str, ...] = tuple(m.__tablename__ for m in _DERIVED)
"""The tables replay empties and writes again."""

_T = table_of(TimelineEvent)
_COLUMNS = (
    _T.c.event_id,
    _T.c.event_type,
    _T.c.topic,
    _T.c.source,
    _T.c.trace_id,
    _T.c.parent_event_id,
    _T.c.correlation_id,
    _T.c.plan_id,
    _T.c.data,
    _T.c.attributes,
    _T.c.occurred_at,
)

Progress = Callable[[int, int], None]
"""Called as `progress(events_done, events_total)`: once before the first page, then per page."""


@dataclass(slots=True)
class ReplayResult:
    """What a replay did; the counts of records are those stored once it finished."""

    events: int = 0
    rejected: int = 0
    tasks: int = 0
    plans: int = 0
    transitions: int = 0
    anomalies: int = 0
    seconds: float = 0.0


def envelope_of(tenant_id: str, row: _Row | TimelineEvent) -> dict[str, Any]:
    """The envelope a stored timeline row was folded from, as a producer would send it.

    Args:
        tenant_id: the tenant the row belongs to; it becomes the envelope's `tenant_id`.
        row: a timeline row (ORM object, or a Core row with at least the columns replay reads).

    Returns:
        A dict for `decode_envelope`: columns and attributes, without None values.
    """
    attributes: dict[str, Any] = row.attributes or {}
    fields: dict[str, Any] = {name: attributes.get(name) for name in ENVELOPE_ATTRIBUTES}
    fields.update(
        id=row.event_id,
        source=row.source,
        type=row.event_type,
        time=row.occurred_at.isoformat(),
        data=row.data,
        topic=row.topic,
        correlation_id=row.correlation_id,
        trace_id=row.trace_id,
        parent_event_id=row.parent_event_id,
        tenant_id=tenant_id,
    )
    return {k: v for k, v in fields.items() if v is not None}


def _message(tenant_id: str, row: _Row) -> Message:
    body = json.dumps(envelope_of(tenant_id, row), separators=(",", ":")).encode()
    return Message(id=f"replay:{row.event_id}", topic=row.topic or "", body=body)


async def _count(session: AsyncSession, model: type[Base]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _page(
    session: AsyncSession, tenant_id: str, after: tuple[datetime, str] | None, size: int
) -> Sequence[_Row]:
    """The next `size` events of a tenant after `after`, in (occurred_at, event_id) order."""
    stmt = select(*_COLUMNS).where(_T.c.tenant_id == tenant_id)
    if after is not None:
        at, event_id = after
        stmt = stmt.where(
            tuple_(_T.c.occurred_at, _T.c.event_id)
            > tuple_(literal(at, _T.c.occurred_at.type), literal(event_id, _T.c.event_id.type))
        )
    stmt = stmt.order_by(_T.c.occurred_at, _T.c.event_id).limit(size)
    return (await session.execute(stmt)).all()


async def replay(
    engine_or_sessions: AsyncEngine | async_sessionmaker[AsyncSession],
    *,
    batch_size: int = 5000,
    progress: Progress | None = None,
) -> ReplayResult:
    """Delete the derived records and fold every stored event again, in one transaction.

    Args:
        engine_or_sessions: the store, as an engine or the application's session factory.
        batch_size: events read and folded per page (one `apply_batch` call).
        progress: told how many events are done out of how many, after each page.

    Returns:
        The counts of events replayed and of records stored afterwards, and the time taken.

    Raises:
        ValueError: `batch_size` is not positive.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    sessions = (
        session_factory(engine_or_sessions)
        if isinstance(engine_or_sessions, AsyncEngine)
        else engine_or_sessions
    )
    started = time.perf_counter()
    result = ReplayResult()
    async with sessions() as session, session.begin():
        total = await _count(session, TimelineEvent)
        if progress is not None:
            progress(0, total)
        for model in _DERIVED:
            await session.execute(delete(model).execution_options(synchronize_session=False))
        tenants = list(
            await session.scalars(select(_T.c.tenant_id).distinct().order_by(_T.c.tenant_id))
        )
        for tenant in tenants:
            after: tuple[datetime, str] | None = None
            while rows := await _page(session, tenant, after, batch_size):
                messages = [_message(tenant, row) for row in rows]
                done = await apply_batch(session, messages, tenant, replaying=True)
                result.events += len(rows)
                result.rejected += done.rejected
                after = (rows[-1].occurred_at, rows[-1].event_id)
                if progress is not None:
                    progress(result.events, max(total, result.events))
        result.tasks = await _count(session, TaskExecution)
        result.plans = await _count(session, Plan)
        result.transitions = await _count(session, StateTransition)
        result.anomalies = await _count(session, AnomalyRow)
    result.seconds = time.perf_counter() - started
    return result
