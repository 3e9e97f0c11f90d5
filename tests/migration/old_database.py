"""A database at an older revision, for the migration tests (see conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trackd.store.migrate import upgrade


@dataclass
class OldDatabase:
    """A database migrated to an older revision, and its engine."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]  # the application's kind of session

    async def insert(self, table: Table, *rows: dict[str, Any]) -> None:
        """Write `rows` in one transaction, as the old revision's code stored them."""
        async with self.engine.begin() as connection:
            await connection.execute(table.insert(), list(rows))

    async def upgrade(self, revision: str = "head") -> None:
        await upgrade(self.engine, revision)


DatabaseAt = Callable[[str], Awaitable[OldDatabase]]
