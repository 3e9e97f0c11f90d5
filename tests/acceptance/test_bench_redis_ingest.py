"""The Redis ingest benchmark (`make bench`'s redis_ingest section) end to end at a small size:
a published backlog drained into PostgreSQL by one and by two `trackd ingest` processes.

Figures are not checked (the machine running the tests is shared and loaded); the benchmark
itself fails unless every event reached the timeline once and every task completed.
"""

from __future__ import annotations

import pytest
from procs import benchmark

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TASKS = 30


def test_redis_ingest_benchmark_drains_the_backlog_with_one_and_two_processes(
    postgres_server: str, redis_url: str
) -> None:
    results = benchmark(
        "benchmarks.redis_ingest",
        "--postgres-url",
        postgres_server,
        "--redis-url",
        redis_url,
        "--tasks",
        str(TASKS),
    )
    bus = [r for r in results if r["kind"] == "bus"]
    drains = [r for r in results if r["kind"] == "ingest"]
    assert [r["reader"] for r in bus] == ["XREADGROUP + XACK", "bus fetch + ack"]
    assert [r["processes"] for r in drains] == [1, 2]
    # Every figure is over the same mix: 8 events per task, plus 1 % repeated.
    events = {r["events"] for r in results}
    assert len(events) == 1 and events.pop() >= 8 * TASKS
    assert all(r["events_per_s"] > 0 for r in results)
    assert all(r["cpu_seconds"] > 0 for r in drains)
