"""The migrations build exactly the schema the models describe, on both backends, both ways."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from trackd.store.engine import create_engine
from trackd.store.migrate import (
    MIGRATIONS,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from trackd.store.models import Base

VERSION_TABLE = "alembic_version"


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _inspect(url: str) -> tuple[str | None, set[str], list[Any]]:
    """The revision, the tables and the difference from the models of the database at `url`."""
    engine = create_engine(url)
    try:
        revision = await current_revision(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(_table_names)
            diff = await connection.run_sync(_schema_diff)
        return revision, tables, diff
    finally:
        await engine.dispose()


def test_a_single_head() -> None:
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()

    assert heads == [head_revision()], f"merge the heads: {heads}"


def test_revisions_form_one_line_from_base() -> None:
    revisions = list(ScriptDirectory(str(MIGRATIONS)).walk_revisions())

    assert revisions[-1].down_revision is None
    for newer, older in pairwise(revisions):
        assert newer.down_revision == older.revision


async def test_upgrade_from_empty_to_head(empty_database_url: str) -> None:
    await upgrade(empty_database_url)

    revision, tables, diff = await _inspect(empty_database_url)
    assert revision == head_revision()
    assert tables == set(Base.metadata.tables) | {VERSION_TABLE}
    assert diff == []


async def test_upgrade_at_head_changes_nothing(database_url: str) -> None:
    await upgrade(database_url)

    revision, _, diff = await _inspect(database_url)
    assert revision == head_revision()
    assert diff == []


async def test_schema_from_migrations_equals_models(database_url: str) -> None:
    _, _, diff = await _inspect(database_url)

    assert diff == [], "models.py and the migrations differ; add a revision (see migrate.py)"


async def test_downgrade_to_base_then_upgrade_again(database_url: str) -> None:
    await downgrade(database_url, "base")

    revision, tables, _ = await _inspect(database_url)
    assert revision is None
    assert tables <= {VERSION_TABLE}

    await upgrade(database_url)

    revision, _, diff = await _inspect(database_url)
    assert revision == head_revision()
    assert diff == []


async def test_every_revision_downgrades_and_upgrades_again(empty_database_url: str) -> None:
    # The "stairway": each step up, one step down and up again, so every downgrade runs
    # against the schema its own revision made.
    revisions = reversed(list(ScriptDirectory(str(MIGRATIONS)).walk_revisions()))
    for script in revisions:
        await upgrade(empty_database_url, script.revision)
        await downgrade(empty_database_url, "-1")
        await upgrade(empty_database_url, script.revision)

        revision, _, _ = await _inspect(empty_database_url)
        assert revision == script.revision


async def test_upgrade_accepts_an_engine_and_leaves_it_open(empty_database_url: str) -> None:
    engine: AsyncEngine = create_engine(empty_database_url)
    try:
        await upgrade(engine)

        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


def test_config_keeps_a_percent_in_the_url() -> None:
    url = "postgresql+asyncpg://trackd:p%40ss@localhost/trackd"

    config = alembic_config(url)

    assert config.get_main_option("sqlalchemy.url") == url
    assert config.get_main_option("script_location") == str(MIGRATIONS)
