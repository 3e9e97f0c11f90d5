"""The journal: journal_entries (a user's scores, sleep, symptoms, text and metrics) and
user_settings (a user's time zone).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trackd.store.types

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "journal_entries",
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("entry_id", sa.String(length=100), nullable=False),
        sa.Column("timestamp", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("mood_score", sa.Integer(), nullable=False),
        sa.Column("energy_score", sa.Integer(), nullable=False),
        sa.Column("sleep_hours", sa.Float(), nullable=True),
        sa.Column(
            "symptoms", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "metrics", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "mood_score >= 1 AND mood_score <= 10", name=op.f("ck_journal_entries_mood_range")
        ),
        sa.CheckConstraint(
            "energy_score >= 1 AND energy_score <= 10",
            name=op.f("ck_journal_entries_energy_range"),
        ),
        sa.CheckConstraint(
            "sleep_hours >= 0 AND sleep_hours <= 24", name=op.f("ck_journal_entries_sleep_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
        sa.UniqueConstraint(
            "tenant_id",
            "user_id",
            "entry_id",
            name=op.f("uq_journal_entries_tenant_id_user_id_entry_id"),
        ),
    )
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_journal_entries_tenant_id_user_id_timestamp"),
            ["tenant_id", "user_id", "timestamp"],
            unique=False,
        )

    op.create_table(
        "user_settings",
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_settings")),
        sa.UniqueConstraint(
            "tenant_id", "user_id", name=op.f("uq_user_settings_tenant_id_user_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("user_settings")
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_entries_tenant_id_user_id_timestamp"))
    op.drop_table("journal_entries")
