"""The observer's cost: one user's full run, and many users' runs on two processes (issue 13).

A run is 3 outcomes x 8 drivers x 4 lags = 96 tests on a simulated user
(trackd.testing_observer), with 999 permutations. Reported, never asserted.
Run: `python -m benchmarks.observer --users 200` (also a section of `python -m benchmarks`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from typing import Any

import numpy as np

from trackd.domain.observer import AnalysisOptions, analyze
from trackd.testing_observer import Sky, simulate_user

SKY_START = date(2019, 1, 1)
SKY_DAYS = 3 * 365
OPTIONS = AnalysisOptions(permutations=999)


def _sky() -> Sky:
    return Sky.build(SKY_START, SKY_DAYS)


def one_run_seconds(days: int, repeat: int = 5) -> dict[str, float]:
    """Median wall time of one user's run (the data simulated beforehand)."""
    sky = _sky()
    rng = np.random.default_rng(days)
    users = [simulate_user(sky, rng, days=days) for _ in range(repeat)]
    analyze(users[0].outcomes, users[0].drivers, OPTIONS)  # warm-up
    times = []
    tests = 0
    for user in users:
        started = time.perf_counter()
        run = analyze(user.outcomes, user.drivers, OPTIONS)
        times.append(time.perf_counter() - started)
        tests = run.tests_run + run.tests_skipped
    return {"days": days, "tests": tests, "median_s": statistics.median(times)}


def _batch(seeds: list[int], days: int) -> tuple[int, int]:
    sky = _sky()
    findings = 0
    for seed in seeds:
        user = simulate_user(sky, np.random.default_rng(seed), days=days)
        findings += len(analyze(user.outcomes, user.drivers, OPTIONS).findings)
    return len(seeds), findings


def throughput(users: int, processes: int = 2, days: int = 180) -> dict[str, float]:
    """Users' runs (simulation included) split over `processes` processes."""
    chunks = [list(range(i, users, processes)) for i in range(processes)]
    started = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        done = list(pool.map(_batch, chunks, [days] * processes))
    seconds = time.perf_counter() - started
    return {
        "users": users,
        "processes": processes,
        "days": days,
        "seconds": seconds,
        "users_per_s": users / seconds,
        "cost_per_user_s": seconds * processes / users,
        "findings": sum(f for _, f in done),
    }


def measure(users: int) -> dict[str, Any]:
    return {
        "one_run": [one_run_seconds(180), one_run_seconds(365)],
        "throughput": throughput(users),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(measure(args.users), indent=2))


if __name__ == "__main__":
    main()
