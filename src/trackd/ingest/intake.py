"""Taking events from producers: validate, stamp the tenant, publish partitioned by task."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trackd.bus.base import Bus
from trackd.domain.events import (
    DEFAULT_POLICY,
    TRACKED_TOPICS,
    EventEnvelope,
    InvalidEventError,
    decode_envelope,
)
from trackd.domain.interpret import interpret
from trackd.domain.jsonpolicy import JsonPolicy


@dataclass(frozen=True, slots=True)
class Checked:
    """An event ready to publish, with its topic and partition key."""

    index: int
    envelope: EventEnvelope
    topic: str
    key: str | None


@dataclass(frozen=True, slots=True)
class Refused:
    index: int
    event_id: str | None
    reason: str


def check(
    items: Sequence[Any], tenant_id: str, *, policy: JsonPolicy = DEFAULT_POLICY
) -> tuple[list[Checked], list[Refused]]:
    """Validate raw events, each on its own against the JSON `policy`; accepted ones belong
    to `tenant_id` whatever they claim."""
    ok: list[Checked] = []
    refused: list[Refused] = []
    for index, raw in enumerate(items):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        if not isinstance(raw, dict):
            refused.append(Refused(index, None, "an event must be a JSON object"))
            continue
        try:
            envelope = decode_envelope(raw, policy=policy).with_tenant(tenant_id)
            meaning = interpret(envelope)
        except InvalidEventError as exc:
            refused.append(Refused(index, event_id, str(exc)))
            continue
        topic = envelope.effective_topic
        if topic not in TRACKED_TOPICS:
            refused.append(
                Refused(
                    index,
                    envelope.id,
                    (
                        f"topic {topic!r} is not tracked; use one of {', '.join(TRACKED_TOPICS)}"
                        if topic
                        else "topic is missing; use one of " + ", ".join(TRACKED_TOPICS)
                    ),
                )
            )
            continue
        key = meaning.task.task_id if meaning.task else meaning.plan_id
        ok.append(Checked(index, envelope, topic, key))
    return ok, refused


def encode(envelope: EventEnvelope) -> bytes:
    return envelope.model_dump_json(exclude_none=True).encode()


async def publish(bus: Bus, events: Sequence[Checked]) -> None:
    """Publish checked events, one call per topic; returns once the bus holds them all.

    The topics go out together rather than one after the other, so events of one request
    reach the consumer side by side whatever their topics.
    """
    by_topic: dict[str, list[Checked]] = defaultdict(list)
    for ev in events:
        by_topic[ev.topic].append(ev)
    await asyncio.gather(
        *(
            bus.publish(topic, [encode(e.envelope) for e in group], [e.key for e in group])
            for topic, group in by_topic.items()
        )
    )
