"""task parent key

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:05:18.571156
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows get "" (their parent was set as by a request: it stays); the default is
    # then dropped, as the model has none.
    with op.batch_alter_table("task_executions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("parent_key", sa.String(length=250), server_default="", nullable=False)
        )
    with op.batch_alter_table("task_executions", schema=None) as batch_op:
        batch_op.alter_column("parent_key", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("task_executions", schema=None) as batch_op:
        batch_op.drop_column("parent_key")
