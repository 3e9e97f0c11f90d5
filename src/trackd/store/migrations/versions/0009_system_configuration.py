"""Module configuration (seed 001): system_configuration, global rows and tenant overrides.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trackd.store.types

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "system_configuration",
        sa.Column("tenant_id", sa.String(length=100), nullable=True),
        sa.Column("module_name", sa.String(length=255), nullable=False),
        sa.Column(
            "config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_configuration")),
    )
    with op.batch_alter_table("system_configuration", schema=None) as batch_op:
        batch_op.create_index(
            "uq_system_configuration_module_tenant",
            ["module_name", "tenant_id"],
            unique=True,
            sqlite_where=sa.text("tenant_id IS NOT NULL"),
            postgresql_where=sa.text("tenant_id IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_system_configuration_module_global",
            ["module_name"],
            unique=True,
            sqlite_where=sa.text("tenant_id IS NULL"),
            postgresql_where=sa.text("tenant_id IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("system_configuration", schema=None) as batch_op:
        batch_op.drop_index("uq_system_configuration_module_global")
        batch_op.drop_index("uq_system_configuration_module_tenant")
    op.drop_table("system_configuration")
