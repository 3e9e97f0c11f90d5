"""Peak RSS of an ingest process under sustained load.

Run as its own process (`python -m benchmarks.memory --seconds 300`), so the figure is that of
one trackd process: the in-process bus, ingest and SQLite, fed at a steady rate. Prints one
JSON line with the RSS samples' summary: start, peak and end of the warm part (after the first
fifth of the run, 30 s at most), the least-squares slope of RSS over that part in MiB per
minute, and whether it is flat: the fitted rise over the warm part is at most
`FLAT_MIB` or `FLAT_SHARE` of the starting RSS, whichever is larger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmarks import workload
from trackd.runtime import Runtime
from trackd.settings import Settings

FLAT_MIB = 2.0
FLAT_SHARE = 0.02


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def sustained(database_url: str, seconds: float, rate: int) -> dict[str, float]:
    runtime = Runtime.build(Settings(database_url=database_url))
    await runtime.start()
    chunk_tasks = max(1, rate // 9)  # about one second of events per chunk
    samples: list[tuple[float, float]] = []
    published = 0
    try:
        started = time.perf_counter()
        n = 0
        while time.perf_counter() - started < seconds:
            tick = time.perf_counter()
            stream = workload.build(chunk_tasks, seed=n, tasks_per_plan=50)
            by_topic: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
            for topic, key, body in stream:
                # Fresh ids each round: the store keeps growing as it would in production.
                by_topic[topic].append(
                    (f"{n}-{key}", body.replace(b'"task-', f'"r{n}-task-'.encode()))
                )
            await asyncio.gather(
                *(
                    runtime.bus.publish(t, [b for _, b in items], [k for k, _ in items])
                    for t, items in by_topic.items()
                )
            )
            published += len(stream)
            n += 1
            samples.append((time.perf_counter() - started, rss_mib()))
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))
    finally:
        await runtime.stop()
    warm = [(t, r) for t, r in samples if t >= min(30.0, seconds / 5)] or samples
    slope = trend(warm)
    rise = slope * (warm[-1][0] - warm[0][0])
    return {
        "seconds": seconds,
        "events": published,
        "events_per_s": published / seconds,
        "rss_start_mib": warm[0][1],
        "rss_peak_mib": max(r for _, r in samples),
        "rss_end_mib": warm[-1][1],
        "rss_slope_mib_per_min": slope * 60,
        "flat": rise <= max(FLAT_MIB, FLAT_SHARE * warm[0][1]),
    }


def trend(samples: list[tuple[float, float]]) -> float:
    """MiB per second: the least-squares slope of (seconds, MiB); 0 with fewer than 2 samples."""
    if len(samples) < 2:
        return 0.0
    return statistics.linear_regression([t for t, _ in samples], [r for _, r in samples]).slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--rate", type=int, default=1500, help="events per second offered")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(
            sustained(f"sqlite+aiosqlite:///{tmp}/rss.db", args.seconds, args.rate)
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
