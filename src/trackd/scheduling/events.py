"""A poll's lifecycle as trackd events, so that polls show up among the tracker's tasks.

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

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from trackd.domain.events import SYSTEM_EVENTS, TASK_PROGRESS, TASK_STATE_CHANGED
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
        data: dict[str, Any] = {
            "task_id": task_id,
            "event_type": task_type(poll.source),
            "max_attempts": poll.max_attempts,
            "source": poll.source,
            "worker": worker,
            **self.extra,
        }
        if poll.schedule_id is not None:
            data["schedule_id"] = str(poll.schedule_id)
        if self.heartbeat:
            event_type = TASK_PROGRESS
            data["state"] = self.state.value
        else:
            event_type = TASK_STATE_CHANGED
            data["new_state"] = self.state.value
            if self.previous is not None:
                data["previous_state"] = self.previous.value
            if self.reason is not None:
                data["reason"] = self.reason[:2000]
        envelope = {
            "id": f"poll.{task_id}.{self.seq}",
            "type": event_type,
            "topic": TOPIC,
            "source": task_type(poll.source),
            "time": self.at.isoformat(),
            "tenant_id": poll.tenant_id,
            "trace_id": task_id,
            "sequence": self.seq,
            "attempt": max(1, self.attempt),
            "data": data,
        }
        return task_id, json.dumps(envelope, separators=(",", ":"), default=str).encode()
