"""Polls of league trackers: polls of the Rocket League source, asked for now or on a schedule.

The league API calls a poll a "scrape" (`scrapingStatus`, `lastScrapedAt`). Each poll is a
tracked task (DESIGN §9) with attempts, backoff, blocks and a lease: a worker that dies
mid-poll leaves nothing IN_PROGRESS for ever. Three things
ask for them:

* registration and refresh: one poll at once (`poll_tracker`); the first one also fetches
  the three previous seasons;
* the daily refresh: one cron schedule per live, active tracker (`tracker:<id>:daily`, at
  TRACKD_TRACKER_REFRESH_CRON, spread over TRACKD_TRACKER_REFRESH_JITTER_S). Per tracker, so
  that a tracker registered or deleted changes nothing else, and one slow profile delays no
  other; a run missed while trackd was down runs once when it is back, within six hours;
* a guild's batch (`trackd.league.batches`).

The caller owns the transaction; after it commits, `announce_polls` wakes a worker at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.schedules import ScheduleStatus
from trackd.scheduling.service import (
    cancel_poll,
    cancel_schedule,
    create_schedule,
    request_poll,
)
from trackd.settings import Settings
from trackd.store.models import PollRow, ScheduleRow, TrackerRow
from trackd.store.repos import league_trackers as repo
from trackd.store.repos import schedules as schedule_repo

SOURCE: Final = repo.SOURCE
FEATURE: Final = "trackers"
DAILY: Final = "daily"
BATCH: Final = "batch"
# A daily run missed while trackd was down still runs when it is back within this long.
DAILY_GRACE_SECONDS: Final = 6 * 3600.0
MAX_ATTEMPTS: Final = 3


def target_of(tracker: TrackerRow, *, first_scrape: bool) -> dict[str, Any]:
    """The source target of a tracker: the snapshots it yields have the tracker's id as
    their subject."""
    return {
        "platform": tracker.platform,
        "id": tracker.player_id,
        "first_scrape": first_scrape,
        "tracker_id": str(tracker.id),
    }


def daily_name(tracker_id: uuid.UUID) -> str:
    return f"tracker:{tracker_id}:daily"


async def poll_tracker(
    session: AsyncSession,
    tracker: TrackerRow,
    *,
    requested_by: str | None,
    first_scrape: bool | None = None,
    now: datetime,
) -> PollRow:
    """A poll of the tracker due at once. `first_scrape` None: the previous seasons are
    fetched too while the tracker has no season stored yet."""
    if first_scrape is None:
        polled = await repo.last_snapshot_at(session, tracker.tenant_id, [str(tracker.id)])
        first_scrape = not polled
    return await request_poll(
        session,
        tracker.tenant_id,
        SOURCE,
        target_of(tracker, first_scrape=first_scrape),
        max_attempts=MAX_ATTEMPTS,
        requested_by=requested_by,
        now=now,
    )


async def start_daily(
    session: AsyncSession, tracker: TrackerRow, settings: Settings, *, now: datetime
) -> ScheduleRow:
    """The tracker's daily refresh (a cron schedule)."""
    return await create_schedule(
        session,
        tracker.tenant_id,
        name=daily_name(tracker.id),
        source=SOURCE,
        target=target_of(tracker, first_scrape=False),
        cron=settings.tracker_refresh_cron,
        jitter_seconds=settings.tracker_refresh_jitter_s,
        misfire_grace_seconds=DAILY_GRACE_SECONDS,
        max_attempts=MAX_ATTEMPTS,
        owner=tracker.user_id,
        labels={"feature": FEATURE, "kind": DAILY, "tracker_id": str(tracker.id)},
        now=now,
    )


async def daily_schedule(session: AsyncSession, tracker: TrackerRow) -> ScheduleRow | None:
    """The tracker's active daily refresh, if it has one."""
    found = await schedule_repo.find(
        session,
        tracker.tenant_id,
        labels={"feature": FEATURE, "kind": DAILY, "tracker_id": str(tracker.id)},
        statuses=[ScheduleStatus.ACTIVE],
        limit=1,
    )
    return found[0] if found else None


async def stop_polling(session: AsyncSession, tracker: TrackerRow, *, now: datetime) -> int:
    """End the tracker's daily refresh and cancel its polls that have not started (a running
    one finishes). Returns how many polls were cancelled."""
    schedule = await daily_schedule(session, tracker)
    if schedule is not None:
        await cancel_schedule(session, tracker.tenant_id, schedule.id, now=now)
    cancelled = 0
    for poll_id in await repo.waiting_polls(session, tracker.tenant_id, tracker.id):
        cancelled += await cancel_poll(session, tracker.tenant_id, poll_id, now=now)
    return cancelled


async def poll_all(
    session: AsyncSession,
    trackers: list[TrackerRow],
    *,
    requested_by: str | None,
    now: datetime,
) -> tuple[list[PollRow], list[TrackerRow]]:
    """A poll for each tracker that has none waiting or running; returns the polls made and
    the trackers skipped because one was already on its way."""
    if not trackers:
        return [], []
    busy = await repo.unfinished_polls(session, trackers[0].tenant_id, [t.id for t in trackers])
    polls: list[PollRow] = []
    skipped: list[TrackerRow] = []
    for tracker in trackers:
        if tracker.id in busy:
            skipped.append(tracker)
            continue
        polls.append(await poll_tracker(session, tracker, requested_by=requested_by, now=now))
    return polls, skipped
