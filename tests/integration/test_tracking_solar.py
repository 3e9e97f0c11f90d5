"""The solar module end to end on SQLite and PostgreSQL: hourly polls of the fake NOAA feeds
store one shared history whose retention comes from the module's config, and the rules of the
module's config turn a change into events on the bus and messages to subscribed channels."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from poll_fakes import Clock
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fakes.feed_server import FakeFeeds, noaa_fixture
from trackd.modules import service as modules
from trackd.modules.tracking import ensure_schedules, history_policy
from trackd.outbound.http import outbound_client
from trackd.scheduling import Poller, PollerOptions, request_poll
from trackd.settings import Settings
from trackd.snapshots.service import list_snapshots
from trackd.sources import registry
from trackd.sources.noaa_swpc import NoaaSwpcSource
from trackd.store.models import OutboxRow, ScheduleRow
from trackd.store.repos import channels

Sessions = async_sessionmaker[AsyncSession]
TENANT = "acme"
NOW = datetime(2026, 9, 6, 17, 25, tzinfo=UTC)


@pytest.fixture
def noaa() -> Iterator[FakeFeeds]:
    with FakeFeeds() as fake:
        fake.serve_noaa()
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
    return Poller(
        None,
        sessions,
        PollerOptions(consumer="worker-1"),
        client_factory=partial(outbound_client, settings),
        policies=history_policy,
        clock=clock,
        settings=settings,
    )


async def poll(sessions: Sessions, clock: Clock) -> None:
    async with sessions() as session, session.begin():
        await request_poll(session, TENANT, "noaa_swpc", {}, now=clock.now)
    assert await poller(sessions, clock).run_due() == 1


def storm_feeds(noaa: FakeFeeds) -> None:
    """Kp 1-minute estimate 6.67 (G2), Bz -15 nT, wind 720 km/s, a new X1.2 flare."""
    mag = copy.deepcopy(noaa_fixture("rtsw_mag_1m.json"))
    [flare] = copy.deepcopy(noaa_fixture("xray-flares-latest.json"))
    flare.update(begin_time="2026-09-06T18:02:00Z", max_class="X1.2", max_xrlong=1.2e-4)
    wind = copy.deepcopy(noaa_fixture("rtsw_wind_1m.json"))
    for row in mag:
        row["bz_gsm"] = -15.0
    for row in wind:
        row["proton_speed"] = 720.0
    noaa.serve_noaa(planetary_k_index_1m_json="planetary_k_index_1m.storm.json")
    noaa.serve("/json/goes/primary/xray-flares-latest.json", [flare])
    noaa.serve("/json/rtsw/rtsw_mag_1m.json", mag)
    noaa.serve("/json/rtsw/rtsw_wind_1m.json", wind)


async def test_a_storm_raises_each_event_once_on_the_bus_and_to_subscribed_channels(
    sessions: Sessions, noaa: FakeFeeds, clock: Clock
) -> None:
    async with sessions() as session, session.begin():
        channel = await channels.create_channel(
            session, TENANT, kind="webhook", url="https://hooks.example.org/solar"
        )
        await channels.subscribe(session, TENANT, channel.id, source="noaa_swpc", subject="solar")
        picky = await channels.create_channel(
            session,
            TENANT,
            kind="webhook",
            url="https://hooks.example.org/bz",
            options={"fields": ["events.bz_south"]},
        )
        await channels.subscribe(session, TENANT, picky.id, source="noaa_swpc")

    await poll(sessions, clock)  # quiet: the first reading raises nothing
    clock.advance(3600)
    storm_feeds(noaa)
    await poll(sessions, clock)

    async with sessions() as session:
        rows = list(await session.scalars(select(OutboxRow).order_by(OutboxRow.created_at)))
    events = [r for r in rows if r.event_type != "snapshot.changed"]
    on_bus = sorted(r.event_type for r in events if r.kind == "bus")
    assert on_bus == [
        "noaa_swpc.bz_south",
        "noaa_swpc.major_flare",
        "noaa_swpc.storm_level_changed",
        "noaa_swpc.wind_speed_crossed",
    ]
    to_all = sorted(r.event_type for r in events if r.channel_id == channel.id)
    assert to_all == on_bus
    assert [r.event_type for r in events if r.channel_id == picky.id] == ["noaa_swpc.bz_south"]
    storm = next(r for r in events if r.channel_id == channel.id and "storm" in r.event_type)
    assert storm.payload["summary"].startswith("Geomagnetic status quiet → G2")
    assert storm.payload["event"]["kp_source"] == "estimated_1m"

    # The same storm an hour later is no news.
    clock.advance(3600)
    await poll(sessions, clock)
    async with sessions() as session:
        again = list(await session.scalars(select(OutboxRow)))
    assert len([r for r in again if r.event_type != "snapshot.changed"]) == len(events)


async def test_thresholds_come_from_the_modules_config_and_an_inactive_module_is_silent(
    sessions: Sessions, noaa: FakeFeeds, clock: Clock
) -> None:
    async with sessions() as session, session.begin():
        await modules.write_config(
            session,
            TENANT,
            "solar",
            config={"bz_south_nt": -20.0, "wind_speed_kms": 800, "flare_classes": ["M"]},
            version=0,
        )
    await poll(sessions, clock)
    clock.advance(3600)
    storm_feeds(noaa)
    await poll(sessions, clock)
    async with sessions() as session:
        kinds = [r.event_type for r in await session.scalars(select(OutboxRow))]
    # Bz -15 is not south of -20, 720 km/s is under 800, an X flare is not an M.
    assert "noaa_swpc.storm_level_changed" in kinds
    assert not {
        "noaa_swpc.bz_south",
        "noaa_swpc.wind_speed_crossed",
        "noaa_swpc.major_flare",
    } & set(kinds)

    async with sessions() as session, session.begin():
        await modules.write_config(session, TENANT, "solar", config={}, version=1, is_active=False)
    clock.advance(3600)
    noaa.serve_noaa()
    await poll(sessions, clock)
    async with sessions() as session:
        after = [r.event_type for r in await session.scalars(select(OutboxRow))]
    assert after.count("noaa_swpc.storm_level_changed") == 1


async def test_retention_of_the_history_comes_from_the_modules_config(
    sessions: Sessions, noaa: FakeFeeds, clock: Clock
) -> None:
    async with sessions() as session, session.begin():
        await modules.write_config(session, TENANT, "solar", config={"history_keep": 2}, version=0)
    for _ in range(3):
        await poll(sessions, clock)
        clock.advance(3600)
        storm_feeds(noaa) if clock.now.hour % 2 else noaa.serve_noaa()
    async with sessions() as session:
        page = await list_snapshots(session, TENANT, "noaa_swpc", "solar")
    assert [s.seq for s in page.items] == [3, 2]


async def test_hourly_schedules_are_created_once_for_the_active_tracking_modules(
    sessions: Sessions, clock: Clock
) -> None:
    async with sessions() as session, session.begin():
        await modules.write_config(session, TENANT, "lunar", config={}, version=0, is_active=False)
        first = await ensure_schedules(session, TENANT, now=NOW)
    async with sessions() as session, session.begin():
        second = await ensure_schedules(session, TENANT, now=NOW + timedelta(minutes=5))
        rows = list(await session.scalars(select(ScheduleRow)))
    assert [(s.module, s.created) for s in first] == [("solar", True)]
    assert [(s.module, s.created) for s in second] == [("solar", False)]
    [row] = rows
    assert (row.source, row.interval_seconds, row.tenant_id) == ("noaa_swpc", 3600.0, TENANT)
    assert first[0].schedule_id == second[0].schedule_id == str(row.id)
