"""Plan task counters (plan_task_counts): each plan's tasks counted by state, kept by ingest,
so a plan's status reads one row. Existing plans are counted from task_executions.

The index of a plan's tasks also holds their order (first seen, then task id), so a page of a
plan's tasks is read in order instead of sorted.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 23:45:00.000000
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trackd.store.types

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The task states as of this revision, one counter column each.
STATES = ("pending", "running", "delegated", "waiting", "completed", "failed", "cancelled")


def upgrade() -> None:
    with op.batch_alter_table("task_executions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_executions_tenant_id_plan_id_first_seen_at_task_id"),
            ["tenant_id", "plan_id", "first_seen_at", "task_id"],
            unique=False,
        )
        batch_op.drop_index(batch_op.f("ix_task_executions_tenant_id_plan_id"))
    counts = op.create_table(
        "plan_task_counts",
        sa.Column("plan_id", sa.String(length=100), nullable=False),
        *(sa.Column(s, sa.Integer(), nullable=False) for s in STATES),
        sa.Column("first_seen_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_event_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_task_counts")),
        sa.UniqueConstraint(
            "tenant_id", "plan_id", name=op.f("uq_plan_task_counts_tenant_id_plan_id")
        ),
    )
    # Backfill: count the tasks every plan has now.
    tasks = sa.table(
        "task_executions",
        sa.column("tenant_id", sa.String()),
        sa.column("plan_id", sa.String()),
        sa.column("state", sa.String()),
        sa.column("first_seen_at", trackd.store.types.UTCDateTime()),
        sa.column("last_event_at", trackd.store.types.UTCDateTime()),
    )
    bind = op.get_bind()
    found = bind.execute(
        sa.select(
            tasks.c.tenant_id,
            tasks.c.plan_id,
            sa.func.min(tasks.c.first_seen_at),
            sa.func.max(tasks.c.last_event_at),
            *(sa.func.count().filter(tasks.c.state == s) for s in STATES),
        )
        .where(tasks.c.plan_id.is_not(None))
        .group_by(tasks.c.tenant_id, tasks.c.plan_id)
    ).all()
    batch: list[dict[str, object]] = []
    for r in found:
        batch.append(
            {
                "id": uuid.uuid4(),
                "tenant_id": r[0],
                "plan_id": r[1],
                "first_seen_at": r[2],
                "last_event_at": r[3],
                **dict(zip(STATES, r[4:], strict=True)),
            }
        )
        if len(batch) == 1000:
            bind.execute(counts.insert(), batch)
            batch = []
    if batch:
        bind.execute(counts.insert(), batch)


def downgrade() -> None:
    op.drop_table("plan_task_counts")
    with op.batch_alter_table("task_executions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_executions_tenant_id_plan_id"),
            ["tenant_id", "plan_id"],
            unique=False,
        )
        batch_op.drop_index(
            batch_op.f("ix_task_executions_tenant_id_plan_id_first_seen_at_task_id")
        )
