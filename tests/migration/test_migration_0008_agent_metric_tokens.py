"""0008 adds token usage to agent metrics: buckets filled at 0007 are upgraded and read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from old_database import DatabaseAt
from sqlalchemy import MetaData, Table

from trackd.domain.metrics import BucketDelta, summarize
from trackd.store.models import AgentMetricBucket, new_id, table_of
from trackd.store.repos import metrics

HOUR = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# The table as 0007 left it: the model's token columns would be sent with their defaults.
AT_0007 = Table(
    "agent_metrics",
    MetaData(),
    *(
        c._copy()
        for c in table_of(AgentMetricBucket).columns
        if c.name not in ("input_tokens", "output_tokens")
    ),
)


async def test_buckets_stored_at_0007_read_back_with_no_tokens(database_at: DatabaseAt) -> None:
    at_0007 = await database_at("0007")
    await at_0007.insert(
        AT_0007,
        {
            "id": new_id(),
            "tenant_id": "acme",
            "agent_id": "researcher",
            "period_start": HOUR,
            "period_end": HOUR + timedelta(hours=1),
            "total_tasks": 3,
            "completed_tasks": 2,
            "failed_tasks": 1,
            "cancelled_tasks": 0,
            "duration_sum": 4.5,
            "duration_count": 3,
            "last_event_at": HOUR + timedelta(minutes=5),
        },
    )

    await at_0007.upgrade()

    async with at_0007.sessions() as session:
        before = await metrics.buckets_by_agent_since(session, "acme", HOUR)
    async with at_0007.sessions() as session, session.begin():
        # A task counted after the upgrade adds its tokens to the old bucket.
        await metrics.add(
            session,
            "acme",
            [BucketDelta("researcher", HOUR, 1, 1, input_tokens=120, output_tokens=30)],
        )
    async with at_0007.sessions() as session:
        after = await metrics.buckets_since(session, "acme", HOUR, "researcher")
    old = summarize("researcher", "24h", before["researcher"])
    assert (old.total_tasks, old.completed_tasks, old.failed_tasks) == (3, 2, 1)
    assert old.avg_duration_seconds == 1.5
    assert (old.input_tokens, old.output_tokens) == (0, 0)
    new = summarize("researcher", "24h", after)
    assert (new.total_tasks, new.completed_tasks, new.input_tokens, new.output_tokens) == (
        4,
        3,
        120,
        30,
    )
