"""The example's migrations, run from code (no alembic.ini needed).

python -m jobs_app migrate --database-url sqlite+aiosqlite:///./jobs_app.db
python -m jobs_app revision "add a column"   # autogenerate from models.py
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from trackd.store.engine import create_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def _run(url: str, action: Callable[[Config], object]) -> None:
    engine = create_engine(url)

    def with_connection(connection: Connection) -> None:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        action(config)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(with_connection)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    await _run(url, lambda config: command.upgrade(config, revision))


async def revision(message: str, rev_id: str) -> None:
    """Write a new revision with what models.py has that the migrations do not yet."""
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'scratch.db'}"
        await upgrade(url)
        await _run(
            url, lambda config: command.revision(config, message, autogenerate=True, rev_id=rev_id)
        )
