"""Engines for SQLite (the embedded default) and PostgreSQL, the session factory, and the
transaction a feature's operation runs in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create

from trackd.errors import ConfigError
from trackd.store.types import read_json

SQLITE_PRAGMAS = (
    # Readers do not block the writer, and the writer does not block readers.
    "PRAGMA journal_mode=WAL",
    # With WAL, NORMAL is durable against process crashes and only risks the last commits on
    # power loss; FULL would fsync on every commit and cut ingest throughput severalfold.
    "PRAGMA synchronous=NORMAL",
    # A second process (CLI, another role) waits for the lock instead of failing at once.
    "PRAGMA busy_timeout=10000",
    # SQLite ignores foreign keys unless asked per connection.
    "PRAGMA foreign_keys=ON",
)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for a `sqlite+aiosqlite://` or `postgresql+asyncpg://` URL.

    Raises:
        ConfigError: the URL names a backend trackd does not support, or its driver is missing.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kwargs.setdefault("json_deserializer", read_json)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+asyncpg")
        try:
            import asyncpg  # noqa: F401
        except ImportError:
            raise ConfigError(
                "PostgreSQL needs the asyncpg driver: pip install 'trackd[postgres]'"
            ) from None
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("pool_pre_ping", True)
        return _create(parsed, **kwargs)
    if backend == "sqlite":
        if parsed.drivername == "sqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        engine = _create(parsed, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "savepoint", _sqlite_on_savepoint)
        return engine
    raise ConfigError(
        f"unsupported database URL scheme {parsed.drivername!r}; "
        "use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db"
    )


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _sqlite_on_savepoint(connection: Connection, _name: str | None) -> None:
    """Begins the database transaction, if none has begun, before SQLAlchemy's SAVEPOINT.

    sqlite3 (under aiosqlite) begins a transaction by itself only before INSERT, UPDATE, DELETE
    and REPLACE; until then each statement commits on its own. A SAVEPOINT sent first would
    open a transaction of its own that its RELEASE commits, out of reach of the caller's
    rollback (a dry run, or a request that fails later, would keep the row).

    Why not SQLAlchemy's recipe for pysqlite/aiosqlite (driver autocommit off, BEGIN from the
    engine's `begin` event): every session would then hold a transaction from its first read,
    and sessions read before they write (the API looks up the caller's token first). With a
    deferred BEGIN, such a session's first write fails at once with SQLITE_BUSY when another
    connection committed since its read (WAL keeps it on its old snapshot; busy_timeout does
    not apply). With BEGIN IMMEDIATE, every reading session holds the write lock, so every
    other writer, in this process or another, waits until that session ends, and fails when it
    stays open past busy_timeout (a test here shows both failures). So
    the transaction still begins at the first write, as the driver does it, and a savepoint
    counts as one. IMMEDIATE: the write lock is taken here, waiting up to busy_timeout, so no
    read inside the savepoint can leave the transaction on a snapshot too old to write from.
    """
    driver = connection.connection.driver_connection  # an aiosqlite.Connection
    if driver is not None and not driver.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@contextlib.asynccontextmanager
async def transaction(session: AsyncSession) -> AsyncIterator[None]:
    """Commit what the block did, or roll it back if it raised. The session may already be
    in a transaction (a request's token lookup began one), so this is not `session.begin()`."""
    try:
        yield
    except BaseException:
        await session.rollback()
        raise
    await session.commit()
