"""The unit of work: what one operation changed is committed once, then announced (trackd
events and Prometheus metrics), so nothing is announced that was rolled back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.events import EventEnvelope
from trackd.domain.jobs import JobChange
from trackd.domain.states import TaskState
from trackd.domain.tasks import duration_between
from trackd.jobs.events import JobEventPublisher, PublishError, state_changed
from trackd.jobs.metrics import JobMetrics
from trackd.jobs.models import BaseTaskTracking

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Effect:
    """One change a unit made to a row (`previous` None: the row was created)."""

    task: BaseTaskTracking
    change: JobChange
    previous: str | None
    error_type: str = "error"


class UnitOfWork:
    """The changes of the operation under way, and the cancelled tasks whose hooks run after
    its commit."""

    def __init__(self) -> None:
        self.effects: list[Effect] = []
        self.cancelled: list[tuple[Any, str]] = []
        self.wrote = False

    def record(self, row: BaseTaskTracking, change: JobChange, previous: str | None) -> None:
        self.effects.append(Effect(row, change, previous))

    @asynccontextmanager
    async def run(
        self,
        db: AsyncSession,
        prepare: Callable[[Sequence[Effect]], list[EventEnvelope]],
        announce: Callable[[Sequence[Effect], list[EventEnvelope]], Awaitable[None]],
    ) -> AsyncIterator[None]:
        """One transaction: commit, then announce what changed; on error, roll back quietly.

        `prepare` builds the events before the commit: a session that expires on commit
        would have to load every row again to read its id.
        """
        self.effects.clear()
        self.cancelled.clear()
        self.wrote = False
        try:
            yield
            effects, self.effects = self.effects, []
            envelopes = prepare(effects)
            await db.commit()
        except BaseException:
            self.effects.clear()
            self.cancelled.clear()
            if self.wrote or db.new or db.dirty or db.deleted:
                await db.rollback()
            else:
                # Refused before anything was written (an illegal change, a blocked start):
                # ending the transaction with a commit releases the row lock without the
                # rollback's expiry of every loaded row, which async code cannot reload.
                await db.commit()
            raise
        await announce(effects, envelopes)


def count(metrics: JobMetrics, domain: str, effects: Sequence[Effect]) -> None:
    """Count committed changes in the Prometheus metrics."""
    for e in effects:
        after = e.change.after
        if e.previous is None:
            metrics.increment(domain, "created")
            continue
        if e.change.retried:
            metrics.increment(domain, "retried")
            continue
        label = "started" if after.status is TaskState.RUNNING else after.status.value
        metrics.increment(domain, label)
        if after.status is TaskState.FAILED:
            metrics.errors.labels(task=domain, error_type=e.error_type).inc()
        seconds = duration_between(after.started_at, after.completed_at)
        if after.status.terminal and seconds is not None:
            metrics.observe_duration(domain, seconds)


def envelopes(
    effects: Sequence[Effect], *, domain: str, tenant_id: str, source: str
) -> list[EventEnvelope]:
    """The `task.state_changed` events of the changes."""
    return [
        state_changed(
            domain=domain,
            tracking_id=e.task.id,
            tenant_id=tenant_id,
            source=source,
            change=e.change,
            previous=e.previous,
            job_id=e.task.job_id,
            parent_id=e.task.parent_id,
        )
        for e in effects
    ]


async def publish(
    publisher: JobEventPublisher | None,
    events: Sequence[EventEnvelope],
    *,
    metrics: JobMetrics,
    domain: str,
    tenant_id: str,
    give_up_after: float,
) -> None:
    """Publish committed changes' events; a failure is logged and counted, not raised."""
    if publisher is None or not events:
        return
    try:
        async with asyncio.timeout(give_up_after):
            await publisher.publish(events)
    except Exception as exc:
        # The row is the truth and it is committed; the events are what trackd learns of
        # it. Losing them is logged and counted rather than failing the caller's change.
        lost = exc.failed if isinstance(exc, PublishError) and exc.failed is not None else None
        lost = len(events) if lost is None else lost
        metrics.publish_failures.labels(task=domain).inc(lost)
        log.warning(
            "trackd events not published domain=%s tenant=%s count=%d error=%r",
            domain,
            tenant_id,
            lost,
            exc,
        )
