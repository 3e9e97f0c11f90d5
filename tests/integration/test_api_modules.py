"""The module system over HTTP (`/v1/modules`), on SQLite and PostgreSQL: listing, reading and
writing a tenant's configuration, its validation and optimistic locking, the global row a
tenant inherits, and the modules' contributions read from the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from runtime_support import api_client, bearer_headers, running

from trackd.domain.access import Role
from trackd.domain.astronomy import VOID_OF_COURSE_BODIES
from trackd.modules import service
from trackd.modules.config import decode_change
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.snapshots.service import record_snapshot
from trackd.sources.base import Snapshot

pytestmark = pytest.mark.timeout(60)

ACME, GLOBEX = "acme", "globex"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass
class Api:
    runtime: Runtime
    client: httpx.AsyncClient
    auth: dict[str, dict[str, str]]

    async def get(self, path: str, who: str) -> httpx.Response:
        return await self.client.get(path, headers=self.auth[who])

    async def put(self, path: str, who: str, body: Any) -> httpx.Response:
        return await self.client.put(path, headers=self.auth[who], json=body)


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    runtime = Runtime.build(Settings(database_url=database_url), ingest=False)
    async with running(runtime):
        auth = await bearer_headers(
            runtime,
            {
                "admin": (ACME, "ada", Role.ADMIN),
                "reader": (ACME, "rita", Role.READER),
                "user": (ACME, "alice", Role.USER),
                "globex": (GLOBEX, "gus", Role.ADMIN),
            },
        )
        async with api_client(runtime) as client:
            yield Api(runtime, client, auth)


def error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return str(body["error"]["message"])


async def test_list_shows_the_registered_modules_with_defaults(api: Api) -> None:
    response = await api.get("/v1/modules", "reader")
    assert response.status_code == 200, response.text
    modules = {m["name"]: m for m in response.json()["modules"]}
    assert {"solar", "lunar"} <= set(modules)
    solar = modules["solar"]
    assert (solar["layer"], solar["is_active"], solar["config_origin"]) == (
        "tracking",
        True,
        "default",
    )
    assert solar["config"]["bz_south_nt"] == -10.0
    assert solar["config"]["flare_classes"] == ["M", "X"]
    assert modules["lunar"]["config"]["void_of_course_bodies"][0] == "sun"
    assert (await api.client.get("/v1/modules")).status_code == 401


async def test_admin_override_is_validated_locked_and_per_tenant(api: Api) -> None:
    path = "/v1/modules/solar/config"
    read = await api.get(path, "user")
    assert read.status_code == 200
    assert read.json()["config_version"] == 0
    assert "bz_south_nt" in read.json()["config_schema"]["properties"]

    refused = await api.put(path, "user", {"config": {"bz_south_nt": -5}, "version": 0})
    assert refused.status_code == 403, refused.text

    wrong = await api.put(path, "admin", {"config": {"bz_south_nt": 5}, "version": 0})
    assert wrong.status_code == 422
    assert "config.bz_south_nt" in error(wrong)
    unknown_key = await api.put(path, "admin", {"config": {"bz_south": -5}, "version": 0})
    assert unknown_key.status_code == 422 and "config.bz_south" in error(unknown_key)

    written = await api.put(
        path, "admin", {"config": {"bz_south_nt": -7.5, "storm_kp": "official_3h"}, "version": 0}
    )
    assert written.status_code == 200, written.text
    shown = written.json()
    assert (shown["config_version"], shown["config_origin"]) == (1, "tenant")
    assert shown["config"]["bz_south_nt"] == -7.5
    assert shown["config"]["wind_speed_kms"] == 600.0  # the default still fills the rest
    assert shown["overrides"] == {"bz_south_nt": -7.5, "storm_kp": "official_3h"}

    stale = await api.put(path, "admin", {"config": {"bz_south_nt": -9}, "version": 0})
    assert stale.status_code == 409 and "version 0" in error(stale)
    stale = await api.put(path, "admin", {"config": {"bz_south_nt": -9}, "version": 7})
    assert stale.status_code == 409
    beyond = await api.put(path, "admin", {"config": {}, "version": 2**40})
    assert beyond.status_code == 422 and "version" in error(beyond)

    off = await api.put(
        path, "admin", {"config": {"bz_south_nt": -9}, "version": 1, "is_active": False}
    )
    assert off.status_code == 200
    assert (off.json()["config_version"], off.json()["is_active"]) == (2, False)
    assert (await api.get(path, "reader")).json()["config"]["bz_south_nt"] == -9

    # Another tenant sees none of it.
    other = (await api.get(path, "globex")).json()
    assert (other["config_origin"], other["config"]["bz_south_nt"], other["is_active"]) == (
        "default",
        -10.0,
        True,
    )


async def test_unknown_module_is_404_naming_the_known_ones(api: Api) -> None:
    for response in (
        await api.get("/v1/modules/tides/config", "admin"),
        await api.put("/v1/modules/tides/config", "admin", {"config": {}, "version": 0}),
    ):
        assert response.status_code == 404
        assert "known modules:" in error(response) and "solar" in error(response)


async def test_tenant_row_overrides_the_global_one(api: Api) -> None:
    async with api.runtime.sessions() as s, s.begin():
        await service.write_config(
            s, None, "solar", config={"wind_speed_kms": 700, "bz_south_nt": -12}, version=0
        )
    shown = (await api.get("/v1/modules/solar/config", "admin")).json()
    assert (shown["config_origin"], shown["config"]["wind_speed_kms"]) == ("global", 700)
    # A tenant override is validated with what it inherits and overrides it key by key.
    written = await api.put(
        "/v1/modules/solar/config", "admin", {"config": {"wind_speed_kms": 500}, "version": 0}
    )
    assert written.status_code == 200, written.text
    config = written.json()["config"]
    assert (config["wind_speed_kms"], config["bz_south_nt"]) == (500, -12)
    other = (await api.get("/v1/modules/solar/config", "globex")).json()
    assert other["config"]["wind_speed_kms"] == 700


async def test_the_cache_sees_a_change_at_once_and_it_is_announced(api: Api) -> None:
    cache = api.runtime.module_configs
    assert cache is not None
    assert (await cache.get(ACME, "lunar")).config["void_of_course_bodies"][-1] == "saturn"
    bodies = ["sun", "moon"]
    refused = await api.put(
        "/v1/modules/lunar/config",
        "admin",
        {"config": {"void_of_course_bodies": bodies}, "version": 0},
    )
    assert refused.status_code == 422 and "void_of_course_bodies" in error(refused)
    bodies = ["sun", "saturn", "pluto"]
    written = await api.put(
        "/v1/modules/lunar/config",
        "admin",
        {"config": {"void_of_course_bodies": bodies}, "version": 0},
    )
    assert written.status_code == 200
    assert (await cache.get(ACME, "lunar")).config["void_of_course_bodies"] == bodies
    assert decode_change(b'{"type": "module.config_changed", "module": "lunar"}') == (
        "lunar",
        None,
    )
    assert decode_change(b"[1]") is None


async def test_solar_says_no_reading_until_a_snapshot_is_stored(api: Api) -> None:
    async with api.runtime.sessions() as s:
        [solar] = [c for c in await service.synthesis(s, ACME, "alice", NOW) if c.module == "solar"]
    assert solar.data == {"reading": None}
    assert solar.metadata.confidence == 0.0 and solar.metadata.as_of is None
    assert "no space weather reading yet" in solar.insights[0]

    taken = datetime(2026, 11, 30, 11, 58, tzinfo=UTC)
    data = {
        "kp": {"official": {"time": "2026-11-30T06:00:00+00:00", "kp": 4.0}, "estimate": None},
        "status": {"level": "G1", "g_scale": 1, "kp": 5.33, "kp_source": "estimated_1m"},
        "mag": {"bz": -8.2, "bt": 9.0},
        "wind": {"speed": 640.0, "density": 4.1},
        "flare": {"peak_class": "M1.6", "begin_time": "2026-11-30T11:00:00+00:00"},
        "xray": None,
        "missing": {"xrays": "HTTP 503"},
        "as_of": "2026-11-30T11:57:00+00:00",
    }
    async with api.runtime.sessions() as s, s.begin():
        await record_snapshot(
            s,
            ACME,
            Snapshot("solar", "noaa_swpc", data, taken),
            settings=api.runtime.settings,
            notify=False,
        )
    async with api.runtime.sessions() as s:
        [solar] = [c for c in await service.synthesis(s, ACME, "alice", NOW) if c.module == "solar"]
    assert solar.data["storm"] == {
        "level": "G1",
        "g_scale": 1,
        "kp": 5.33,
        "kp_source": "estimated_1m",
    }
    assert (solar.data["bz_south"], solar.data["wind_fast"], solar.data["flare_notable"]) == (
        False,
        True,
        True,
    )
    assert solar.data["stale"] is False and solar.data["age_seconds"] == 180.0
    assert solar.metadata.as_of == datetime(2026, 11, 30, 11, 57, tzinfo=UTC)

    # The thresholds come from the configuration, and so does the Kp the storm follows.
    async with api.runtime.sessions() as s, s.begin():
        await service.write_config(
            s,
            ACME,
            "solar",
            config={"bz_south_nt": -8, "storm_kp": "official_3h", "stale_after_minutes": 2},
            version=0,
        )
    async with api.runtime.sessions() as s:
        [solar] = [c for c in await service.synthesis(s, ACME, "alice", NOW) if c.module == "solar"]
    assert solar.data["bz_south"] is True
    assert (
        solar.data["storm"]["level"] == "active"
        and solar.data["storm"]["kp_source"] == "official_3h"
    )
    assert solar.data["stale"] is True and solar.metadata.confidence == 0.5
    assert any("stale" in said for said in solar.insights)


async def test_lunar_contributes_the_moon_now_and_an_inactive_module_nothing(api: Api) -> None:
    async with api.runtime.sessions() as s:
        [lunar] = [c for c in await service.synthesis(s, ACME, None, NOW) if c.module == "lunar"]
    phase = lunar.data["phase"]
    assert 0 <= phase["phase_angle"] < 360 and 0 <= phase["illumination"] <= 1
    assert lunar.data["void_of_course"]["bodies"] == list(VOID_OF_COURSE_BODIES)
    assert lunar.metadata.as_of == NOW and lunar.insights
    async with api.runtime.sessions() as s, s.begin():
        await service.write_config(s, ACME, "lunar", config={}, version=0, is_active=False)
    async with api.runtime.sessions() as s:
        modules = [c.module for c in await service.synthesis(s, ACME, None, NOW)]
    assert "lunar" not in modules
