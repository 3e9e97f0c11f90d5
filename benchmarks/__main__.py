"""Run the benchmarks: `python -m benchmarks [--tasks N]` (what `make bench` calls).

Prints a table and writes the figures as JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.ingest import IngestResult, postgres_case, sqlite_case


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


async def main(tasks: int, postgres_url: str | None) -> list[IngestResult]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(await sqlite_case(tmp, tasks))
    if postgres_url:
        results.append(await postgres_case(postgres_url, tasks))
    return results


def report(results: list[IngestResult], tasks: int) -> None:
    table = Table(
        "ingest (publish -> durable)",
        "events",
        "events/s",
        "rows/s",
        "raw rows/s",
        "x raw ceiling",
        title=f"trackd ingest, {tasks} tasks",
    )
    for r in results:
        table.add_row(
            r.backend,
            str(r.events),
            f"{r.events_per_s:,.0f}",
            f"{r.rows_per_s:,.0f}",
            f"{r.raw_rows_per_s:,.0f}",
            f"{r.ratio_to_raw:.2f}",
        )
    Console().print(table)
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    path = out / f"ingest-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(
        json.dumps(
            {
                "machine": machine(),
                "tasks": tasks,
                "results": [
                    {
                        **r.__dict__,
                        "events_per_s": r.events_per_s,
                        "rows_per_s": r.rows_per_s,
                        "raw_rows_per_s": r.raw_rows_per_s,
                        "ratio_to_raw": r.ratio_to_raw,
                    }
                    for r in results
                ],
            },
            indent=2,
        )
    )
    Console().print(f"written to {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--tasks", type=int, default=5000, help="tasks in the mix (9 events each, plus duplicates)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TRACKD_BENCH_POSTGRES_URL")
        or os.environ.get("TRACKD_TEST_POSTGRES_URL"),
        help="admin URL of a PostgreSQL server to benchmark on",
    )
    args = parser.parse_args()
    report(asyncio.run(main(args.tasks, args.postgres_url)), args.tasks)
