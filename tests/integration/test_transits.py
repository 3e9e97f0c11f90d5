"""Transits on SQLite and PostgreSQL: the daily refresh through the scheduler, a worker and the
store (one snapshot per user, in bulk, with retention), and `/v1/tracking/transits` and
`/v1/tracking/upcoming` with their access rules."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from trackd.app import create_app
from trackd.domain.access import Role
from trackd.domain.astronomy import ASPECTS, aspects, planet_positions
from trackd.modules.service import synthesis
from trackd.modules.transits import (
    SOURCE,
    TransitsConfig,
    TransitsModule,
    expand,
    readings,
    sky_at,
)
from trackd.runtime import Runtime
from trackd.scheduling import Poller, PollerOptions, Scheduler, SchedulerOptions
from trackd.settings import Settings
from trackd.snapshots.service import list_snapshots
from trackd.store.repos import polls as poll_repo
from trackd.store.repos import tokens
from trackd.store.repos.schedules import find as find_schedules

pytestmark = pytest.mark.timeout(120)

BIRTHS = {
    "alice": {
        "birth": "1990-05-01T12:00:00",
        "timezone": "Europe/Paris",
        "latitude": 48.85,
        "longitude": 2.35,
    },
    "bob": {"birth": "1975-11-20T23:10:00Z", "latitude": -33.9, "longitude": 151.2},
}


@dataclass
class Api:
    runtime: Runtime
    client: httpx.AsyncClient
    auth: dict[str, dict[str, str]]

    async def call(self, method: str, path: str, who: str, body: Any = None) -> httpx.Response:
        return await self.client.request(method, path, headers=self.auth[who], json=body)


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    # Keep one snapshot per history, so that the second refresh shows retention at work.
    settings = Settings(database_url=database_url, snapshot_keep=1)
    runtime = Runtime.build(settings, ingest=False)
    await runtime.start(migrate=False)
    try:
        async with runtime.sessions() as s, s.begin():
            issued = {
                "alice": await tokens.create(s, "acme", user_id="alice", role=Role.USER),
                "bob": await tokens.create(s, "acme", user_id="bob", role=Role.USER),
                "carol": await tokens.create(s, "acme", user_id="carol", role=Role.USER),
                "ada": await tokens.create(s, "acme", user_id="ada", role=Role.ADMIN),
                "rita": await tokens.create(s, "acme", user_id="rita", role=Role.READER),
                "gus": await tokens.create(s, "globex", user_id="gus", role=Role.ADMIN),
            }
        auth = {name: {"Authorization": f"Bearer {token}"} for name, token in issued.items()}
        transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
            api = Api(runtime, client, auth)
            for who, birth in BIRTHS.items():
                response = await api.call("PUT", "/v1/me/natal", who, birth)
                assert response.status_code == 200, response.text
            yield api
    finally:
        await runtime.stop()


async def _refresh(api: Api) -> list[dict[str, Any]]:
    """Fire the tenant's daily refresh at its next run and let a worker run its polls."""
    sessions = api.runtime.sessions
    async with sessions() as session:
        (schedule,) = await find_schedules(session, "acme", source=SOURCE)
    due = schedule.next_run_at
    assert due is not None
    scheduler = Scheduler(
        None,
        sessions,
        SchedulerOptions(startup_spread_seconds=0, announce=False),
        clock=lambda: due,
    )
    assert await scheduler.tick() == 1
    poller = Poller(
        None,
        sessions,
        PollerOptions(consumer="w1"),
        settings=api.runtime.settings,
        clock=lambda: due,
    )
    ran = await poller.run_due()
    async with sessions() as session:
        polls = await poll_repo.of_schedule(session, "acme", schedule.id)
    assert ran == len(schedule.targets)
    return [p.result for p in polls if p.scheduled_for == due]


def _as_set(found: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(a["transiting"], a["natal"], a["aspect"], a["exact"], a["applying"]) for a in found}


