"""The scheduler: turns due schedules into polls and wakes the workers (DESIGN §9).

    scheduler = Scheduler(bus, sessions, SchedulerOptions())
    await scheduler.run()           # until stop(); run(burst=True) ends once nothing is due

Every `tick_seconds` it claims the due schedules in batches, each batch in one transaction:
for each it decides (`trackd.domain.schedules.decide`) whether the run starts or was missed,
creates one pending poll per target of a run that starts, and moves the schedule on to its
next run. Once the batch is committed it publishes a request per poll on `poll-requests`.

Several schedulers may share a PostgreSQL database: claims lock rows with SKIP LOCKED, so
each due run is fired by exactly one of them. On SQLite run a single scheduler (a second one
would fail its commits on the polls' unique run key rather than fire a run twice).

Start-up spread: runs that fell due while the scheduler was down and may still start are not
all started in its first tick; each is put off by up to `startup_spread_seconds`, by a draw
from its schedule's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.schedules import (
    ScheduleKind,
    ScheduleStatus,
    decide,
    fire_time,
    startup_delay,
)
from trackd.scheduling.requests import announce
from trackd.store.models import ScheduleRow
from trackd.store.repos import polls as poll_repo
from trackd.store.repos import schedules as schedule_repo
from trackd.store.repos.polls import NewPoll

if TYPE_CHECKING:
    from trackd.bus.base import Bus

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    """How a scheduler runs.

    Attributes:
        tick_seconds: seconds between looks for due schedules.
        batch_size: schedules claimed per transaction.
        startup_spread_seconds: runs already due when the scheduler starts are spread over
            this window; 0 starts them all at once.
        publish_timeout: seconds to wait for the bus to take the poll requests.
        announce: publish poll requests (off when no worker listens on this bus; workers
            then find the polls in the database).
    """

    tick_seconds: float = 1.0
    batch_size: int = 100
    startup_spread_seconds: float = 30.0
    publish_timeout: float = 10.0
    announce: bool = True


@dataclass(slots=True)
class SchedulerStats:
    ticks: int = 0
    runs: int = 0
    polls: int = 0
    missed: int = 0
    overlapping: int = 0
    deferred: int = 0


class Scheduler:
    """Fires due schedules; see the module docstring."""

    def __init__(
        self,
        bus: Bus | None,
        sessions: async_sessionmaker[AsyncSession],
        options: SchedulerOptions | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._bus = bus
        self._sessions = sessions
        self.options = options or SchedulerOptions()
        self._clock = clock
        self._started_at: datetime | None = None
        self._stopping = asyncio.Event()
        self.stats = SchedulerStats()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, burst: bool = False) -> SchedulerStats:
        """Tick until `stop()`; with `burst`, until a tick finds nothing to do and no run
        is held back by the start-up spread."""
        while not self._stopping.is_set():
            try:
                handled = await self.tick()
            except Exception:
                # The database may be restarting; due schedules stay due until a tick works.
                log.warning("scheduler tick failed; trying again", exc_info=True)
                handled = -1
            if burst and handled == 0 and not self._spreading():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.options.tick_seconds)
        return self.stats

    def _spreading(self) -> bool:
        started = self._started_at
        window = timedelta(seconds=self.options.startup_spread_seconds)
        return started is not None and self.stats.deferred > 0 and self._clock() < started + window

    async def tick(self) -> int:
        """Handle every schedule due now, a batch per transaction; returns how many."""
        now = self._clock()
        if self._started_at is None:
            self._started_at = now
        self.stats.ticks += 1
        handled = 0
        while True:
            created, claimed = await self._batch(now)
            handled += claimed
            if created and self._bus is not None and self.options.announce:
                await self._announce(created)
            if claimed < self.options.batch_size:
                return handled

    async def _batch(self, now: datetime) -> tuple[list[tuple[str, uuid.UUID]], int]:
        async with self._sessions() as session, session.begin():
            rows = await schedule_repo.claim_due(session, now=now, limit=self.options.batch_size)
            recurring = [r.id for r in rows if r.kind != ScheduleKind.ONCE]
            busy = await poll_repo.schedules_busy(session, recurring)
            new: list[NewPoll] = []
            for row in rows:
                new.extend(self._advance(row, now, busy=row.id in busy))
            ids = await poll_repo.add(session, new, now=now)
        return [(p.tenant_id, i) for p, i in zip(new, ids, strict=True)], len(rows)

    def _advance(self, row: ScheduleRow, now: datetime, *, busy: bool) -> list[NewPoll]:
        """Decide a due schedule's run and move the schedule on; returns the polls to make."""
        spec = schedule_repo.spec_of(row)
        nominal = row.next_nominal_at
        due_at = row.next_run_at
        if nominal is None or due_at is None:  # pragma: no cover - claim_due selects neither
            return []
        decision = decide(spec, nominal, due_at, now)
        row.updated_at = now
        if decision.fire is not None and self._defer(row, due_at, now):
            return []
        fire = decision.fire
        missed = decision.missed
        if fire is not None and busy:
            # The previous run's polls have not finished (a slow or blocked source): piling
            # another run on top of them would only queue duplicate work.
            log.info("schedule run skipped id=%s: previous run unfinished", row.id)
            self.stats.overlapping += 1
            fire, missed = None, missed + 1
        row.missed_runs += missed
        if missed:
            row.last_missed_at = now
            self.stats.missed += missed
        if decision.next_nominal is None:
            done = fire is not None or row.last_run_at is not None
            row.status = (ScheduleStatus.DONE if done else ScheduleStatus.MISSED).value
            row.next_run_at = row.next_nominal_at = None
        else:
            row.next_nominal_at = decision.next_nominal
            row.next_run_at = fire_time(spec, str(row.id), decision.next_nominal)
        if fire is None:
            log.info("schedule run missed id=%s name=%s missed=%d", row.id, row.name, missed)
            return []
        row.last_run_at = fire
        self.stats.runs += 1
        self.stats.polls += len(row.targets)
        return [
            NewPoll(
                tenant_id=row.tenant_id,
                source=row.source,
                target=target,
                max_attempts=row.max_attempts,
                timeout_seconds=row.timeout_seconds,
                schedule_id=row.id,
                scheduled_for=fire,
                item=item,
            )
            for item, target in enumerate(row.targets)
        ]

    def _defer(self, row: ScheduleRow, due_at: datetime, now: datetime) -> bool:
        """Put off a run that was due before this scheduler started, by its share of the
        start-up window; True if it was put off."""
        started = self._started_at
        window = self.options.startup_spread_seconds
        if started is None or window <= 0 or due_at >= started:
            return False
        target = started + timedelta(seconds=startup_delay(str(row.id), window))
        if target <= now:
            return False
        row.next_run_at = target
        self.stats.deferred += 1
        return True

    async def _announce(self, polls: list[tuple[str, uuid.UUID]]) -> None:
        if self._bus is None:
            return
        try:
            async with asyncio.timeout(self.options.publish_timeout):
                await announce(self._bus, polls)
        except Exception:
            # The polls are committed; workers' sweeps will find them.
            log.warning("poll requests not published count=%d", len(polls), exc_info=True)
