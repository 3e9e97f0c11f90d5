"""0007 adds the task owner: a database filled at 0006 is upgraded and read back."""

from __future__ import annotations

from datetime import UTC, datetime

from trackd.domain.access import may_publish_about
from trackd.domain.states import TaskState
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade
from trackd.store.models import TaskExecution, table_of
from trackd.store.repos import tasks

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def test_tasks_stored_at_0006_read_back_with_no_owner(empty_database_url: str) -> None:
    await upgrade(empty_database_url, "0006")
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as connection:
            # Only the columns 0006 has: the model's new column has no default to send.
            await connection.execute(
                table_of(TaskExecution).insert(),
                {
                    "tenant_id": "acme",
                    "task_id": "task-1",
                    "plan_id": "plan-1",
                    "event_type": "search",
                    "state": "running",
                    "progress": 0.5,
                    "data": {"q": "moths"},
                    "attempt": 2,
                    "head_key": "k",
                    "first_seen_at": AT,
                    "last_event_at": AT,
                },
            )

        await upgrade(engine)

        async with session_factory(engine)() as session:
            record = await tasks.get(session, "acme", "task-1")
            owners = await tasks.owners(session, "acme", ["task-1", "task-2"])
    finally:
        await engine.dispose()
    assert record is not None
    assert (record.state, record.progress, record.attempt, record.plan_id) == (
        TaskState.RUNNING,
        0.5,
        2,
        "plan-1",
    )
    assert record.data == {"q": "moths"}
    assert record.first_seen_at == AT
    # Published before owners were recorded: a producer's task, as a service token's would be.
    assert owners == {"task-1": None}
    assert record.owner_user_id is None
    assert may_publish_about(None, record.owner_user_id)
    assert not may_publish_about("ann", record.owner_user_id)
