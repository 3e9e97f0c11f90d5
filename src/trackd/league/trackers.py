"""The rules of league trackers: registration, ownership, updates, deletion and refreshes.

Functions take the session (the caller, `trackd.league.service`, owns the transaction) and
the tenant or the calling principal. Rule violations raise TrackerRuleError (a RuleBroken),
a tracker of another user that the caller may not change raises TrackerForbidden (a
Forbidden), a missing one NotFound.
Who may do what:

* users register and add trackers for themselves, and change, refresh and delete their own;
* every role of the tenant reads its trackers (a league's trackers are its members' shared
  data; tenants never see each other's);
* admins, and the league's bot (service role), act on any tracker of the tenant and register
  trackers for any user through the internal routes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.access import Principal, Role
from trackd.domain.league import (
    TrackerProfile,
    TrackerRuleError,
    already_registered,
    check_may_add,
    check_may_register,
    parse_profile_url,
    parse_register_request,
)
from trackd.errors import Conflict, Forbidden, NotFound
from trackd.league import batches, guilds, polling
from trackd.settings import Settings
from trackd.snapshots.service import StoredSnapshot, record_snapshot
from trackd.sources.base import Snapshot
from trackd.sources.rocket_league_stats import SeasonStats
from trackd.store.models import PollRow, TrackerRow
from trackd.store.repos import league_trackers as repo
from trackd.store.repos import snapshots as snapshots_repo
from trackd.store.repos.snapshots import HistoryKey

SOURCE = repo.SOURCE


class TrackerForbidden(Forbidden):
    """The caller may not do this to this tracker (another user's)."""


@dataclass(frozen=True, slots=True)
class Registration:
    """Who a registration is for and what the league's bot knows of them."""

    user_id: str
    guild_id: str | None = None
    user_data: Mapping[str, Any] | None = None
    created_by: str | None = None


@dataclass(slots=True)
class Outcome:
    """Trackers made or changed, and the polls to announce once the transaction commits."""

    trackers: list[TrackerRow]
    polls: list[PollRow] = field(default_factory=list)


def acting_user(principal: Principal) -> str:
    """The user a token stands for, for routes that act as that user."""
    if principal.role is Role.READER:
        raise TrackerForbidden("a reader token may not change trackers")
    if principal.user_id is None:
        raise TrackerForbidden(
            "this token names no user; use a user token, or the internal routes "
            "(/internal/trackers/...) with the user's id"
        )
    return principal.user_id


def check_may_change(principal: Principal, tracker: TrackerRow) -> None:
    """Owners change their trackers; admins and the bot change any of their tenant's."""
    if principal.role in (Role.ADMIN, Role.SERVICE):
        return
    if principal.role is Role.USER and principal.user_id == tracker.user_id:
        return
    raise TrackerForbidden(f"tracker {tracker.id} belongs to another user")


async def register(
    session: AsyncSession,
    settings: Settings,
    tenant_id: str,
    who: Registration,
    urls: Sequence[str],
    *,
    now: datetime,
) -> Outcome:
    """Register 1 to `tracker_user_limit` trackers for a user who has none yet."""
    profiles = parse_register_request(urls, limit=settings.tracker_user_limit)
    await _lock_user(session, tenant_id, who.user_id)
    check_may_register(await repo.live_count(session, tenant_id, who.user_id))
    return await _create(session, settings, tenant_id, who, profiles, now=now)


async def add(
    session: AsyncSession,
    settings: Settings,
    tenant_id: str,
    who: Registration,
    url: str,
    *,
    now: datetime,
) -> Outcome:
    """Add one tracker to a user's, within `tracker_user_limit` live ones."""
    profile = parse_profile_url(url)
    await _lock_user(session, tenant_id, who.user_id)
    check_may_add(
        await repo.live_count(session, tenant_id, who.user_id),
        limit=settings.tracker_user_limit,
    )
    return await _create(session, settings, tenant_id, who, [profile], now=now)


async def _create(
    session: AsyncSession,
    settings: Settings,
    tenant_id: str,
    who: Registration,
    profiles: list[TrackerProfile],
    *,
    now: datetime,
) -> Outcome:
    taken = {
        row.url_key: row
        for row in await repo.live_by_keys(session, tenant_id, [p.key for p in profiles])
    }
    for profile in profiles:
        if profile.key in taken:
            raise already_registered(profile, own=taken[profile.key].user_id == who.user_id)
    try:
        rows = await repo.create_many(
            session,
            tenant_id,
            [
                repo.NewTracker(
                    user_id=who.user_id,
                    profile=profile,
                    guild_id=who.guild_id,
                    user_data=who.user_data,
                    created_by=who.created_by,
                )
                for profile in profiles
            ],
            now=now,
        )
    except Conflict:
        raise TrackerRuleError(
            "one of these trackers was registered by someone else a moment ago; "
            "check GET /api/trackers/me and try again"
        ) from None
    outcome = Outcome(rows)
    await batches.follow_guild(session, tenant_id, who.guild_id, now=now)
    for tracker in rows:
        await guilds.subscribe_tracker(session, tracker)
        await polling.start_daily(session, tracker, settings, now=now)
        outcome.polls.append(
            await polling.poll_tracker(
                session, tracker, requested_by=who.created_by, first_scrape=True, now=now
            )
        )
    return outcome


async def _lock_user(session: AsyncSession, tenant_id: str, user_id: str) -> None:
    """Serialize a user's registrations until the transaction ends, so two at once cannot
    both pass the limit (PostgreSQL; SQLite has a single writer)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"trackd.trackers\x1f{tenant_id}\x1f{user_id}"},
    )


async def get(session: AsyncSession, tenant_id: str, tracker_id: uuid.UUID) -> TrackerRow:
    """A live tracker of the tenant.

    Raises:
        NotFound: none with this id (another tenant's is none too).
    """
    row = await repo.get(session, tenant_id, tracker_id)
    if row is None:
        raise NotFound(f"no tracker {tracker_id}")
    return row


UNSET: Any = object()
"""The default of an argument left out (None is a value: it clears)."""


async def update(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    tracker_id: uuid.UUID,
    *,
    display_name: str | None = UNSET,
    is_active: bool | None = None,
    now: datetime,
) -> Outcome:
    """Rename a tracker or pause/resume its polling. Pausing ends its daily refresh and
    cancels its waiting polls; resuming starts the daily refresh again and polls at once."""
    tracker = await get(session, principal.tenant_id, tracker_id)
    check_may_change(principal, tracker)
    outcome = Outcome([tracker])
    if display_name is not UNSET:
        tracker.display_name = display_name
    if is_active is not None and is_active != tracker.is_active:
        tracker.is_active = is_active
        if is_active:
            await polling.start_daily(session, tracker, settings, now=now)
            outcome.polls.append(
                await polling.poll_tracker(
                    session, tracker, requested_by=principal.user_id, now=now
                )
            )
        else:
            await polling.stop_polling(session, tracker, now=now)
    tracker.updated_at = now
    await session.flush()
    if is_active is not None:
        await batches.follow_guild(session, tracker.tenant_id, tracker.guild_id, now=now)
    return outcome


async def delete(
    session: AsyncSession, principal: Principal, tracker_id: uuid.UUID, *, now: datetime
) -> TrackerRow:
    """Soft-delete a tracker: its history stays, polling and notifications stop, and its URL
    may be registered again."""
    tracker = await get(session, principal.tenant_id, tracker_id)
    check_may_change(principal, tracker)
    await polling.stop_polling(session, tracker, now=now)
    await guilds.unsubscribe_tracker(session, tracker)
    await repo.soft_delete(session, tracker, now=now)
    await batches.follow_guild(session, tracker.tenant_id, tracker.guild_id, now=now)
    return tracker


@dataclass(frozen=True, slots=True)
class Refresh:
    tracker: TrackerRow
    poll: PollRow | None
    queued: bool
    """False when a poll was already waiting or running (no second one is made)."""


async def refresh(
    session: AsyncSession, principal: Principal, tracker_id: uuid.UUID, *, now: datetime
) -> Refresh:
    """Poll a tracker now, unless a poll of it is already waiting or running."""
    tracker = await get(session, principal.tenant_id, tracker_id)
    check_may_change(principal, tracker)
    if not tracker.is_active:
        raise TrackerRuleError("this tracker is paused; set isActive to true to poll it again")
    if tracker.id in await repo.unfinished_polls(session, tracker.tenant_id, [tracker.id]):
        latest = await repo.latest_polls(session, tracker.tenant_id, [tracker.id])
        return Refresh(tracker, latest.get(tracker.id), queued=False)
    poll = await polling.poll_tracker(session, tracker, requested_by=principal.user_id, now=now)
    return Refresh(tracker, poll, queued=True)


async def add_snapshot(
    session: AsyncSession,
    principal: Principal,
    tracker_id: uuid.UUID,
    stats: SeasonStats,
    *,
    taken_at: datetime,
    settings: Settings,
) -> StoredSnapshot:
    """Record a season's stats entered by hand (when the stats site cannot be fetched): a
    snapshot like a fetched one, marked manual, compared and notified the same way."""
    tracker = await get(session, principal.tenant_id, tracker_id)
    check_may_change(principal, tracker)
    stats = stats.model_copy(
        update={
            "platform": stats.platform or tracker.platform,
            "player_id": stats.player_id or tracker.player_id,
        }
    )
    snapshot = Snapshot(
        subject=str(tracker.id),
        source=SOURCE,
        data=stats.model_dump(mode="json"),
        taken_at=taken_at,
        season=str(stats.season),
        meta={
            "manual": True,
            "entered_by": principal.user_id or principal.role.value,
            "platform": tracker.platform,
            "player_id": tracker.player_id,
            "profile_url": tracker.url,
            "current_season": stats.current_season,
        },
    )
    await record_snapshot(session, tracker.tenant_id, snapshot, settings=settings)
    row = await snapshots_repo.latest(
        session, HistoryKey(tracker.tenant_id, SOURCE, str(tracker.id), str(stats.season))
    )
    if row is None:  # pragma: no cover - recorded just above
        raise RuntimeError("the snapshot just recorded is missing")
    return StoredSnapshot.of(row)


async def process_pending(
    session: AsyncSession, tenant_id: str, *, requested_by: str | None, now: datetime
) -> tuple[list[PollRow], int]:
    """Poll every live, active tracker that is pending (never polled) or whose last
    poll failed, unless a poll of it is on its way. Returns the polls and how many
    trackers were skipped."""
    from trackd.domain.league import ScrapingStatus

    chosen: list[TrackerRow] = []
    for status in (ScrapingStatus.PENDING, ScrapingStatus.FAILED):
        rows, _ = await repo.search(
            session, tenant_id, repo.TrackerFilter(status=status, active=True), limit=10_000
        )
        chosen += rows
    polls, skipped = await polling.poll_all(session, chosen, requested_by=requested_by, now=now)
    return polls, len(skipped)


async def process_guild(
    session: AsyncSession,
    tenant_id: str,
    guild_id: str,
    *,
    requested_by: str | None,
    now: datetime,
) -> tuple[list[PollRow], int]:
    """Poll every live, active tracker of a guild now (those already on their way are
    skipped). Returns the polls and how many were skipped."""
    rows, _ = await repo.search(
        session, tenant_id, repo.TrackerFilter(guild_id=guild_id, active=True), limit=10_000
    )
    polls, skipped = await polling.poll_all(session, rows, requested_by=requested_by, now=now)
    return polls, len(skipped)
