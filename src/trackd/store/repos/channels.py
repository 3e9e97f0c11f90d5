"""Notification channels and who subscribes them to which changes.

    channel = await create_channel(session, tenant, kind="discord", url=hook, owner_user_id=u)
    await subscribe(session, tenant, channel.id, source="rocket_league", subject=tracker_id)

A channel is where messages go; a subscription says which snapshot changes reach it (by
source and/or subject; None matches any). Channels are shown through `ChannelView`, which
masks the URL: it is a credential.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.channels import (
    ChannelKind,
    InvalidChannel,
    mask_url,
    parse_kind,
    validate_options,
    validate_url,
)
from trackd.errors import NotFound
from trackd.store.models import (
    NotificationChannel,
    NotificationSubscription,
    new_id,
    table_of,
    utcnow,
)
from trackd.store.upsert import insert_ignore

_ANY = ""


@dataclass(frozen=True, slots=True)
class ChannelView:
    """A channel as it may be shown in an API, the CLI or a log: the URL masked, the secret
    only said to exist."""

    id: uuid.UUID
    tenant_id: str
    owner_user_id: str | None
    name: str
    kind: str
    url: str
    signed: bool
    options: dict[str, Any]
    enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, row: NotificationChannel) -> ChannelView:
        return cls(
            row.id,
            row.tenant_id,
            row.owner_user_id,
            row.name,
            row.kind,
            mask_url(row.url),
            row.secret is not None,
            dict(row.options),
            row.enabled,
            row.created_at,
        )


def url_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


async def create_channel(
    session: AsyncSession,
    tenant_id: str,
    *,
    kind: str | ChannelKind,
    url: str,
    name: str | None = None,
    owner_user_id: str | None = None,
    secret: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> NotificationChannel:
    """Store a new channel.

    Args:
        kind: "webhook", "discord" or "apprise".
        url: where to send; stored as given, shown masked.
        name: a label; default: the kind and the masked URL.
        owner_user_id: the user it belongs to; None for a tenant's shared channel (e.g. a
            guild's webhook set up by a bot).
        secret: webhook only: the HMAC-SHA256 key signing each delivery.
        options: `fields` (notify only when these field paths change), `username` (Discord).

    Raises:
        InvalidChannel: the kind, URL, secret or options cannot work; the message says why.
    """
    channel_kind = parse_kind(str(kind))
    url = validate_url(channel_kind, url)
    checked = validate_options(channel_kind, options)
    if secret is not None and channel_kind is not ChannelKind.WEBHOOK:
        raise InvalidChannel("only webhook channels are signed; leave the secret out")
    if secret is not None and not 16 <= len(secret) <= 512:
        raise InvalidChannel("a signing secret is 16 to 512 characters")
    label = (name or f"{channel_kind} {mask_url(url)}").strip()
    if not 0 < len(label) <= 255:
        raise InvalidChannel("a channel name is 1 to 255 characters")
    now = utcnow()
    row = NotificationChannel(
        id=new_id(),
        tenant_id=tenant_id,
        owner_user_id=owner_user_id,
        name=label,
        kind=channel_kind.value,
        url=url,
        url_digest=url_digest(url),
        secret=secret,
        options=checked,
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def ensure_channel(
    session: AsyncSession,
    tenant_id: str,
    *,
    kind: str | ChannelKind,
    url: str,
    owner_user_id: str | None = None,
    **fields: Any,
) -> NotificationChannel:
    """The channel of `owner_user_id` with this kind and URL, created when there is none:
    what a bot calls each time a user links the same webhook again."""
    channel_kind = parse_kind(str(kind))
    digest = url_digest(validate_url(channel_kind, url))
    existing = await session.scalar(
        select(NotificationChannel)
        .where(
            NotificationChannel.tenant_id == tenant_id,
            NotificationChannel.url_digest == digest,
            NotificationChannel.kind == channel_kind.value,
            NotificationChannel.owner_user_id.is_(None)
            if owner_user_id is None
            else NotificationChannel.owner_user_id == owner_user_id,
        )
        .order_by(NotificationChannel.id)
        .limit(1)
    )
    if existing is not None:
        return existing
    return await create_channel(
        session, tenant_id, kind=channel_kind, url=url, owner_user_id=owner_user_id, **fields
    )


async def get_channel(
    session: AsyncSession, tenant_id: str, channel_id: uuid.UUID
) -> NotificationChannel | None:
    row: NotificationChannel | None = await session.scalar(
        select(NotificationChannel).where(
            NotificationChannel.tenant_id == tenant_id, NotificationChannel.id == channel_id
        )
    )
    return row


async def require_channel(
    session: AsyncSession, tenant_id: str, channel_id: uuid.UUID
) -> NotificationChannel:
    row = await get_channel(session, tenant_id, channel_id)
    if row is None:
        raise NotFound(f"no notification channel {channel_id}")
    return row


async def list_channels(
    session: AsyncSession, tenant_id: str, *, owner_user_id: str | None = None
) -> list[NotificationChannel]:
    """A tenant's channels (only `owner_user_id`'s when given), oldest first."""
    query = select(NotificationChannel).where(NotificationChannel.tenant_id == tenant_id)
    if owner_user_id is not None:
        query = query.where(NotificationChannel.owner_user_id == owner_user_id)
    return list(await session.scalars(query.order_by(NotificationChannel.id)))


async def set_enabled(
    session: AsyncSession, tenant_id: str, channel_id: uuid.UUID, enabled: bool
) -> NotificationChannel:
    row = await require_channel(session, tenant_id, channel_id)
    row.enabled = enabled
    row.updated_at = utcnow()
    await session.flush()
    return row


async def delete_channel(session: AsyncSession, tenant_id: str, channel_id: uuid.UUID) -> bool:
    """Remove a channel with its subscriptions and undelivered messages."""
    result = await session.execute(
        delete(NotificationChannel).where(
            NotificationChannel.tenant_id == tenant_id, NotificationChannel.id == channel_id
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def subscribe(
    session: AsyncSession,
    tenant_id: str,
    channel_id: uuid.UUID,
    *,
    source: str | None = None,
    subject: str | None = None,
    user_id: str | None = None,
) -> NotificationSubscription:
    """Send changes of `source` / `subject` (None: any) to the channel; subscribing twice is
    one subscription.

    Raises:
        NotFound: the tenant has no such channel.
    """
    await require_channel(session, tenant_id, channel_id)
    for what, value in (("source", source), ("subject", subject)):
        if value is not None and not 0 < len(value) <= 255:
            raise InvalidChannel(f"a subscription's {what} is 1 to 255 characters")
    key = {
        "tenant_id": tenant_id,
        "channel_id": channel_id,
        "source": source or _ANY,
        "subject": subject or _ANY,
    }
    table = table_of(NotificationSubscription)
    await session.execute(
        insert_ignore(session, table, list(key)).values(
            id=new_id(), user_id=user_id, created_at=utcnow(), **key
        )
    )
    row = await session.scalar(
        select(NotificationSubscription).where(
            *(getattr(NotificationSubscription, k) == v for k, v in key.items())
        )
    )
    assert row is not None  # noqa: S101 — inserted or already there, in this transaction
    return row


async def unsubscribe(
    session: AsyncSession,
    tenant_id: str,
    channel_id: uuid.UUID,
    *,
    source: str | None = None,
    subject: str | None = None,
) -> bool:
    result = await session.execute(
        delete(NotificationSubscription).where(
            NotificationSubscription.tenant_id == tenant_id,
            NotificationSubscription.channel_id == channel_id,
            NotificationSubscription.source == (source or _ANY),
            NotificationSubscription.subject == (subject or _ANY),
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def subscriptions(
    session: AsyncSession, tenant_id: str, channel_id: uuid.UUID
) -> list[NotificationSubscription]:
    rows = await session.scalars(
        select(NotificationSubscription)
        .where(
            NotificationSubscription.tenant_id == tenant_id,
            NotificationSubscription.channel_id == channel_id,
        )
        .order_by(NotificationSubscription.id)
    )
    return list(rows)


async def subscribed_channels(
    session: AsyncSession, tenant_id: str, source: str, subject: str
) -> list[NotificationChannel]:
    """The enabled channels subscribed to changes of this source and subject, each once."""
    matching = select(NotificationSubscription.channel_id).where(
        NotificationSubscription.tenant_id == tenant_id,
        NotificationSubscription.source.in_((source, _ANY)),
        NotificationSubscription.subject.in_((subject, _ANY)),
    )
    rows = await session.scalars(
        select(NotificationChannel)
        .where(
            NotificationChannel.tenant_id == tenant_id,
            NotificationChannel.enabled.is_(True),
            NotificationChannel.id.in_(matching),
        )
        .order_by(NotificationChannel.id)
    )
    return list(rows)
