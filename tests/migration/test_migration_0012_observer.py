"""0012 adds the observer's runs and findings: a journal stored at 0011 is upgraded, read back,
and analysed; the run and its findings are stored in the new tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from old_database import DatabaseAt

from trackd.modules import journal
from trackd.modules.observer_runs import run_for_user
from trackd.store.models import JournalEntryRow, new_id, table_of
from trackd.store.repos import observer as observer_repo

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_a_journal_stored_at_0011_is_analysed_after_the_upgrade(
    database_at: DatabaseAt,
) -> None:
    old = await database_at("0011")
    days = 40
    rows = []
    for i in range(days):
        at = NOW - timedelta(days=days - i)
        rows.append(
            {
                "id": new_id(),
                "tenant_id": "acme",
                "user_id": "ann",
                "entry_id": f"e-{i}",
                "timestamp": at,
                "mood_score": 1 + i % 10,
                "energy_score": 1 + (i * 7) % 10,
                "sleep_hours": None,
                "symptoms": ["headache"] if i % 3 == 0 else [],
                "text": "",
                "metrics": {},
                "created_at": at,
                "updated_at": at,
            }
        )
    await old.insert(table_of(JournalEntryRow), *rows)
    await old.upgrade()

    async with old.sessions() as session:
        users = await observer_repo.users_with_journals(session, "acme")
        config = (await journal.observer_config(session, "acme")).model_copy(
            update={"drivers": ["lunar_phase", "retrograde"], "permutations": 99}
        )
    run_id = await run_for_user(old.sessions, "acme", "ann", config, now=NOW)
    async with old.sessions() as session:
        run = await observer_repo.get_run(session, "acme", run_id)
        stored = await session.scalar(
            sa.select(sa.func.count()).select_from(sa.text("observer_runs"))
        )

    assert users == ["ann"]
    assert run is not None and run.status == "completed"
    # mood, energy, symptom.headache x two drivers x four lags run (40 days pass the minimum
    # of 30); sleep, never recorded, is skipped with its reason.
    assert (run.tests_run, run.tests_skipped) == (3 * 2 * 4, 2 * 4)
    assert {s["outcome"] for s in run.skipped} == {"sleep_hours"}
    assert run.options["lags"] == [0, 1, 2, 3] and stored == 1
