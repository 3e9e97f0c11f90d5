"""End-to-end ingest (publish -> durable records) on one process, and the raw ceiling: the
same rows bulk-inserted without trackd's logic (SQLite executemany, PostgreSQL COPY)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks import workload
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.migrate import upgrade

TABLES = ("event_timeline", "task_executions", "state_transitions", "plans", "agent_metrics")


@dataclass
class IngestResult:
    backend: str
    events: int
    seconds: float
    rows: int
    raw_seconds: float
    # CPU time of the ingesting process (with SQLite, the database's work too): on a shared
    # machine, events per CPU-second compare runs that wall-clock rates cannot.
    cpu_seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def raw_rows_per_s(self) -> float:
        return self.rows / self.raw_seconds

    @property
    def events_per_cpu_s(self) -> float:
        return self.events / self.cpu_seconds if self.cpu_seconds else 0.0

    @property
    def ratio_to_raw(self) -> float:
        return self.rows_per_s / self.raw_rows_per_s


async def run_ingest(database_url: str, tasks: int) -> tuple[float, int, float]:
    """Publish the mix through the in-memory bus: seconds until every event is committed,
    events, and the CPU seconds the process spent meanwhile."""
    stream = workload.build(tasks)
    settings = Settings(database_url=database_url, bus_url="memory://")
    runtime = Runtime.build(settings)
    await runtime.start()
    try:
        by_topic: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        started = time.perf_counter()
        cpu_started = time.process_time()
        # Producers publish in chunks, as several SDK clients would, without waiting in turn.
        chunk = 2000
        pending = []
        for i in range(0, len(stream), chunk):
            by_topic.clear()
            for topic, key, body in stream[i : i + chunk]:
                by_topic[topic].append((key, body))
            for topic, items in by_topic.items():
                pending.append(
                    asyncio.create_task(
                        runtime.bus.publish(topic, [b for _, b in items], [k for k, _ in items])
                    )
                )
        await asyncio.gather(*pending)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        assert runtime.ingest is not None
        stats = runtime.ingest.stats
        if stats.rejected or stats.failures:
            raise RuntimeError(f"benchmark run was not clean: {stats}")
        return seconds, len(stream), cpu_seconds
    finally:
        await runtime.stop()


async def fetch_rows(database_url: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    from trackd.store.engine import create_engine

    engine = create_engine(database_url)
    out = {}
    try:
        async with engine.connect() as conn:
            for table in TABLES:
                result = await conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
                out[table] = (list(result.keys()), [tuple(r) for r in result])
    finally:
        await engine.dispose()
    return out


def raw_sqlite(path: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> float:
    conn = sqlite3.connect(path)
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"):
        conn.execute(pragma)
    started = time.perf_counter()
    for table, (cols, values) in rows.items():
        marks = ",".join("?" for _ in cols)
        conn.executemany(
            f"INSERT INTO {table} ({','.join(cols)}) VALUES ({marks})",  # noqa: S608
            values,
        )
    conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


async def raw_postgres(url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> float:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            for table, (cols, values) in rows.items():
                await conn.copy_records_to_table(table, records=values, columns=cols)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def sqlite_case(tmpdir: str, tasks: int) -> IngestResult:
    url = f"sqlite+aiosqlite:///{tmpdir}/ingest.db"
    seconds, events, cpu = await run_ingest(url, tasks)
    rows = await fetch_rows(url)
    raw_url = f"sqlite+aiosqlite:///{tmpdir}/raw.db"
    await upgrade(raw_url)
    raw = raw_sqlite(f"{tmpdir}/raw.db", _sqlite_values(rows))
    return IngestResult("memory+sqlite", events, seconds, _count(rows), raw, cpu)


def _sqlite_values(
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Rows as SQLite's own driver takes them (ids and JSON as stored text)."""
    import json
    import uuid
    from datetime import datetime

    def conv(v: Any) -> Any:
        if isinstance(v, uuid.UUID):
            return v.hex
        if isinstance(v, dict | list):
            return json.dumps(v)
        if isinstance(v, datetime):
            return v.replace(tzinfo=None).isoformat(sep=" ")
        return v

    return {t: (c, [tuple(conv(v) for v in r) for r in vals]) for t, (c, vals) in rows.items()}


def _count(rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> int:
    return sum(len(v) for _, v in rows.values())


@asynccontextmanager
async def scratch_database(admin_url: str, label: str) -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database for one measurement, dropped afterwards."""
    import asyncpg

    base = make_url(admin_url)
    name = f"bench_{label}_{int(time.time() * 1000)}"
    admin = await asyncpg.connect(base.set(drivername="postgresql").render_as_string(False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = base.set(drivername="postgresql+asyncpg", database=name)
        await upgrade(url.render_as_string(hide_password=False))
        yield url.render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def postgres_case(admin_url: str, tasks: int) -> IngestResult:
    async with (
        scratch_database(admin_url, "ingest") as url,
        scratch_database(admin_url, "raw") as raw_url,
    ):
        seconds, events, cpu = await run_ingest(url, tasks)
        rows = await fetch_rows(url)
        plain = make_url(raw_url).set(drivername="postgresql").render_as_string(False)
        raw = await raw_postgres(plain, _pg_values(rows))
        return IngestResult("memory+postgresql", events, seconds, _count(rows), raw, cpu)


def _pg_values(
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """JSON columns go to COPY as text."""
    import json

    def conv(v: Any) -> Any:
        return json.dumps(v) if isinstance(v, dict | list) else v

    return {t: (c, [tuple(conv(v) for v in r) for r in vals]) for t, (c, vals) in rows.items()}
