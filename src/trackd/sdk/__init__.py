"""trackd's producer SDK: mark work as tasks and send their events to trackd.

    from trackd.sdk import Tracker, configure, track, tracked

    configure(Tracker("http://trackd:8000", token=TOKEN, source="indexer"))

    @tracked
    def fetch(url: str) -> bytes: ...

    with track("nightly-index", plan_id="plan-7") as task:
        fetch(URL)  # a child task: same trace, parent = nightly-index's first event
        task.progress(0.5, "fetched")

Events go out in the background, in batches, through a bounded buffer: a producer that
outruns the bus or server gets `TrackerBufferFull`, never a silent loss. `flush()` /
`close()` (or `await aflush()` / `aclose()`) deliver everything emitted before them.
"""

from __future__ import annotations

from trackd.sdk.client import Tracker
from trackd.sdk.context import current_task
from trackd.sdk.delivery import TrackerStats
from trackd.sdk.errors import (
    TrackerBufferFull,
    TrackerDeliveryFailed,
    TrackerError,
    TrackerNotConfigured,
)
from trackd.sdk.handle import TaskHandle
from trackd.sdk.tracking import configure, default_tracker, track, tracked

__all__ = [
    "TaskHandle",
    "Tracker",
    "TrackerBufferFull",
    "TrackerDeliveryFailed",
    "TrackerError",
    "TrackerNotConfigured",
    "TrackerStats",
    "configure",
    "current_task",
    "default_tracker",
    "track",
    "tracked",
]
