"""Natal charts: one birth chart per user of a tenant.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trackd.store.types

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A new table: the rows of every other table stay as they are.
    op.create_table(
        "natal_charts",
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("birth_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("birth_zone", sa.String(length=100), nullable=True),
        sa.Column("birth_local", sa.String(length=40), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column(
            "points", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_natal_charts")),
        sa.UniqueConstraint("tenant_id", "user_id", name=op.f("uq_natal_charts_tenant_id_user_id")),
    )
    with op.batch_alter_table("natal_charts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_natal_charts_tenant_id_bucket"), ["tenant_id", "bucket"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("natal_charts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_natal_charts_tenant_id_bucket"))
    op.drop_table("natal_charts")
