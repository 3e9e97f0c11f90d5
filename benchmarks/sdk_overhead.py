"""The SDK's cost per `@tracked` call, against the bare call, in the same run.

The tracker publishes to a bus that accepts and discards, so the figure is the SDK's own work
(the caller's part and the background publisher's), not trackd's ingest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from trackd.sdk import Tracker, tracked


class DiscardBus:
    """A bus that takes every message and keeps none."""

    def __init__(self) -> None:
        self.messages = 0

    async def publish(
        self, topic: str, bodies: Sequence[bytes], keys: Sequence[str | None] | None = None
    ) -> None:
        self.messages += len(bodies)

    async def subscribe(self, topics: Sequence[str], group: str, consumer: str) -> None:
        raise NotImplementedError("the discarding bus has no consumers")

    async def close(self) -> None:
        return None


def _per_call_us(fn: object, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - started) / calls * 1e6


def measure(calls: int = 20_000) -> dict[str, float]:
    """Microseconds per call: bare, tracked (caller plus background delivery), overhead."""

    def work() -> None:
        return None

    bare = min(_per_call_us(work, calls) for _ in range(3))
    bus = DiscardBus()
    tracker = Tracker(bus=bus, source="bench", max_buffer=calls * 4, batch_size=500)  # type: ignore[arg-type]
    traced = tracked(tracker=tracker)(work)
    traced()  # start the publisher
    tracker.flush()
    started = time.perf_counter()
    for _ in range(calls):
        traced()
    tracker.flush()  # delivery counts: the events must have left the process
    tracked_us = (time.perf_counter() - started) / calls * 1e6
    tracker.close()
    return {
        "bare_us": bare,
        "tracked_us": tracked_us,
        "overhead_us": tracked_us - bare,
        "events_per_call": bus.messages / (calls + 1),
    }
