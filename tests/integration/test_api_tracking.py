"""`/v1/tracking` on SQLite and PostgreSQL: the solar and lunar readings with `as_of` and
`stale`, every tracking module in `/all`, paged histories with their access rules (another
user's 403, an unknown user 404), aurora visibility, and bad input answered 4xx."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from trackd.app import create_app
from trackd.domain.access import Role
from trackd.modules import service
from trackd.modules.base import (
    Contribution,
    Module,
    SynthesisContext,
    TrackingConfig,
    TrackingHistory,
)
from trackd.modules.registry import registry
from trackd.modules.tracking import history_policy
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.snapshots.service import record_snapshot
from trackd.sources.base import Snapshot
from trackd.store.models import OutboxRow
from trackd.store.repos import channels, tokens

pytestmark = pytest.mark.timeout(60)

ACME, GLOBEX = "acme", "globex"
TAKEN = datetime(2026, 11, 30, 11, 58, tzinfo=UTC)
SOLAR = {
    "kp": {"official": {"time": "2026-11-30T06:00:00+00:00", "kp": 4.0}, "estimate": None},
    "status": {"level": "G1", "g_scale": 1, "kp": 5.33, "kp_source": "estimated_1m"},
    "mag": {"bz": -8.2, "bt": 9.0},
    "wind": {"speed": 640.0, "density": 4.1},
    "flare": None,
    "xray": None,
    "missing": {},
    "as_of": "2026-11-30T11:57:00+00:00",
}


class StepsModule(Module[TrackingConfig]):
    """A personal history (one per user), as the transits module keeps."""

    name = "steps"
    layer = "tracking"
    version = "1.0.0"
    description = "Steps walked, per user."
    config_model = TrackingConfig
    history = TrackingHistory("steps_tracking", "steps")

    async def contribute_to_synthesis(
        self, tenant: str, user: str | None, context: SynthesisContext[TrackingConfig]
    ) -> Contribution:
        return self.contribution({"user": user}, [], confidence=1.0, as_of=context.now)


@dataclass
class Api:
    runtime: Runtime
    client: httpx.AsyncClient
    auth: dict[str, dict[str, str]]

    async def get(self, path: str, who: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.auth[who], params=params)

    async def store(self, tenant: str, snapshot: Snapshot) -> None:
        async with self.runtime.sessions() as s, s.begin():
            await record_snapshot(s, tenant, snapshot, settings=self.runtime.settings)


@pytest.fixture
def steps() -> Iterator[None]:
    registry.register(StepsModule(), replace=True)
    try:
        yield
    finally:
        registry.unregister("steps")


@pytest_asyncio.fixture
async def api(database_url: str, steps: None) -> AsyncIterator[Api]:
    runtime = Runtime.build(Settings(database_url=database_url), ingest=False)
    await runtime.start(migrate=False)
    try:
        async with runtime.sessions() as s, s.begin():
            issued = {
                "admin": await tokens.create(s, ACME, user_id="ada", role=Role.ADMIN),
                "reader": await tokens.create(s, ACME, user_id="rita", role=Role.READER),
                "rita": await tokens.create(s, ACME, user_id="rita", role=Role.READER),
                "alice": await tokens.create(s, ACME, user_id="alice", role=Role.USER),
                "bob": await tokens.create(s, ACME, user_id="bob", role=Role.USER),
                "globex": await tokens.create(s, GLOBEX, user_id="gus", role=Role.ADMIN),
            }
        auth = {name: {"Authorization": f"Bearer {token}"} for name, token in issued.items()}
        transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
            yield Api(runtime, client, auth)
    finally:
        await runtime.stop()


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["message"])


async def test_solar_reads_the_tenants_reading_and_says_how_old_it_is(api: Api) -> None:
    before = ok(await api.get("/v1/tracking/solar", "reader"))
    assert before["as_of"] is None and before["stale"] is True
    assert before["data"] == {"reading": None}

    await api.store(ACME, Snapshot("solar", "noaa_swpc", SOLAR, TAKEN))
    solar = ok(await api.get("/v1/tracking/solar", "reader"))
    assert solar["as_of"] == "2026-11-30T11:57:00+00:00"
    # Days old by now: still shown, marked stale with its age.
    assert solar["stale"] is True and solar["data"]["age_seconds"] > 86_400
    assert solar["data"]["storm"]["level"] == "G1" and solar["data"]["wind_fast"] is True
    # Another tenant has no reading of its own.
    assert ok(await api.get("/v1/tracking/solar", "globex"))["data"] == {"reading": None}

    far_north = ok(
        await api.get("/v1/tracking/solar/location", "alice", latitude=69.6, longitude=18.9)
    )
    assert far_north["visibility"] in ("overhead", "horizon") and far_north["model"]
    assert far_north["kp"] == 5.33 and far_north["stale"] is True
    south = ok(await api.get("/v1/tracking/solar/location", "alice", latitude=0, longitude=0))
    assert south["visibility"] == "unlikely"
    assert "latitude" in error(
        await api.get("/v1/tracking/solar/location", "alice", latitude=91, longitude=0), 422
    )
    assert "longitude" in error(
        await api.get("/v1/tracking/solar/location", "alice", latitude=10), 422
    )


async def test_lunar_and_all(api: Api) -> None:
    lunar = ok(await api.get("/v1/tracking/lunar", "alice"))
    assert lunar["stale"] is False and lunar["as_of"]
    assert 0 <= lunar["data"]["phase"]["phase_angle"] < 360
    assert set(lunar["data"]["next_phases"]) == {
        "new_moon",
        "first_quarter",
        "full_moon",
        "last_quarter",
    }
    every = ok(await api.get("/v1/tracking/all", "alice"))
    assert {"solar", "lunar", "steps"} <= set(every["modules"])
    assert every["modules"]["steps"]["data"] == {"user": "alice"}
    assert every["stale"] is True  # no solar reading yet

    async with api.runtime.sessions() as s, s.begin():
        await service.write_config(s, ACME, "lunar", config={}, version=0, is_active=False)
    assert "switched off" in error(await api.get("/v1/tracking/lunar", "alice"), 409)
    assert "lunar" not in ok(await api.get("/v1/tracking/all", "alice"))["modules"]


async def test_history_pages_newest_first_within_a_window(api: Api) -> None:
    for hour in range(5):
        data = {**SOLAR, "wind": {"speed": 400.0 + hour, "density": 4.0}}
        await api.store(ACME, Snapshot("solar", "noaa_swpc", data, TAKEN + timedelta(hours=hour)))

    first = ok(await api.get("/v1/tracking/history/solar_tracking", "reader", limit=2))
    assert [e["data"]["wind"]["speed"] for e in first["entries"]] == [404.0, 403.0]
    assert first["entries"][0]["timestamp"] == (TAKEN + timedelta(hours=4)).isoformat()
    assert first["as_of"] == first["entries"][0]["timestamp"]
    second = ok(
        await api.get(
            "/v1/tracking/history/solar_tracking",
            "reader",
            limit=2,
            cursor=first["next_cursor"],
        )
    )
    assert [e["data"]["wind"]["speed"] for e in second["entries"]] == [402.0, 401.0]
    window = ok(
        await api.get(
            "/v1/tracking/history/solar_tracking",
            "reader",
            since=(TAKEN + timedelta(hours=1)).isoformat(),
            until=(TAKEN + timedelta(hours=3)).isoformat(),
        )
    )
    assert [e["data"]["wind"]["speed"] for e in window["entries"]] == [402.0, 401.0]
    assert window["next_cursor"] is None
    assert ok(await api.get("/v1/tracking/history/solar_tracking", "globex"))["entries"] == []

    history = "/v1/tracking/history/solar_tracking"
    assert "known histories" in error(await api.get("/v1/tracking/history/nope", "reader"), 404)
    assert "limit" in error(await api.get(history, "reader", limit=0), 422)
    assert "cursor" in error(await api.get(history, "reader", cursor="%%%"), 400)
    assert "since" in error(await api.get(history, "reader", since="yesterday"), 422)
    later, earlier = TAKEN.isoformat(), (TAKEN - timedelta(hours=1)).isoformat()
    assert "before" in error(await api.get(history, "reader", since=later, until=earlier), 400)
    assert "time zone" in error(await api.get(history, "reader", since="2026-11-30T00:00"), 422)


async def test_a_personal_history_is_its_users(api: Api) -> None:
    for user in ("alice", "bob"):
        await api.store(ACME, Snapshot(user, "steps", {"steps": len(user)}, TAKEN))
    path = "/v1/tracking/history/steps_tracking"
    own = ok(await api.get(path, "alice"))
    assert [e["data"] for e in own["entries"]] == [{"steps": 5}]
    assert "only its own" in error(await api.get(path, "alice", user="bob"), 403)
    assert [e["data"] for e in ok(await api.get(path, "admin", user="bob"))["entries"]] == [
        {"steps": 3}
    ]
    # gus is globex's: acme's admin does not see him, and globex's sees no acme user.
    assert "no user" in error(await api.get(path, "admin", user="gus"), 404)
    assert "no user" in error(await api.get(path, "globex", user="alice"), 404)


async def test_the_routes_are_documented_and_need_a_token(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    for path in (
        "/v1/tracking/solar",
        "/v1/tracking/lunar",
        "/v1/tracking/all",
        "/v1/tracking/history/{key}",
        "/v1/tracking/solar/location",
    ):
        assert "get" in spec["paths"][path], path
    assert (await api.client.get("/v1/tracking/solar")).status_code == 401


async def test_a_user_routes_solar_events_to_their_own_channel(api: Api) -> None:
    async with api.runtime.sessions() as s, s.begin():
        mine = await channels.create_channel(
            s, ACME, kind="webhook", url="https://hooks.example.org/alice", owner_user_id="alice"
        )
        bobs = await channels.create_channel(
            s, ACME, kind="webhook", url="https://hooks.example.org/bob", owner_user_id="bob"
        )
    path = f"/v1/tracking/solar/channels/{mine.id}"
    followed = await api.client.put(path, headers=api.auth["alice"])
    assert followed.status_code == 200, followed.text
    assert followed.json()["changed"] is True
    again = await api.client.put(path, headers=api.auth["alice"])
    assert again.json()["changed"] is False
    assert "not yours" in error(await api.client.put(path, headers=api.auth["bob"]), 403)
    assert "reader" in error(await api.client.put(path, headers=api.auth["rita"]), 403)
    other = f"/v1/tracking/solar/channels/{bobs.id}"
    assert "not yours" in error(await api.client.put(other, headers=api.auth["alice"]), 403)
    missing = f"/v1/tracking/solar/channels/{uuid.uuid4()}"
    assert error(await api.client.put(missing, headers=api.auth["alice"]), 404)
    globex = f"/v1/tracking/solar/channels/{mine.id}"
    assert error(await api.client.put(globex, headers=api.auth["globex"]), 404)
    assert "unknown module" in error(
        await api.client.put(f"/v1/tracking/tides/channels/{mine.id}", headers=api.auth["alice"]),
        404,
    )

    # A storm between two polls reaches alice's channel, not bob's.
    storm = {**SOLAR, "status": {**SOLAR["status"], "level": "G3", "kp": 7.0}}
    for n, data in enumerate((SOLAR, storm)):
        snapshot = Snapshot("solar", "noaa_swpc", data, TAKEN + timedelta(hours=n))
        async with api.runtime.sessions() as s, s.begin():
            policy = await history_policy(s, ACME, snapshot)
            await record_snapshot(s, ACME, snapshot, settings=api.runtime.settings, policy=policy)
    async with api.runtime.sessions() as s:
        sent = [
            (r.channel_id, r.event_type)
            for r in await s.scalars(select(OutboxRow))
            if r.channel_id is not None
        ]
    assert (mine.id, "noaa_swpc.storm_level_changed") in sent
    assert all(channel == mine.id for channel, _ in sent)

    stopped = await api.client.delete(path, headers=api.auth["alice"])
    assert stopped.status_code == 200 and stopped.json()["changed"] is True


async def test_an_admin_creates_the_hourly_schedules_once(api: Api) -> None:
    assert "admin" in error(
        await api.client.post("/v1/tracking/schedules", headers=api.auth["alice"]), 403
    )
    first = await api.client.post("/v1/tracking/schedules", headers=api.auth["admin"])
    assert first.status_code == 200, first.text
    made = {s["module"]: s for s in first.json()["schedules"]}
    assert set(made) == {"lunar", "solar"} and all(s["created"] for s in made.values())
    again = (await api.client.post("/v1/tracking/schedules", headers=api.auth["admin"])).json()
    assert [s["created"] for s in again["schedules"]] == [False, False]
    assert {s["schedule_id"] for s in again["schedules"]} == {
        s["schedule_id"] for s in made.values()
    }
