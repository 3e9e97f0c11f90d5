"""The outbox messages of a snapshot change: an event for trackd's bus and one message per
subscribed channel (queued by `trackd.notify.service.enqueue_change`).

Idempotency keys: `snapshot.changed:<change id>` for the bus event, `<change id>:<channel id>`
for a channel, so that one change reaches each place once.
"""

from __future__ import annotations

from typing import Any

from trackd.domain.changes import SNAPSHOT_CHANGED, SnapshotChange
from trackd.domain.channels import wants
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
