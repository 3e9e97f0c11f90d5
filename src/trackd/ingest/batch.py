"""Fold one batch of messages into records and write it in one transaction.

Steps: decode and validate every message (failures become dead letters), drop events the
tenant already has, load the records the batch touches, fold, then write the timeline, records,
transitions, anomalies, metric buckets and dead letters together.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.bus.base import Message
from trackd.domain.access import may_publish_about, not_owner_message
from trackd.domain.events import EventEnvelope, EventRules, InvalidEventError, decode_envelope
from trackd.domain.interpret import Meaning, interpret
from trackd.domain.metrics import bucket_deltas
from trackd.domain.plan_counts import plan_task_deltas
from trackd.domain.plans import PlanRecord, fold_plan, new_plan
from trackd.domain.tasks import Anomaly, TaskRecord, Transition, fold, new_record
from trackd.ingest.metrics import EventSeen, TaskChange
from trackd.store.repos import (
    anomalies,
    dead_letters,
    metrics,
    plan_counts,
    plans,
    tasks,
    timeline,
)
from trackd.store.repos.dead_letters import Rejected

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Accepted:
    message: Message
    envelope: EventEnvelope
    tenant: str
    meaning: Meaning


@dataclass(slots=True)
class BatchResult:
    """What one batch did: counts for logs, benchmarks and tests, and for the metrics
    (`trackd.ingest.metrics`) each event's outcome and the tasks it finished or retried."""

    folded: int = 0
    duplicates: int = 0
    rejected: int = 0
    anomalies: int = 0
    events: list[EventSeen] = field(default_factory=list)
    changes: list[TaskChange] = field(default_factory=list)

    def merge(self, other: BatchResult) -> None:
        self.folded += other.folded
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.anomalies += other.anomalies
        self.events.extend(other.events)
        self.changes.extend(other.changes)


@dataclass(slots=True)
class _TenantWork:
    transitions: list[Transition] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)


def _decode(msg: Message, default_tenant: str, rules: EventRules | None) -> _Accepted | Rejected:
    envelope: EventEnvelope | None = None
    try:
        envelope = decode_envelope(msg.body, rules)
        meaning = interpret(envelope)
    except InvalidEventError as exc:
        return _rejected(msg, default_tenant, str(exc), envelope)
    return _Accepted(msg, envelope, envelope.resolved_tenant(default_tenant), meaning)


def undeliverable(msg: Message, default_tenant: str, reason: str) -> Rejected:
    """A dead letter for a message whose event cannot be stored."""
    try:
        envelope: EventEnvelope | None = decode_envelope(msg.body)
    except InvalidEventError:
        envelope = None
    return _rejected(msg, default_tenant, reason, envelope)


def _rejected(
    msg: Message, default_tenant: str, reason: str, envelope: EventEnvelope | None = None
) -> Rejected:
    tenant = (
        envelope.resolved_tenant(default_tenant) if envelope else _tenant_hint(msg, default_tenant)
    )
    return Rejected(
        tenant_id=tenant,
        topic=msg.topic,
        message_id=msg.id,
        event_id=envelope.id if envelope else _id_hint(msg),
        reason=reason,
        payload=msg.body.decode("utf-8", errors="replace"),
    )


def _loose(msg: Message) -> dict[str, Any]:
    try:
        value = json.loads(msg.body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _tenant_hint(msg: Message, default_tenant: str) -> str:
    """The tenant a rejected message names, so its owner can see why it was dropped."""
    raw = _loose(msg)
    for name in ("platform_tenant_id", "platformTenantId", "tenant_id", "tenantId", "tenantid"):
        value = raw.get(name)
        if isinstance(value, str) and 0 < len(value) <= 100:
            return value
    return default_tenant


def _type_hint(payload: str) -> str:
    try:
        value = json.loads(payload)
    except ValueError:
        return "invalid"
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) and 0 < len(kind) <= 200 else "invalid"


def _task_change(old: TaskRecord | None, new: TaskRecord) -> TaskChange | None:
    finished = new.state.terminal and (old is None or not old.state.terminal)
    retried = old is not None and new.attempt > old.attempt
    if not (finished or retried):
        return None
    return TaskChange(
        new.tenant_id,
        new.event_type,
        finished_as=str(new.state) if finished else None,
        runtime_seconds=new.duration_seconds if finished else None,
        retried=retried,
    )


def _id_hint(msg: Message) -> str | None:
    value = _loose(msg).get("id")
    return value if isinstance(value, str) else None


