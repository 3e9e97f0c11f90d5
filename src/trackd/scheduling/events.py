"""A poll's lifecycle as trackd events, so that polls show up among the tasks (the task reads).

Each change of a poll is a `task.state_changed` on `system-events`, the events the SDK sends
for a tracked call: task_id = the poll's id, type (`event_type`) = `poll.{source}`, and the
attempt and a per-poll sequence number on the envelope, so ingest orders them exactly
whichever worker sent them. The producer (`source`, hence the task's agent) is
`poll.{source}`, which gives per-source figures in `/v1/tracker/metrics`.

Poll statuses map onto task states: blocked is `waiting` (the task waits for the host), a
retry is `pending` in the next attempt. Event ids derive from the poll and the sequence
number, so an event sent twice is folded once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from trackd.domain import lifecycle
from trackd.domain.events import SYSTEM_EVENTS
from trackd.domain.polls import PollStatus
from trackd.domain.states import TaskState
from trackd.store.models import PollRow

TOPIC: Final = SYSTEM_EVENTS

TASK_STATE: Final = {
    PollStatus.PENDING: TaskState.PENDING,
    PollStatus.RUNNING: TaskState.RUNNING,
    PollStatus.BLOCKED: TaskState.WAITING,
    PollStatus.COMPLETED: TaskState.COMPLETED,
    PollStatus.FAILED: TaskState.FAILED,
    PollStatus.CANCELLED: TaskState.CANCELLED,
}


def task_type(source: str) -> str:
    return f"poll.{source}"


@dataclass(frozen=True, slots=True)
class PollEvent:
    """One change of a poll, ready to encode."""

    poll: PollRow
    seq: int
    at: datetime
    state: TaskState
    attempt: int
    previous: TaskState | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    heartbeat: bool = False

    def encode(self, worker: str) -> tuple[str, bytes]:
        """The partition key (the poll's id) and the JSON envelope."""
        poll = self.poll
        task_id = str(poll.id)
        extra: dict[str, Any] = {"source": poll.source, "worker": worker, **self.extra}
        if poll.schedule_id is not None:
            extra["schedule_id"] = str(poll.schedule_id)
        head: dict[str, Any] = {
            "event_id": f"poll.{task_id}.{self.seq}",
            "time": self.at,
            "source": task_type(poll.source),
            "task_id": task_id,
            "event_type": task_type(poll.source),
            "max_attempts": poll.max_attempts,
            "extra": extra,
            "sequence": self.seq,
            "trace_id": task_id,
            "attempt": max(1, self.attempt),
            "tenant_id": poll.tenant_id,
        }
        if self.heartbeat:
            event = lifecycle.progress(state=self.state.value, **head)
        else:
            event = lifecycle.state_changed(
                new_state=self.state.value,
                previous_state=None if self.previous is None else self.previous.value,
                reason=None if self.reason is None else self.reason[:2000],
                **head,
            )
        return task_id, lifecycle.encode(event)
