"""Retention: ended tasks are deleted in batches after being added to daily aggregates."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, delete
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.tasks import duration_between
from trackd.jobs.crud import BaseTaskTrackingCRUD
from trackd.jobs.models import BaseTaskTracking
from trackd.store.upsert import upsert

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True, slots=True)
class CleanupResult:
    deleted: int
    batches: int
    kept_for_dependents: int


async def delete_ended(
    db: AsyncSession,
    crud: BaseTaskTrackingCRUD[Any],
    aggregates: Table,
    *,
    domain: str,
    cutoff: datetime,
    keep: set[int],
    batch_size: int,
) -> CleanupResult:
    """Delete the crud's tenant's tasks that ended before `cutoff`, except those in `keep`,
    one committed batch at a time, each after adding it to `aggregates`."""
    tenant_id = crud.tenant_id
    deleted = batches = 0
    kept: set[int] = set()
    after = 0
    while True:
        rows = await crud.get_finished_before(db, cutoff, after_id=after, limit=batch_size)
        doomed = [r for r in rows if r.id not in keep]
        kept.update(r.id for r in rows if r.id in keep)
        if not rows:
            await db.commit()
            break
        # Kept rows stay behind the keyset; deleted ones are gone either way.
        after = rows[-1].id
        if not doomed:
            await db.commit()
            continue
        await db.execute(
            upsert(
                db,
                aggregates,
                ("tenant_id", "domain", "day", "status"),
                add=(
                    "task_count",
                    "attempts_total",
                    "duration_count",
                    "duration_seconds_total",
                ),
                newest=("duration_seconds_max",),
            ),
            daily_totals(tenant_id, domain, doomed),
        )
        m = crud.model
        await db.execute(
            delete(m).where(m.tenant_id == tenant_id, m.id.in_([r.id for r in doomed]))
        )
        await db.commit()
        deleted += len(doomed)
        batches += 1
    log.info(
        "retention domain=%s tenant=%s deleted=%d batches=%d kept=%d",
        domain,
        tenant_id,
        deleted,
        batches,
        len(kept),
    )
    return CleanupResult(deleted=deleted, batches=batches, kept_for_dependents=len(kept))


def daily_totals(
    tenant_id: str, domain: str, rows: Sequence[BaseTaskTracking]
) -> list[dict[str, Any]]:
    """The aggregate rows (per day and status) that stand for `rows` once they are deleted."""
    totals: dict[tuple[date, str], dict[str, Any]] = {}
    for row in rows:
        ended: datetime = row.completed_at or row.updated_at
        key = (ended.date(), row.status)
        t = totals.setdefault(
            key,
            {
                "tenant_id": tenant_id,
                "domain": domain,
                "day": key[0],
                "status": key[1],
                "task_count": 0,
                "attempts_total": 0,
                "duration_count": 0,
                "duration_seconds_total": 0.0,
                "duration_seconds_max": 0.0,
            },
        )
        t["task_count"] += 1
        t["attempts_total"] += row.attempts
        seconds = duration_between(row.started_at, row.completed_at)
        if seconds is not None:
            t["duration_count"] += 1
            t["duration_seconds_total"] += seconds
            t["duration_seconds_max"] = max(t["duration_seconds_max"], seconds)
    return [totals[k] for k in sorted(totals)]
