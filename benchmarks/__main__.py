"""Run the benchmarks: `python -m benchmarks` (what `make bench` calls).

Sections (each can be left out with --skip NAME): ingest, durable ingest against the raw
bulk-insert ceiling; peer, Celery's in-memory reducer (Flower's core) on the equivalent events;
http, durable ingest through POST /v1/events of a `trackd serve` process (4 clients, 500-event
batches; benchmarks/http_ingest.py); reads, read latency on a store of 1,000,000 tasks; sdk,
the SDK's cost per tracked call (the caller's thread, and until sent); rss, RSS of an ingest
process under sustained load, flat or not with its slope; trackers, league trackers refreshed
at once by `trackd scheduler` and `trackd worker` processes against a local fake of the stats
site (benchmarks/trackers.py); transits, the daily transit refresh of 100,000 users with charts
(benchmarks/transits.py); fanout, one solar poll fanned out to 100,000 users' channels
(benchmarks/solar_fanout.py); redis_ingest, Redis Streams drained into PostgreSQL by 1 and 2
`trackd ingest` processes (benchmarks/redis_ingest.py); observer, the observer's analysis of one
user and of many users on two processes (benchmarks/observer.py); nightly, the observer's nightly
runs of 10,000 users through `trackd scheduler` and two `trackd worker` processes
(benchmarks/observer_nightly.py). Prints tables, then the "Issue targets" table (before, target,
this run, met; benchmarks/targets.py), and writes all figures as JSON to benchmarks/results/.
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

from benchmarks import peer_celery, reads, targets
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


async def trackers_section(args: argparse.Namespace) -> list[Any]:
    # Imported here: only this section needs the league trackers and a Redis bus.
    from benchmarks import trackers

    given = {
        "concurrency": args.trackers_concurrency,
        "workers": args.trackers_workers,
        "rate": args.trackers_rate,
    }
    options: dict[str, Any] = {
        "trackers": args.trackers,
        **{k: v for k, v in given.items() if v is not None},
    }
    results = []
    if args.postgres_url:
        async with scratch_database(args.postgres_url, "trackers") as url:
            results.append(await trackers.measure(url, args.redis_url, **options))
    if args.trackers_sqlite or not args.postgres_url:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/trackers.db"
            results.append(await trackers.measure(url, args.redis_url, **{**options, "workers": 1}))
    return results


def transits_part(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """The daily transit refresh (benchmarks/transits.py): it needs the Redis bus."""
    if not args.redis_url:
        console.print("transits: skipped, it needs a Redis server (--redis-url)")
        return
    from benchmarks import transits

    console.print(f"transits (daily refresh of {args.transit_users:,} users) ...")
    result = asyncio.run(transits.run(args.postgres_url, args.redis_url, users=args.transit_users))
    report["transits"] = [asdict(result)]
    console.print(transits.table([result]))


def redis_ingest_part(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """1 and 2 `trackd ingest` processes draining Redis Streams into PostgreSQL
    (benchmarks/redis_ingest.py), beside the bus's own drain rate."""
    if not (args.redis_url and args.postgres_url):
        console.print("redis_ingest: skipped, it needs Redis and PostgreSQL servers")
        return
    from benchmarks import redis_ingest

    console.print(f"redis_ingest ({args.tasks:,} tasks' events, 1 and 2 processes) ...")
    results = asyncio.run(
        redis_ingest.run(args.postgres_url, args.redis_url, tasks=args.tasks, processes=[1, 2])
    )
    report["redis_ingest"] = [asdict(r) for r in results]
    console.print(redis_ingest.table(results))


