"""A realistic event mix: per task a request, state changes, five progress updates and a
result; 1 % of events duplicated and 5 % delivered out of order."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

PROGRESS_STEPS = 5


def task_events(task: int, plan: str, start: datetime, rnd: random.Random) -> list[dict[str, Any]]:
    task_id = f"task-{task}"
    trace = f"trace-{plan}"
    t = start
    events: list[dict[str, Any]] = []

    def add(event_type: str, topic: str, data: dict[str, Any] | None, **extra: Any) -> None:
        nonlocal t
        t += timedelta(milliseconds=rnd.randint(5, 50))
        events.append(
            {
                "id": f"{task_id}-{len(events)}",
                "source": f"worker-{task % 7}",
                "type": event_type,
                "topic": topic,
                "time": t.isoformat(),
                "trace_id": trace,
                "plan_id": plan,
                "data": data,
                "sequence": len(events),
                **extra,
            }
        )

    add("work.requested", "action-requests", {"input": task}, correlation_id=task_id)
    add(
        "task.state_changed",
        "system-events",
        {"task_id": task_id, "previous_state": "pending", "new_state": "running"},
    )
    for step in range(1, PROGRESS_STEPS + 1):
        add(
            "task.progress",
            "system-events",
            {
                "task_id": task_id,
                "state": "running",
                "progress": step / (PROGRESS_STEPS + 1),
                "message": f"step {step} of {PROGRESS_STEPS}",
            },
        )
    add("work.completed", "action-results", {"success": True, "rows": task}, correlation_id=task_id)
    return events


def build(
    tasks: int, *, seed: int = 7, tasks_per_plan: int = 50, concurrency: int = 200
) -> list[tuple[str, str, bytes]]:
    """(topic, partition key, body) for `tasks` tasks, mixed as a live system delivers them.

    Tasks start one after another so that about `concurrency` of them run at any moment
    (a task lasts about 9 x 27 ms).
    """
    rnd = random.Random(seed)
    start = datetime.now(UTC) - timedelta(minutes=30)
    spacing = timedelta(milliseconds=9 * 27.5 / concurrency)
    stream: list[dict[str, Any]] = []
    for task in range(tasks):
        stream.extend(
            task_events(task, f"plan-{task // tasks_per_plan}", start + task * spacing, rnd)
        )
    # Interleave tasks the way concurrent workers do, keeping each task's own order...
    stream.sort(key=lambda e: e["time"])
    # ...then swap 5 % of events with a near neighbour (late delivery) and repeat 1 %.
    for i in rnd.sample(range(len(stream) - 3), k=len(stream) // 20):
        j = i + rnd.randint(1, 3)
        stream[i], stream[j] = stream[j], stream[i]
    for i in sorted(rnd.sample(range(len(stream)), k=len(stream) // 100), reverse=True):
        stream.insert(i + rnd.randint(1, 20), stream[i])
    out = []
    for ev in stream:
        key = ev.get("correlation_id") or ev["data"]["task_id"]
        out.append((ev["topic"], key, json.dumps(ev).encode()))
    return out


def table_rows(tasks: int) -> int:
    """Rows a durable store writes for one pass of the mix (timeline + tasks + transitions)."""
    per_task = 2 + PROGRESS_STEPS + 1
    return tasks * per_task + tasks + tasks * 3