async def test_daily_refresh_stores_each_users_transits_in_bulk(api: Api) -> None:
    async with api.runtime.sessions() as session:
        schedules = await find_schedules(session, "acme", source=SOURCE)
    # One schedule for the tenant, however many charts; its shards cover every bucket.
    assert len(schedules) == 1
    buckets = sorted(tuple(t["buckets"]) for t in schedules[0].targets)
    assert buckets[0][0] == 0 and buckets[-1][1] == 1024
    assert all(a[1] == b[0] for a, b in itertools.pairwise(buckets))

    first = await _refresh(api)
    assert all(r["bulk"] for r in first)
    assert sum(r["snapshots"] for r in first) == 2

    chart = (await api.call("GET", "/v1/me/natal", "alice")).json()
    natal = {name: p["longitude"] for name, p in chart["points"].items()}
    async with api.runtime.sessions() as session:
        page = await list_snapshots(session, "acme", SOURCE, "alice")
    (stored,) = page.items
    instant = stored.taken_at
    positions = planet_positions(instant)
    expected = {
        (a.transiting, a.natal, a.aspect, a.exact, a.applying) for a in aspects(positions, natal)
    }
    assert _as_set(expand(stored.data)["aspects"]) == expected
    assert stored.data["positions"]["sun"]["sign"] == positions.bodies["sun"].sign
    assert stored.seq == 1

    # The next day's run (the same sky here, as the clock did not move): a new entry per
    # user with nothing changed, and retention keeps the newest only.
    second = await _refresh(api)
    assert sum(r["snapshots"] for r in second) == 2
    assert sum(r["changes"] for r in second) == 0
    assert sum(r["pruned"] for r in second) == 2
    async with api.runtime.sessions() as session:
        alice = await list_snapshots(session, "acme", SOURCE, "alice")
        bob = await list_snapshots(session, "acme", SOURCE, "bob")
        other = await list_snapshots(session, "globex", SOURCE, "alice")
    assert [s.seq for s in alice.items] == [2]
    assert [s.seq for s in bob.items] == [2]
    assert other.items == []

    response = await api.call("GET", "/v1/tracking/transits", "alice")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stored"], body["stale"], body["user_id"]) == (True, False, "alice")
    assert body["as_of"] == instant.isoformat()
    assert _as_set(body["aspects"]) == expected


async def test_transits_before_any_refresh_are_computed_on_the_spot(api: Api) -> None:
    response = await api.call("GET", "/v1/tracking/transits", "bob")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stored"], body["stale"]) == (False, False)
    chart = (await api.call("GET", "/v1/me/natal", "bob")).json()
    natal = {name: p["longitude"] for name, p in chart["points"].items()}
    sky = sky_at(datetime.fromisoformat(body["as_of"]), TransitsConfig())
    (reading,) = readings(sky, [natal], TransitsConfig())
    assert body["aspects"] == expand(reading)["aspects"]
    for aspect in body["aspects"]:
        assert set(aspect) == {"transiting", "natal", "aspect", "orb", "exact", "applying"}
        assert aspect["exact"] == (aspect["orb"] < 1.0)


async def test_who_may_read_whose_transits(api: Api) -> None:
    async def status(who: str, path: str) -> int:
        return (await api.call("GET", path, who)).status_code

    for path in ("/v1/tracking/transits", "/v1/tracking/upcoming?days=3"):
        assert await status("bob", f"{path}{'&' if '?' in path else '?'}user=alice") == 403
        assert await status("ada", f"{path}{'&' if '?' in path else '?'}user=alice") == 200
        assert await status("rita", f"{path}{'&' if '?' in path else '?'}user=bob") == 200
        # Another tenant's user, and a user without chart named by an admin: not found.
        assert await status("gus", f"{path}{'&' if '?' in path else '?'}user=alice") == 404
        assert await status("ada", f"{path}{'&' if '?' in path else '?'}user=carol") == 404
    missing = await api.call("GET", "/v1/tracking/transits", "carol")
    assert missing.status_code == 409
    assert "PUT /v1/me/natal" in missing.json()["error"]["message"]
    assert (await api.client.get("/v1/tracking/transits")).status_code == 401


