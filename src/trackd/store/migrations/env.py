"""Alembic environment: runs the revisions in `versions/` against trackd's async engines.

Normally reached through `trackd.store.migrate`, which hands over an open connection in
`config.attributes["connection"]`; with none, this builds an engine from `sqlalchemy.url`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import Connection

from trackd.store.autogen import render_item
from trackd.store.engine import create_engine
from trackd.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=render_item,
        compare_type=True,
        # Batch mode lets SQLite, which cannot ALTER most things, rebuild the table instead. It
        # is on for every backend so a revision renders the same whichever database it was
        # generated against; on PostgreSQL the batch runs as plain ALTER statements.
        render_as_batch=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Writes the SQL to stdout (`alembic upgrade --sql`) instead of running it."""
    _configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    # trackd's own factory, so SQLite gets the same PRAGMAs as at run time.
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError(
            "no database to migrate: pass a connection in config.attributes['connection'] "
            "or set sqlalchemy.url (see trackd.store.migrate.alembic_config)"
        )
    asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
