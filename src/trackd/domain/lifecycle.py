"""A task's lifecycle as event envelopes: the one builder every producer uses.

The SDK, the scheduler's polls, the jobs library and the Celery integration all tell trackd
the same story: a task changed state (`task.state_changed`), said how far it got or that it
is alive (`task.progress`), or ended with a result (`action-results`). The envelopes for it
are made here, as plain JSON objects whose fields always come in the same order, so the
same event always has the same bytes (`encode`). Producers add their own fields to `data`
(`extra`); the fields trackd writes (`RESERVED`, and those the event sets) win over them.

The SDK writes its envelopes from templates rather than through this builder, for speed; a
property test holds its bytes to this module's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from trackd.domain.events import SYSTEM_EVENTS, TASK_PROGRESS, TASK_STATE_CHANGED

RESERVED: Final = frozenset(
    {"task_id", "plan_id", "max_attempts", "event_type", "previous_state", "new_state"}
)
"""Fields of `data` that trackd writes; a producer's own data cannot replace them."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_time(when: float) -> datetime:
    """An epoch time (`time.time()`) as an event's time, cut to the microsecond."""
    second = int(when)
    return _EPOCH + timedelta(seconds=second, microseconds=int((when - second) * 1_000_000))


def format_time(at: datetime) -> str:
    """An event's time as written on the wire: UTC, to the microsecond, `Z`.

    A naive time is taken as UTC (the stores hand back naive UTC times on SQLite).
    """
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(
    *,
    event_id: str,
    type: str,
    time: datetime,
    source: str,
    data: dict[str, Any],
    topic: str = SYSTEM_EVENTS,
    sequence: int | None = None,
    parent_event_id: str | None = None,
    trace_id: str | None = None,
    attempt: int | None = None,
    plan_id: str | None = None,
    tenant_id: str | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Any lifecycle envelope (an action result, a timeline-only event); fields left None
    are left out."""
    out: dict[str, Any] = {
        "id": event_id,
        "type": type,
        "topic": topic,
        "time": format_time(time),
    }
    if sequence is not None:
        out["sequence"] = sequence
    if parent_event_id is not None:
        out["parent_event_id"] = parent_event_id
    out["source"] = source
    if trace_id is not None:
        out["trace_id"] = trace_id
    if attempt is not None:
        out["attempt"] = attempt
    if plan_id is not None:
        out["plan_id"] = plan_id
    if tenant_id is not None:
        out["tenant_id"] = tenant_id
    if correlation_id is not None:
        out["correlation_id"] = correlation_id
    out["data"] = data
    return out


def _task_data(
    extra: Mapping[Any, Any] | None,
    task_id: str,
    plan_id: str | None,
    max_attempts: int | None,
    event_type: str | None,
) -> dict[Any, Any]:
    data: dict[Any, Any] = {k: v for k, v in extra.items() if k not in RESERVED} if extra else {}
    data["task_id"] = task_id
    if plan_id is not None:
        data["plan_id"] = plan_id
    if max_attempts is not None:
        data["max_attempts"] = max_attempts
    if event_type is not None:
        data["event_type"] = event_type
    return data


def state_changed(
    *,
    event_id: str,
    time: datetime,
    source: str,
    task_id: str,
    new_state: str,
    previous_state: str | None = None,
    event_type: str | None = None,
    duration_seconds: float | None = None,
    reason: str | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    max_attempts: int | None = None,
    plan_id: str | None = None,
    extra: Mapping[Any, Any] | None = None,
    **head: Any,
) -> dict[str, Any]:
    """A `task.state_changed`: the task `task_id` moved from `previous_state` (None: it is
    new) to `new_state`.

    `head` takes the envelope's optional fields (`sequence`, `parent_event_id`, `trace_id`,
    `attempt`, `tenant_id`, `correlation_id`, `topic`: see `envelope`); `plan_id` goes on the
    envelope and in `data`. `extra` is the producer's own data.
    """
    data = _task_data(extra, task_id, plan_id, max_attempts, event_type)
    if previous_state is not None:
        data["previous_state"] = previous_state
    data["new_state"] = new_state
    if duration_seconds is not None:
        data["duration_seconds"] = duration_seconds
    if reason is not None:
        data["reason"] = reason
    if error_type is not None:
        data["error_type"] = error_type
        data["error_message"] = error_message
    return envelope(
        event_id=event_id,
        type=TASK_STATE_CHANGED,
        time=time,
        source=source,
        data=data,
        plan_id=plan_id,
        **head,
    )


def progress(
    *,
    event_id: str,
    time: datetime,
    source: str,
    task_id: str,
    state: str,
    fraction: float | None = None,
    message: str | None = None,
    event_type: str | None = None,
    max_attempts: int | None = None,
    plan_id: str | None = None,
    extra: Mapping[Any, Any] | None = None,
    **head: Any,
) -> dict[str, Any]:
    """A `task.progress`: how far the task got (`fraction`, `message`), or, with neither, a
    heartbeat saying it is still `state`. Arguments as for `state_changed`."""
    data = _task_data(extra, task_id, plan_id, max_attempts, event_type)
    data["state"] = state
    if fraction is not None:
        data["progress"] = fraction
    if message is not None:
        data["message"] = message
    return envelope(
        event_id=event_id,
        type=TASK_PROGRESS,
        time=time,
        source=source,
        data=data,
        plan_id=plan_id,
        **head,
    )


def _jsonable(value: object) -> object:
    # A datetime or a UUID in a producer's data must not cost the event, which would be found
    # unencodable only long after the call that made it.
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


# Built once (json.dumps with options builds an encoder per call). NaN and infinities are not
# JSON, and a server would refuse the whole request for one of them.
ENCODER: Final = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, default=_jsonable, allow_nan=False
)


def encode(event: Mapping[str, Any]) -> bytes:
    """The envelope as compact UTF-8 JSON.

    Raises:
        ValueError: the data holds a NaN, an infinity, a lone surrogate or a circular
            structure.
    """
    return ENCODER.encode(event).encode()
