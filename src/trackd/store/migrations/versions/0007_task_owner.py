"""task owner

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing tasks get no owner: they were published before ownership was recorded, and
    # NULL (a producer's task) is what a service token's first event gives.
    with op.batch_alter_table("task_executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_user_id", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_executions", schema=None) as batch_op:
        batch_op.drop_column("owner_user_id")
