"""Celery's task events as trackd envelopes: the pure rules, testable without Celery.

How Celery's vocabulary maps onto trackd's (DESIGN §4):

| Celery event | trackd | topic |
|---|---|---|
| task-sent, task-received | pending | system-events, task.state_changed |
| task-started | running | system-events, task.state_changed |
| task-succeeded | completed (result, runtime) | action-results, success true |
| task-failed | failed (exception, traceback) | action-results, success false |
| task-retried | pending in the next attempt | system-events, task.state_changed |
| task-revoked | cancelled (also when expired or terminated) | system-events, task.state_changed |
| task-rejected, requeue false | failed | action-results, success false |
| task-rejected, requeue true; task-cancelled | no change: timeline only | system-events |

A rejection without requeue is **failed**, not cancelled: nobody asked for the task to stop,
the message was refused (a poison message, or `Reject` raised by the task) and the work was
not done, which is what people watch failures for. Celery stores nothing in the result
backend for it. A rejection with requeue comes back as a new delivery of the same attempt, so
it changes nothing yet.

An attempt is Celery's `retries + 1`. Event ids are derived from the task, the attempt and the
kind of event (uuid5), so the same Celery event delivered twice, or a state read back from the
result backend after a restart, carries the id trackd already has and ingest drops it. Every
task's events name the Celery task name as their source (the tracker's agent, by which metrics
group) and as the record's event type; `root_id` becomes the trace and `parent_id` the parent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from trackd.domain import lifecycle
from trackd.domain.events import (
    ACTION_RESULTS,
    SYSTEM_EVENTS,
    TASK_PROGRESS,
    TASK_STATE_CHANGED,
    EventEnvelope,
)
from trackd.domain.tasks import DEFAULT_MAX_ATTEMPTS

# Fixed forever: changing it would give every Celery event a new id and defeat deduplication.
NAMESPACE: Final = uuid.UUID("5b0c3f4e-8a43-4f8e-9d0b-3c1f7a2e6d11")
FALLBACK_SOURCE: Final = "celery"
TEXT_MAX: Final = 2000
TRACEBACK_MAX: Final = 16_000
_ID_MAX = 100
_NAME_MAX = 255

# Order of a task's events within one attempt, carried as the envelope's sequence so that
# clock skew between the client that sends and the worker that runs never reorders them.
SEQ_PENDING: Final = 0
SEQ_RECEIVED: Final = 1
SEQ_STARTED: Final = 2
SEQ_HEARTBEAT: Final = 3
SEQ_END: Final = 4

PENDING_EVENTS: Final = frozenset({"task-sent", "task-received"})
END_EVENTS: Final = frozenset({"task-succeeded", "task-failed", "task-revoked", "task-rejected"})
TIMELINE_ONLY: Final = frozenset({"task-cancelled"})
TASK_EVENTS: Final = PENDING_EVENTS | END_EVENTS | TIMELINE_ONLY | {"task-started", "task-retried"}


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """What is known about a Celery task beyond the event at hand (from its earlier events)."""

    name: str | None = None
    attempt: int = 1
    root_id: str | None = None
    parent_id: str | None = None
    max_attempts: int | None = None  # the task's max_retries + 1, when the app says


def max_attempts(limit: int | None, attempt: int) -> int | None:
    """The attempts Celery allows the task, as far as trackd knows: its own limit when the app
    says (never less than the attempt at hand, which Celery made); else none is stated until
    an attempt goes past trackd's default limit, so that trackd accepts every attempt."""
    if limit is not None:
        return max(limit, attempt)
    return attempt if attempt > DEFAULT_MAX_ATTEMPTS else None


def limit_of(max_retries: object) -> int | None:
    """Attempts allowed for Celery's `max_retries` setting, or None (unknown or unlimited)."""
    if isinstance(max_retries, int) and not isinstance(max_retries, bool) and max_retries >= 0:
        return max_retries + 1
    return None


def event_id(task_id: str, attempt: int, kind: str) -> str:
    """The id of a task's event of `kind` in `attempt`: the same for every delivery of it.

    Every way a task can end (succeeded, failed, revoked, rejected, or the state read back
    from the result backend) shares the kind `end`: an attempt ends once.
    """
    return str(uuid.uuid5(NAMESPACE, f"{task_id}\x1f{attempt}\x1f{kind}"))


