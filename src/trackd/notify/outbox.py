"""The outbox messages of a snapshot change: an event for trackd's bus and one message per
subscribed channel (queued by `trackd.notify.service.enqueue_change`).

Idempotency keys: `snapshot.changed:<change id>` for the bus event, `<change id>:<channel id>`
for a channel, so that one change reaches each place once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trackd.domain.changes import SNAPSHOT_CHANGED, SnapshotChange
from trackd.domain.channels import BUS, wants
from trackd.domain.events import SYSTEM_EVENTS, EventEnvelope
from trackd.store.models import NotificationChannel
from trackd.store.repos import outbox as outbox_repo

EVENT_SOURCE = "trackd/snapshots"


def change_event_id(change: SnapshotChange) -> str:
    return f"{SNAPSHOT_CHANGED}:{change.id}"


def bus_envelope(change: SnapshotChange) -> dict[str, Any]:
    """The change as an event on topic system-events: ingest keeps it in the timeline, and
    any other consumer of the bus (the agent platform) can react to it."""
    envelope = EventEnvelope(
        id=change_event_id(change),
        source=EVENT_SOURCE,
        type=SNAPSHOT_CHANGED,
        time=change.taken_at,
        topic=SYSTEM_EVENTS,
        subject=f"{change.source}/{change.subject}"[:255],
        tenant_id=change.tenant_id,
        data=change.as_payload(),
    )
    return envelope.model_dump(mode="json", exclude_none=True)


def channel_messages(
    change: SnapshotChange, channels: list[NotificationChannel]
) -> list[outbox_repo.Message]:
    payload = change.as_payload()
    return [
        outbox_repo.Message(
            kind=channel.kind,
            idempotency_key=f"{change.id}:{channel.id}",
            event_type=SNAPSHOT_CHANGED,
            payload=payload,
            channel_id=channel.id,
        )
        for channel in channels
        if wants(channel.options, change.paths)
    ]


def event_messages(
    tenant_id: str,
    origin: dict[str, str],
    taken_at: datetime,
    event: dict[str, Any],
    channels: list[NotificationChannel],
) -> list[outbox_repo.Message]:
    """One event a tracking rule found in a new snapshot (`origin`: its source, subject and
    snapshot_id): on the bus as `<source>.<type>` and to each subscribed channel that wants
    `events.<type>` (or every field)."""
    kind = str(event["type"])
    event_type = f"{origin['source']}.{kind}"
    event_id = f"{event_type}:{origin['snapshot_id']}"
    payload = {
        **origin,
        "type": event_type,
        "event_id": event_id,
        "tenant_id": tenant_id,
        "taken_at": taken_at.isoformat(),
        "summary": str(event.get("summary") or kind),
        "event": event,
    }
    envelope = EventEnvelope(
        id=event_id,
        source=EVENT_SOURCE,
        type=event_type,
        time=taken_at,
        topic=SYSTEM_EVENTS,
        subject=f"{origin['source']}/{origin['subject']}"[:255],
        tenant_id=tenant_id,
        data=payload,
    )
    bus = outbox_repo.Message(
        kind=BUS,
        idempotency_key=event_id,
        event_type=event_type,
        payload=envelope.model_dump(mode="json", exclude_none=True),
    )
    return [bus] + [
        outbox_repo.Message(
            kind=channel.kind,
            idempotency_key=f"{event_id}:{channel.id}",
            event_type=event_type,
            payload=payload,
            channel_id=channel.id,
        )
        for channel in channels
        if wants(channel.options, [f"events.{kind}"])
    ]
