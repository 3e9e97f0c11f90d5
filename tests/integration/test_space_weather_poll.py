"""The NOAA SWPC source in a real poll on SQLite and PostgreSQL: the poller runs it against
a local fake of NOAA and stores its one snapshot; a poll whose every feed fails is retried."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from poll_fakes import Clock
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fakes.feed_server import FakeFeeds
from trackd.domain.polls import PollStatus
from trackd.domain.retry import Backoff
from trackd.outbound.http import outbound_client
from trackd.scheduling import Poller, PollerOptions, request_poll
from trackd.settings import Settings
from trackd.sources import registry
from trackd.sources.noaa_swpc import NoaaSwpcSource
from trackd.store.models import SnapshotRow
from trackd.store.repos import polls as poll_repo

Sessions = async_sessionmaker[AsyncSession]
TENANT = "acme"
NOW = datetime(2026, 9, 6, 17, 25, tzinfo=UTC)


@pytest.fixture
def noaa() -> Iterator[FakeFeeds]:
    with FakeFeeds() as fake:
        yield fake


@pytest.fixture
def clock(noaa: FakeFeeds) -> Iterator[Clock]:
    clock = Clock(NOW)
    registry.registry.register(NoaaSwpcSource(base_url=noaa.url, clock=clock), replace=True)
    try:
        yield clock
    finally:
        registry.registry.unregister("noaa_swpc")


def poller(sessions: Sessions, clock: Clock) -> Poller:
    settings = Settings(allow_private_fetch=True, fetch_rate_per_host=1000)

    def client() -> httpx.AsyncClient:
        return outbound_client(settings)

    return Poller(
        None,
        sessions,
        PollerOptions(consumer="worker-1", retry_backoff=Backoff(base=5, factor=2, jitter=0)),
        client_factory=client,
        clock=clock,
        settings=settings,
    )


async def request(sessions: Sessions) -> uuid.UUID:
    async with sessions() as session, session.begin():
        poll = await request_poll(session, TENANT, "noaa_swpc", {}, now=NOW)
    return poll.id


async def test_a_solar_poll_stores_one_snapshot(
    sessions: Sessions, noaa: FakeFeeds, clock: Clock
) -> None:
    noaa.serve_noaa(planetary_k_index_1m_json="planetary_k_index_1m.storm.json")
    poll_id = await request(sessions)

    assert await poller(sessions, clock).run_due() == 1

    async with sessions() as session:
        poll = await poll_repo.get(session, TENANT, poll_id)
        stored = list(await session.scalars(select(SnapshotRow)))
    assert poll is not None and poll.status == PollStatus.COMPLETED
    assert len(stored) == 1
    [row] = stored
    assert (row.source, row.subject, row.tenant_id) == ("noaa_swpc", "solar", TENANT)
    assert row.data["status"]["level"] == "G2"
    assert row.data["status"]["kp_source"] == "estimated_1m"
    assert row.data["wind"]["feed"] == "rtsw"
    assert row.data["missing"] == {}


async def test_a_solar_poll_with_every_feed_down_is_retried_and_stores_nothing(
    sessions: Sessions, noaa: FakeFeeds, clock: Clock
) -> None:
    # Nothing served: every feed answers 404.
    poll_id = await request(sessions)

    await poller(sessions, clock).run_due()

    async with sessions() as session:
        poll = await poll_repo.get(session, TENANT, poll_id)
        stored = list(await session.scalars(select(SnapshotRow)))
    assert poll is not None
    assert poll.status == PollStatus.PENDING
    assert poll.not_before is not None and poll.not_before > NOW
    assert "no NOAA SWPC feed answered" in (poll.error or "")
    assert stored == []
