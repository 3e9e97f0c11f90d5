"""The observer's runs (observer_runs) and findings kept across runs (observer_findings).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 20:12:58.284760
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import trackd.store.types

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "observer_findings",
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=255), nullable=False),
        sa.Column("driver", sa.String(length=255), nullable=False),
        sa.Column("lag", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=20), nullable=False),
        sa.Column("effect", sa.Float(), nullable=False),
        sa.Column("ci_low", sa.Float(), nullable=False),
        sa.Column("ci_high", sa.Float(), nullable=False),
        sa.Column("p", sa.Float(), nullable=False),
        sa.Column("q", sa.Float(), nullable=False),
        sa.Column("n_days", sa.Integer(), nullable=False),
        sa.Column("sentence", sa.Text(), nullable=False),
        sa.Column("details", trackd.store.types.PolicyJSON(), nullable=False),
        sa.Column("first_seen", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_confirmed", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("first_run_id", sa.Uuid(), nullable=False),
        sa.Column("last_run_id", sa.Uuid(), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observer_findings")),
        sa.UniqueConstraint(
            "tenant_id",
            "user_id",
            "outcome",
            "driver",
            "lag",
            name=op.f("uq_observer_findings_tenant_id_user_id_outcome_driver_lag"),
        ),
    )
    with op.batch_alter_table("observer_findings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_observer_findings_tenant_id_user_id_status"),
            ["tenant_id", "user_id", "status"],
            unique=False,
        )

    op.create_table(
        "observer_runs",
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("task_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("finished_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("tests_run", sa.Integer(), nullable=False),
        sa.Column("tests_skipped", sa.Integer(), nullable=False),
        sa.Column("found", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("options", trackd.store.types.PolicyJSON(), nullable=False),
        sa.Column("skipped", trackd.store.types.PolicyJSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observer_runs")),
    )
    with op.batch_alter_table("observer_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_observer_runs_tenant_id_task_id"), ["tenant_id", "task_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_observer_runs_tenant_id_user_id_started_at"),
            ["tenant_id", "user_id", "started_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("observer_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_observer_runs_tenant_id_user_id_started_at"))
        batch_op.drop_index(batch_op.f("ix_observer_runs_tenant_id_task_id"))

    op.drop_table("observer_runs")
    with op.batch_alter_table("observer_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_observer_findings_tenant_id_user_id_status"))

    op.drop_table("observer_findings")
