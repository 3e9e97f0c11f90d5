"""0007 adds the task owner: a database filled at 0006 is upgraded and read back."""

from __future__ import annotations

from datetime import UTC, datetime

from old_database import DatabaseAt

from trackd.domain.access import may_publish_about
from trackd.domain.states import TaskState
from trackd.store.models import TaskExecution, table_of
from trackd.store.repos import tasks

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def test_tasks_stored_at_0006_read_back_with_no_owner(database_at: DatabaseAt) -> None:
    old = await database_at("0006")
    # Only the columns 0006 has: the model's new column has no default to send.
    await old.insert(
        table_of(TaskExecution),
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

    await old.upgrade()

    async with old.sessions() as session:
        record = await tasks.get(session, "acme", "task-1")
        owners = await tasks.owners(session, "acme", ["task-1", "task-2"])
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
