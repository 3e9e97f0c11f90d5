"""A database at an older revision, filled, then upgraded: the setup of every migration test.

A schema change ships with a test that writes rows the way the previous revision stored them,
upgrades, and reads them back through today's code. Each one follows this pattern:

    from old_database import DatabaseAt

    async def test_rows_stored_at_0006_read_back(database_at: DatabaseAt) -> None:
        old = await database_at("0006")       # an empty database, upgraded to 0006 only
        await old.insert(table_of(TaskExecution), {...})   # only the columns 0006 has
        await old.upgrade()                   # to head (or `old.upgrade("0008")`)
        async with old.sessions() as session:
            record = await tasks.get(session, "acme", "task-1")
        assert ...

It runs once per backend (SQLite and PostgreSQL, from `empty_database_url`), and the engine is
disposed after the test. Insert through a `Table` of the old shape when the model has gained
columns with defaults (`sqlalchemy.Table(name, MetaData(), *old_columns)`): the model's
table would send the new columns to a database that has not got them yet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from old_database import DatabaseAt, OldDatabase
from sqlalchemy.ext.asyncio import AsyncEngine

from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade


@pytest_asyncio.fixture
async def database_at(empty_database_url: str) -> AsyncIterator[DatabaseAt]:
    """`await database_at("0006")`: the test's empty database upgraded to that revision."""
    engines: list[AsyncEngine] = []

    async def at(revision: str) -> OldDatabase:
        await upgrade(empty_database_url, revision)
        engine = create_engine(empty_database_url)
        engines.append(engine)
        return OldDatabase(engine, session_factory(engine))

    try:
        yield at
    finally:
        for engine in engines:
            await engine.dispose()
