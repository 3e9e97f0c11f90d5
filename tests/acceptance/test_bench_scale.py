"""The tracking modules' scale benchmarks (`make bench`'s transits and fanout sections) run end
to end at a small size: every user's transits stored through `trackd scheduler` and
`trackd worker` subprocesses; one solar poll's change queued to every user's channel, on SQLite
and PostgreSQL.

Figures are not checked here (the machine running the tests is shared and loaded); what must
hold at any speed is that every user is served and nothing fails.
"""

from __future__ import annotations

import pytest
from procs import benchmark

pytestmark = pytest.mark.slow

USERS = 40


def test_transit_benchmark_stores_every_users_reading(postgres_server: str, redis_url: str) -> None:
    (result,) = benchmark(
        "benchmarks.transits",
        "--postgres-url",
        postgres_server,
        "--redis-url",
        redis_url,
        "--users",
        str(USERS),
        "--shards",
        "4",
    )
    assert (result["backend"], result["users"], result["shards"]) == ("postgresql", USERS, 4)
    assert (result["snapshots"], result["failed"], result["retried"]) == (USERS, 0, 0)
    assert result["worker_cpu_ms_per_user"] > 0


def test_fanout_benchmark_queues_the_change_and_event_to_every_channel(
    postgres_server: str,
) -> None:
    results = benchmark(
        "benchmarks.solar_fanout", "--users", str(USERS), "--postgres-url", postgres_server
    )
    assert [r["backend"] for r in results] == ["sqlite", "postgresql"]
    for result in results:
        # One poll; per channel the storm-level change and its event.
        assert (result["polls"], result["channel_messages"]) == (1, 2 * USERS)
