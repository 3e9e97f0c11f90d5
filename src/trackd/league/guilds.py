"""A guild's tracker settings: its webhook for rank and rating changes, and its MMR rules.

Changes reach people through trackd's notification outbox: each tracker's snapshots have the
tracker's id as subject, and the channels subscribed to that subject get the changes. A
tracker is subscribed, when it is registered, to its owner's channels and to its guild's
webhook; the guild's webhook is a channel of the tenant that only wants rank and rating
changes (`options.fields`), so played games alone do not ping a league's channel.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.channels import ChannelKind, parse_kind
from trackd.league.mmr import (
    MmrConfig,
    MmrError,
    MmrInputs,
    MmrResult,
    calculate,
    problems,
)
from trackd.notify.service import check_destination
from trackd.outbound.http import AddressGuard
from trackd.sources.rocket_league_stats import Mode, SeasonStats
from trackd.store.models import NotificationSubscription, TrackerGuild, TrackerRow
from trackd.store.repos import channels as channels_repo
from trackd.store.repos import league_trackers as repo

SOURCE: Final = repo.SOURCE
RANK_FIELDS: Final = [
    f"playlists.{mode.value}.{field}" for mode in Mode for field in ("rank", "rating")
]
_DISCORD: Final = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/", re.IGNORECASE
)


async def subscribe_tracker(session: AsyncSession, tracker: TrackerRow) -> int:
    """Send the tracker's changes to its owner's channels and its guild's webhook; returns
    how many channels it was subscribed to."""
    channels = await channels_repo.list_channels(
        session, tracker.tenant_id, owner_user_id=tracker.user_id
    )
    ids = [c.id for c in channels]
    if tracker.guild_id is not None:
        settings = await repo.guild(session, tracker.tenant_id, tracker.guild_id)
        if settings is not None and settings.webhook_channel_id is not None:
            ids.append(settings.webhook_channel_id)
    for channel_id in dict.fromkeys(ids):
        await channels_repo.subscribe(
            session,
            tracker.tenant_id,
            channel_id,
            source=SOURCE,
            subject=str(tracker.id),
            user_id=tracker.user_id,
        )
    return len(dict.fromkeys(ids))


async def unsubscribe_tracker(session: AsyncSession, tracker: TrackerRow) -> None:
    """No channel hears of a deleted tracker any more."""
    await session.execute(
        delete(NotificationSubscription).where(
            NotificationSubscription.tenant_id == tracker.tenant_id,
            NotificationSubscription.source == SOURCE,
            NotificationSubscription.subject == str(tracker.id),
        )
    )


def settings_json(guild_id: str, row: TrackerGuild | None, webhook: str | None) -> dict[str, Any]:
    configured = bool(row is not None and row.mmr_config)
    try:
        mmr: dict[str, Any] = _config_of(row).model_dump(mode="json")
    except MmrError:
        # Shown as stored, so the bot sees what to set again.
        mmr = dict(row.mmr_config or {}) if row is not None else {}
    return {"guildId": guild_id, "webhook": webhook, "mmr": mmr, "mmrConfigured": configured}


async def read_settings(session: AsyncSession, tenant_id: str, guild_id: str) -> dict[str, Any]:
    row = await repo.guild(session, tenant_id, guild_id)
    return settings_json(guild_id, row, await _webhook_shown(session, row))


async def set_webhook(
    session: AsyncSession,
    tenant_id: str,
    guild_id: str,
    url: str | None,
    *,
    kind: str | None,
    guard: AddressGuard,
    now: datetime,
) -> TrackerGuild:
    """Point the guild's rank and rating changes at `url` (None: stop sending them).

    Args:
        guard: the outbound address rule the URL's host must pass.

    Raises:
        InvalidChannel: the URL does not fit the kind, cannot be read or sends where it may
            not; the message says why.
    """
    chosen: ChannelKind | None = None
    if url is not None:
        chosen = parse_kind(kind) if kind else _kind_of(url)
        await check_destination(chosen, url, guard)
    row = await repo.ensure_guild(session, tenant_id, guild_id, now=now)
    old = row.webhook_channel_id
    trackers, _ = await repo.search(
        session, tenant_id, repo.TrackerFilter(guild_id=guild_id), limit=10_000
    )
    if old is not None:
        for tracker in trackers:
            await channels_repo.unsubscribe(
                session, tenant_id, old, source=SOURCE, subject=str(tracker.id)
            )
    if url is None or chosen is None:
        row.webhook_channel_id = None
    else:
        channel = await channels_repo.ensure_channel(
            session,
            tenant_id,
            kind=chosen,
            url=url,
            name=f"guild {guild_id} tracker updates",
            options={"fields": RANK_FIELDS},
        )
        row.webhook_channel_id = channel.id
        for tracker in trackers:
            await channels_repo.subscribe(
                session,
                tenant_id,
                channel.id,
                source=SOURCE,
                subject=str(tracker.id),
                user_id=tracker.user_id,
            )
    row.updated_at = now
    await session.flush()
    return row


def _kind_of(url: str) -> ChannelKind:
    """A guild webhook's kind when the bot does not say: Discord's by its address."""
    return ChannelKind.DISCORD if _DISCORD.match(url.strip()) else ChannelKind.WEBHOOK


async def set_mmr(
    session: AsyncSession, tenant_id: str, guild_id: str, config: MmrConfig | None, *, now: datetime
) -> TrackerGuild:
    row = await repo.ensure_guild(session, tenant_id, guild_id, now=now)
    row.mmr_config = config.model_dump(mode="json") if config is not None else None
    row.updated_at = now
    await session.flush()
    return row


async def mmr_config(session: AsyncSession, tenant_id: str, guild_id: str | None) -> MmrConfig:
    """The guild's MMR rules, or the defaults when it has none.

    Raises:
        MmrError: the stored rules cannot be read as rules; the message says why.
    """
    row = await repo.guild(session, tenant_id, guild_id) if guild_id else None
    return _config_of(row)


def _config_of(row: TrackerGuild | None) -> MmrConfig:
    if row is None or not row.mmr_config:
        return MmrConfig()
    try:
        return MmrConfig.stored(row.mmr_config)
    except ValidationError as exc:
        raise MmrError(
            f"the guild's stored MMR rules are not valid ({problems(exc)}); set them again"
        ) from None


async def mmr_json(session: AsyncSession, tracker: TrackerRow) -> dict[str, Any] | None:
    """The tracker's MMR under its guild's rules as a view shows it: None while no season is
    stored; a null value with the reason when the rules or the numbers give none (a read
    never fails on them)."""
    try:
        config = await mmr_config(session, tracker.tenant_id, tracker.guild_id)
        result = await tracker_mmr(session, tracker, config)
    except MmrError as exc:
        return {"value": None, "algorithm": None, "season": None, "reason": str(exc), "parts": {}}
    if result is None:
        return None
    return {
        "value": result.mmr,
        "algorithm": result.algorithm.value,
        "season": result.season,
        "reason": result.reason,
        "parts": result.parts,
    }


async def tracker_mmr(
    session: AsyncSession, tracker: TrackerRow, config: MmrConfig
) -> MmrResult | None:
    """The tracker's MMR over its newest season (and the one before, for ascendancy); None
    while no season is stored."""
    heads = await repo.season_heads(session, tracker.tenant_id, str(tracker.id))
    seasons = {row.season: SeasonStats.model_validate(row.data) for row in heads}
    numbered = sorted((int(s) for s in seasons if s.isdigit()), reverse=True)
    if not numbered:
        return None
    latest = seasons[str(numbered[0])]
    previous = seasons.get(str(numbered[0] - 1))
    return calculate(config, MmrInputs.from_seasons(latest, previous))


async def _webhook_shown(session: AsyncSession, row: TrackerGuild | None) -> str | None:
    if row is None or row.webhook_channel_id is None:
        return None
    channel = await channels_repo.get_channel(session, row.tenant_id, row.webhook_channel_id)
    return channels_repo.ChannelView.of(channel).url if channel is not None else None
