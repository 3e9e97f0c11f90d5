"""The league trackers feature's entry (seed 002): what the routes and commands call.

    league = League(settings, bus, wake_workers=True)
    shown = await league.register(session, tenant_id, Registration(user_id="u1"), [url])

Each change runs as one transaction of the session it is given: committed when it succeeds,
rolled back when it raises. After the commit, a worker is woken for the polls it asked
for, in the background: the answer does not wait for the bus, and if the bus is down a
worker's sweep finds the polls anyway. Answers are the feature's JSON (`trackd.league.views`).

Errors are trackd's shared set: a rule broken (`TrackerRuleError`, `InvalidChannel`,
`InvalidSchedule`, `InvalidTarget`, `MmrError`) is a `RuleBroken`, a tracker or channel of
another user a `Forbidden` (`TrackerForbidden`), a missing one a `NotFound`. The rules
themselves live in the feature's modules (`trackers`, `batches`, `guilds`, `polling`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.bus.base import Bus
from trackd.domain.access import Principal
from trackd.domain.league import TrackerRuleError
from trackd.league import batches, guilds, trackers, user_channels
from trackd.league.batches import BatchStatus
from trackd.league.mmr import MmrConfig, problems
from trackd.league.trackers import (
    SOURCE,
    UNSET,
    Registration,
    TrackerForbidden,
    acting_user,
)
from trackd.league.views import (
    poll_states,
    season_json,
    snapshot_json,
    trackers_json,
)
from trackd.outbound.http import AddressGuard
from trackd.scheduling.service import announce_polls
from trackd.settings import Settings
from trackd.snapshots.service import StoredSnapshot, list_snapshots
from trackd.sources.rocket_league_stats import SeasonStats
from trackd.store.engine import transaction
from trackd.store.models import PollRow, SnapshotRow, TrackerRow
from trackd.store.repos import channels as channels_repo
from trackd.store.repos import league_trackers as repo
from trackd.store.repos.channels import ChannelView

__all__ = [
    "League",
    "Registration",
    "TrackerForbidden",
    "acting_user",
]

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class League:
    """The league trackers over one configuration and bus.

    Attributes:
        wake_workers: whether a poll request on `bus` reaches a worker. On the in-process
            bus only an in-process poller hears it; without one there is nothing to wake.
    """

    settings: Settings
    bus: Bus
    wake_workers: bool

    # -- registration ---------------------------------------------------------------------

    async def register(
        self, session: AsyncSession, tenant_id: str, who: Registration, urls: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Register 1 to `tracker_user_limit` trackers for a user who has none yet."""
        async with transaction(session):
            outcome = await trackers.register(
                session, self.settings, tenant_id, who, urls, now=_now()
            )
            shown = await trackers_json(session, tenant_id, outcome.trackers)
        self._announce(outcome.polls)
        return shown

    async def add(
        self, session: AsyncSession, tenant_id: str, who: Registration, url: str
    ) -> dict[str, Any]:
        """Add one tracker for a user, up to the limit of live ones."""
        async with transaction(session):
            outcome = await trackers.add(session, self.settings, tenant_id, who, url, now=_now())
            [shown] = await trackers_json(session, tenant_id, outcome.trackers)
        self._announce(outcome.polls)
        return shown

    # -- one tracker ----------------------------------------------------------------------

    async def update(
        self,
        session: AsyncSession,
        principal: Principal,
        tracker_id: uuid.UUID,
        *,
        display_name: str | None = UNSET,
        is_active: bool | None = None,
    ) -> dict[str, Any]:
        """Rename a tracker (when `display_name` is given) or pause/resume its polling."""
        async with transaction(session):
            outcome = await trackers.update(
                session,
                self.settings,
                principal,
                tracker_id,
                display_name=display_name,
                is_active=is_active,
                now=_now(),
            )
            [shown] = await trackers_json(session, principal.tenant_id, outcome.trackers)
        self._announce(outcome.polls)
        return shown

    async def delete(
        self, session: AsyncSession, principal: Principal, tracker_id: uuid.UUID
    ) -> None:
        """Soft-delete a tracker: its history stays and its URL can be registered again."""
        async with transaction(session):
            await trackers.delete(session, principal, tracker_id, now=_now())

    async def refresh(
        self, session: AsyncSession, principal: Principal, tracker_id: uuid.UUID
    ) -> dict[str, Any]:
        """Poll a tracker now (nothing new when a poll is already on its way)."""
        async with transaction(session):
            done = await trackers.refresh(session, principal, tracker_id, now=_now())
            states = await poll_states(session, principal.tenant_id, [done.tracker])
        if done.queued and done.poll is not None:
            self._announce([done.poll])
        return {
            "id": str(done.tracker.id),
            "queued": done.queued,
            "message": "poll queued" if done.queued else "a poll is already on its way",
            **states[done.tracker.id].as_json(),
        }

    async def add_snapshot(
        self,
        session: AsyncSession,
        principal: Principal,
        tracker_id: uuid.UUID,
        stats: SeasonStats,
        *,
        taken_at: datetime | None,
    ) -> dict[str, Any]:
        """Record a season's stats entered by hand, as a snapshot marked manual."""
        async with transaction(session):
            stored = await trackers.add_snapshot(
                session,
                principal,
                tracker_id,
                stats,
                taken_at=taken_at or _now(),
                settings=self.settings,
            )
        return _snapshot_json(stored)

    # -- the bot's batch work -------------------------------------------------------------

    async def process_pending(
        self, session: AsyncSession, tenant_id: str, *, requested_by: str | None
    ) -> dict[str, Any]:
        """Poll every active tracker never polled or whose last poll failed."""
        async with transaction(session):
            polls, skipped = await trackers.process_pending(
                session, tenant_id, requested_by=requested_by, now=_now()
            )
        self._announce(polls)
        return {"queued": len(polls), "alreadyQueued": skipped}

    async def process_guild(
        self, session: AsyncSession, tenant_id: str, guild_id: str, *, requested_by: str | None
    ) -> dict[str, Any]:
        """Poll every active tracker of a guild now."""
        async with transaction(session):
            polls, skipped = await trackers.process_guild(
                session, tenant_id, guild_id, requested_by=requested_by, now=_now()
            )
        self._announce(polls)
        return {"guildId": guild_id, "queued": len(polls), "alreadyQueued": skipped}

    async def schedule_batch(
        self,
        session: AsyncSession,
        tenant_id: str,
        guild_id: str,
        scheduled_at: datetime,
        *,
        metadata: Mapping[str, Any] | None,
        created_by: str | None,
    ) -> dict[str, Any]:
        """Schedule the guild's trackers to be polled at `scheduled_at` (in the future)."""
        async with transaction(session):
            return await batches.schedule(
                session,
                tenant_id,
                guild_id,
                scheduled_at,
                metadata=metadata,
                created_by=created_by,
                now=_now(),
            )

    async def cancel_batch(
        self, session: AsyncSession, tenant_id: str, batch_id: uuid.UUID
    ) -> dict[str, Any]:
        """Cancel a PENDING batch."""
        async with transaction(session):
            return await batches.cancel(session, tenant_id, batch_id, now=_now())

    async def set_guild_settings(
        self,
        session: AsyncSession,
        tenant_id: str,
        guild_id: str,
        *,
        webhook_url: str | None = UNSET,
        webhook_kind: str | None = None,
        mmr: Mapping[str, Any] | None = UNSET,
    ) -> dict[str, Any]:
        """Set the guild's webhook for rank and rating changes (None removes it) and/or its
        MMR rules (None: the defaults); what is not given stays as it is."""
        config: MmrConfig | None = None
        if mmr is not UNSET and mmr is not None:
            try:
                config = MmrConfig.model_validate(mmr)
            except ValidationError as exc:
                raise TrackerRuleError(f"mmr: {problems(exc)}") from None
        now = _now()
        async with transaction(session):
            if webhook_url is not UNSET:
                await guilds.set_webhook(
                    session,
                    tenant_id,
                    guild_id,
                    webhook_url,
                    kind=webhook_kind,
                    guard=AddressGuard(allow_private=self.settings.allow_private_fetch),
                    now=now,
                )
            if mmr is not UNSET:
                await guilds.set_mmr(session, tenant_id, guild_id, config, now=now)
            return await guilds.read_settings(session, tenant_id, guild_id)

    # -- a user's own channels ------------------------------------------------------------

    async def add_channel(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        kind: str,
        url: str,
        name: str | None,
        secret: str | None,
    ) -> ChannelView:
        """Add a channel of the user (webhook, discord or apprise) and subscribe it to the
        user's live trackers."""
        user_id = user_channels.channel_user(principal, changes=True)
        async with transaction(session):
            row = await user_channels.add(
                session,
                principal.tenant_id,
                user_id,
                kind=kind,
                url=url,
                name=name,
                secret=secret,
                guard=AddressGuard(allow_private=self.settings.allow_private_fetch),
            )
            return ChannelView.of(row)

    async def remove_channel(
        self, session: AsyncSession, principal: Principal, channel_id: uuid.UUID
    ) -> None:
        """Delete the user's channel with its subscriptions and undelivered messages."""
        user_id = user_channels.channel_user(principal, changes=True)
        async with transaction(session):
            await user_channels.remove(session, principal.tenant_id, user_id, channel_id)

    # -- after the commit -----------------------------------------------------------------

    def _announce(self, polls: Sequence[PollRow]) -> None:
        """Wake a worker for committed polls, in the background."""
        if not polls or not self.wake_workers:
            return
        task = asyncio.create_task(self._announce_now(list(polls)), name="trackd-announce-polls")
        _announcing.add(task)
        task.add_done_callback(_announcing.discard)

    async def _announce_now(self, polls: list[PollRow]) -> None:
        try:
            async with asyncio.timeout(self.settings.publish_timeout_s):
                await announce_polls(self.bus, polls)
        except Exception:
            log.warning("poll requests not announced; workers will sweep them", exc_info=True)


