"""A task's state in Celery's result backend as a trackd envelope (reconciliation's rules).

Only the states a task ends in are read back: SUCCESS, FAILURE and REVOKED. A task in any
other state is still moving and its next events will say so. The envelope takes the id of
the live event that ends the same attempt (`mapping.event_id(..., "end")`), so a state that
trackd already has from the task's events is dropped by ingest as a duplicate.

The attempt is exact when the app stores extended results (`result_extended = True`, which
saves `retries`); without it, the attempt is the one trackd last saw for the task, else 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from trackd.domain.events import ACTION_RESULTS, SYSTEM_EVENTS, TASK_STATE_CHANGED, EventEnvelope
from trackd.jobs.celery.mapping import (
    SEQ_END,
    TRACEBACK_MAX,
    attempt_of,
    build_envelope,
    clip,
    event_id,
    max_attempts,
)

ENDED: Final = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


def from_result(
    meta: Mapping[str, Any],
    *,
    known_attempt: int | None = None,
    limit: int | None = None,
    tenant_id: str | None = None,
) -> EventEnvelope | None:
    """The envelope for a result backend entry (`backend.get_task_meta`), or None.

    None when the entry is not an ended task or lacks its id. `known_attempt` is the attempt
    trackd has for the task (used when the backend does not keep `retries`), `limit` the
    task's max_retries + 1 when the app says.
    """
    status = meta.get("status")
    task_id = meta.get("task_id")
    if status not in ENDED or not isinstance(task_id, str) or not 0 < len(task_id) <= 100:
        return None
    attempt = attempt_of(meta.get("retries")) or known_attempt or 1
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    data: dict[str, Any] = {"task_id": task_id, "celery_event": f"backend-{status.lower()}"}
    if name:
        data["event_type"] = name[:255]
    if isinstance(meta.get("worker"), str):
        data["hostname"] = clip(meta["worker"])
    if isinstance(meta.get("retries"), int):
        data["retries"] = meta["retries"]
    result = meta.get("result")
    topic, etype = ACTION_RESULTS, f"celery.backend-{status.lower()}"
    if status == "SUCCESS":
        data.update(success=True, result=clip(result))
    elif status == "FAILURE":
        error = exception_text(result)
        data.update(success=False, error=error, exception=error)
        if meta.get("traceback"):
            data["traceback"] = clip(meta["traceback"], TRACEBACK_MAX)
    else:
        topic, etype = SYSTEM_EVENTS, TASK_STATE_CHANGED
        data.update(new_state="cancelled", reason=f"revoked: {exception_text(result)}")
    allowed = max_attempts(limit, attempt)
    if allowed is not None:
        data["max_attempts"] = allowed
    root_id = meta.get("root_id") if isinstance(meta.get("root_id"), str) else None
    parent_id = meta.get("parent_id") if isinstance(meta.get("parent_id"), str) else None
    return build_envelope(
        event_id=event_id(task_id, attempt, "end"),
        task_id=task_id,
        name=data.get("event_type"),
        topic=topic,
        etype=etype,
        time=done_at(meta.get("date_done")),
        sequence=SEQ_END,
        attempt=attempt,
        root_id=root_id,
        parent_id=parent_id,
        data=data,
        tenant_id=tenant_id,
    )


def exception_text(result: object) -> str:
    """An exception as the backend keeps it: a dict (JSON serializer) or the exception."""
    if isinstance(result, Mapping):
        kind = result.get("exc_type") or "Exception"
        message = result.get("exc_message")
        if isinstance(message, list | tuple):
            message = ", ".join(repr(m) for m in message)
        return clip(f"{kind}({message or ''})") or str(kind)
    if isinstance(result, BaseException):
        return clip(f"{type(result).__name__}({result})") or type(result).__name__
    return clip(result) or "unknown"


def done_at(value: object) -> datetime:
    """`date_done` as an aware UTC time (Celery writes ISO text; naive means UTC)."""
    when: datetime | None = None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            when = None
    if when is None:
        return datetime.now(UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
