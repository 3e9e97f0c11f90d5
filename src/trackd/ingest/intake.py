"""Taking events from producers: validate, stamp the tenant, publish partitioned by task."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.bus.base import Bus
from trackd.domain.access import may_publish_about, not_owner_message
from trackd.domain.events import (
    PLATFORM_TOPICS,
    EventEnvelope,
    EventRules,
    InvalidEventError,
    decode_envelope,
)
from trackd.domain.interpret import interpret
from trackd.errors import BusUnavailableError
from trackd.ingest import service
from trackd.store.repos import tasks


@dataclass(frozen=True, slots=True)
class Checked:
    """An event ready to publish, with its topic and partition key."""

    index: int
    envelope: EventEnvelope
    topic: str
    key: str | None
    is_task: bool = False  # the key is a task id (else a plan id or None)


@dataclass(frozen=True, slots=True)
class Refused:
    index: int
    event_id: str | None
    reason: str
    forbidden: bool = False  # refused for who sent it (403), not for what it says (422)


def check(
    items: Sequence[Any],
    tenant_id: str,
    rules: EventRules | None = None,
    published_by: str | None = None,
) -> tuple[list[Checked], list[Refused]]:
    """Validate raw events; accepted ones belong to `tenant_id` and are published as
    `published_by` (`access.publishing_user`) whatever they claim.

    Events on the platform's topics that trackd does not fold are accepted for the timeline;
    a topic outside the platform's list is refused.
    """
    ok: list[Checked] = []
    refused: list[Refused] = []
    for index, raw in enumerate(items):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        if not isinstance(raw, dict):
            refused.append(Refused(index, None, "an event must be a JSON object"))
            continue
        try:
            envelope = decode_envelope(raw, rules).with_tenant(tenant_id, published_by)
            meaning = interpret(envelope)
        except InvalidEventError as exc:
            refused.append(Refused(index, event_id, str(exc)))
            continue
        topic = envelope.effective_topic
        if topic not in PLATFORM_TOPICS:
            refused.append(
                Refused(
                    index,
                    envelope.id,
                    (
                        f"topic {topic!r} is not one of the platform's topics; use one of "
                        if topic
                        else "topic is missing; use one of "
                    )
                    + ", ".join(PLATFORM_TOPICS),
                )
            )
            continue
        key = meaning.task.task_id if meaning.task else meaning.plan_id
        ok.append(Checked(index, envelope, topic, key, meaning.task is not None))
    return ok, refused


async def refuse_foreign(
    session: AsyncSession, tenant_id: str, checked: Sequence[Checked]
) -> tuple[list[Checked], list[Refused]]:
    """Take out events a user token may not publish: those about another principal's task.

    An answer for the producer: the task's owner is read from the store, so two first events
    racing for a new task both pass here, and ingest, which folds one task's events one after
    the other, refuses the loser (a dead letter saying why).
    """
    ours = {c.key for c in checked if c.is_task and c.envelope.published_by is not None}
    owner_of = await tasks.owners(session, tenant_id, [k for k in ours if k is not None])
    ok: list[Checked] = []
    refused: list[Refused] = []
    for c in checked:
        if c.is_task and c.key in owner_of:
            if not may_publish_about(c.envelope.published_by, owner_of[c.key]):
                refused.append(Refused(c.index, c.envelope.id, not_owner_message(c.key), True))
                continue
        ok.append(c)
    return ok, refused


async def admit(
    session: AsyncSession,
    items: Sequence[Any],
    tenant_id: str,
    rules: EventRules | None = None,
    published_by: str | None = None,
) -> tuple[list[Checked], list[Refused]]:
    """`check`, then, for a user's events, `refuse_foreign`: what an HTTP producer may publish."""
    ok, refused = check(items, tenant_id, rules, published_by)
    if published_by is not None:
        ok, foreign = await refuse_foreign(session, tenant_id, ok)
        refused += foreign
    return ok, refused


async def publish(bus: Bus, events: Sequence[Checked], timeout_s: float | None = None) -> None:
    """Publish checked events (`service.publish`); returns once the bus holds them all.

    Raises:
        BusUnavailableError: the bus did not confirm them all within `timeout_s`.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await service.publish(bus, ((e.topic, e.key, e.envelope) for e in events))
    except TimeoutError:
        raise BusUnavailableError("events not confirmed stored in time") from None
