"""The little trackd remembers about Celery tasks between their events, in bounded memory.

Only task-sent and task-received name the task, its attempt and its trace; the events after
them carry nothing but the task's id. The book keeps that for the most recent `max_tasks`
tasks (least recently seen forgotten first), and which tasks each worker is running, so that a
worker's heartbeat can vouch for its running tasks. Nothing here does I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from trackd.domain.events import EventEnvelope
from trackd.jobs.celery.mapping import (
    END_EVENTS,
    TaskInfo,
    event_time,
    heartbeat,
    to_envelope,
)

DEFAULT_MAX_TASKS = 10_000
_OPEN_MAX = 8  # attempts of one task tracked as waiting or running at most


@dataclass(frozen=True, slots=True)
class _Entry:
    info: TaskInfo
    worker: str | None = None  # the worker running it, while it runs
    beat_at: datetime | None = None  # time of the last heartbeat sent for it
    waiting: tuple[int, ...] = ()  # attempts received and not yet started
    running: tuple[int, ...] = ()  # attempts started and not yet ended


def _attempt_of(kind: str, entry: _Entry) -> int | None:
    """The attempt an event that does not name one belongs to, from the task's open attempts.

    Arrival order is not the order things happened: a worker sends its task events in
    batches, so the next attempt's task-sent (published by the retrying task itself) or a
    task-received from another worker can arrive before the events that end the attempt
    before it. Each attempt is received, started and ended once, in that order, so:
    task-started is the earliest attempt received and not started; task-retried ends the
    earliest attempt running; success or failure ends the latest running.
    """
    if kind == "task-started" and entry.waiting:
        return min(entry.waiting)
    if kind == "task-retried" and entry.running:
        return min(entry.running)
    if kind in ("task-succeeded", "task-failed") and entry.running:
        return max(entry.running)
    return None


def _add(attempts: tuple[int, ...], attempt: int) -> tuple[int, ...]:
    if attempt in attempts:
        return attempts
    return tuple(sorted((*attempts, attempt)))[-_OPEN_MAX:]


def _drop(attempts: tuple[int, ...], attempt: int) -> tuple[int, ...]:
    return tuple(a for a in attempts if a != attempt)


class TaskBook:
    """Translates Celery events into envelopes, remembering tasks between their events.

    Args:
        max_tasks: tasks remembered at most; an event of a forgotten task still becomes an
            envelope, with only what the event itself says (attempt 1 if it does not say).
        heartbeat_every: seconds between two liveness events for one running task, sent
            when its worker's heartbeat arrives; 0 sends none.
        tenant_id: the tenant the envelopes name, or None for the ingest's default.
    """

    def __init__(
        self,
        max_tasks: int = DEFAULT_MAX_TASKS,
        *,
        heartbeat_every: float = 60.0,
        tenant_id: str | None = None,
    ) -> None:
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        self.max_tasks = max_tasks
        self._beat_every = heartbeat_every
        self._tenant = tenant_id
        self._tasks: OrderedDict[str, _Entry] = OrderedDict()
        self._running: dict[str, set[str]] = {}  # worker hostname -> task ids

    def __len__(self) -> int:
        return len(self._tasks)

    def info(self, task_id: str) -> TaskInfo | None:
        entry = self._tasks.get(task_id)
        return entry.info if entry else None

    def running_on(self, worker: str) -> frozenset[str]:
        return frozenset(self._running.get(worker, ()))

    def translate(self, event: Mapping[str, Any]) -> list[EventEnvelope]:
        """The envelopes one Celery event gives (none for events trackd does not keep)."""
        kind = event.get("type")
        if not isinstance(kind, str):
            return []
        if kind.startswith("worker-"):
            return self._worker_event(kind, event)
        task_id = event.get("uuid")
        if not isinstance(task_id, str):
            return []
        entry = self._tasks.get(task_id) or _Entry(TaskInfo())
        attempt = _attempt_of(kind, entry)
        info = entry.info if attempt is None else replace(entry.info, attempt=attempt)
        envelope = to_envelope(event, info, tenant_id=self._tenant)
        if envelope is None:
            return []
        self._remember(task_id, self._advance(entry, kind, event, envelope))
        return [envelope]

    def _advance(
        self, entry: _Entry, kind: str, event: Mapping[str, Any], envelope: EventEnvelope
    ) -> _Entry:
        task_id = envelope.correlation_id or ""
        name = event.get("name")
        attempt = envelope.attempt or 1
        info = TaskInfo(
            name=name if isinstance(name, str) and name else entry.info.name,
            # After task-retried this is already the next attempt, as the envelope says; a
            # late event of an earlier attempt does not take the task back.
            attempt=max(attempt, entry.info.attempt),
            root_id=envelope.trace_id or entry.info.root_id,
            parent_id=envelope.parent_event_id or entry.info.parent_id,
        )
        waiting, running = entry.waiting, entry.running
        if kind == "task-received":
            waiting = _add(waiting, attempt)
        elif kind == "task-started":
            waiting = _drop(waiting, attempt)
            running = _add(running, attempt)
        elif kind == "task-retried":
            running = _drop(running, attempt - 1)
        elif kind in END_EVENTS:
            waiting, running = _drop(waiting, attempt), _drop(running, attempt)
        worker = entry.worker
        hostname = event.get("hostname")
        if kind == "task-started" and isinstance(hostname, str) and hostname:
            if worker is not None and worker != hostname:
                self._running_remove(worker, task_id)
            worker = hostname
            self._running.setdefault(hostname, set()).add(task_id)
        elif worker is not None and not running:
            self._running_remove(worker, task_id)
            worker = None
        return _Entry(info, worker, entry.beat_at if worker else None, waiting, running)

    def _remember(self, task_id: str, entry: _Entry) -> None:
        self._tasks[task_id] = entry
        self._tasks.move_to_end(task_id)
        while len(self._tasks) > self.max_tasks:
            old_id, old = self._tasks.popitem(last=False)
            if old.worker is not None:
                self._running_remove(old.worker, old_id)

    def _running_remove(self, worker: str, task_id: str) -> None:
        tasks = self._running.get(worker)
        if tasks is None:
            return
        tasks.discard(task_id)
        if not tasks:
            del self._running[worker]

    def _worker_event(self, kind: str, event: Mapping[str, Any]) -> list[EventEnvelope]:
        hostname = event.get("hostname")
        if not isinstance(hostname, str):
            return []
        if kind == "worker-offline":
            # A worker that left says nothing more about its tasks: they go stale unless
            # another worker takes them up (acks_late) and reports them again.
            for task_id in self._running.pop(hostname, set()):
                entry = self._tasks.get(task_id)
                if entry is not None:
                    self._tasks[task_id] = replace(entry, worker=None, beat_at=None)
            return []
        if kind != "worker-heartbeat" or self._beat_every <= 0:
            return []
        at = event_time(event)
        out = []
        for task_id in sorted(self._running.get(hostname, ())):
            entry = self._tasks[task_id]
            if entry.beat_at is not None and (at - entry.beat_at).total_seconds() < (
                self._beat_every
            ):
                continue
            self._tasks[task_id] = replace(entry, beat_at=at)
            info = replace(entry.info, attempt=max(entry.running)) if entry.running else entry.info
            out.append(heartbeat(task_id, info, at, tenant_id=self._tenant))
        return out
