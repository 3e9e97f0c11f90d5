"""0011 adds the journal: a database filled at 0010 is upgraded and read back, and the new
tables take a user's entries and time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from old_database import DatabaseAt
from sqlalchemy.exc import IntegrityError

from trackd.domain.journal import JournalEntryIn
from trackd.modules import journal
from trackd.store.models import JournalEntryRow, SystemConfiguration, new_id, table_of
from trackd.store.repos import journal as journal_repo
from trackd.store.repos import module_config

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def test_data_at_0010_reads_back_and_the_journal_is_stored(database_at: DatabaseAt) -> None:
    old = await database_at("0010")
    await old.insert(
        table_of(SystemConfiguration),
        {
            "id": new_id(),
            "tenant_id": "acme",
            "module_name": "observer",
            "config": {"text_max_length": 50},
            "version": 1,
            "is_active": True,
            "created_at": AT,
            "updated_at": AT,
        },
    )

    await old.upgrade("0011")

    async with old.sessions() as session, session.begin():
        rows = await module_config.visible(session, "acme", "observer")
        config = await journal.observer_config(session, "acme")
        entry = JournalEntryIn.model_validate(
            {
                "id": "e-1",
                "timestamp": "2026-11-30T23:30:00-05:00",
                "mood_score": 3,
                "energy_score": 9,
                "sleep_hours": 6.5,
                "symptoms": ["headache"],
                "metrics": {"steps": 1200},
            }
        )
        await journal.record(session, "acme", "ann", entry, config)
        await journal.set_timezone(session, "acme", "ann", "America/New_York")
    async with old.sessions() as session:
        stored = await journal_repo.get(session, "acme", "ann", "e-1")
        series = await journal.daily_series(session, "acme", "ann")
    async with old.sessions() as session:
        with pytest.raises(IntegrityError):
            # Scores outside 1-10 are refused by the table too, whatever path writes.
            async with session.begin():
                session.add(
                    JournalEntryRow(
                        tenant_id="acme",
                        user_id="ann",
                        entry_id="e-2",
                        timestamp=AT,
                        mood_score=11,
                        energy_score=5,
                    )
                )
    assert [(r.tenant_id, r.config, r.version) for r in rows] == [
        ("acme", {"text_max_length": 50}, 1)
    ]
    assert config.text_max_length == 50
    assert stored is not None
    assert stored.timestamp == datetime(2026, 12, 1, 4, 30, tzinfo=UTC)
    assert (stored.symptoms, stored.metrics, stored.sleep_hours) == (
        ["headache"],
        {"steps": 1200},
        6.5,
    )
    assert series.days == [date(2026, 11, 30)] and series.columns["mood"] == [3.0]
