"""`trackd jobs import-legacy` run as a subprocess against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from procs import trackd
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from typer.testing import CliRunner

from trackd.cli.main import app as trackd_app
from trackd.jobs.models import BaseTaskTracking
from trackd.store.engine import create_engine, session_factory


class LegacyAppBase(DeclarativeBase):
    pass


class EtfUpdateTracking(BaseTaskTracking, LegacyAppBase):
    __domain__ = "etf_update"

    etf_id: Mapped[str | None] = mapped_column(String(12))


LEGACY = MetaData()
TASK_STATUS = Table(
    "task_status",
    LEGACY,
    Column("id", Integer, primary_key=True),
    Column("task_type", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", DateTime, nullable=False),  # naive, as the seed wrote them
    Column("updated_at", DateTime),
    Column("error", Text),
    Column("task_metadata", JSON),
    Column("celery_task_id", String(255)),
)
T0 = datetime(2025, 11, 3, 6, 0)


def legacy_rows() -> list[dict[str, Any]]:
    rows = []
    for i, (kind, status) in enumerate(
        [
            ("etf_update", "PENDING"),
            ("etf_update", "PROCESSING"),
            ("etf_update", "SUCCESS"),
            ("etf_update", "FAILURE"),
            ("etf_update", "REVOKED"),
            ("etf_update", "RETRY"),
            ("contribution", "SUCCESS"),
        ],
        start=1,
    ):
        rows.append(
            {
                "id": i,
                "task_type": kind,
                "status": status,
                "created_at": T0 + timedelta(minutes=i),
                "updated_at": T0 + timedelta(minutes=i, seconds=30),
                "error": "quote source timed out" if status == "FAILURE" else None,
                "task_metadata": {"etf": f"E{i}", "depends_on": [1]} if i == 3 else None,
                "celery_task_id": f"celery-{i}",
            }
        )
    return rows


async def make_app_db(url: str) -> str:
    """The application's database: a legacy status table and an empty tracking table."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(LEGACY.create_all)
            await conn.run_sync(LegacyAppBase.metadata.create_all)
            await conn.execute(TASK_STATUS.insert(), legacy_rows())
    finally:
        await engine.dispose()
    return url


@pytest.fixture
def sqlite_app_db(tmp_path: Path) -> str:
    """A SQLite app database, made outside any event loop (for the in-process CLI)."""
    return asyncio.run(make_app_db(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"))


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def in_process(db: str, *args: str) -> Done:
    """The same command through typer in this process: several times faster than a
    subprocess, for the checks of input errors (the subprocess runs cover the real thing)."""
    argv = ["jobs", "import-legacy", "--database-url", db, "--target-table"]
    argv += ["etf_update_task_tracking", *args]
    result = CliRunner().invoke(trackd_app, argv)
    return Done(result.exit_code, result.stdout, result.stderr)


def import_legacy(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return trackd(
        "jobs", "import-legacy", "--database-url", db,
        "--target-table", "etf_update_task_tracking", *args,
    )  # fmt: skip


def tracked_now(db: str) -> list[EtfUpdateTracking]:
    return asyncio.run(tracked(db))


async def tracked(db: str) -> list[EtfUpdateTracking]:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as session:
            rows = await session.execute(select(EtfUpdateTracking).order_by(EtfUpdateTracking.id))
            return list(rows.scalars())
    finally:
        await engine.dispose()


def check_import(app_db: str, cli: Callable[..., Done | subprocess.CompletedProcess[str]]) -> None:
    """The import by `cli`; the dry run before and the second run after go in-process."""
    dry = in_process(app_db, "--where", "task_type=etf_update", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == (
        "dry run: would import 6 of 6 rows from task_status into etf_update_task_tracking; "
        "nothing was written"
    )
    assert tracked_now(app_db) == []

    done = cli(app_db, "--where", "task_type=etf_update", "--map", "etf_id=task_type")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip() == "imported 6 of 6 rows from task_status into etf_update_task_tracking"
    )
    rows = tracked_now(app_db)
    assert [(r.status, r.attempts) for r in rows] == [
        ("pending", 0),
        ("running", 1),
        ("completed", 1),
        ("failed", 1),
        ("cancelled", 1),
        ("pending", 1),  # RETRY: ran once, waits for its second attempt
    ]
    first, _, success, failure, _, _ = rows
    assert first.created_at == datetime(2025, 11, 3, 6, 1, tzinfo=UTC)
    assert first.created_at.tzinfo is not None
    assert success.completed_at == datetime(2025, 11, 3, 6, 3, 30, tzinfo=UTC)
    assert first.completed_at is None
    assert failure.error_message == "quote source timed out"
    assert (success.job_id, success.etf_id, success.tenant_id) == (
        "celery-3",
        "etf_update",
        "default",
    )
    assert success.task_metadata == {
        "etf": "E3",
        "legacy_depends_on": [1],
        "legacy_source": "task_status",
        "legacy_id": "3",
    }

    again = in_process(app_db, "--where", "task_type=etf_update")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        "imported 0 of 6 rows from task_status into etf_update_task_tracking "
        "(6 imported before, skipped)"
    )
    assert len(tracked_now(app_db)) == 6


def test_import_maps_statuses_copies_once_and_dry_run_writes_nothing(sqlite_app_db: str) -> None:
    check_import(sqlite_app_db, import_legacy)


@pytest.mark.postgres
def test_the_import_on_postgresql(
    postgres_databases: Callable[[], AbstractAsyncContextManager[str]],
) -> None:
    async def scratch() -> None:
        async with postgres_databases() as url:
            await make_app_db(url)
            await asyncio.to_thread(check_import, url, in_process)

    asyncio.run(scratch())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--source-table", "job_log"), "no table 'job_log' in the database"),
        (("--where", "kind=etf_update"), "--where: table task_status has no column 'kind'"),
        (("--map", "etf_id=ticker"), "--map: table task_status has no column 'ticker'"),
        (("--where", "task_type"), "--where takes KEY=VALUE"),
        (("--status-map", "SUCCESS=finished"), "--status-map SUCCESS=finished: unknown task state"),
    ],
)
def test_wrong_names_fail_with_one_line(
    sqlite_app_db: str, args: tuple[str, ...], message: str
) -> None:
    app_db = sqlite_app_db
    done = in_process(app_db, *args)

    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert message in lines[0]
    assert tracked_now(app_db) == []


def test_statuses_trackd_does_not_know_are_refused(sqlite_app_db: str) -> None:
    async def add_paused() -> None:
        engine = create_engine(sqlite_app_db)
        try:
            async with engine.begin() as conn:
                paused = {"task_type": "etf_update", "status": "PAUSED", "created_at": T0}
                await conn.execute(
                    TASK_STATUS.insert(), [{"id": 50, **paused}, {"id": 51, **paused}]
                )
        finally:
            await engine.dispose()

    asyncio.run(add_paused())

    refused = in_process(sqlite_app_db, "--where", "task_type=etf_update")
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    expected = "unknown statuses in task_status: 'PAUSED' (2 rows); map them with --status-map"
    assert expected in lines[0]
    assert tracked_now(sqlite_app_db) == []
    args = ("--where", "task_type=etf_update", "--status-map", "PAUSED=pending")
    fixed = in_process(sqlite_app_db, *args)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip().startswith("imported 8 of 8 rows")


def test_a_table_that_is_not_a_tracking_table_is_refused(sqlite_app_db: str) -> None:
    done = in_process(sqlite_app_db, "--target-table", "task_status")

    assert done.returncode != 0
    assert "task_status is not a tracking table" in done.stderr
