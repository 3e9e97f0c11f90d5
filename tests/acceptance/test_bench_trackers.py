"""The benchmark of league trackers refreshed at once (`make bench`'s trackers section) runs end
to end at a small size: every tracker's daily refresh becomes a completed poll and a snapshot,
through `trackd scheduler` and `trackd worker` subprocesses and the local fake of the site.

Figures are not checked here (the machine running the tests is shared and loaded); what must
hold at any speed is that nothing fails, retries, is blocked or is left unfinished.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from procs import clean_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TRACKERS = 30


def test_refresh_benchmark_completes_every_tracker(database_url: str, redis_url: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.trackers",
            "--database-url",
            database_url,
            "--redis-url",
            redis_url,
            "--trackers",
            str(TRACKERS),
            "--concurrency",
            "4",
        ],
        cwd=ROOT,  # benchmarks/ is a package of the repository, not of the installed project
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

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