async def test_upcoming_events_are_exact_roots(api: Api) -> None:
    for days in (0, 91):
        response = await api.call("GET", f"/v1/tracking/upcoming?days={days}", "alice")
        assert response.status_code == 422, response.text
    response = await api.call("GET", "/v1/tracking/upcoming?days=30", "alice")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {p["phase"] for p in body["moon_phases"]} == {
        "new_moon",
        "first_quarter",
        "full_moon",
        "last_quarter",
    }
    assert len(body["moon_ingresses"]) >= 10
    chart = (await api.call("GET", "/v1/me/natal", "alice")).json()
    natal = {name: p["longitude"] for name, p in chart["points"].items()}
    exact = body["exact_transits"]
    assert len(exact) > 20
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["until"])
    for event in exact[:: max(1, len(exact) // 15)]:
        instant = datetime.fromisoformat(event["instant"])
        assert start <= instant <= end
        lon = planet_positions(instant).bodies[event["transiting"]].longitude
        separation = abs((lon - natal[event["natal"]] + 180.0) % 360.0 - 180.0)
        assert separation == pytest.approx(ASPECTS[event["aspect"]], abs=1e-3)
    # Without a chart the sky's events are still there.
    carol = (await api.call("GET", "/v1/tracking/upcoming?days=10", "carol")).json()
    assert carol["exact_transits"] is None and carol["moon_phases"]


async def test_openapi_documents_the_routes(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert {"put", "get", "delete"} <= set(paths["/v1/me/natal"])
    transits = paths["/v1/tracking/transits"]["get"]
    assert {"403", "404", "409"} <= set(transits["responses"])
    upcoming = paths["/v1/tracking/upcoming"]["get"]
    days = next(p for p in upcoming["parameters"] if p["name"] == "days")
    assert days["schema"]["maximum"] == 90


async def test_synthesis_carries_the_users_chart_and_transits(api: Api) -> None:
    now = datetime.now(UTC)
    async with api.runtime.sessions() as session:
        alice = {c.module: c for c in await synthesis(session, "acme", "alice", now)}
        carol = {c.module: c for c in await synthesis(session, "acme", "carol", now)}
    assert TransitsModule.history_key == "transit_tracking"
    found = alice["transits"]
    assert (found.layer, found.metadata.confidence) == ("tracking", 1.0)
    assert found.data["aspects"] and found.data["stale"] is False
    assert len(found.insights) >= 1
    assert alice["natal"].layer == "calculation"
    assert alice["natal"].data["chart"]["points"]["sun"]["sign"] == "taurus"
    assert carol["transits"].data == {"transits": None}
    assert carol["transits"].metadata.confidence == 0.0
    assert "PUT /v1/me/natal" in carol["transits"].insights[0]


async def test_the_daily_readings_are_the_users_transit_tracking_history(api: Api) -> None:
    await _refresh(api)
    mine = await api.call("GET", "/v1/tracking/history/transit_tracking", "alice")
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["module"] == "transits" and body["stale"] is False
    [entry] = body["entries"]
    assert entry["data"]["aspects"] and entry["data"]["aspect_fields"]
    # Another user's history is theirs; an admin of the tenant may name them.
    assert (
        await api.call("GET", "/v1/tracking/history/transit_tracking?user=alice", "bob")
    ).status_code == 403
    named = await api.call("GET", "/v1/tracking/history/transit_tracking?user=alice", "ada")
    assert named.json()["entries"] == body["entries"]
    # Another tenant's admin does not know alice.
    gus = await api.call("GET", "/v1/tracking/history/transit_tracking?user=alice", "gus")
    assert gus.status_code == 404, gus.text