async def _fresh(session: AsyncSession, accepted: list[_Accepted]) -> tuple[list[_Accepted], int]:
    """Drop events seen before (in this batch or stored): the idempotency key is tenant + id."""
    seen: set[tuple[str, str]] = set()
    unique: list[_Accepted] = []
    for item in accepted:
        key = (item.tenant, item.envelope.id)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for item in unique:
        by_tenant[item.tenant].append(item.envelope.id)
    stored: set[tuple[str, str]] = set()
    for tenant, ids in by_tenant.items():
        stored.update((tenant, i) for i in await timeline.known_ids(session, tenant, ids))
    fresh = [i for i in unique if (i.tenant, i.envelope.id) not in stored]
    return fresh, len(accepted) - len(fresh)


ENVELOPE_ATTRIBUTES = (
    "subject",
    "session_id",
    "goal_id",
    "user_id",
    "sequence",
    "attempt",
    "specversion",
    # Data that is not JSON, kept as it came (CloudEvents binary mode).
    "datacontenttype",
    "data_base64",
    # The plan the producer named, as opposed to the row's plan_id (the plan the task
    # turned out to be in): replay must send the event as it came.
    "plan_id",
    # An action result's outcome on the envelope (the platform's ActionResultEvent).
    "success",
    "result",
    "error",
    # Who published it: replay rebuilds the task's owner from it.
    "published_by",
)
"""Envelope fields the timeline keeps in `attributes` rather than in columns."""


def _timeline_row(item: _Accepted, task: TaskRecord | None) -> dict[str, Any]:
    env = item.envelope
    attributes = {
        name: getattr(env, name) for name in ENVELOPE_ATTRIBUTES if getattr(env, name) is not None
    }
    plan_id = item.meaning.plan_id or (task.plan_id if task else None) or env.plan_id
    return {
        "tenant_id": item.tenant,
        "event_id": env.id,
        "event_type": env.type,
        "topic": env.effective_topic,
        "source": env.source,
        "trace_id": env.trace_id,
        "parent_event_id": env.parent_event_id,
        "correlation_id": env.correlation_id,
        "plan_id": plan_id,
        "task_id": item.meaning.task.task_id if item.meaning.task else None,
        "data": env.data,
        "attributes": attributes,
        "occurred_at": env.time,
    }


