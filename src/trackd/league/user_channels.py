"""A user's own notification channels, and their subscriptions to the user's trackers.

Registration subscribes a new tracker to its owner's channels (`guilds.subscribe_tracker`);
a channel the user adds later is subscribed the same way, by running that rule again for each
of the user's live trackers, so the order of creation does not matter.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.access import Principal, Role
from trackd.domain.channels import parse_kind, validate_url
from trackd.errors import Conflict, Forbidden, NotFound
from trackd.league import guilds
from trackd.notify.service import check_destination
from trackd.outbound.http import AddressGuard
from trackd.store.models import NotificationChannel
from trackd.store.repos import channels as channels_repo
from trackd.store.repos import league_trackers as repo

_PAGE = 100


class ChannelForbidden(Forbidden):
    """The caller may not touch this channel (another user's, or the tenant's own)."""


def channel_user(principal: Principal, *, changes: bool = False) -> str:
    """The user whose own channels a token reaches (`changes`: to change them)."""
    if principal.user_id is None:
        raise ChannelForbidden("this token names no user; use a user's token for /v1/me/channels")
    if changes and principal.role is Role.READER:
        raise ChannelForbidden("a reader token may not change notification channels")
    return principal.user_id


async def subscribe_user_trackers(session: AsyncSession, tenant_id: str, user_id: str) -> int:
    """Subscribe each of the user's live trackers to the user's channels, as registration
    does; returns how many trackers there were."""
    seen = 0
    while True:
        rows, total = await repo.search(
            session,
            tenant_id,
            repo.TrackerFilter(user_id=user_id),
            descending=False,
            limit=_PAGE,
            offset=seen,
        )
        for tracker in rows:
            await guilds.subscribe_tracker(session, tracker)
        seen += len(rows)
        if not rows or seen >= total:
            return seen


async def add(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    *,
    kind: str,
    url: str,
    name: str | None = None,
    secret: str | None = None,
    guard: AddressGuard,
) -> NotificationChannel:
    """Add a channel of the user and subscribe it to the user's live trackers.

    Args:
        guard: the outbound address rule the URL's host must pass.

    Raises:
        InvalidChannel: the kind, URL (or where it sends), name or secret cannot work; the
            message says why.
        Conflict: the user already has a channel of this kind to this URL.
    """
    channel_kind = parse_kind(kind)
    await check_destination(channel_kind, url, guard)
    digest = channels_repo.url_digest(validate_url(channel_kind, url))
    for row in await channels_repo.list_channels(session, tenant_id, owner_user_id=user_id):
        # Two channels to one URL would deliver each change twice.
        if row.kind == channel_kind.value and row.url_digest == digest:
            raise Conflict(
                f"you already have this {channel_kind} channel ({row.id}); "
                "delete it first to change its name or secret"
            )
    channel = await channels_repo.create_channel(
        session,
        tenant_id,
        kind=channel_kind,
        url=url,
        name=name,
        owner_user_id=user_id,
        secret=secret,
    )
    await subscribe_user_trackers(session, tenant_id, user_id)
    return channel


async def owned(
    session: AsyncSession, tenant_id: str, user_id: str, channel_id: uuid.UUID
) -> NotificationChannel:
    """The user's channel.

    Raises:
        NotFound: the tenant has no such channel (another tenant's is none too).
        ChannelForbidden: it is another user's or the tenant's shared channel.
    """
    row = await channels_repo.get_channel(session, tenant_id, channel_id)
    if row is None:
        raise NotFound(f"no notification channel {channel_id}")
    if row.owner_user_id != user_id:
        raise ChannelForbidden(f"notification channel {channel_id} is not yours")
    return row


async def remove(
    session: AsyncSession, tenant_id: str, user_id: str, channel_id: uuid.UUID
) -> None:
    """Delete the user's channel with its subscriptions and undelivered messages."""
    await owned(session, tenant_id, user_id, channel_id)
    await channels_repo.delete_channel(session, tenant_id, channel_id)
