"""0009 adds module configuration: a database filled at 0008 is upgraded and read back, and
the new table holds one global row and one row per tenant of each module."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from old_database import DatabaseAt

from trackd.errors import Conflict
from trackd.store.models import TaskExecution, table_of
from trackd.store.repos import module_config, tasks

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def test_data_at_0008_reads_back_and_configs_are_stored(database_at: DatabaseAt) -> None:
    old = await database_at("0008")
    await old.insert(
        table_of(TaskExecution),
        {
            "tenant_id": "acme",
            "task_id": "task-1",
            "event_type": "search",
            "state": "completed",
            "data": {"q": "aurora"},
            "attempt": 1,
            "head_key": "k",
            "first_seen_at": AT,
            "last_event_at": AT,
            "owner_user_id": "ann",
        },
    )

    await old.upgrade()

    async with old.sessions() as session, session.begin():
        record = await tasks.get(session, "acme", "task-1")
        await module_config.write(
            session,
            None,
            "solar",
            config={"bz_south_nt": -12},
            is_active=True,
            expected_version=0,
        )
        await module_config.write(
            session,
            "acme",
            "solar",
            config={"wind_speed_kms": 500},
            is_active=False,
            expected_version=0,
        )
    async with old.sessions() as session:
        with pytest.raises(Conflict):
            # A second global row of a module: the unique index refuses it.
            await module_config.write(
                session, None, "solar", config={}, is_active=True, expected_version=0
            )
        await session.rollback()
        rows = await module_config.visible(session, "acme", "solar")
        others = await module_config.visible(session, "globex")
    assert record is not None
    assert (record.data, record.owner_user_id, record.first_seen_at) == ({"q": "aurora"}, "ann", AT)
    assert [(r.tenant_id, r.config, r.version, r.is_active) for r in rows] == [
        (None, {"bz_south_nt": -12}, 1, True),
        ("acme", {"wind_speed_kms": 500}, 1, False),
    ]
    assert [r.tenant_id for r in others] == [None]
