"""The benchmark of league trackers refreshed at once (`make bench`'s trackers section) runs end
to end at a small size: every tracker's daily refresh becomes a completed poll and a snapshot,
through `trackd scheduler` and `trackd worker` subprocesses and the local fake of the site.

Figures are not checked here (the machine running the tests is shared and loaded); what must
hold at any speed is that nothing fails, retries, is blocked or is left unfinished.
"""

from __future__ import annotations

import pytest
from procs import benchmark

pytestmark = pytest.mark.slow

TRACKERS = 30


def test_refresh_benchmark_completes_every_tracker(database_url: str, redis_url: str) -> None:
    *_, result = benchmark(
        "benchmarks.trackers",
        "--database-url",
        database_url,
        "--redis-url",
        redis_url,
        "--trackers",
        str(TRACKERS),
        "--concurrency",
        "4",
        timeout=100,
    )

    assert result["trackers"] == TRACKERS
    assert result["completed"] == TRACKERS
    assert result["snapshots"] == TRACKERS
    assert result["requests"] == TRACKERS  # one request per refresh, no retry
    assert (result["failed"], result["retried"], result["blocked"], result["unfinished"]) == (
        0,
        0,
        0,
        0,
    )
    assert result["backend"] == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert result["concurrency"] == 4
    # Every poll started after its due time and was fired by the scheduler.
    assert 0 <= result["lag_p50_s"] <= result["lag_p99_s"] <= result["lag_max_s"]
    assert result["fired_max_s"] >= 0
    assert result["polls_per_s"] > 0
    assert result["worker_peak_rss_mib"] >= result["worker_rss_start_mib"] > 0
    assert result["scheduler_peak_rss_mib"] > 0
