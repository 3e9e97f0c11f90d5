"""Run the benchmarks: `python -m benchmarks` (what `make bench` calls).

Sections: durable ingest against the raw bulk-insert ceiling; Celery's in-memory reducer (the
peer) on the equivalent events; read latency on a store of 1,000,000 tasks; the SDK's cost
per tracked call; RSS of an ingest process under sustained load. Prints tables and writes
all figures as JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import peer_celery, reads
from benchmarks.ingest import IngestResult, postgres_case, scratch_database, sqlite_case

console = Console()


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


async def ingest_section(tasks: int, postgres_url: str | None) -> list[IngestResult]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(await sqlite_case(tmp, tasks))
    if postgres_url:
        results.append(await postgres_case(postgres_url, tasks))
    return results


async def reads_section(postgres_url: str | None) -> list[reads.Latency]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        out += await reads.measure(f"sqlite+aiosqlite:///{tmp}/reads.db", "sqlite")
    if postgres_url:
        async with scratch_database(postgres_url, "reads") as url:
            out += await reads.measure(url, "postgresql")
    return out


def memory_section(seconds: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--tasks",
        type=int,
        default=5000,
        help="tasks in the ingest mix (9 events each, plus duplicates)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TRACKD_BENCH_POSTGRES_URL")
        or os.environ.get("TRACKD_TEST_POSTGRES_URL"),
        help="admin URL of a PostgreSQL server to benchmark on",
    )
    parser.add_argument(
        "--rss-seconds", type=float, default=300.0, help="length of the sustained run for peak RSS"
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=["ingest", "peer", "reads", "sdk", "rss"]
    )
    args = parser.parse_args()
    report: dict[str, Any] = {
        "machine": machine(),
        "tasks": args.tasks,
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    if "ingest" not in args.skip:
        console.print("ingest ...")
        ingest = asyncio.run(ingest_section(args.tasks, args.postgres_url))
        report["ingest"] = [
            {**asdict(r), "events_per_s": r.events_per_s, "ratio_to_raw": r.ratio_to_raw}
            for r in ingest
        ]
        table = Table(
            "backend",
            "events",
            "events/s",
            "rows/s",
            "raw rows/s",
            "x raw ceiling",
            title="durable ingest (publish -> committed records)",
        )
        for r in ingest:
            table.add_row(
                r.backend,
                str(r.events),
                f"{r.events_per_s:,.0f}",
                f"{r.rows_per_s:,.0f}",
                f"{r.raw_rows_per_s:,.0f}",
                f"{r.ratio_to_raw:.2f}",
            )
        console.print(table)
    if "peer" not in args.skip:
        console.print("peer ...")
        bodies = peer_celery.celery_stream(args.tasks)
        seconds = peer_celery.run_celery(bodies)
        peer = {"events": len(bodies), "events_per_s": len(bodies) / seconds}
        report["peer_celery_state"] = peer
        table = Table(
            "trackd backend",
            "trackd durable events/s",
            "Celery State events/s",
            "ratio",
            title="against Celery's in-memory reducer (Flower's core)",
        )
        for r in report.get("ingest", []):
            ratio = r["events_per_s"] / peer["events_per_s"]
            r["ratio_to_celery"] = ratio
            table.add_row(
                r["backend"],
                f"{r['events_per_s']:,.0f}",
                f"{peer['events_per_s']:,.0f}",
                f"{ratio:.2f}",
            )
        console.print(table)
    if "reads" not in args.skip:
        console.print("reads (fills a store of 1,000,000 tasks) ...")
        latencies = asyncio.run(reads_section(args.postgres_url))
        report["reads"] = [asdict(x) for x in latencies]
        table = Table("backend", "query", "p50 ms", "p95 ms", title="read latency, 1M tasks")
        for x in latencies:
            table.add_row(x.backend, x.route, f"{x.p50_ms:.1f}", f"{x.p95_ms:.1f}")
        console.print(table)
    if "sdk" not in args.skip:
        console.print("sdk ...")
        from benchmarks import sdk_overhead

        sdk = sdk_overhead.measure()
        report["sdk"] = sdk
        console.print(
            f"@tracked overhead: {sdk['overhead_us']:.1f} µs per call "
            f"(bare call {sdk['bare_us']:.2f} µs, tracked {sdk['tracked_us']:.1f} µs)"
        )
    if "rss" not in args.skip:
        console.print(f"rss ({args.rss_seconds:.0f} s sustained) ...")
        rss = memory_section(args.rss_seconds)
        report["rss"] = rss
        console.print(
            f"ingest RSS over {rss['seconds']:.0f} s at {rss['events_per_s']:,.0f} "
            f"events/s: start {rss['rss_start_mib']:.1f} MiB, peak "
            f"{rss['rss_peak_mib']:.1f} MiB, end {rss['rss_end_mib']:.1f} MiB"
        )

    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
