"""A module config change reaches every running process without a restart: announced on the
bus (two runtimes on one Redis, and the in-process memory bus), or else re-read once the
cache's TTL has passed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from runtime_support import api_client
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.access import Role
from trackd.domain.astronomy import VOID_OF_COURSE_BODIES
from trackd.modules import service
from trackd.modules.config import ModuleConfigCache
from trackd.modules.registry import registry
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.repos import tokens
from trackd.store.repos.module_config import ConfigRow

pytestmark = pytest.mark.timeout(60)

TENANT = "acme"
# Long enough that only an announcement can explain a process seeing the change.
NEVER = 3600.0


@asynccontextmanager
async def running(settings: Settings, consumer: str) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(settings, ingest=False, consumer=consumer)
    await runtime.start(migrate=False)
    try:
        assert runtime.module_config_listener is not None
        await asyncio.wait_for(runtime.module_config_listener.ready.wait(), 30)
        yield runtime
    finally:
        await runtime.stop()


def cache_of(runtime: Runtime) -> ModuleConfigCache:
    assert runtime.module_configs is not None
    return runtime.module_configs


async def bodies(runtime: Runtime) -> list[str]:
    effective = await cache_of(runtime).get(TENANT, "lunar")
    listed: list[str] = effective.config["void_of_course_bodies"]
    return listed


async def write(runtime: Runtime, value: list[str], version: int) -> ConfigRow:
    async with runtime.sessions() as session, session.begin():
        return await service.write_config(
            session, TENANT, "lunar", config={"void_of_course_bodies": value}, version=version
        )


async def test_two_runtimes_on_one_redis_follow_each_others_changes(
    database_url: str, redis_url: str
) -> None:
    bus_url = f"{redis_url}?partitions=2&prefix=trackd-test-{uuid.uuid4().hex[:12]}"
    settings = Settings(database_url=database_url, bus_url=bus_url, module_config_ttl_s=NEVER)
    async with running(settings, "proc-a") as a, running(settings, "proc-b") as b:
        default = await bodies(a)
        assert await bodies(b) == default  # both cache the defaults now

        changed = ["sun", "mars", "pluto"]
        row = await write(a, changed, 0)
        assert await service.announce_change(a.bus, row, within=10)
        for runtime in (b, a):
            while await bodies(runtime) != changed:  # noqa: ASYNC110 - the message is in flight
                await asyncio.sleep(0.02)

        # And back the other way, from the other process.
        row = await write(b, ["venus"], row.version)
        assert await service.announce_change(b.bus, row, within=10)
        while await bodies(a) != ["venus"]:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_memory_bus_announcement_reaches_the_cache(database_url: str) -> None:
    settings = Settings(database_url=database_url, module_config_ttl_s=NEVER)
    async with running(settings, "solo") as runtime:
        assert await bodies(runtime) == list(VOID_OF_COURSE_BODIES)
        row = await write(runtime, ["jupiter"], 0)
        assert await bodies(runtime) != ["jupiter"]  # cached, not yet told
        # The memory bus returns once the listener has acknowledged: the cache has dropped it.
        assert await service.announce_change(runtime.bus, row, within=10)
        assert await bodies(runtime) == ["jupiter"]


async def test_a_missed_announcement_is_caught_up_by_the_ttl(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = [0.0]
    cache = ModuleConfigCache(sessions, registry, ttl=30, clock=lambda: now[0])
    before = (await cache.get(TENANT, "solar")).config["wind_speed_kms"]
    async with sessions() as session, session.begin():
        await service.write_config(
            session, TENANT, "solar", config={"wind_speed_kms": before + 100}, version=0
        )
    now[0] = 29.0
    assert (await cache.get(TENANT, "solar")).config["wind_speed_kms"] == before
    now[0] = 30.5
    assert (await cache.get(TENANT, "solar")).config["wind_speed_kms"] == before + 100
    # A global change drops every tenant's copy.
    cache.invalidate("solar")
    typed = await cache.config(TENANT, registry.get("solar"))
    assert typed.model_dump()["wind_speed_kms"] == before + 100


async def test_a_put_on_one_runtime_reaches_the_other_over_redis(
    database_url: str, redis_url: str
) -> None:
    bus_url = f"{redis_url}?partitions=2&prefix=trackd-test-{uuid.uuid4().hex[:12]}"
    settings = Settings(database_url=database_url, bus_url=bus_url, module_config_ttl_s=NEVER)
    async with running(settings, "api") as api, running(settings, "worker") as worker:
        async with api.sessions() as session, session.begin():
            token = await tokens.create(session, TENANT, user_id="ada", role=Role.ADMIN)
        assert await bodies(worker) == list(VOID_OF_COURSE_BODIES)
        async with api_client(api) as client:
            response = await client.put(
                "/v1/modules/lunar/config",
                headers={"Authorization": f"Bearer {token}"},
                json={"config": {"void_of_course_bodies": ["moon"]}, "version": 0},
            )
            assert response.status_code == 422  # the Moon cannot aspect itself
            response = await client.put(
                "/v1/modules/lunar/config",
                headers={"Authorization": f"Bearer {token}"},
                json={"config": {"void_of_course_bodies": ["neptune"]}, "version": 0},
            )
        assert response.status_code == 200, response.text
        while await bodies(worker) != ["neptune"]:  # noqa: ASYNC110 - the message is in flight
            await asyncio.sleep(0.02)
