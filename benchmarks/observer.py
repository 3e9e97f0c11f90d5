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
    wall, cpu = [], []
    tests = 0
    for user in users:
        started, started_cpu = time.perf_counter(), time.process_time()
        run = analyze(user.outcomes, user.drivers, OPTIONS)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        tests = run.tests_run + run.tests_skipped
    return {
        "days": days,
        "tests": tests,
        "median_s": statistics.median(wall),
        "median_cpu_s": statistics.median(cpu),
    }


_SKY: list[Sky] = []


def _start_worker() -> None:
    _SKY.append(_sky())


def _batch(seeds: list[int], days: int) -> tuple[int, float]:
    """Simulate then analyse each seed's user; the CPU seconds of the analyses."""
    findings, cpu = 0, 0.0
    for seed in seeds:
        user = simulate_user(_SKY[0], np.random.default_rng(seed), days=days)
        started = time.process_time()
        findings += len(analyze(user.outcomes, user.drivers, OPTIONS).findings)
        cpu += time.process_time() - started
    return findings, cpu


def throughput(users: int, processes: int = 2, days: int = 180) -> dict[str, float]:
    """Users' runs split over `processes` processes (each builds the sky first, untimed)."""
    chunks = [list(range(i, users, processes)) for i in range(processes)]
    with ProcessPoolExecutor(processes, initializer=_start_worker) as pool:
        list(pool.map(_batch, [[10**6 + i] for i in range(processes)], [days] * processes))
        started = time.perf_counter()
        done = list(pool.map(_batch, chunks, [days] * processes))
        seconds = time.perf_counter() - started
    return {
        "users": users,
        "processes": processes,
        "days": days,
        "seconds": seconds,
        "users_per_s": users / seconds,
        "wall_per_user_on_a_process_s": seconds * processes / users,
        "analysis_cpu_per_user_s": sum(c for _, c in done) / users,
        "findings": sum(f for f, _ in done),
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
