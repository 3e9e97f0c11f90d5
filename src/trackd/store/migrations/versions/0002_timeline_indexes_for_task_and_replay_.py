"""timeline indexes for task and replay reads

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:56:20.039178
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_timeline", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_timeline_tenant_id_occurred_at_event_id"),
            ["tenant_id", "occurred_at", "event_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_event_timeline_tenant_id_task_id"),
            ["tenant_id", "task_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("event_timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_timeline_tenant_id_task_id"))
        batch_op.drop_index(batch_op.f("ix_event_timeline_tenant_id_occurred_at_event_id"))
