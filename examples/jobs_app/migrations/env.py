"""Alembic environment of the example application: its own tables, its own revisions.

`render_item` comes from trackd so that autogenerate writes trackd's column types (UTC
timestamps, JSON) as importable code.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from jobs_app.models import Base
from sqlalchemy import Connection

from trackd.store.autogen import render_item
from trackd.store.engine import create_engine

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=render_item,
        compare_type=True,
        render_as_batch=True,  # SQLite rebuilds tables for most ALTERs
        **kwargs,
    )


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    do_run_migrations(connection)
else:
    asyncio.run(run_async_migrations(config.get_main_option("sqlalchemy.url") or ""))
