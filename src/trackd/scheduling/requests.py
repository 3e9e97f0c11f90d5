"""Poll requests on the bus: what the scheduler (and whoever adds a poll) publishes to wake a
worker, and what the poller reads. Both import this; neither imports the other."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from trackd.bus.base import Bus

POLL_REQUESTS: Final = "poll-requests"
POLLERS_GROUP: Final = "trackd-pollers"


def encode_request(tenant_id: str, poll_id: uuid.UUID) -> bytes:
    """The body of a request for poll `poll_id` of `tenant_id`."""
    return json.dumps({"poll_id": str(poll_id), "tenant_id": tenant_id}).encode()


def decode_request(body: bytes) -> uuid.UUID | None:
    """The poll a request names, or None for a body that is not a request."""
    try:
        return uuid.UUID(str(json.loads(body)["poll_id"]))
    except (ValueError, KeyError, TypeError):
        return None


async def announce(bus: Bus, polls: Sequence[tuple[str, uuid.UUID]]) -> None:
    """Publish poll requests for `(tenant, poll id)` pairs, once they are committed.

    Workers find due polls in the database anyway; a request only makes one start at once.
    """
    if polls:
        await bus.publish(
            POLL_REQUESTS,
            [encode_request(tenant, poll_id) for tenant, poll_id in polls],
            [str(poll_id) for _, poll_id in polls],
        )
