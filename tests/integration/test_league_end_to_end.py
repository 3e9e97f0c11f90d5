"""A tracker from registration to its seasons in one trackd process: the API, the in-process
poller woken by the bus, the registered rocket_league source and the guarded outbound client,
against the local fake of the stats site."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from runtime_support import api_client, bearer_headers, running

from fakes.trn_payloads import recorded
from fakes.trn_server import FakeStatsSite
from trackd.domain.access import Role
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.sources import registry
from trackd.sources.rocket_league import RocketLeagueSource

pytestmark = pytest.mark.timeout(60)

PROFILE = "https://rocketleague.tracker.network/rocket-league/profile/psn/nssbali_/overview"


@pytest.fixture
def site() -> Iterator[FakeStatsSite]:
    with FakeStatsSite(proxy=True) as fake:
        fake.add_profile("psn", "nssbali_", recorded())
        for season in (33, 32, 31):
            fake.add_profile("psn", "nssbali_", {"data": {"segments": []}}, season=season)
        yield fake


@pytest.fixture
def source(site: FakeStatsSite) -> Iterator[RocketLeagueSource]:
    """The registry's rocket_league source pointed at the fake proxy for this test."""
    replaced = RocketLeagueSource(api_url=site.url, enabled=True)
    registry.register(replaced, replace=True)
    try:
        yield replaced
    finally:
        registry.registry.unregister(replaced.name)


@pytest_asyncio.fixture
async def served(database_url: str, source: RocketLeagueSource) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        allow_private_fetch=True,  # the fake site is on loopback
        poll_sweep_interval_s=30,  # only the bus's wake-up can start the poll in time
        scheduler_startup_spread_s=0,
    )
    # As `trackd serve` runs it: ingest takes the polls' task events off the in-process bus.
    runtime = Runtime.build(settings, poll=True, schedule=True)
    async with running(runtime):
        auth = await bearer_headers(runtime, {"alice": ("acme", "alice", Role.USER)})
        async with api_client(runtime, headers=auth["alice"]) as client:
            yield client


async def test_registered_tracker_is_polled_at_once(
    served: httpx.AsyncClient, site: FakeStatsSite
) -> None:
    response = await served.post("/api/trackers/register", json={"urls": [PROFILE]})
    assert response.status_code == 201, response.text
    tracker_id = response.json()["trackers"][0]["id"]
    status: dict[str, object] = {}
    for _ in range(100):
        status = (await served.get(f"/api/trackers/{tracker_id}/status")).json()
        if status["scrapingStatus"] not in ("PENDING", "IN_PROGRESS"):
            break
        await asyncio.sleep(0.05)
    assert status["scrapingStatus"] == "COMPLETED", status
    assert site.seasons_asked("psn", "nssbali_") == [None, "33", "32", "31"]
    seasons = (await served.get(f"/api/trackers/{tracker_id}/seasons")).json()["seasons"]
    assert [s["season"] for s in seasons] == [34, 33, 32, 31]
    assert seasons[0]["playlists"]["3v3"]["rank"] == "Grand Champion I"
