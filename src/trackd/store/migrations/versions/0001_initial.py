"""Initial schema: tasks, transitions, timeline, plans, metrics, anomalies, dead letters, tokens.

Revision ID: 0001
Revises: nothing, this is the first revision
Create Date: 2026-11-22 00:04:16.161643
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trackd.store.types

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_metrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("agent_id", sa.String(length=255), nullable=False),
        sa.Column("period_start", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("period_end", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("total_tasks", sa.Integer(), nullable=False),
        sa.Column("completed_tasks", sa.Integer(), nullable=False),
        sa.Column("failed_tasks", sa.Integer(), nullable=False),
        sa.Column("cancelled_tasks", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.Column("duration_count", sa.Integer(), nullable=False),
        sa.Column("last_event_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_metrics")),
        sa.UniqueConstraint(
            "tenant_id",
            "agent_id",
            "period_start",
            name=op.f("uq_agent_metrics_tenant_id_agent_id_period_start"),
        ),
    )
    with op.batch_alter_table("agent_metrics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agent_metrics_tenant_id_period_start"),
            ["tenant_id", "period_start"],
            unique=False,
        )

    op.create_table(
        "anomalies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("task_id", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=False),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("detected_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
    )
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_anomalies_tenant_id_task_id"), ["tenant_id", "task_id"], unique=False
        )

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dead_letters_tenant_id_received_at"),
            ["tenant_id", "received_at"],
            unique=False,
        )

    op.create_table(
        "event_timeline",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=255), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("trace_id", sa.String(length=100), nullable=True),
        sa.Column("parent_event_id", sa.String(length=100), nullable=True),
        sa.Column("correlation_id", sa.String(length=100), nullable=True),
        sa.Column("plan_id", sa.String(length=100), nullable=True),
        sa.Column("task_id", sa.String(length=100), nullable=True),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column(
            "attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("occurred_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("received_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_timeline")),
        sa.UniqueConstraint(
            "tenant_id", "event_id", name=op.f("uq_event_timeline_tenant_id_event_id")
        ),
    )
    with op.batch_alter_table("event_timeline", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_timeline_tenant_id_correlation_id"),
            ["tenant_id", "correlation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_event_timeline_tenant_id_plan_id_occurred_at"),
            ["tenant_id", "plan_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_event_timeline_tenant_id_trace_id_occurred_at"),
            ["tenant_id", "trace_id", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("plan_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("completed_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("first_seen_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_event_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("current_state", sa.String(length=255), nullable=True),
        sa.Column("state_key", sa.String(length=250), nullable=False),
        sa.Column("status_key", sa.String(length=250), nullable=False),
        sa.Column("trace_id", sa.String(length=100), nullable=True),
        sa.Column("session_id", sa.String(length=100), nullable=True),
        sa.Column("goal", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("tenant_id", "plan_id", name=op.f("uq_plans_tenant_id_plan_id")),
    )
    op.create_table(
        "state_transitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("task_id", sa.String(length=100), nullable=False),
        sa.Column("plan_id", sa.String(length=100), nullable=True),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("transitioned_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_transitions")),
    )
    with op.batch_alter_table("state_transitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_state_transitions_tenant_id_task_id_transitioned_at"),
            ["tenant_id", "task_id", "transitioned_at"],
            unique=False,
        )

    op.create_table(
        "task_executions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.Column("task_id", sa.String(length=100), nullable=False),
        sa.Column("plan_id", sa.String(length=100), nullable=True),
        sa.Column("event_type", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column(
            "result", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=True),
        sa.Column("head_key", sa.String(length=250), nullable=False),
        sa.Column("message_key", sa.String(length=250), nullable=False),
        sa.Column("started_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("completed_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("first_seen_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_event_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("trace_id", sa.String(length=100), nullable=True),
        sa.Column("parent_event_id", sa.String(length=100), nullable=True),
        sa.Column("agent_id", sa.String(length=255), nullable=True),
        sa.Column("requester", sa.String(length=255), nullable=True),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 1", name=op.f("ck_task_executions_progress_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_executions")),
        sa.UniqueConstraint(
            "tenant_id", "task_id", name=op.f("uq_task_executions_tenant_id_task_id")
        ),
    )
    with op.batch_alter_table("task_executions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_executions_tenant_id_plan_id"),
            ["tenant_id", "plan_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_task_executions_tenant_id_state"), ["tenant_id", "state"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_task_executions_tenant_id_trace_id"),
            ["tenant_id", "trace_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("task_executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_executions_tenant_id_trace_id"))
        batch_op.drop_index(batch_op.f("ix_task_executions_tenant_id_state"))
        batch_op.drop_index(batch_op.f("ix_task_executions_tenant_id_plan_id"))

    op.drop_table("task_executions")
    with op.batch_alter_table("state_transitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_state_transitions_tenant_id_task_id_transitioned_at"))

    op.drop_table("state_transitions")
    op.drop_table("plans")
    with op.batch_alter_table("event_timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_timeline_tenant_id_trace_id_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_event_timeline_tenant_id_plan_id_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_event_timeline_tenant_id_correlation_id"))

    op.drop_table("event_timeline")
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letters_tenant_id_received_at"))

    op.drop_table("dead_letters")
    op.drop_table("api_tokens")
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anomalies_tenant_id_task_id"))

    op.drop_table("anomalies")
    with op.batch_alter_table("agent_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_metrics_tenant_id_period_start"))

    op.drop_table("agent_metrics")