def attempt_of(retries: object) -> int | None:
    """trackd's attempt for Celery's `retries` count, or None when it is not a count."""
    if isinstance(retries, int) and not isinstance(retries, bool) and 0 <= retries < 10_000:
        return retries + 1
    return None


def event_time(event: Mapping[str, Any]) -> datetime:
    """The moment the event happened, from Celery's epoch `timestamp` (now if it has none)."""
    raw = event.get("timestamp")
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 0 < raw < 253_402_300_799:
        return datetime.fromtimestamp(float(raw), UTC)
    return datetime.now(UTC)


def clip(value: object, limit: int = TEXT_MAX) -> str | None:
    """Text for a field: Celery sends reprs; long ones are cut so one event stays small."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\x00", "")  # PostgreSQL cannot store NUL
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _id(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _ID_MAX else None


def to_envelope(
    event: Mapping[str, Any], info: TaskInfo, *, tenant_id: str | None = None
) -> EventEnvelope | None:
    """The envelope for one Celery task event, or None for an event trackd does not keep.

    `info` is what earlier events said about the task; fields the event itself carries
    (`name`, `retries`, `root_id`, `parent_id`, as task-sent and task-received do) win.
    """
    kind = event.get("type")
    task_id = _id(event.get("uuid"))
    if kind not in TASK_EVENTS or task_id is None:
        return None
    name = event.get("name") if isinstance(event.get("name"), str) else info.name
    name = name[:_NAME_MAX] if name else None
    attempt = attempt_of(event.get("retries")) or info.attempt
    data: dict[str, Any] = {"task_id": task_id, "celery_event": kind}
    if name:
        data["event_type"] = name
    _copy_fields(event, data)
    state: str | None = None
    topic, etype, seq = SYSTEM_EVENTS, TASK_STATE_CHANGED, SEQ_PENDING
    ident = kind.removeprefix("task-")
    if kind == "task-sent":
        state = "pending"
    elif kind == "task-received":
        state, seq = "pending", SEQ_RECEIVED
    elif kind == "task-started":
        state, seq = "running", SEQ_STARTED
    elif kind == "task-retried":
        # The attempt that failed announces the next one: pending, one attempt on.
        attempt += 1
        state = "pending"
        data["reason"] = f"retry: {clip(event.get('exception')) or 'retried'}"
    elif kind == "task-succeeded":
        topic, etype, seq, ident = ACTION_RESULTS, "celery.task-succeeded", SEQ_END, "end"
        data["success"] = True
    elif kind == "task-failed":
        topic, etype, seq, ident = ACTION_RESULTS, "celery.task-failed", SEQ_END, "end"
        data["success"] = False
        data["error"] = clip(event.get("exception")) or "failed"
    elif kind == "task-revoked":
        state, seq, ident = "cancelled", SEQ_END, "end"
        data["reason"] = _revoked_reason(event)
    elif kind == "task-rejected" and not event.get("requeue"):
        topic, etype, seq, ident = ACTION_RESULTS, "celery.task-rejected", SEQ_END, "end"
        data["success"] = False
        data["error"] = "rejected by the worker; the message was not requeued"
    else:  # a requeued rejection or task-cancelled: the task goes on, history only
        etype, seq = f"celery.{kind}", SEQ_END
        ident = f"{ident}\x1f{event.get('timestamp')}"
    if state is not None:
        data["new_state"] = state
    # Celery enforces its own retry limit; trackd records it, and it lets trackd accept every
    # attempt Celery makes (trackd's own default limit is 3).
    allowed = max_attempts(info.max_attempts, attempt)
    if allowed is not None:
        data["max_attempts"] = allowed
    return build_envelope(
        event_id=_first_id(task_id, attempt, kind, ident),
        task_id=task_id,
        name=name,
        topic=topic,
        etype=etype,
        time=event_time(event),
        sequence=seq,
        attempt=attempt,
        root_id=_id(event.get("root_id")) or info.root_id,
        parent_id=_id(event.get("parent_id")) or info.parent_id,
        data=data,
        tenant_id=tenant_id,
    )


def heartbeat(
    task_id: str, info: TaskInfo, at: datetime, *, tenant_id: str | None = None
) -> EventEnvelope:
    """A liveness event for a task running on a worker that just sent its heartbeat."""
    data: dict[str, Any] = {"task_id": task_id, "state": "running", "celery_event": "heartbeat"}
    if info.name:
        data["event_type"] = info.name
    return build_envelope(
        event_id=str(uuid.uuid5(NAMESPACE, f"{task_id}\x1f{info.attempt}\x1fbeat\x1f{at}")),
        task_id=task_id,
        name=info.name,
        topic=SYSTEM_EVENTS,
        etype=TASK_PROGRESS,
        time=at,
        sequence=SEQ_HEARTBEAT,
        attempt=info.attempt,
        root_id=info.root_id,
        parent_id=info.parent_id,
        data=data,
        tenant_id=tenant_id,
    )


def _first_id(task_id: str, attempt: int, kind: str, ident: str) -> str:
    # A task's first event takes the task's own id, so its children (whose parent is this
    # task's id) hang under it in the trace tree.
    if kind == "task-sent" and attempt == 1:
        return task_id
    return event_id(task_id, attempt, ident)


def build_envelope(
    *,
    event_id: str,
    task_id: str,
    name: str | None,
    topic: str,
    etype: str,
    time: datetime,
    sequence: int,
    attempt: int,
    root_id: str | None,
    parent_id: str | None,
    data: dict[str, Any],
    tenant_id: str | None,
) -> EventEnvelope:
    """The envelope, through the lifecycle builder: the fields it writes for a state change
    or a heartbeat are taken out of `data` and given to it."""
    head: dict[str, Any] = {
        "event_id": event_id,
        "time": time,
        "source": name or FALLBACK_SOURCE,
        "topic": topic,
        "sequence": sequence,
        # Celery makes a task sent from outside any task its own root.
        "trace_id": root_id,
        "parent_event_id": parent_id if parent_id != task_id else None,
        "attempt": attempt,
        "tenant_id": tenant_id,
        "correlation_id": task_id,
    }
    extra = dict(data)
    written = {k: extra.pop(k) for k in _WRITTEN.get(etype, ()) if k in extra}
    if etype == TASK_STATE_CHANGED:
        event = lifecycle.state_changed(task_id=task_id, extra=extra, **written, **head)
    elif etype == TASK_PROGRESS:
        event = lifecycle.progress(task_id=task_id, extra=extra, **written, **head)
    else:
        event = lifecycle.envelope(type=etype, data=data, **head)
    return EventEnvelope.model_validate(event)


# The fields of `data` the lifecycle builder writes itself, by event type.
_WRITTEN: Final = {
    TASK_STATE_CHANGED: ("new_state", "reason", "event_type", "max_attempts"),
    TASK_PROGRESS: ("state", "event_type", "max_attempts"),
}

_TEXT_FIELDS = ("hostname", "args", "kwargs", "eta", "expires", "queue", "exchange", "routing_key")


def _copy_fields(event: Mapping[str, Any], data: dict[str, Any]) -> None:
    """What Celery said beyond the state, kept in the event's data (the record's result)."""
    for key in _TEXT_FIELDS:
        value = clip(event.get(key))
        if value:
            data[key] = value
    retries = event.get("retries")
    if isinstance(retries, int) and not isinstance(retries, bool):
        data["retries"] = retries
    runtime = event.get("runtime")
    if isinstance(runtime, int | float) and not isinstance(runtime, bool) and runtime >= 0:
        data["runtime"] = float(runtime)
        data["duration_seconds"] = float(runtime)
    if "result" in event:
        data["result"] = clip(event.get("result"))
    if event.get("exception") is not None:
        data["exception"] = clip(event.get("exception"))
    if event.get("traceback"):
        data["traceback"] = clip(event.get("traceback"), TRACEBACK_MAX)
    for flag in ("terminated", "expired", "requeue"):
        if isinstance(event.get(flag), bool):
            data[flag] = event[flag]
    signum = event.get("signum")
    if signum is not None:
        data["signum"] = clip(signum, 20)


def _revoked_reason(event: Mapping[str, Any]) -> str:
    if event.get("expired"):
        return "revoked: expired"
    if event.get("terminated"):
        return f"revoked: terminated (signal {event.get('signum')})"
    return "revoked"
