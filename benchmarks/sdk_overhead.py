"""The SDK's cost per `@tracked` call, against the bare call, in the same run.

The tracker publishes to a bus that accepts and discards, so the figures are the SDK's own
work, not trackd's ingest. Two figures, because the SDK's work runs on two threads:

- `caller_us`: CPU time of the calling thread per call (`time.thread_time`): building the
  call's three events and handing them to the delivery buffer. This is what a call costs the
  code that makes it: the issue's "per `@tracked` call, delivery included" (delivery meaning
  the hand-over; the sending runs on the SDK's delivery thread).
- `process_cpu_us`: CPU time of the whole process per call, from the first call to the last
  event published: the caller's part plus the delivery thread's (encoding each event's JSON
  and publishing the batches).
- `tracked_us`: wall-clock per call over the same span. The two threads share the interpreter
  lock, so on a loaded machine this also counts the time each waits for the other to be
  scheduled; `overhead_us` is this minus the bare call.
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
    """Microseconds per call: bare; the caller thread's CPU per tracked call; the process's CPU
    and the wall-clock per tracked call until every event is published; that minus the bare
    call."""

    def work() -> None:
        return None

    bare = min(_per_call_us(work, calls) for _ in range(3))
    bus = DiscardBus()
    tracker = Tracker(bus=bus, source="bench", max_buffer=calls * 4, batch_size=500)  # type: ignore[arg-type]
    traced = tracked(tracker=tracker)(work)
    traced()  # start the publisher
    tracker.flush()
    started = time.perf_counter()
    process_started = time.process_time()
    cpu_started = time.thread_time()
    for _ in range(calls):
        traced()
    caller_us = (time.thread_time() - cpu_started) / calls * 1e6
    tracker.flush()  # delivery counts: the events must have left the process
    tracked_us = (time.perf_counter() - started) / calls * 1e6
    process_cpu_us = (time.process_time() - process_started) / calls * 1e6
    tracker.close()
    return {
        "bare_us": bare,
        "caller_us": caller_us,
        "process_cpu_us": process_cpu_us,
        "tracked_us": tracked_us,
        "overhead_us": tracked_us - bare,
        "events_per_call": bus.messages / (calls + 1),
    }


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000, help="tracked calls to time")
    args = parser.parse_args()
    print(json.dumps(measure(args.calls)))


if __name__ == "__main__":
    main()