_announcing: set[asyncio.Task[None]] = set()


# -- reads (no transaction of their own; any role of the tenant) ----------------------------


async def mine(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    """The calling user's live trackers."""
    if principal.user_id is None:
        raise TrackerForbidden(
            "this token names no user; GET /api/trackers?userId=... lists a user's"
        )
    rows, total = await repo.search(
        session, principal.tenant_id, repo.TrackerFilter(user_id=principal.user_id), limit=100
    )
    return {"trackers": await trackers_json(session, principal.tenant_id, rows), "total": total}


async def search(
    session: AsyncSession,
    tenant_id: str,
    where: repo.TrackerFilter,
    *,
    sort: repo.TrackerSort,
    descending: bool,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The tenant's live trackers, filtered, sorted and paged."""
    rows, total = await repo.search(
        session, tenant_id, where, sort=sort, descending=descending, limit=limit, offset=offset
    )
    return {
        "trackers": await trackers_json(session, tenant_id, rows),
        "total": total,
        "limit": limit,
        "offset": offset,
    }


async def get(session: AsyncSession, tenant_id: str, tracker_id: uuid.UUID) -> TrackerRow:
    """A live tracker of the tenant (NotFound when it has none with this id)."""
    return await trackers.get(session, tenant_id, tracker_id)


async def tracker(session: AsyncSession, tenant_id: str, tracker_id: uuid.UUID) -> dict[str, Any]:
    """One tracker's JSON."""
    row = await trackers.get(session, tenant_id, tracker_id)
    [shown] = await trackers_json(session, tenant_id, [row])
    return shown


async def detail(session: AsyncSession, tenant_id: str, tracker_id: uuid.UUID) -> dict[str, Any]:
    """The tracker with its seasons (each as its newest snapshot holds it) and its MMR under
    its guild's rules."""
    row = await trackers.get(session, tenant_id, tracker_id)
    [shown] = await trackers_json(session, tenant_id, [row])
    heads = await season_heads(session, row)
    return {
        **shown,
        "seasons": [season_json(head) for head in heads],
        "mmr": await guilds.mmr_json(session, row),
    }


async def status(session: AsyncSession, tenant_id: str, tracker_id: uuid.UUID) -> dict[str, Any]:
    """Scraping status, attempts, last error and last poll, from the newest poll."""
    row = await trackers.get(session, tenant_id, tracker_id)
    state = (await poll_states(session, tenant_id, [row]))[row.id]
    return {"id": str(row.id), "isActive": row.is_active, **state.as_json()}


async def season_heads(session: AsyncSession, tracker: TrackerRow) -> list[SnapshotRow]:
    """The newest snapshot of each of the tracker's seasons, newest season first."""
    return await repo.season_heads(session, tracker.tenant_id, str(tracker.id))


async def seasons(session: AsyncSession, tenant_id: str, tracker_id: uuid.UUID) -> dict[str, Any]:
    """The newest snapshot of each of the tracker's seasons, newest season first."""
    row = await trackers.get(session, tenant_id, tracker_id)
    heads = await season_heads(session, row)
    return {"trackerId": str(row.id), "seasons": [season_json(head) for head in heads]}


async def snapshots(
    session: AsyncSession,
    tenant_id: str,
    tracker_id: uuid.UUID,
    *,
    season: int | None,
    limit: int,
    before: uuid.UUID | None,
) -> dict[str, Any]:
    """Every snapshot of the tracker (of one season when given), newest first; page on with
    `before` = the previous page's `nextBefore`."""
    row = await trackers.get(session, tenant_id, tracker_id)
    page = await list_snapshots(
        session,
        tenant_id,
        SOURCE,
        str(row.id),
        season="*" if season is None else str(season),
        limit=limit,
        before=before,
    )
    return {
        "trackerId": str(row.id),
        "snapshots": [_snapshot_json(s) for s in page.items],
        "nextBefore": str(page.next_before) if page.next_before else None,
    }


async def batches_of_guild(
    session: AsyncSession,
    tenant_id: str,
    guild_id: str,
    *,
    status: BatchStatus | None,
    include_completed: bool,
) -> dict[str, Any]:
    """The guild's scheduled batches by time; `status` wins over `include_completed`."""
    shown = await batches.list_for_guild(
        session, tenant_id, guild_id, status=status, include_completed=include_completed
    )
    return {"guildId": guild_id, "schedules": shown}


async def guild_settings(session: AsyncSession, tenant_id: str, guild_id: str) -> dict[str, Any]:
    """The guild's webhook (masked) and MMR rules."""
    return await guilds.read_settings(session, tenant_id, guild_id)


async def my_channels(session: AsyncSession, principal: Principal) -> list[ChannelView]:
    """The calling user's channels, oldest first (URLs masked)."""
    user_id = user_channels.channel_user(principal)
    rows = await channels_repo.list_channels(session, principal.tenant_id, owner_user_id=user_id)
    return [ChannelView.of(row) for row in rows]


def _snapshot_json(stored: StoredSnapshot) -> dict[str, Any]:
    return snapshot_json(
        snapshot_id=stored.id,
        season=stored.season,
        seq=stored.seq,
        taken_at=stored.taken_at,
        data=stored.data,
        meta=stored.meta,
        changes=[c.as_dict() for c in stored.changes],
    )
