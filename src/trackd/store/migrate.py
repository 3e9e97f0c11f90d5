"""Schema migrations run from code: no alembic.ini, the revisions ship inside the package.

    await upgrade("sqlite+aiosqlite:///./trackd.db")        # empty or older → newest schema
    await current_revision(engine)                         # "0001" or None when unmigrated

A new revision, after changing `models.py`:

    python -c 'import asyncio, trackd.store.migrate as m; asyncio.run(m.autogenerate("add x"))'

then read the generated file in `migrations/versions/` and fix what autogenerate got wrong.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from trackd.store.engine import create_engine

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")

# Any constant works; it only has to be the same in every trackd process sharing a database.
_PG_LOCK_KEY = 0x7472_6163_6B64  # "trackd"


def alembic_config(url: str) -> Config:
    """An Alembic config for `url`, pointing at the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    # `set_main_option` interpolates `%`, so a literal one (URL-encoded passwords) is doubled.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url_or_engine: str | AsyncEngine, revision: str = "head") -> None:
    """Brings the database up to `revision` (the newest by default); a no-op when it is there.

    Safe to call from several processes at once on PostgreSQL: they take turns.
    """
    await _run(url_or_engine, lambda config: command.upgrade(config, revision))


async def downgrade(url_or_engine: str | AsyncEngine, revision: str) -> None:
    """Takes the database back to `revision` (`"base"` drops every table trackd made)."""
    await _run(url_or_engine, lambda config: command.downgrade(config, revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def head_revision() -> str:
    """The newest revision shipped in the package."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS}")
    return head


async def autogenerate(message: str, url: str | None = None) -> Path:
    """Writes a new revision with the difference between `models.py` and the newest revision.

    A development tool. Without `url` it compares against a scratch SQLite database brought to
    head. The file is formatted with ruff, so the dev dependencies must be installed.

    Returns:
        The path of the new revision file.
    """
    script = ScriptDirectory(str(MIGRATIONS))
    rev_id = f"{sum(1 for _ in script.walk_revisions()) + 1:04d}"
    with tempfile.TemporaryDirectory(prefix="trackd-autogenerate-") as scratch:
        target = url or f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"
        await upgrade(target)
        created: list[Path] = []

        def write(config: Config) -> None:
            config.set_section_option("post_write_hooks", "hooks", "ruff_format, ruff_fix")
            for name, args in (("ruff_format", "format"), ("ruff_fix", "check --fix")):
                config.set_section_option("post_write_hooks", f"{name}.type", "module")
                config.set_section_option("post_write_hooks", f"{name}.module", "ruff")
                config.set_section_option(
                    "post_write_hooks", f"{name}.options", f"{args} REVISION_SCRIPT_FILENAME"
                )
            written = command.revision(config, message, autogenerate=True, rev_id=rev_id)
            scripts = written if isinstance(written, list) else [written]
            created.extend(Path(s.path) for s in scripts if s is not None)

        await _run(target, write)
    logger.info("wrote revision path=%s", created[0])
    return created[0]


async def _run(url_or_engine: str | AsyncEngine, action: Callable[[Config], None]) -> None:
    if isinstance(url_or_engine, AsyncEngine):
        engine, owned = url_or_engine, False
    else:
        engine, owned = create_engine(url_or_engine), True
    url = engine.url.render_as_string(hide_password=False)
    try:
        # One transaction for the whole run: on PostgreSQL a failing revision leaves nothing
        # behind, because its DDL is transactional.
        async with engine.begin() as connection:
            await connection.run_sync(_run_with_connection, alembic_config(url), action)
    finally:
        if owned:
            await engine.dispose()


def _run_with_connection(
    connection: Connection, config: Config, action: Callable[[Config], None]
) -> None:
    if connection.dialect.name == "postgresql":
        # Processes started together (serve, ingest, worker) would otherwise race to create the
        # same tables; the lock is released when the transaction ends.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    config.attributes["connection"] = connection
    action(config)
