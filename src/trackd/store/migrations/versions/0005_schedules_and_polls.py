"""Schedules and polls (DESIGN §9): when to poll which source, and each poll as a tracked task.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:10:03.854446
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trackd.store.types

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column(
            "targets", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=True),
        sa.Column("cron", sa.String(length=255), nullable=True),
        sa.Column("run_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("jitter_seconds", sa.Float(), nullable=False),
        sa.Column("misfire_grace_seconds", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("next_nominal_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_run_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_missed_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("missed_runs", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column(
            "labels", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("cancelled_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedules_next_run_at"), ["next_run_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_schedules_tenant_id_status"), ["tenant_id", "status"], unique=False
        )
        batch_op.create_index(
            "uq_schedules_tenant_id_name_active",
            ["tenant_id", "name"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "polls",
        sa.Column("schedule_id", sa.Uuid(), nullable=True),
        sa.Column("scheduled_for", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column(
            "target", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("blocks", sa.Integer(), nullable=False),
        sa.Column("blocked_host", sa.String(length=255), nullable=True),
        sa.Column("not_before", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("started_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "result", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_polls_schedule_id_schedules"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polls")),
        sa.UniqueConstraint(
            "schedule_id",
            "scheduled_for",
            "item",
            name=op.f("uq_polls_schedule_id_scheduled_for_item"),
        ),
    )
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_polls_not_before"), ["not_before"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_polls_tenant_id_created_at"), ["tenant_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_polls_tenant_id_status"), ["tenant_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_polls_tenant_id_status"))
        batch_op.drop_index(batch_op.f("ix_polls_tenant_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_polls_not_before"))

    op.drop_table("polls")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_schedules_tenant_id_name_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(batch_op.f("ix_schedules_tenant_id_status"))
        batch_op.drop_index(batch_op.f("ix_schedules_next_run_at"))

    op.drop_table("schedules")
