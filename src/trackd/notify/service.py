"""Notifications' entry for other features: queue what a snapshot change tells the bus and
the subscribed channels, and check where a channel's URL will send to when it is set up.

The address rule is the outbound one (`trackd.outbound.addresses`): a channel whose host is,
or resolves to, a private, loopback, link-local or metadata address is refused with the
reason, unless the deployment allows private addresses. A URL that cannot be read is refused
whatever the setting: nothing can be said of where it goes (fail closed). A host that does
not resolve yet is accepted: delivery checks every address again before each send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.changes import SNAPSHOT_CHANGED, SnapshotChange
from trackd.domain.channels import BUS, ChannelKind, InvalidChannel, validate_url
from trackd.notify import outbox
from trackd.notify.channels.apprise_urls import connect_hosts
from trackd.notify.channels.base import unresolved
from trackd.outbound.http import AddressGuard, RefusedAddress
from trackd.store.repos import channels as channels_repo
from trackd.store.repos import outbox as outbox_repo


async def check_destination(kind: ChannelKind, url: str, guard: AddressGuard) -> None:
    """Refuse a channel URL that cannot be read or whose host is not allowed.

    Raises:
        InvalidChannel: the message says why, without the URL (it is a credential).
    """
    url = validate_url(kind, url)
    hosts = connect_hosts(url) if kind is ChannelKind.APPRISE else [http_host(kind, url)]
    try:
        # A host not resolvable now is checked again at each delivery.
        await unresolved(hosts, guard)
    except RefusedAddress as exc:
        raise InvalidChannel(
            f"the {kind} URL's host is refused: {exc.address} is {exc.reason}; "
            "set TRACKD_ALLOW_PRIVATE_FETCH=true to allow private addresses"
        ) from None


def http_host(kind: ChannelKind, url: str) -> tuple[str, int]:
    """The host and port an http(s) channel connects to, read by the client that sends."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidChannel(f"the {kind} URL cannot be read: {exc}") from None
    if not parsed.host:
        raise InvalidChannel(f"the {kind} URL names no host")
    return parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)


async def enqueue_change(
    session: AsyncSession, change: SnapshotChange, *, notify: bool, max_attempts: int
) -> list[outbox_repo.Message]:
    """Queue the bus event and, when `notify`, a message for every subscribed channel that
    wants these fields. Returns what was queued."""
    messages = [
        outbox_repo.Message(
            kind=BUS,
            idempotency_key=outbox.change_event_id(change),
            event_type=SNAPSHOT_CHANGED,
            payload=outbox.bus_envelope(change),
        )
    ]
    if notify:
        subscribed = await channels_repo.subscribed_channels(
            session, change.tenant_id, change.source, change.subject
        )
        messages += outbox.channel_messages(change, subscribed)
    await outbox_repo.enqueue(session, change.tenant_id, messages, max_attempts=max_attempts)
    return messages


async def enqueue_events(
    session: AsyncSession,
    tenant_id: str,
    origin: dict[str, str],
    taken_at: datetime,
    events: list[dict[str, Any]],
    *,
    notify: bool,
    max_attempts: int,
) -> list[outbox_repo.Message]:
    """Queue each event (see `event_messages`); channels only when `notify`."""
    subscribed = (
        await channels_repo.subscribed_channels(
            session, tenant_id, origin["source"], origin["subject"]
        )
        if notify
        else []
    )
    messages = [
        message
        for event in events
        for message in outbox.event_messages(tenant_id, origin, taken_at, event, subscribed)
    ]
    await outbox_repo.enqueue(session, tenant_id, messages, max_attempts=max_attempts)
    return messages


async def enqueue_user_events(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    origin: dict[str, str],
    taken_at: datetime,
    events: list[dict[str, Any]],
    *,
    max_attempts: int,
) -> list[outbox_repo.Message]:
    """Queue each event (see `event_messages`) for the bus and the user's own enabled
    channels: what concerns the user alone, whatever the channel subscribes to."""
    owned = await channels_repo.list_channels(session, tenant_id, owner_user_id=user_id)
    mine = [channel for channel in owned if channel.enabled]
    messages = [
        message
        for event in events
        for message in outbox.event_messages(tenant_id, origin, taken_at, event, mine)
    ]
    await outbox_repo.enqueue(session, tenant_id, messages, max_attempts=max_attempts)
    return messages
