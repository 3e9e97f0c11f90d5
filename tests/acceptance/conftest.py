"""Fixtures of the acceptance tests, which run `trackd` as subprocesses the way people do.

- `database_file`: the URL of a SQLite file of the test's own, not created yet.
- `server`: a `trackd serve` (SQLite, memory bus) for the whole module, with tokens by name:
  "acme" (service), "acme-reader" (reader) and "globex" (service).
- `processes` and `spawn`: `spawn(name, args)` starts `trackd ARGS` with its output in
  `tmp_path/NAME.log`; every process a test started is killed if the test left it running.
- `start_api`: `trackd serve --role api` on a database and a bus, healthy: `api, url =`.
- `redis_prefixes` (two) and `redis_bus_url` (on the first): Redis keys of the test's own,
  deleted afterwards; `databases`: two migrated PostgreSQL databases of the test's own.

Plain helpers (`trackd(...)`, `create_token`, `Process`, `wait_healthy`, ...) are in procs.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
import pytest_asyncio
from procs import (
    Process,
    Server,
    Spawn,
    StartApi,
    assert_server_stopped_cleanly,
    bus_url,
    create_token,
    free_port,
    start,
    start_server,
    trackd_env,
    wait_healthy,
)
from redis.asyncio import Redis


@pytest.fixture
def database_file(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'trackd.db'}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve")
    env = trackd_env(root / "trackd.db")
    tokens = {
        "acme": create_token("acme", env=env),
        "acme-reader": create_token("acme", "reader", env=env),
        "globex": create_token("globex", env=env),
    }
    running = start_server(env, root, tokens)
    try:
        yield running
    finally:
        assert_server_stopped_cleanly(running)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Processes a test starts; killed if the test left them running."""
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


@pytest.fixture
def spawn(processes: list[Process], tmp_path: Path) -> Spawn:
    """`spawn(name, args)`: `trackd ARGS` started, its log in tmp_path, in `processes`."""

    def started(name: str, args: list[str]) -> Process:
        process = start(name, args, tmp_path)
        processes.append(process)
        return process

    return started


@pytest.fixture
def start_api(spawn: Spawn) -> StartApi:
    """`await start_api(database, bus)`: `trackd serve --role api` healthy; its process, URL."""

    async def started(database: str, bus: str) -> tuple[Process, str]:
        port = free_port()
        args = ["serve", "--role", "api", "--port", str(port)]
        api = spawn("api", [*args, "--database-url", database, "--bus-url", bus])
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_healthy, url, api)
        return api, url

    return started


@pytest_asyncio.fixture
async def redis_prefixes(redis_url: str) -> AsyncIterator[list[str]]:
    """Two key prefixes of this test's own; deleted afterwards."""
    prefixes = [f"test-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    yield prefixes
    client = Redis.from_url(redis_url)
    try:
        for prefix in prefixes:
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def redis_bus_url(redis_url: str, redis_prefixes: list[str]) -> str:
    """A Redis bus under the first of `redis_prefixes`, with short leases."""
    return bus_url(redis_url, redis_prefixes[0])


@pytest_asyncio.fixture
async def databases(
    postgres_databases: Callable[[], AbstractAsyncContextManager[str]],
) -> AsyncIterator[list[str]]:
    """Two empty, migrated databases: e.g. one for a scaled-out run, one for a single one."""
    async with postgres_databases() as first, postgres_databases() as second:
        yield [first, second]
