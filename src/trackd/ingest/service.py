"""Ingest's entry for the code that hands it events in-process.

The jobs library and the Celery integration, embedded in an application next to trackd's
bus, put their envelopes on the bus ingest consumes, as the HTTP intake does once it has
checked a producer's events: one publish per topic, partitioned by the key ingest folds by
(the task id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from trackd.bus.base import Bus
from trackd.domain.events import EventEnvelope


def encode(envelope: EventEnvelope) -> bytes:
    """An envelope as the bus carries it: compact JSON, fields left unset left out."""
    return envelope.model_dump_json(exclude_none=True).encode()


async def publish(bus: Bus, events: Iterable[tuple[str, str | None, EventEnvelope]]) -> None:
    """Publish `(topic, partition key, envelope)`s, one bus call per topic.

    The topics go out together rather than one after the other, so the events of one call
    reach the consumer side by side whatever their topics.
    """
    by_topic: dict[str, tuple[list[bytes], list[str | None]]] = {}
    for topic, key, envelope in events:
        bodies, keys = by_topic.setdefault(topic, ([], []))
        bodies.append(encode(envelope))
        keys.append(key)
    await asyncio.gather(
        *(bus.publish(topic, bodies, keys) for topic, (bodies, keys) in by_topic.items())
    )
