"""Trackers as the API shows them (camelCase, as the league's bot reads them).

A tracker's scraping status, attempts, last error and last poll are read from its newest
poll and snapshots when it is shown, never stored on the tracker, so they cannot go stale.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.league import scraping_status
from trackd.domain.polls import WAITING
from trackd.store.models import PollRow, SnapshotRow, TrackerRow
from trackd.store.repos import league_trackers as repo


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class PollState:
    """What a tracker's newest poll and snapshots say about its polling."""

    poll: PollRow | None
    last_polled_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        poll = self.poll
        return {
            "scrapingStatus": scraping_status(poll.status if poll else None).value,
            "scrapingAttempts": poll.attempt if poll else 0,
            "lastScrapingError": poll.error if poll and poll.status != "completed" else None,
            "lastScrapedAt": iso(self.last_polled_at),
            "lastPollId": str(poll.id) if poll else None,
            "nextAttemptAt": iso(poll.not_before) if poll and poll.status in WAITING else None,
        }


async def poll_states(
    session: AsyncSession, tenant_id: str, trackers: Sequence[TrackerRow]
) -> dict[uuid.UUID, PollState]:
    ids = [t.id for t in trackers]
    polls = await repo.latest_polls(session, tenant_id, ids)
    polled = await repo.last_snapshot_at(session, tenant_id, [str(i) for i in ids])
    return {i: PollState(polls.get(i), polled.get(str(i))) for i in ids}


def tracker_json(tracker: TrackerRow, state: PollState) -> dict[str, Any]:
    return {
        "id": str(tracker.id),
        "userId": tracker.user_id,
        "guildId": tracker.guild_id,
        "game": "rocket-league",
        "platform": tracker.platform,
        "username": tracker.player_id,
        "url": tracker.url,
        "displayName": tracker.display_name,
        "isActive": tracker.is_active,
        "userData": tracker.user_data,
        "createdAt": iso(tracker.created_at),
        "updatedAt": iso(tracker.updated_at),
        **state.as_json(),
    }


async def trackers_json(
    session: AsyncSession, tenant_id: str, trackers: Sequence[TrackerRow]
) -> list[dict[str, Any]]:
    states = await poll_states(session, tenant_id, trackers)
    return [tracker_json(t, states[t.id]) for t in trackers]


def season_json(row: SnapshotRow) -> dict[str, Any]:
    """A season as its newest snapshot holds it."""
    data = row.data
    return {
        "season": int(row.season) if row.season.isdigit() else row.season,
        "currentSeason": data.get("current_season"),
        "takenAt": iso(row.taken_at),
        "snapshotId": str(row.id),
        "manual": bool(row.meta.get("manual")),
        "playlists": data.get("playlists", {}),
        "allTimePeaks": data.get("all_time_peaks", {}),
    }


def snapshot_json(
    *,
    snapshot_id: uuid.UUID,
    season: str | None,
    seq: int,
    taken_at: datetime,
    data: dict[str, Any],
    meta: dict[str, Any],
    changes: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "id": str(snapshot_id),
        "season": int(season) if season and season.isdigit() else season,
        "seq": seq,
        "takenAt": iso(taken_at),
        "manual": bool(meta.get("manual")),
        "enteredBy": meta.get("entered_by"),
        "data": data,
        "changes": changes,
    }
