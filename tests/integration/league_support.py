"""A served trackd with league trackers, a fake stats site, and a worker and scheduler run on
demand: what the tracker API tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from runtime_support import api_client, bearer_headers, running

from fakes.trn_payloads import playlist_segment, profile_payload, recorded
from fakes.trn_server import FakeStatsSite
from trackd.domain.access import Role
from trackd.runtime import Runtime
from trackd.scheduling import Poller, PollerOptions, Scheduler, SchedulerOptions
from trackd.settings import Settings
from trackd.sources.rocket_league import RocketLeagueSource

ACME, GLOBEX = "acme", "globex"
BASE = "https://rocketleague.tracker.network/rocket-league/profile"
RECORDED_URL = f"{BASE}/psn/nssbali_/overview"
Headers = dict[str, str]


def url(platform: str, player: str) -> str:
    return f"{BASE}/{platform}/{player}/overview"


def season_payload(
    player: str, season: int, *, rating: int = 1500, rank: str = "Champion I", matches: int = 100
) -> dict[str, Any]:
    """A profile answer for one season of a steam player, 2v2 and 3v3."""
    return profile_payload(
        [
            playlist_segment(11, season, rating=rating, rank=rank, matches=matches),
            playlist_segment(13, season, rating=rating - 100, matches=matches // 2),
        ],
        platform="steam",
        player_id=player,
        current_season=34,
    )


@dataclass
class Clock:
    """Real time, moved forward by `advance` (the API stamps requests with real time)."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)


@dataclass
class League:
    """The served app with its tokens, the fake site, and a worker and a scheduler."""

    runtime: Runtime
    client: httpx.AsyncClient
    site: FakeStatsSite
    auth: dict[str, Headers]
    clock: Clock

    def profile(
        self, player: str, *, seasons: tuple[int, ...] = (34, 33, 32, 31), rating: int = 1500
    ) -> str:
        """Serve a steam player with these seasons on the fake site; returns its URL."""
        for season in seasons:
            payload = season_payload(player, season, rating=rating - (34 - season) * 10)
            self.site.add_profile("steam", player, payload, season=None if season == 34 else season)
        return url("steam", player)

    async def work(self) -> int:
        """Run every due poll to its end, as a worker would; returns how many ran."""
        source = RocketLeagueSource(api_url=self.site.url, enabled=True, clock=self.clock)
        poller = Poller(
            None,
            self.runtime.sessions,
            PollerOptions(consumer="test-worker", lease_seconds=30),
            sources=lambda _name: source,
            client_factory=lambda: httpx.AsyncClient(timeout=5),
            clock=self.clock,
            settings=self.runtime.settings,
        )
        return await poller.run_due()

    async def tick(self) -> int:
        """One scheduler tick at the clock's time; returns how many schedules it handled."""
        scheduler = Scheduler(
            None,
            self.runtime.sessions,
            SchedulerOptions(startup_spread_seconds=0, announce=False),
            clock=self.clock,
        )
        return await scheduler.tick()

    async def post(self, path: str, who: str, body: Any = None) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.auth[who])

    async def get(self, path: str, who: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.auth[who])


@pytest.fixture
def site() -> Iterator[FakeStatsSite]:
    with FakeStatsSite() as fake:
        fake.add_profile("psn", "nssbali_", recorded())
        yield fake


@pytest_asyncio.fixture
async def league(database_url: str, site: FakeStatsSite) -> AsyncIterator[League]:
    settings = Settings(database_url=database_url, tracker_refresh_jitter_s=0)
    runtime = Runtime.build(settings, ingest=False)
    async with running(runtime):
        auth = await bearer_headers(
            runtime,
            {
                "alice": (ACME, "alice", Role.USER),
                "bob": (ACME, "bob", Role.USER),
                "reader": (ACME, "rita", Role.READER),
                "admin": (ACME, "ada", Role.ADMIN),
                "bot": (ACME, None, Role.SERVICE),
                "globex": (GLOBEX, "alice", Role.USER),
            },
        )
        async with api_client(runtime) as client:
            yield League(runtime, client, site, auth, Clock())
