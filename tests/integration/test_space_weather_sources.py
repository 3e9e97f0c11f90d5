"""The NOAA SWPC and GFZ Kp sources over HTTP, through the guarded outbound client, against
local fakes replaying the fixtures (never the real services)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from fakes.feed_server import FakeFeeds, gfz_fixture, noaa_fixture
from fakes.trn_server import Reply
from trackd.domain import space_weather as sw
from trackd.outbound.http import outbound_client
from trackd.settings import Settings
from trackd.sources.base import InvalidTarget, Source, SourceBlocked, SourceError
from trackd.sources.gfz_kp import GfzKpSource
from trackd.sources.noaa_swpc import FEEDS, NoaaSwpcSource
from trackd.sources.registry import SourceRegistry

NOW = datetime(2026, 9, 6, 17, 25, tzinfo=UTC)


@pytest.fixture
def noaa() -> Iterator[FakeFeeds]:
    with FakeFeeds() as fake:
        fake.serve_noaa()
        yield fake


@pytest.fixture
def gfz() -> Iterator[FakeFeeds]:
    with FakeFeeds() as fake:
        fake.serve("/app/json/", gfz_fixture("kp-2024-05-09.json"))
        yield fake


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # The fakes listen on loopback, which the guard refuses unless allowed; the time-out is
    # short so a hanging feed ends the test quickly.
    settings = Settings(allow_private_fetch=True, fetch_timeout_s=1.0, fetch_rate_per_host=1000)
    async with outbound_client(settings) as http:
        yield http


async def snapshot(noaa: FakeFeeds, client: httpx.AsyncClient) -> dict[str, Any]:
    source = NoaaSwpcSource(base_url=noaa.url, clock=lambda: NOW)
    [shot] = await source.fetch({}, client)
    assert (shot.subject, shot.source, shot.taken_at) == ("solar", "noaa_swpc", NOW)
    return dict(shot.data)


# --- NOAA SWPC ------------------------------------------------------------------------------


def test_sources_are_registered_and_configured_by_settings() -> None:
    registry = SourceRegistry()
    names = registry.names()
    assert {"noaa_swpc", "gfz_kp"} <= set(names)
    registry.configure(Settings())
    assert isinstance(registry.get("noaa_swpc"), Source)
    assert isinstance(registry.get("gfz_kp"), Source)
    settings = Settings(
        noaa_swpc_url="http://proxy.local/noaa/", gfz_kp_url="http://proxy.local/gfz"
    )
    assert NoaaSwpcSource.from_settings(settings).base_url == "http://proxy.local/noaa"
    assert GfzKpSource.from_settings(settings).base_url == "http://proxy.local/gfz"
    assert Settings().noaa_swpc_url == "https://services.swpc.noaa.gov"
    assert Settings().gfz_kp_url == "https://kp.gfz.de"
    with pytest.raises(ValueError, match="TRACKD_NOAA_SWPC_URL"):
        NoaaSwpcSource(base_url="ftp://x")


def test_noaa_target() -> None:
    source = NoaaSwpcSource(base_url="http://x")
    assert source.validate({}) == {"subject": "solar"}
    assert source.validate({"subject": "sw"}) == {"subject": "sw"}
    with pytest.raises(InvalidTarget, match="unknown"):
        source.validate({"url": "http://elsewhere"})
    with pytest.raises(InvalidTarget, match="subject"):
        source.validate({"subject": ""})


async def test_one_snapshot_of_every_feed(noaa: FakeFeeds, client: httpx.AsyncClient) -> None:
    data = await snapshot(noaa, client)
    assert data["missing"] == {}
    assert data["kp"]["official"]["kp"] == 1.33
    assert data["kp"]["official"]["time"] == "2026-09-06T09:00:00+00:00"
    assert data["kp"]["official"]["stale"] is True  # 8 h old at NOW
    assert data["kp"]["estimate"]["kp"] == 0.67
    assert data["kp"]["estimate"]["stale"] is False
    assert data["kp"]["used"] == "estimated_1m"
    assert data["status"] == {
        "level": "quiet",
        "g_scale": 0,
        "kp": 0.67,
        "kp_source": "estimated_1m",
        "time": "2026-09-06T17:20:00+00:00",
    }
    assert (data["scales"]["0"]["r"], data["scales"]["0"]["g"], data["scales"]["-1"]["s"]) == (
        0,
        0,
        1,
    )
    assert data["xray"]["class"].startswith("B3.")
    assert data["flare"]["max_class"] == "C1.1" and data["flare"]["ongoing"] is False
    assert data["wind"] == {
        "time": "2026-09-06T17:20:00+00:00",
        "speed": 340.9,
        "density": 4.82,
        "source": "SOLAR1",
        "stale": False,
        "age_seconds": 300.0,
        "feed": "rtsw",
    }
    assert (data["mag"]["bz"], data["mag"]["feed"]) == (-4.47, "rtsw")
    assert data["as_of"] == "2026-09-06T17:20:00+00:00"
    # The legacy lists are not asked for while the real-time feeds answer.
    assert not any(path.startswith("/products/solar-wind/") for path in noaa.paths)


async def test_legacy_kp_arrays_and_a_storm(noaa: FakeFeeds, client: httpx.AsyncClient) -> None:
    noaa.serve_noaa(
        noaa_planetary_k_index_json="noaa-planetary-k-index.legacy-arrays.json",
        planetary_k_index_1m_json="planetary_k_index_1m.storm.json",
        noaa_scales_json="noaa-scales.storm.json",
        xrays_6_hour_json="xrays-6-hour.flare.json",
    )
    data = await snapshot(noaa, client)
    assert data["kp"]["official"]["kp"] == 4.33
    assert data["status"]["level"] == "G2"
    assert (data["status"]["kp"], data["status"]["kp_source"]) == (6.67, "estimated_1m")
    assert (data["scales"]["0"]["g"], data["scales"]["1"]["g"]) == (2, 3)
    assert (data["xray"]["class"], data["xray"]["flux"]) == ("M1.6", 1.6234e-05)


async def test_events_between_a_quiet_and_a_stormy_poll(
    noaa: FakeFeeds, client: httpx.AsyncClient
) -> None:
    quiet = await snapshot(noaa, client)
    noaa.serve_noaa(
        planetary_k_index_1m_json="planetary_k_index_1m.storm.json",
        xrays_6_hour_json="xrays-6-hour.flare.json",
        xray_flares_latest_json="xray-flares-latest.ongoing.json",
    )
    noaa.serve(FEEDS["rtsw_wind"], Reply(404))
    noaa.serve(FEEDS["rtsw_mag"], Reply(404))
    stormy = await snapshot(noaa, client)
    events = sw.solar_events(
        quiet, stormy, bz_south_nt=-10.0, wind_speed_kms=600.0, flare_min_class="C1.0"
    )
    assert [(e["type"], e.get("to") or e.get("bz") or e.get("speed")) for e in events] == [
        ("storm_level_changed", "G2"),
        ("bz_south", -11.37),
        ("wind_speed_crossed", 702.9),
        ("major_flare", None),
    ]
    assert events[3]["flare"]["ongoing"] is True


async def test_an_ongoing_flare(noaa: FakeFeeds, client: httpx.AsyncClient) -> None:
    noaa.serve_noaa(xray_flares_latest_json="xray-flares-latest.ongoing.json")
    flare = (await snapshot(noaa, client))["flare"]
    assert flare["ongoing"] is True
    assert (flare["max_time"], flare["end_time"], flare["max_class"]) == (None, None, None)
    assert flare["peak_class"] == "C1.0"


async def test_no_latest_flare_is_not_a_missing_part(
    noaa: FakeFeeds, client: httpx.AsyncClient
) -> None:
    noaa.serve(FEEDS["flare"], [])
    data = await snapshot(noaa, client)
    assert data["flare"] is None and data["missing"] == {}
    noaa.serve(FEEDS["flare"], Reply(502))
    data = await snapshot(noaa, client)
    assert data["flare"] is None and "502" in data["missing"]["flare"]


async def test_retired_rtsw_falls_back_to_legacy_lists(
    noaa: FakeFeeds, client: httpx.AsyncClient
) -> None:
    noaa.serve(FEEDS["rtsw_wind"], Reply(404))
    noaa.serve(FEEDS["rtsw_mag"], Reply(404))
    data = await snapshot(noaa, client)
    assert (data["wind"]["speed"], data["wind"]["density"], data["wind"]["feed"]) == (
        702.9,
        12.4,
        "legacy",
    )
    assert (data["mag"]["bz"], data["mag"]["feed"]) == (-11.37, "legacy")
    # Months old against NOW: shown, but flagged.
    assert data["wind"]["stale"] is True
    assert data["missing"] == {}


async def test_retired_legacy_lists_do_not_matter_while_rtsw_answers(
    noaa: FakeFeeds, client: httpx.AsyncClient
) -> None:
    noaa.serve(FEEDS["legacy_plasma"], Reply(404))
    noaa.serve(FEEDS["legacy_mag"], Reply(404))
    data = await snapshot(noaa, client)
    assert (data["wind"]["feed"], data["mag"]["feed"]) == ("rtsw", "rtsw")


async def test_no_wind_feed_leaves_wind_missing_not_invented(
    noaa: FakeFeeds, client: httpx.AsyncClient
) -> None:
    for feed in ("rtsw_wind", "legacy_plasma"):
        noaa.serve(FEEDS[feed], Reply(404))
    noaa.serve(FEEDS["rtsw_mag"], Reply(500))
    noaa.serve(FEEDS["legacy_mag"], [["time_tag", "bz_gsm"]])
    data = await snapshot(noaa, client)
    assert data["wind"] is None and data["mag"] is None
    assert "404" in data["missing"]["wind"]
    assert "500" in data["missing"]["mag"] and "legacy_mag: no reading" in data["missing"]["mag"]
    assert data["kp"]["estimate"]["kp"] == 0.67


async def test_a_failing_feed_and_malformed_json(
    noaa: FakeFeeds, client: httpx.AsyncClient
) -> None:
    noaa.serve(FEEDS["kp"], Reply(500))
    noaa.serve(
        FEEDS["scales"], Reply(200, "{not json", headers={"content-type": "application/json"})
    )
    noaa.serve(
        FEEDS["xrays"],
        [{"time_tag": "2026-09-06T17:18:00Z", "energy": "0.1-0.8nm", "flux": "lots"}],
    )
    data = await snapshot(noaa, client)
    assert data["kp"]["official"] is None
    assert data["kp"]["used"] == "estimated_1m"
    assert data["scales"] is None and data["xray"] is None
    assert "500" in data["missing"]["kp"]
    assert "not answer with JSON" in data["missing"]["scales"]
    assert data["missing"]["xrays"].startswith("xrays: malformed")
    assert data["wind"]["speed"] == 340.9


async def test_a_feed_that_times_out(noaa: FakeFeeds, client: httpx.AsyncClient) -> None:
    noaa.script(
        FEEDS["kp_1m"], Reply(200, body=noaa_fixture("planetary_k_index_1m.json"), delay=3.0)
    )
    data = await snapshot(noaa, client)
    assert data["kp"]["estimate"] is None
    assert "in time" in data["missing"]["kp_1m"]
    # Without the estimate the status falls back to the official Kp, and says so.
    assert (data["status"]["kp"], data["status"]["kp_source"]) == (1.33, "official_3h")


async def test_every_feed_failing_fails_the_fetch(client: httpx.AsyncClient) -> None:
    with FakeFeeds() as down:
        source = NoaaSwpcSource(base_url=down.url, clock=lambda: NOW)
        with pytest.raises(SourceError, match="no NOAA SWPC feed answered"):
            await source.fetch({}, client)
        for path in FEEDS.values():
            down.serve(path, Reply(429, headers={"Retry-After": "60"}))
        with pytest.raises(SourceBlocked) as blocked:
            await source.fetch({}, client)
        assert blocked.value.retry_after == 60


async def test_a_private_address_is_refused_by_default() -> None:
    with FakeFeeds() as fake:
        fake.serve_noaa()
        async with outbound_client(Settings()) as guarded:
            with pytest.raises(InvalidTarget, match=r"private|loopback|refusing"):
                await NoaaSwpcSource(base_url=fake.url).fetch({}, guarded)
        assert fake.paths == []


# --- GFZ Kp ---------------------------------------------------------------------------------


def gfz_source(gfz: FakeFeeds) -> GfzKpSource:
    return GfzKpSource(base_url=gfz.url, clock=lambda: NOW)


async def test_gfz_series_of_a_date_range(gfz: FakeFeeds, client: httpx.AsyncClient) -> None:
    source = gfz_source(gfz)
    series = await source.series({"start": "2024-05-09", "end": "2024-05-11"}, client)
    assert len(series) == 24
    assert (series[14].time, series[14].kp, series[14].status) == (
        datetime(2024, 5, 10, 18, tzinfo=UTC),
        9.0,
        "def",
    )
    assert gfz.paths == ["/app/json/"]
    assert gfz.queries == ["start=2024-05-09T00%3A00%3A00Z&end=2024-05-11T23%3A59%3A59Z&index=Kp"]


async def test_gfz_snapshots_for_backfill(gfz: FakeFeeds, client: httpx.AsyncClient) -> None:
    shots = await gfz_source(gfz).fetch(
        {"start": "2024-05-10T12:00:00Z", "end": "2024-05-10T21:00:00Z", "status": "def"}, client
    )
    assert [(s.taken_at.hour, s.data["kp"], s.data["level"]) for s in shots] == [
        (12, 7.0, "G3"),
        (15, 8.333, "G4"),
        (18, 9.0, "G5"),
        (21, 8.667, "G4"),
    ]
    assert {s.subject for s in shots} == {"kp"} and {s.source for s in shots} == {"gfz_kp"}
    assert "status=def" in gfz.queries[0]


async def test_gfz_empty_period(gfz: FakeFeeds, client: httpx.AsyncClient) -> None:
    gfz.serve("/app/json/", {"meta": {}, "datetime": [], "Kp": [], "status": []})
    assert await gfz_source(gfz).fetch({"start": "2026-09-01", "end": "2026-09-02"}, client) == []


@pytest.mark.parametrize(
    "reply",
    [
        Reply(500),
        Reply(200, "<html>maintenance</html>"),
        Reply(200, {"datetime": ["2024-05-09T00:00:00Z"], "Kp": []}),
        Reply(404),
    ],
)
async def test_gfz_failures(gfz: FakeFeeds, client: httpx.AsyncClient, reply: Reply) -> None:
    gfz.serve("/app/json/", reply)
    with pytest.raises(SourceError):
        await gfz_source(gfz).fetch({"start": "2024-05-09", "end": "2024-05-11"}, client)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({}, "start is required"),
        ({"start": "2024-05-09"}, "end is required"),
        ({"start": "2024-05-11", "end": "2024-05-09"}, "before"),
        ({"start": "1900-01-01", "end": "1900-01-02"}, "1932"),
        ({"start": "2027-01-01", "end": "2027-01-02"}, "future"),
        ({"start": "2020-01-01", "end": "2022-01-01"}, "at most a year"),
        ({"start": "soon", "end": "2024-05-09"}, "not a date"),
        ({"start": "2024-05-09", "end": "2024-05-10", "status": "now"}, "status"),
        ({"start": "2024-05-09", "end": "2024-05-10", "index": "ap"}, "unknown"),
    ],
)
def test_gfz_target_is_checked(target: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTarget, match=message):
        GfzKpSource(base_url="http://x", clock=lambda: NOW).validate(target)
