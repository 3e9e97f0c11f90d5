"""The example application in examples/jobs_app: its migration matches its models, the mixin's
indexes reach its Alembic autogenerate, its demo runs, and its API answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select

from trackd.store.engine import create_engine, session_factory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

from jobs_app import migrate, models  # noqa: E402
from jobs_app.__main__ import demo  # noqa: E402
from jobs_app.app import create_app  # noqa: E402

TRACKING = ("etf_price_update_task_tracking", "contribution_task_tracking")


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, models.Base.metadata))


async def _diff_and_tables(url: str) -> tuple[list[Any], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        return diff, tables
    finally:
        await engine.dispose()


async def test_autogenerate_sees_each_tracking_table_with_its_indexes(
    empty_database_url: str,
) -> None:
    diff, _ = await _diff_and_tables(empty_database_url)

    added_tables = {d[1].name for d in diff if d[0] == "add_table"}
    added_indexes = {d[1].name for d in diff if d[0] == "add_index"}
    assert set(TRACKING) | {"trackd_task_tracking_daily"} <= added_tables
    for domain in ("etf_price_update", "contribution"):
        assert {
            f"idx_{domain}_task_status",
            f"idx_{domain}_task_dates",
            f"idx_{domain}_task_job_id",
        } <= added_indexes


async def test_the_examples_migration_matches_its_models(empty_database_url: str) -> None:
    await migrate.upgrade(empty_database_url)

    diff, tables = await _diff_and_tables(empty_database_url)
    assert diff == []
    assert tables == set(models.Base.metadata.tables) | {"alembic_version"}


async def test_the_demo_realizes_contributions_after_retrying_for_their_prices(
    empty_database_url: str,
) -> None:
    await demo(empty_database_url, None)

    engine = create_engine(empty_database_url)
    try:
        async with session_factory(engine)() as db:
            contributions = (
                await db.execute(
                    select(models.ContributionRealizationTracking).order_by(
                        models.ContributionRealizationTracking.id
                    )
                )
            ).scalars()
            rows = [(c.status, c.attempts, str(c.units)) for c in contributions]
            holdings = {
                p.id: str(p.units) for p in (await db.execute(select(models.PensionEtf))).scalars()
            }
    finally:
        await engine.dispose()
    # The first contribution of each plan ran before its price was there: a second attempt.
    assert rows == [
        ("completed", 2, "1.902298"),
        ("completed", 1, "1.893079"),
        ("completed", 2, "0.971959"),
    ]
    assert holdings == {1: "3.795377", 2: "0.971959"}


def test_the_demo_runs_as_a_program(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs_app",
            "demo",
            "--database-url",
            f"sqlite+aiosqlite:///{tmp_path}/app.db",
        ],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "contribution       1  completed         2  1.902298 units for 250.00 EUR" in done.stdout
    assert "missing price left failed after 2 attempts" in done.stdout


async def test_the_examples_api_serves_its_domains(empty_database_url: str) -> None:
    await migrate.upgrade(empty_database_url)
    app = create_app(empty_database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            unknown_pension = await client.post(
                "/v1/tasks/contribution",
                json={"pension_id": 7, "contribution_date": "2026-03-02", "amount": "10.00"},
            )
            assert unknown_pension.status_code == 409, unknown_pension.text
            assert "constraint" in unknown_pension.json()["error"]["message"]
            bad_amount = await client.post(
                "/v1/tasks/contribution",
                json={"pension_id": 1, "contribution_date": "2026-03-02", "amount": "1e30"},
            )
            assert bad_amount.status_code == 422
            listed = await client.get("/v1/tasks/etf_price_update", params={"status": "FAILURE"})
            assert listed.status_code == 200 and listed.json()["total"] == 0
            assert (await client.get("/metrics")).status_code == 200
