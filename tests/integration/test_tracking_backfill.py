"""Backfill of the solar history from a local fake of GFZ, on SQLite and PostgreSQL: entries in
place by their time beside the live readings, idempotent, and refused beyond retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import pairwise

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fakes.feed_server import FakeFeeds, gfz_fixture
from trackd.domain.space_weather import status_level
from trackd.modules import service as modules
from trackd.modules.solar_backfill import BackfillRefused, backfill_solar, spans
from trackd.modules.tracking import read_history
from trackd.outbound.http import outbound_client
from trackd.settings import Settings
from trackd.snapshots.service import latest_snapshot, record_snapshot
from trackd.sources.base import Snapshot
from trackd.sources.gfz_kp import GfzKpSource

Sessions = async_sessionmaker[AsyncSession]
TENANT = "acme"
TODAY = date(2024, 6, 1)
SETTINGS = Settings(
    allow_private_fetch=True,
    fetch_rate_per_host=1000,
    snapshot_retention={"noaa_swpc": {"days": 36_500}},
)


@pytest.fixture
def gfz() -> Iterator[FakeFeeds]:
    with FakeFeeds() as fake:
        fake.serve("/app/json/", gfz_fixture("kp-2024-05-09.json"))
        yield fake


async def test_backfill_fills_in_place_once(sessions: Sessions, gfz: FakeFeeds) -> None:
    live = {"status": {"level": "quiet", "kp": 1.0}, "as_of": "2024-05-31T12:00:00+00:00"}
    async with sessions() as session, session.begin():
        # Kept long enough for entries of 2024 (retention counts from today).
        await modules.write_config(
            session, TENANT, "solar", config={"history_days": 36_500}, version=0
        )
        await record_snapshot(
            session,
            TENANT,
            Snapshot("solar", "noaa_swpc", live, datetime(2024, 5, 31, 12, tzinfo=UTC)),
            settings=SETTINGS,
        )
    fill = partial(
        backfill_solar,
        sessions,
        TENANT,
        GfzKpSource(base_url=gfz.url),
        since=date(2024, 5, 9),
        until=date(2024, 5, 11),
        settings=SETTINGS,
    )
    seen: list[tuple[int, int, int]] = []
    async with outbound_client(SETTINGS) as client:
        first = await fill(client, progress=lambda *step: seen.append(step))
        second = await fill(client)
    assert (first.fetched, first.stored) == (24, 24) and seen == [(1, 1, 24)]
    assert (second.stored, second.already_there) == (0, 24)

    async with sessions() as session:
        newest = await latest_snapshot(session, TENANT, "noaa_swpc", "solar")
        page = await read_history(
            session, TENANT, "solar_tracking", None, since=None, until=None, limit=3, after=None
        )
    assert newest is not None and newest.data == live  # the live reading stays the latest
    assert [e.data.get("backfilled_from") for e in page.items] == [None, "gfz", "gfz"]
    assert page.items[1].taken_at == datetime(2024, 5, 11, 21, tzinfo=UTC)
    storm = page.items[1].data["status"]
    assert storm["kp_source"] == "gfz_def" and storm["level"] == status_level(storm["kp"])
    strongest = max(await _all(sessions), key=lambda data: data["status"]["kp"])
    assert (strongest["status"]["kp"], strongest["status"]["level"]) == (9.0, "G5")


async def _all(sessions: Sessions) -> list[dict[str, object]]:
    async with sessions() as session:
        page = await read_history(
            session, TENANT, "solar_tracking", None, since=None, until=None, limit=100, after=None
        )
    return [e.data for e in page.items if e.data.get("backfilled_from")]


async def test_backfill_beyond_retention_is_refused(sessions: Sessions, gfz: FakeFeeds) -> None:
    async with sessions() as session, session.begin():
        await modules.write_config(session, TENANT, "solar", config={"history_days": 20}, version=0)
    async with outbound_client(SETTINGS) as client:
        with pytest.raises(BackfillRefused, match="history_days=24"):
            await backfill_solar(
                sessions,
                TENANT,
                GfzKpSource(base_url=gfz.url),
                client,
                since=date(2024, 5, 9),
                until=date(2024, 5, 11),
                settings=SETTINGS,
                today=TODAY,
            )
    assert gfz.paths == []


def test_long_ranges_are_asked_a_year_at_a_time() -> None:
    pieces = spans(date(2020, 1, 1), date(2022, 6, 30))
    assert pieces[0] == (date(2020, 1, 1), date(2020, 12, 30))
    assert pieces[-1][1] == date(2022, 6, 30) and len(pieces) == 3
    assert all(b == a + timedelta(days=1) for (_, a), (b, _) in pairwise(pieces))
