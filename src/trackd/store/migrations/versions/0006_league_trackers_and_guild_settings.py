"""League trackers (seed 002): trackers, unique per profile among live rows; guild settings.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 03:13:56.704670
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import trackd.store.types

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trackers",
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("guild_id", sa.String(length=100), nullable=True),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("player_id", sa.String(length=100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_key", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "user_data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("deleted_at", trackd.store.types.UTCDateTime(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trackers")),
    )
    with op.batch_alter_table("trackers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_trackers_tenant_id_guild_id"), ["tenant_id", "guild_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_trackers_tenant_id_user_id"), ["tenant_id", "user_id"], unique=False
        )
        batch_op.create_index(
            "uq_trackers_tenant_id_url_key_live",
            ["tenant_id", "url_key"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "tracker_guilds",
        sa.Column("guild_id", sa.String(length=100), nullable=False),
        sa.Column("webhook_channel_id", sa.Uuid(), nullable=True),
        sa.Column(
            "mmr_config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
        sa.Column("created_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", trackd.store.types.UTCDateTime(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_channel_id"],
            ["notification_channels.id"],
            name=op.f("fk_tracker_guilds_webhook_channel_id_notification_channels"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracker_guilds")),
        sa.UniqueConstraint(
            "tenant_id", "guild_id", name=op.f("uq_tracker_guilds_tenant_id_guild_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("tracker_guilds")
    with op.batch_alter_table("trackers", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_trackers_tenant_id_url_key_live",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_trackers_tenant_id_user_id"))
        batch_op.drop_index(batch_op.f("ix_trackers_tenant_id_guild_id"))

    op.drop_table("trackers")
