"""The cost of trackd's astronomy, for the daily transit refresh of many users (issue 12).

What is shared (computed once per instant or window, for everyone) is measured apart from what
is per chart. Run: `python -m benchmarks.astronomy` (not part of `make bench` yet).
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from trackd.domain.astronomy import (
    BODIES,
    aspects,
    moon_state,
    planet_positions,
    position_series,
    upcoming_exact,
)

INSTANT = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def _seconds(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall time of one call, after a warm-up (the ephemeris loads once per process)."""
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _charts(count: int) -> list[dict[str, float]]:
    rng = random.Random(12)
    names = [*BODIES, "ascendant", "midheaven"]
    return [{n: rng.uniform(0, 360) for n in names} for _ in range(count)]


def _calibration_us() -> float:
    """A fixed pure-Python loop: the same figure on two runs tells how loaded the machine was."""

    def loop() -> float:
        total = 0.0
        for i in range(1_000):
            total += (i * 1.5 + 180.0) % 360.0
        return total

    return _seconds(loop, 50) * 1e6


def measure(charts: int = 2_000) -> dict[str, float]:
    natal = _charts(charts)
    positions = planet_positions(INSTANT)
    series_90 = position_series(INSTANT, 90)
    slow = [b for b in BODIES if b != "moon"]
    series_30_no_moon = position_series(INSTANT, 30, slow)
    # A daily refresh only needs the day that enters the horizon.
    series_1_no_moon = position_series(INSTANT, 1, slow)

    def per_chart(fn: Callable[[dict[str, float]], Any], sample: int) -> float:
        subset = natal[:sample]
        started = time.perf_counter()
        for chart in subset:
            fn(chart)
        return (time.perf_counter() - started) / len(subset)

    return {
        "calibration_loop_us": _calibration_us(),
        "planet_positions_s": _seconds(lambda: planet_positions(INSTANT), 5),
        "moon_state_s": _seconds(lambda: moon_state(INSTANT), 3),
        "position_series_90d_s": _seconds(lambda: position_series(INSTANT, 90), 1),
        "aspects_per_chart_us": per_chart(lambda c: aspects(positions, c), charts) * 1e6,
        "upcoming_90d_all_bodies_per_chart_ms": per_chart(
            lambda c: upcoming_exact(series_90, c), 200
        )
        * 1e3,
        "upcoming_30d_without_moon_per_chart_ms": per_chart(
            lambda c: upcoming_exact(series_30_no_moon, c), 200
        )
        * 1e3,
        "upcoming_1d_without_moon_per_chart_ms": per_chart(
            lambda c: upcoming_exact(series_1_no_moon, c), 1_000
        )
        * 1e3,
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
