"""The peer: Celery's event-state reducer (`celery.events.state.State`, the core of Flower)
on the Celery events equivalent to the trackd mix, in memory, decoding included."""

from __future__ import annotations

import json
import time
from typing import Any

from benchmarks import workload

# trackd event -> the Celery event a Celery app emits at the same point of a task's life.
_TYPES = {
    "action-requests": "task-sent",
    "task.state_changed": "task-started",
    "task.progress": "task-progress",  # a custom event, as apps send with send_event
    "action-results": "task-succeeded",
}


def celery_stream(tasks: int) -> list[bytes]:
    """The mix (same tasks, order, duplicates and late deliveries) as Celery event JSON."""
    out = []
    for clock, (topic, key, body) in enumerate(workload.build(tasks)):
        ev: dict[str, Any] = json.loads(body)
        kind = _TYPES.get(ev["type"], _TYPES.get(topic, "task-received"))
        celery_event = {
            "type": kind,
            "uuid": key,
            "hostname": f"celery@{ev['source']}",
            "timestamp": time.mktime(time.strptime(ev["time"][:19], "%Y-%m-%dT%H:%M:%S")),
            "local_received": time.time(),
            "clock": clock,
            "pid": 1,
        }
        if kind == "task-sent":
            celery_event.update(
                name=ev["type"],
                args="()",
                kwargs=json.dumps(ev["data"]),
                root_id=ev.get("trace_id"),
                parent_id=None,
            )
        elif kind == "task-progress":
            celery_event.update(progress=ev["data"].get("progress"))
        elif kind == "task-succeeded":
            celery_event.update(result=json.dumps(ev["data"]), runtime=0.25)
        out.append(json.dumps(celery_event).encode())
    return out


def run_celery(bodies: list[bytes]) -> float:
    """Seconds for Celery's State to decode and reduce every event."""
    from celery.events.state import State

    state = State(max_tasks_in_memory=len(bodies))
    started = time.perf_counter()
    for body in bodies:
        state.event(json.loads(body))
    return time.perf_counter() - started
