"""Flame graphs (py-spy) of the measures the issue targets: durable ingest on SQLite and on
PostgreSQL (the memory bus, as the ingest section runs it), durable ingest through
`POST /v1/events` (the `trackd serve` process and the benchmark's HTTP clients, each under its
own root frame), the SDK's `@tracked` call, and the three reads of the reads section on a store
of 1,000,000 tasks on SQLite and on PostgreSQL (the store is filled before the profiled process
starts, so the graph holds the reads and the process's start-up only).

    python -m benchmarks.flamegraph                       # every target, into benchmarks/profiles/
    python -m benchmarks.flamegraph --target ingest-sqlite --tasks 500
    python -m benchmarks.flamegraph --target reads-sqlite --requests 200

Each target runs in a process of its own under `py-spy record --format flamegraph`, which
samples every thread of it (the SDK's delivery thread too); the SVG opens in a browser,
and a frame's width is its share of the samples. py-spy reads the process's memory through
ptrace: it works as root (or with kernel.yama.ptrace_scope = 0); where it cannot attach, this
says so in one line and exits with status 1. PostgreSQL's own work runs in its server
processes, so the PostgreSQL graph shows trackd's side of it: building statements and reading
their answers (time spent waiting for them is not sampled: py-spy leaves idle threads out).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from benchmarks import reads
from benchmarks.ingest import run_ingest, scratch_database
from trackd.runtime import Runtime, freeze_startup_heap
from trackd.settings import Settings

READS = ("reads-sqlite", "reads-postgresql")
TARGETS = ("ingest-sqlite", "ingest-postgresql", "http-ingest", "sdk", *READS)
POSTGRES_ONLY = ("ingest-postgresql", "reads-postgresql")
PROFILES = Path(__file__).with_name("profiles")


@contextlib.asynccontextmanager
async def reads_store(target: str, postgres_url: str | None) -> AsyncIterator[str]:
    """A store filled as the reads section fills it (1,000 plans of 1,000 tasks and a trace of
    1,000 events), made outside the profiled process; its URL."""
    async with contextlib.AsyncExitStack() as stack:
        if target == "reads-postgresql":
            if not postgres_url:
                raise SystemExit(f"{target} needs --postgres-url (or TRACKD_TEST_POSTGRES_URL)")
            url = await stack.enter_async_context(scratch_database(postgres_url, "reads"))
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            url = f"sqlite+aiosqlite:///{tmp}/reads.db"
        runtime = Runtime.build(Settings(database_url=url))
        await runtime.start()
        try:
            await reads.fill(runtime)
            await reads.trace_stored(runtime)
        finally:
            await runtime.stop()
        yield url


async def read_many(database_url: str, requests: int) -> None:
    """`requests` GETs of each route of the reads section, as that section makes them."""
    runtime = Runtime.build(Settings(database_url=database_url))
    await runtime.start()
    try:
        freeze_startup_heap()
        async with reads.reader(runtime) as client:
            for path in reads.ROUTES.values():
                for _ in range(requests):
                    (await client.get(path)).raise_for_status()
    finally:
        await runtime.stop()


def run_target(target: str, args: argparse.Namespace) -> None:
    """The work itself, in the profiled process."""
    tasks, calls, postgres_url = args.tasks, args.calls, args.postgres_url
    if target in READS:
        asyncio.run(read_many(args.database_url, args.requests))
    elif target == "sdk":
        from benchmarks import sdk_overhead

        sdk_overhead.measure(calls)
    elif target == "http-ingest":
        from benchmarks import http_ingest

        http_ingest.measure(tasks)
    elif target == "ingest-sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run_ingest(f"sqlite+aiosqlite:///{tmp}/ingest.db", tasks))
    else:
        if not postgres_url:
            raise SystemExit("ingest-postgresql needs --postgres-url (or TRACKD_TEST_POSTGRES_URL)")

        async def on_postgres() -> None:
            async with scratch_database(postgres_url, "profile") as url:
                await run_ingest(url, tasks)

        asyncio.run(on_postgres())


def record(target: str, args: argparse.Namespace, out: Path) -> None:
    """py-spy records one target's process into `out`; exits with one line if it cannot."""
    if target in READS:

        async def on_store() -> None:
            async with reads_store(target, args.postgres_url) as url:
                await asyncio.to_thread(_record, target, args, out, ["--database-url", url])

        asyncio.run(on_store())
    else:
        _record(target, args, out, [])


def _record(target: str, args: argparse.Namespace, out: Path, extra: list[str]) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy (it is in the dev extra)")
    command = [
        py_spy,
        "record",
        "--format",
        "flamegraph",
        "--rate",
        str(args.rate),
        "--output",
        str(out),
        # The HTTP target's server is a child process: its samples are the ones that count.
        *(["--subprocesses"] if target == "http-ingest" else []),
        "--",
        sys.executable,
        "-m",
        "benchmarks.flamegraph",
        "--run",
        target,
        "--tasks",
        str(args.tasks),
        "--calls",
        str(args.calls),
        "--requests",
        str(args.requests),
        *extra,
    ]
    if args.postgres_url:
        command += ["--postgres-url", args.postgres_url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit status {done.returncode}"
        if any(word in why.lower() for word in ("permission", "not permitted", "ptrace")):
            raise SystemExit(
                f"py-spy could not attach to the profiled process ({why}): it needs ptrace, "
                "so run as root or set kernel.yama.ptrace_scope to 0"
            )
        raise SystemExit(f"py-spy failed on {target}: {why}")


def main() -> None:
    import os

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--target",
        action="append",
        choices=TARGETS,
        help="what to profile (repeat for several; default: all, the PostgreSQL ones only "
        "with a PostgreSQL server)",
    )
    parser.add_argument(
        "--tasks", type=int, default=5000, help="tasks in the ingest mix (as python -m benchmarks)"
    )
    parser.add_argument("--calls", type=int, default=200_000, help="@tracked calls for sdk")
    parser.add_argument(
        "--requests", type=int, default=1000, help="GETs of each route for reads-sqlite/-postgresql"
    )
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TRACKD_BENCH_POSTGRES_URL")
        or os.environ.get("TRACKD_TEST_POSTGRES_URL"),
        help="admin URL of a PostgreSQL server (a scratch database is made and dropped)",
    )
    parser.add_argument("--out-dir", type=Path, default=PROFILES, help="where the SVGs go")
    parser.add_argument("--run", choices=TARGETS, help=argparse.SUPPRESS)  # the profiled side
    parser.add_argument("--database-url", help=argparse.SUPPRESS)  # the reads' filled store
    args = parser.parse_args()
    if args.run:
        run_target(args.run, args)
        return
    chosen = args.target or [t for t in TARGETS if t not in POSTGRES_ONLY or args.postgres_url]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d")
    for target in chosen:
        out = args.out_dir / f"flame-{target}-{stamp}.svg"
        print(f"{target} ...", flush=True)
        record(target, args, out)
        print(f"  {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
