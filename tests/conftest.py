"""Fixtures shared by every test suite: a migrated, empty database on each backend.

    async def test_something(sessions: async_sessionmaker[AsyncSession]) -> None: ...

runs twice, on SQLite and on PostgreSQL. Each test gets its own database, copied from a template
that was migrated once per session, so tests cannot see each other's rows and may run in
parallel. PostgreSQL comes from TRACKD_TEST_POSTGRES_URL (`make test` starts one); without it
the PostgreSQL runs are skipped locally and fail in CI.

Redis and NATS follow the same rule: `redis_url` and `nats_url` give the servers named by
TRACKD_TEST_REDIS_URL and TRACKD_TEST_NATS_URL (`make test` starts both), skipping without them
locally and failing in CI. Tests sharing those servers keep apart by key prefix or subject.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from loops import run_aside
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade

POSTGRES_URL_VAR = "TRACKD_TEST_POSTGRES_URL"
REDIS_URL_VAR = "TRACKD_TEST_REDIS_URL"
NATS_URL_VAR = "TRACKD_TEST_NATS_URL"


def running_in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


# Hypothesis, for every property test: no test may depend on the machine's speed. A deadline
# per example, or the too_slow health check (generation time measured on the wall clock),
# fails tests on a busy 2-core machine though nothing is wrong; strategies are kept cheap
# instead (bounded sizes, few nested levels, a drawn seed for details). Examples stay random
# (not derandomized) so that runs keep finding new cases; CI prints how to reproduce one.
settings.register_profile("trackd", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", settings.get_profile("trackd"), print_blob=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if running_in_ci() else "trackd")
)


def postgres_admin_url() -> str | None:
    """The PostgreSQL server the tests may use, as a SQLAlchemy URL, or None."""
    return os.environ.get(POSTGRES_URL_VAR) or None


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _database_url(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction; asyncpg runs each statement in
    # autocommit mode unless told otherwise.
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _required_server(variable: str, name: str) -> str:
    """The URL in `variable`; skips the test when unset, or fails it when running in CI."""
    url = os.environ.get(variable) or None
    if url is None:
        message = f"{variable} is not set; `make test` starts a server and sets it"
        if running_in_ci():
            pytest.fail(f"{name} is required in CI: {message}", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of the test PostgreSQL server; skips, or fails in CI, when there is none."""
    return _required_server(POSTGRES_URL_VAR, "PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the test Redis server (`redis://host:port/0`); skips, or fails in CI, without."""
    return _required_server(REDIS_URL_VAR, "Redis")


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The URL of the test NATS server (`nats://host:port`, JetStream on); skips, or fails in CI."""
    return _required_server(NATS_URL_VAR, "NATS")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_template(postgres_server: str) -> AsyncIterator[str]:
    """A database migrated to head, cloned for every PostgreSQL test; dropped at the end.

    The name is unique per session so that two test runs sharing a server (or pytest-xdist
    workers) never clone from, or drop, each other's template.
    """
    name = f"trackd_template_{uuid.uuid4().hex[:12]}"
    await _admin(postgres_server, f'CREATE DATABASE "{name}"')
    try:
        await upgrade(_database_url(postgres_server, name))
        yield name
    finally:
        await _admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, copied for every SQLite test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    # `upgrade` disposes the engine it makes, which checkpoints the WAL into the main file, so
    # copying that one file copies the whole database.
    await upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@asynccontextmanager
async def _scratch_postgres_database(server: str, template: str | None) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex}"
    clone = f' TEMPLATE "{template}"' if template else ""
    await _admin(server, f'CREATE DATABASE "{name}"{clone}')
    try:
        yield _database_url(server, name)
    finally:
        # FORCE: a test that forgot to dispose its engine must not make the drop fail.
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_databases(
    postgres_server: str, postgres_template: str
) -> Callable[[], AbstractAsyncContextManager[str]]:
    """More migrated PostgreSQL databases for one test: `async with postgres_databases() as
    url:` gives a fresh clone of the template, dropped on leaving."""
    return lambda: _scratch_postgres_database(postgres_server, postgres_template)


@pytest_asyncio.fixture
async def _postgres_database(postgres_server: str, postgres_template: str) -> AsyncIterator[str]:
    async with _scratch_postgres_database(postgres_server, postgres_template) as url:
        yield url


@pytest_asyncio.fixture
async def _empty_postgres_database(postgres_server: str) -> AsyncIterator[str]:
    async with _scratch_postgres_database(postgres_server, None) as url:
        yield url


@pytest.fixture
def _sqlite_database(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "trackd.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def _empty_sqlite_database(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


BACKENDS = [pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a database of its own for this test, migrated to head and empty.

    Parametrized: every test using it (or `engine`, `sessions`) runs once per backend, with ids
    `[sqlite]` and `[postgres]`; pick one with `-k sqlite` or `-m "not postgres"`.
    """
    # Looked up by name so that a SQLite run never needs, or waits for, PostgreSQL.
    url: str = request.getfixturevalue(f"_{request.param}_database")
    return url


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like `database_url`, but one database for a whole module: for a served trackd that the
    module's tests share (the browser tests). Sync, so that a module may use it outside any
    event loop (a server in a thread, Playwright's sync API)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("module-db") / "trackd.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    server: str = request.getfixturevalue("postgres_server")
    cloned: str = request.getfixturevalue("postgres_template")
    name = f"t_{uuid.uuid4().hex}"
    run_aside(_admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{cloned}"'))
    try:
        yield _database_url(server, name)
    finally:
        run_aside(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest) -> str:
    """Like `database_url`, but never migrated: no tables at all. For migration tests."""
    url: str = request.getfixturevalue(f"_empty_{request.param}_database")
    return url


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `database_url`, disposed after the test."""
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory the application uses, bound to `engine`."""
    return session_factory(engine)


def pytest_report_header() -> list[str]:
    lines = []
    outcome = "fail (CI is set)" if running_in_ci() else "are skipped"
    for name, variable in (
        ("postgres", POSTGRES_URL_VAR),
        ("redis", REDIS_URL_VAR),
        ("nats", NATS_URL_VAR),
    ):
        url = os.environ.get(variable) or None
        if url is None:
            lines.append(f"{name}: {variable} is unset, so its tests {outcome}")
        else:
            lines.append(f"{name}: {make_url(url).render_as_string(hide_password=True)}")
    return lines