def fanout_part(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """One solar poll fanned out to many users' channels (benchmarks/solar_fanout.py)."""
    from benchmarks import solar_fanout

    console.print(f"solar fan-out (one poll to {args.fanout_users:,} users' channels) ...")
    results = asyncio.run(solar_fanout.run(args.fanout_users, args.postgres_url))
    report["solar_fanout"] = results
    shown = Table(
        "backend",
        "users",
        "channel messages",
        "seconds",
        "µs/user",
        title="one solar poll fanned out to every user's channel (outbox rows in its transaction)",
    )
    for r in results:
        shown.add_row(
            r["backend"],
            f"{r['users']:,}",
            f"{r['channel_messages']:,}",
            f"{r['seconds']:.1f}",
            f"{r['us_per_user']:.0f}",
        )
    console.print(shown)


def nightly_part(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """The observer's nightly runs of many users through `trackd scheduler` and two workers."""
    if not args.redis_url:
        console.print("nightly: skipped (no Redis server: the processes share its bus)")
        return
    from benchmarks import observer_nightly

    console.print(f"nightly ({args.nightly_users} users' observer runs) ...")
    result = asyncio.run(
        observer_nightly.run(args.postgres_url, args.redis_url, users=args.nightly_users)
    )
    report["observer_nightly"] = asdict(result)
    console.print(
        f"observer nightly: {result.users} users ({result.days} days each) on {result.backend}, "
        f"{result.workers} workers: {result.seconds:.0f} s ({result.users_per_s:.1f} users/s, "
        f"{result.worker_cpu_ms_per_user:.0f} worker CPU ms per user); "
        f"{result.runs_completed} runs completed, {result.runs_failed} failed; "
        f"{result.users_with_findings} users with a finding (no effect planted)"
    )


def http_part(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Durable ingest through POST /v1/events (benchmarks/http_ingest.py), against the peer."""
    from benchmarks import http_ingest

    console.print(
        f"http ({http_ingest.CLIENTS} clients posting {http_ingest.BATCH}-event batches "
        "to trackd serve, SQLite) ..."
    )
    result = http_ingest.measure(args.tasks).as_dict()
    peer = report.get("peer_celery_state")
    if peer:
        result["ratio_to_celery"] = result["events_per_s"] / peer["events_per_s"]
    report["http_ingest"] = result
    ratio = f"{result['ratio_to_celery']:.3f}" if peer else "not run (peer skipped)"
    console.print(
        f"POST /v1/events: {result['events']:,} events in {result['batches']} batches, "
        f"{result['events_per_s']:,.0f} events/s ({result['events_per_server_cpu_s']:,.0f} per "
        f"server CPU-second); x Celery State: {ratio}"
    )


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
        "--rss-seconds",
        type=float,
        default=300.0,
        help="seconds of the sustained run for RSS (flat or not; the target is 300)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("TRACKD_BENCH_REDIS_URL") or os.environ.get("TRACKD_TEST_REDIS_URL"),
        help="a Redis server, the bus of the trackers section's processes",
    )
    parser.add_argument(
        "--trackers", type=int, default=10_000, help="league trackers refreshed at once"
    )
    parser.add_argument(
        "--trackers-concurrency", type=int, help="polls a worker runs at once (default 16)"
    )
    parser.add_argument(
        "--trackers-workers", type=int, help="`trackd worker` processes (default 1)"
    )
    parser.add_argument(
        "--trackers-rate",
        type=float,
        help="requests/s per host (default 5000: the fake is one local host; real sites get 2)",
    )
    parser.add_argument(
        "--transit-users",
        type=int,
        default=100_000,
        help="users with a natal chart in the daily transit refresh",
    )
    parser.add_argument(
        "--fanout-users",
        type=int,
        default=100_000,
        help="users whose channels one solar poll's change reaches",
    )
    parser.add_argument(
        "--trackers-sqlite",
        action="store_true",
        help="run the trackers section on SQLite too (it always does without PostgreSQL)",
    )
    parser.add_argument(
        "--observer-users", type=int, default=200, help="simulated users the observer analyses"
    )
    parser.add_argument(
        "--nightly-users",
        type=int,
        default=10_000,
        help="users whose nightly observer runs go through the scheduler and two workers",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=[
            "ingest",
            "peer",
            "http",
            "reads",
            "sdk",
            "rss",
            "trackers",
            "transits",
            "fanout",
            "observer",
            "nightly",
            "redis_ingest",
        ],
        help="leave a section out (repeat for several)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=Path(__file__).with_name("results"),
        help="where the run's JSON report is written (default benchmarks/results/)",
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
            {
                **asdict(r),
                "events_per_s": r.events_per_s,
                "events_per_cpu_s": r.events_per_cpu_s,
                "ratio_to_raw": r.ratio_to_raw,
            }
            for r in ingest
        ]
        table = Table(
            "backend",
            "events",
            "events/s",
            "rows/s",
            "raw rows/s",
            "x raw ceiling",
            "events/CPU-s",
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
                f"{r.events_per_cpu_s:,.0f}",
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
    if "http" not in args.skip:
        http_part(args, report)
    if "reads" not in args.skip:
        console.print("reads (fills a store of 1,000,000 tasks) ...")
        latencies = asyncio.run(reads_section(args.postgres_url))
        report["reads"] = [asdict(x) for x in latencies]
        table = Table(
            "backend",
            "query",
            "p50 ms",
            "p95 ms",
            "bare SELECT p50 ms",
            "bare SELECT p95 ms",
            title="read latency, 1M tasks (bare SELECT: the same rows, no API)",
        )
        for x in latencies:
            table.add_row(
                x.backend,
                x.route,
                f"{x.p50_ms:.1f}",
                f"{x.p95_ms:.1f}",
                f"{x.raw_p50_ms:.1f}",
                f"{x.raw_p95_ms:.1f}",
            )
        console.print(table)
    if "sdk" not in args.skip:
        console.print("sdk ...")
        from benchmarks import sdk_overhead

        sdk = sdk_overhead.measure()
        report["sdk"] = sdk
        console.print(
            f"@tracked: {sdk['caller_us']:.1f} µs of the caller's thread per call (building the "
            f"events, handing them to delivery); until every event is published, the delivery "
            f"thread's encoding included: {sdk['process_cpu_us']:.1f} µs of CPU, "
            f"{sdk['tracked_us']:.1f} µs wall-clock (bare call {sdk['bare_us']:.2f} µs)"
        )
    if "rss" not in args.skip:
        console.print(f"rss ({args.rss_seconds:.0f} s sustained) ...")
        rss = memory_section(args.rss_seconds)
        report["rss"] = rss
        console.print(
            f"ingest RSS over {rss['seconds']:.0f} s at {rss['events_per_s']:,.0f} "
            f"events/s: start {rss['rss_start_mib']:.1f} MiB, peak "
            f"{rss['rss_peak_mib']:.1f} MiB, end {rss['rss_end_mib']:.1f} MiB; "
            f"{'flat' if rss['flat'] else 'NOT flat'} "
            f"(slope {rss['rss_slope_mib_per_min']:+.2f} MiB/min)"
        )

    if "trackers" not in args.skip and not args.redis_url:
        console.print("trackers: skipped, it needs a Redis server (--redis-url)")
    elif "trackers" not in args.skip:
        console.print(f"trackers ({args.trackers:,} refreshed at once) ...")
        refreshed = asyncio.run(trackers_section(args))
        report["trackers"] = [asdict(r) for r in refreshed]
        table = Table(
            "backend",
            "trackers",
            "polls/s",
            "lag p50 / p99 s",
            "fired p99 s",
            "failed / retried / blocked",
            "worker peak RSS MiB",
            "setup s",
            title="league trackers refreshed at once (scheduler and worker processes, Redis bus)",
        )
        for r in refreshed:
            table.add_row(
                r.backend,
                f"{r.completed:,} / {r.trackers:,}",
                f"{r.polls_per_s:,.1f}",
                f"{r.lag_p50_s:.1f} / {r.lag_p99_s:.1f}",
                f"{r.fired_p99_s:.1f}",
                f"{r.failed} / {r.retried} / {r.blocked}",
                f"{r.worker_rss_start_mib:.0f} -> {r.worker_peak_rss_mib:.0f}",
                f"{r.setup_s:.0f}",
            )
        console.print(table)
        for r in refreshed:
            console.print(
                f"{r.backend}: {r.workers} worker x {r.concurrency} polls at once, "
                f"{r.rate_per_host:g} requests/s per host (burst {r.burst}); all fired "
                f"{r.fired_max_s:.1f} s after due, last snapshot stored {r.seconds:.0f} s after; "
                f"{r.snapshots:,} snapshots, {r.requests:,} requests answered; "
                f"scheduler peak RSS {r.scheduler_peak_rss_mib:.0f} MiB"
            )

    if "transits" not in args.skip:
        transits_part(args, report)
    if "redis_ingest" not in args.skip:
        redis_ingest_part(args, report)
    if "fanout" not in args.skip:
        fanout_part(args, report)
    if "observer" not in args.skip:
        console.print(f"observer ({args.observer_users} simulated users) ...")
        from benchmarks import observer

        figures = observer.measure(args.observer_users)
        report["observer"] = figures
        table = Table("days", "tests", "one run s", "CPU s", title="observer: one user's full run")
        for row in figures["one_run"]:
            table.add_row(
                str(row["days"]),
                str(row["tests"]),
                f"{row['median_s']:.2f}",
                f"{row['median_cpu_s']:.2f}",
            )
        console.print(table)
        t = figures["throughput"]
        console.print(
            f"observer: {t['users']} users ({t['days']} days each) on {t['processes']} "
            f"processes in {t['seconds']:.1f} s: {t['users_per_s']:.1f} users/s, "
            f"{t['analysis_cpu_per_user_s']:.2f} CPU s of analysis per user"
        )

    if "nightly" not in args.skip:
        nightly_part(args, report)

    report["targets"] = targets.rows(report)
    console.print(targets.table(report))

    out = args.results_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
