"""The little trackd remembers about Celery tasks between their events, in bounded memory.

Only task-sent and task-received name the task, its attempt and its trace; the events after
them carry nothing but the task's id. The book keeps that for the most recent `max_tasks`
tasks (least recently seen forgotten first), and which tasks each worker is running, so that a
worker's heartbeat can vouch for its running tasks. Nothing here does I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from trackd.domain.events import EventEnvelope
from trackd.jobs.celery.mapping import (
    END_EVENTS,
    TaskInfo,
    event_time,
    heartbeat,
    limit_of,
    to_envelope,
)

DEFAULT_MAX_TASKS = 10_000
_OPEN_MAX = 8  # attempts of one task tracked as waiting or running at most
_SEEN_MAX = 24  # events of one task remembered to recognise a second delivery

Open = tuple[tuple[str, int], ...]  # (worker hostname, attempt), sorted


@dataclass(frozen=True, slots=True)
class _Entry:
    info: TaskInfo
    worker: str | None = None  # the worker running it, while it runs
    beat_at: datetime | None = None  # time of the last heartbeat sent for it
    waiting: Open = ()  # attempts received and not yet started, by worker
    running: Open = ()  # attempts started and not yet ended, by worker
    seen: tuple[tuple[int, int], ...] = ()  # event fingerprint -> the attempt it was given


def _fingerprint(event: Mapping[str, Any]) -> int:
    """What tells one Celery event from another of the same task (a redelivery is equal)."""
    fields = ("type", "timestamp", "hostname", "clock", "retries")
    return hash(tuple(repr(event.get(k)) for k in fields))


def _attempt_of(kind: str, host: str, entry: _Entry) -> int | None:
    """The attempt an event that does not name one belongs to, from the task's open attempts.

    Arrival order is not the order things happened: each sender's events arrive in the order
    it sent them, but the client's task-sent, each worker's events, and the task-sent of a
    retry (published by the retrying task on a connection of its own) interleave in any way;
    the next attempt may run on another worker whose events all arrive first. And within one
    worker consecutive attempts race: the next can be received before the worker reports the
    previous started, and can start (or end) before it reports the previous retried.

    Every attempt is received, started and ended on one worker, in that order, so the
    attempt is looked for among that worker's: task-started is its earliest attempt received
    and not started; task-retried ends its earliest attempt running; success or failure ends
    its latest running (a task ends after all its retries). Only when the worker has none
    (its earlier events were missed) do the task's open attempts on any worker decide.
    """
    for scope in (tuple(o for o in entry.waiting if o[0] == host), entry.waiting):
        if kind == "task-started" and scope:
            return min(a for _, a in scope)
    for scope in (tuple(o for o in entry.running if o[0] == host), entry.running):
        if kind == "task-retried" and scope:
            return min(a for _, a in scope)
        if kind in ("task-succeeded", "task-failed") and scope:
            return max(a for _, a in scope)
    return None


def _add(opened: Open, host: str, attempt: int) -> Open:
    if (host, attempt) in opened:
        return opened
    return tuple(sorted((*opened, (host, attempt)), key=lambda o: (o[1], o[0])))[-_OPEN_MAX:]


def _drop(opened: Open, attempt: int, host: str | None = None) -> Open:
    """`opened` without `attempt` (on `host` if given, else on every worker)."""
    return tuple(o for o in opened if not (o[1] == attempt and host in (None, o[0])))


def app_task_limits(app: Any, *, finalize: bool = False) -> Callable[[str], int | None]:
    """The attempts each task of a Celery app allows (its max_retries + 1), by task name.

    None for a task the app does not have (an app made from the broker's URL alone knows
    only Celery's own tasks), for one with no limit, and, unless `finalize`, while the app
    is not finalized yet: reading its registry would finalize it from inside whatever Celery
    is doing (a signal handler runs in the middle of publishing).
    """

    def limit(name: str) -> int | None:
        if not (finalize or getattr(app, "finalized", False)):
            return None
        task = app.tasks.get(name)
        return None if task is None else limit_of(getattr(task, "max_retries", None))

    return limit


class TaskBook:
    """Translates Celery events into envelopes, remembering tasks between their events.

    Args:
        max_tasks: tasks remembered at most; an event of a forgotten task still becomes an
            envelope, with only what the event itself says (attempt 1 if it does not say).
        heartbeat_every: seconds between two liveness events for one running task, sent
            when its worker's heartbeat arrives; 0 sends none.
        tenant_id: the tenant the envelopes name, or None for the ingest's default.
        task_limits: the attempts a task allows (its max_retries + 1) by task name, when the
            Celery app is at hand (`app_task_limits`); else Celery's default is assumed.
    """

    def __init__(
        self,
        max_tasks: int = DEFAULT_MAX_TASKS,
        *,
        heartbeat_every: float = 60.0,
        tenant_id: str | None = None,
        task_limits: Callable[[str], int | None] | None = None,
    ) -> None:
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        self.max_tasks = max_tasks
        self._beat_every = heartbeat_every
        self._tenant = tenant_id
        self._limits = task_limits
        self._tasks: OrderedDict[str, _Entry] = OrderedDict()
        self._running: dict[str, set[str]] = {}  # worker hostname -> task ids

    def __len__(self) -> int:
        return len(self._tasks)

    def info(self, task_id: str) -> TaskInfo | None:
        entry = self._tasks.get(task_id)
        return entry.info if entry else None

    def task_limit(self, name: object) -> int | None:
        """The attempts the task named `name` allows, when the app says."""
        if self._limits is None or not isinstance(name, str) or not name:
            return None
        return self._limits(name)

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
        mark = _fingerprint(event)
        again = next((a for m, a in entry.seen if m == mark), None)
        hostname = event.get("hostname")
        host = hostname if isinstance(hostname, str) else ""
        attempt = again if again is not None else _attempt_of(kind, host, entry)
        if again is not None and kind == "task-retried":
            attempt = again - 1  # remembered as the attempt it announces
        info = entry.info if attempt is None else replace(entry.info, attempt=attempt)
        name = event.get("name") if isinstance(event.get("name"), str) else info.name
        if info.max_attempts is None:
            info = replace(info, max_attempts=self.task_limit(name))
        envelope = to_envelope(event, info, tenant_id=self._tenant)
        if envelope is None:
            return []
        if again is None:  # a second delivery says nothing new: the same envelope again
            # The limit is kept; the attempt only ever grows (in _advance).
            known = replace(entry.info, max_attempts=info.max_attempts)
            entry = self._advance(replace(entry, info=known), kind, event, envelope)
            seen = (*entry.seen, (mark, envelope.attempt or 1))[-_SEEN_MAX:]
            entry = replace(entry, seen=seen)
        self._remember(task_id, entry)
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
            max_attempts=entry.info.max_attempts,
        )
        waiting, running = entry.waiting, entry.running
        hostname = event.get("hostname")
        host = hostname if isinstance(hostname, str) else ""
        if kind == "task-received":
            waiting = _add(waiting, host, attempt)
        elif kind == "task-started":
            waiting = _drop(waiting, attempt)
            running = _add(running, host, attempt)
        elif kind == "task-retried":
            running = _drop(running, attempt - 1)
        elif kind in END_EVENTS:
            waiting, running = _drop(waiting, attempt), _drop(running, attempt)
        worker = entry.worker
        if kind == "task-started" and isinstance(hostname, str) and hostname:
            if worker is not None and worker != hostname:
                self._running_remove(worker, task_id)
            worker = hostname
            self._running.setdefault(hostname, set()).add(task_id)
        elif worker is not None and all(h != worker for h, _ in running):
            self._running_remove(worker, task_id)
            worker = None
        beat_at = entry.beat_at if worker else None
        return _Entry(info, worker, beat_at, waiting, running, entry.seen)

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
            mine = [a for h, a in entry.running if h == hostname]
            info = replace(entry.info, attempt=max(mine)) if mine else entry.info
            out.append(heartbeat(task_id, info, at, tenant_id=self._tenant))
        return out