async def apply_batch(
    session: AsyncSession,
    messages: Sequence[Message],
    default_tenant: str,
    *,
    replaying: bool = False,
    rules: EventRules | None = None,
) -> BatchResult:
    """Fold and write one batch; the caller commits (and then acknowledges the messages).

    With `replaying`, the messages are events read back from the timeline (`trackd replay`):
    they are neither checked against it for duplicates nor appended to it again.
    """
    result = BatchResult()
    accepted: list[_Accepted] = []
    rejected: list[Rejected] = []
    for msg in messages:
        item = _decode(msg, default_tenant, rules)
        (accepted if isinstance(item, _Accepted) else rejected).append(item)  # type: ignore[arg-type]
    fresh, result.duplicates = (accepted, 0) if replaying else await _fresh(session, accepted)
    fresh_ids = {id(i) for i in fresh}
    result.events.extend(
        EventSeen(i.tenant, i.envelope.type, "duplicate")
        for i in accepted
        if id(i) not in fresh_ids
    )

    task_keys = {(i.tenant, i.meaning.task.task_id) for i in fresh if i.meaning.task}
    before = await tasks.load_many(session, task_keys)
    current: dict[tuple[str, str], TaskRecord] = dict(before)
    work: dict[str, _TenantWork] = defaultdict(_TenantWork)
    folded_tasks: dict[str, tuple[str, str] | None] = {}  # event id -> key of its task

    # Within the batch, apply each task's events in their own order: the records come out the
    # same in any order, but the transition history reads better this way.
    ordered = sorted(fresh, key=lambda i: (i.tenant, i.meaning.task.key if i.meaning.task else ""))
    for item in ordered:
        ev = item.meaning.task
        key: tuple[str, str] | None = None
        if ev is not None:
            key = (item.tenant, ev.task_id)
            publisher = item.envelope.published_by
            if key in current and not may_publish_about(publisher, current[key].owner_user_id):
                # Checked at the API too, but only here are a task's events folded one after
                # the other: of two first events racing for a new task, the later loses here.
                rejected.append(
                    _rejected(
                        item.message,
                        default_tenant,
                        f"forbidden: {not_owner_message(ev.task_id)}",
                        item.envelope,
                    )
                )
                continue
            try:
                if key in current:
                    out = fold(current[key], ev)
                else:
                    out = new_record(item.tenant, ev)
                    out.record.owner_user_id = publisher
            except Exception as exc:  # a bug must cost one event, never the consumer
                log.exception("fold failed event_id=%s", item.envelope.id)
                rejected.append(
                    _rejected(item.message, default_tenant, f"internal error: {exc}", item.envelope)
                )
                continue
            current[key] = out.record
            if out.transition:
                work[item.tenant].transitions.append(out.transition)
            if out.anomaly:
                work[item.tenant].anomalies.append(out.anomaly)
                result.anomalies += 1
        folded_tasks[item.envelope.id] = key
        result.folded += 1
        outcome = "refused" if ev is not None and out.anomaly else "accepted"
        result.events.append(
            EventSeen(item.tenant, item.envelope.type, outcome, item.envelope.time)
        )

    # Rows take the task as the batch leaves it: an event folded before the one that named
    # the task's plan still belongs to that plan.
    rows = []
    for item in ordered:
        if item.envelope.id in folded_tasks:
            task_key = folded_tasks[item.envelope.id]
            rows.append(_timeline_row(item, current[task_key] if task_key else None))
    if not replaying:
        await timeline.append(session, rows)
    # Events of earlier batches that arrived before their task's plan was known.
    late_plans: dict[str, dict[str, str]] = defaultdict(dict)
    for (tenant, task_id), rec in current.items():
        old = before.get((tenant, task_id))
        if old is not None and old.plan_id is None and rec.plan_id is not None:
            late_plans[tenant][task_id] = rec.plan_id
    for tenant, task_plans in late_plans.items():
        await timeline.assign_plan(session, tenant, task_plans)
    changed = [r for k, r in current.items() if before.get(k) is not r]
    await tasks.save_many(session, changed)
    for tenant, w in work.items():
        plan_of = {t.task_id: current[(tenant, t.task_id)].plan_id for t in w.transitions}
        await tasks.add_transitions(session, tenant, plan_of, w.transitions)
        await anomalies.add(session, tenant, w.anomalies)
    deltas_by_tenant: dict[str, list[tuple[TaskRecord | None, TaskRecord]]] = defaultdict(list)
    for key, rec in current.items():
        if before.get(key) is not rec:
            deltas_by_tenant[key[0]].append((before.get(key), rec))
            change = _task_change(before.get(key), rec)
            if change is not None:
                result.changes.append(change)
    await dead_letters.add(session, rejected)
    # Last, what other consumers write too: the hour's metric buckets and the plans (see
    # `_fold_plans`). The row and plan locks these take are held until the commit, so the
    # shorter the rest of the transaction after them, the less consumers wait for each other.
    for tenant, changes in sorted(deltas_by_tenant.items()):
        await metrics.add(session, tenant, bucket_deltas(changes))
    # Each plan's task counters move with its tasks' old -> new states, in this transaction.
    await plan_counts.add(
        session, plan_task_deltas(c for changes in deltas_by_tenant.values() for c in changes)
    )
    await _fold_plans(session, [i for i in fresh if i.envelope.id in folded_tasks])
    result.rejected = len(rejected)
    result.events.extend(
        EventSeen(r.tenant_id, _type_hint(r.payload), "dead_lettered") for r in rejected
    )
    return result


async def _fold_plans(session: AsyncSession, folded: Sequence[_Accepted]) -> None:
    """Fold the batch's plan events into their plans and write the plans that changed.

    Tasks are partitioned between consumers, plans are not: one plan's tasks are folded by
    several consumers at once, so each batch holds its plans (`plans.lock_many`) from reading
    them until its commit.
    """
    plan_events = [(i.tenant, i.meaning.plan) for i in folded if i.meaning.plan is not None]
    plan_keys = {(t, pev.plan_id) for t, pev in plan_events if pev is not None}
    await plans.lock_many(session, plan_keys)
    plan_before = await plans.load_many(session, plan_keys)
    plan_now: dict[tuple[str, str], PlanRecord] = dict(plan_before)
    for tenant, pev in plan_events:
        if pev is None:
            continue
        key = (tenant, pev.plan_id)
        plan_now[key] = fold_plan(plan_now[key], pev) if key in plan_now else new_plan(tenant, pev)
    await plans.save_many(session, [r for k, r in plan_now.items() if plan_before.get(k) is not r])
