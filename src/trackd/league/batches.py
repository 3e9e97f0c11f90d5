"""A guild's scheduled batch: every live, active tracker of the guild polled at a given time.

A batch is a one-shot schedule of the scheduling engine, labelled with the guild, whose
targets are the guild's live, active trackers: set when it is scheduled and kept in step
(`follow_guild`) as trackers are registered, paused, resumed or deleted until it runs.
It is stored, so it survives restarts; a batch whose time passed while trackd was down runs
when trackd is back within the grace (an hour), else it is MISSED, never left PENDING for
ever. Its status is its run's:

    PENDING    not run yet            RUNNING    some polls not finished
    COMPLETED  every poll completed   FAILED     every poll finished, some failed
    CANCELLED  cancelled before it ran MISSED    found too late after an outage
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.league import TrackerRuleError
from trackd.domain.schedules import ScheduleStatus
from trackd.errors import NotFound
from trackd.league import polling
from trackd.league.views import iso
from trackd.scheduling.service import (
    ScheduleRun,
    cancel_schedule,
    create_schedule,
    schedule_run,
)
from trackd.store.models import ScheduleRow
from trackd.store.repos import league_trackers as repo
from trackd.store.repos import schedules as schedule_repo

GRACE_SECONDS: Final = 3600.0
MAX_LISTED: Final = 1000
MAX_AHEAD: Final = timedelta(days=366)


class BatchStatus(StrEnum):
    """A batch's status: its run's (trackd.domain.schedules.RunStatus) in upper case."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    MISSED = "MISSED"


def _labels(guild_id: str) -> dict[str, str]:
    return {"feature": polling.FEATURE, "kind": polling.BATCH, "guild_id": guild_id}


async def schedule(
    session: AsyncSession,
    tenant_id: str,
    guild_id: str,
    scheduled_at: datetime,
    *,
    metadata: Mapping[str, Any] | None,
    created_by: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Schedule the guild's trackers to be polled at `scheduled_at`.

    A guild with no live, active tracker yet may be scheduled (a bot schedules the weekly
    runs before the season's trackers exist): the batch follows the trackers registered
    before it runs, and a run with none completes with nothing polled.

    Raises:
        TrackerRuleError: the time is not in the future (or more than a year ahead).
    """
    if scheduled_at.utcoffset() is None:
        raise TrackerRuleError("scheduledAt must carry a time zone, e.g. 2026-01-11T02:00:00Z")
    if scheduled_at <= now:
        raise TrackerRuleError(
            f"scheduledAt must be in the future; it is {iso(scheduled_at)} and now is {iso(now)}"
        )
    if scheduled_at - now > MAX_AHEAD:
        raise TrackerRuleError("scheduledAt may be at most a year ahead")
    trackers, _ = await repo.search(
        session, tenant_id, repo.TrackerFilter(guild_id=guild_id, active=True), limit=10_000
    )
    row = await create_schedule(
        session,
        tenant_id,
        name=f"tracker-batch:{guild_id}:{uuid.uuid4().hex}",
        source=polling.SOURCE,
        targets=[polling.target_of(t, first_scrape=False) for t in trackers],
        run_at=scheduled_at,
        misfire_grace_seconds=GRACE_SECONDS,
        max_attempts=polling.MAX_ATTEMPTS,
        allow_no_targets=True,
        owner=created_by,
        labels={**_labels(guild_id), "metadata": dict(metadata or {})},
        now=now,
    )
    await session.flush()
    run = await schedule_run(session, tenant_id, row.id)
    return batch_json(row, run)


async def follow_guild(
    session: AsyncSession, tenant_id: str, guild_id: str | None, *, now: datetime
) -> int:
    """Make the guild's batches that have not run poll the trackers it has now (one was
    registered, paused, resumed or deleted since they were scheduled). Returns how many
    batches changed."""
    if guild_id is None:
        return 0
    waiting = await schedule_repo.find(
        session,
        tenant_id,
        labels=_labels(guild_id),
        statuses=[ScheduleStatus.ACTIVE],
        source=polling.SOURCE,
        limit=MAX_LISTED,
    )
    if not waiting:
        return 0
    trackers, _ = await repo.search(
        session, tenant_id, repo.TrackerFilter(guild_id=guild_id, active=True), limit=10_000
    )
    targets = [polling.target_of(t, first_scrape=False) for t in trackers]
    changed = 0
    for row in waiting:
        if row.last_run_at is None and row.targets != targets:
            row.targets = targets
            row.updated_at = now
            changed += 1
    await session.flush()
    return changed


async def list_for_guild(
    session: AsyncSession,
    tenant_id: str,
    guild_id: str,
    *,
    status: BatchStatus | None = None,
    include_completed: bool = True,
) -> list[dict[str, Any]]:
    """The guild's batches ordered by time: of one status when `status` is given (it wins
    over `include_completed`), else all, without the COMPLETED ones if `include_completed`
    is false."""
    rows = await schedule_repo.find(
        session, tenant_id, labels=_labels(guild_id), source=polling.SOURCE, limit=MAX_LISTED
    )
    shown = []
    for row in rows:
        view = batch_json(row, await schedule_run(session, tenant_id, row.id))
        if status is not None:
            if view["status"] != status.value:
                continue
        elif not include_completed and view["status"] == BatchStatus.COMPLETED.value:
            continue
        shown.append(view)
    shown.sort(key=lambda v: (v["scheduledAt"] or "", v["id"]))
    return shown


async def cancel(
    session: AsyncSession, tenant_id: str, batch_id: uuid.UUID, *, now: datetime
) -> dict[str, Any]:
    """Cancel a batch that has not run.

    Raises:
        NotFound: the tenant has no such batch.
        TrackerRuleError: it is not PENDING.
    """
    row = await _batch(session, tenant_id, batch_id)
    run = await schedule_run(session, tenant_id, row.id)
    current = batch_json(row, run)["status"]
    if current != BatchStatus.PENDING.value:
        raise TrackerRuleError(f"only a PENDING schedule can be cancelled; this one is {current}")
    await cancel_schedule(session, tenant_id, row.id, now=now)
    await session.flush()
    return batch_json(row, await schedule_run(session, tenant_id, row.id))


async def _batch(session: AsyncSession, tenant_id: str, batch_id: uuid.UUID) -> ScheduleRow:
    row = await schedule_repo.get(session, tenant_id, batch_id)
    labels = row.labels if row is not None else {}
    if (
        row is None
        or labels.get("feature") != polling.FEATURE
        or labels.get("kind") != polling.BATCH
    ):
        raise NotFound(f"no tracker processing schedule {batch_id}")
    return row


def batch_json(row: ScheduleRow, run: ScheduleRun | None) -> dict[str, Any]:
    status = BatchStatus(run.status.value.upper()) if run is not None else BatchStatus.PENDING
    polls = {s.value: n for s, n in run.polls.items()} if run is not None else {}
    return {
        "id": str(row.id),
        "guildId": row.labels.get("guild_id"),
        "scheduledAt": iso(row.run_at),
        "status": status.value,
        "metadata": row.labels.get("metadata") or {},
        "createdBy": row.owner,
        "createdAt": iso(row.created_at),
        "trackerCount": len(row.targets),
        "trackerIds": [t.get("tracker_id") for t in row.targets],
        "scrapes": polls,
        "startedAt": iso(row.last_run_at),
        "completedAt": iso(run.finished_at) if run is not None else None,
        "cancelledAt": iso(row.cancelled_at),
    }
