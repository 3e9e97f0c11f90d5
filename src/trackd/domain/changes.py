"""A change between two consecutive snapshots of one history, as it travels to channels."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from trackd.domain.history import FieldChange

SNAPSHOT_CHANGED: Final = "snapshot.changed"


@dataclass(frozen=True, slots=True)
class SnapshotChange:
    """What changed when snapshot `id` was recorded, against the one before it.

    `id` is the new snapshot's id: one snapshot makes at most one change, so it identifies
    the change everywhere (the bus event, the outbox idempotency keys).
    """

    id: uuid.UUID
    tenant_id: str
    source: str
    subject: str
    season: str | None
    seq: int
    taken_at: datetime
    previous_id: uuid.UUID
    previous_taken_at: datetime
    changes: tuple[FieldChange, ...]

    @property
    def paths(self) -> list[str]:
        return [c.path for c in self.changes]

    def as_payload(self) -> dict[str, Any]:
        """The JSON a webhook receives and the bus event carries as its `data`."""
        return {
            "type": SNAPSHOT_CHANGED,
            "change_id": str(self.id),
            "tenant_id": self.tenant_id,
            "source": self.source,
            "subject": self.subject,
            "season": self.season,
            "seq": self.seq,
            "taken_at": self.taken_at.isoformat(),
            "previous_snapshot_id": str(self.previous_id),
            "previous_taken_at": self.previous_taken_at.isoformat(),
            "changes": [c.as_dict() for c in self.changes],
        }
