"""Space weather rules: every NOAA and GFZ fixture parsed, the class and scale boundaries,
and the change detectors the solar module raises its events from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes.feed_server import gfz_fixture, noaa_fixture
from trackd.domain import space_weather as sw


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# --- time tags ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "2026-09-06T12:00:00",
        "2026-09-06T12:00:00Z",
        "2026-09-06 12:00:00.000",
        "2026-09-06 12:00:00",
    ],
)
def test_every_time_tag_form_is_utc(tag: str) -> None:
    parsed = sw.parse_time(tag)
    assert parsed == utc(2026, 9, 6, 12)
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("tag", [None, "", "yesterday", 17])
def test_a_bad_time_tag_is_refused(tag: object) -> None:
    with pytest.raises(sw.SpaceWeatherDataError, match="time tag"):
        sw.parse_time(tag)


# --- Kp -------------------------------------------------------------------------------------


def test_kp_product_legacy_arrays_are_read_by_column_name() -> None:
    readings = sw.parse_kp_product(noaa_fixture("noaa-planetary-k-index.legacy-arrays.json"))
    assert len(readings) == 5
    assert readings[0] == sw.KpReading(utc(2025, 8, 27), 1.33, 5.0, 8)
    assert readings[-1] == sw.KpReading(utc(2025, 8, 27, 12), 4.33, 32.0, 7)


def test_kp_product_objects() -> None:
    readings = sw.parse_kp_product(noaa_fixture("noaa-planetary-k-index.objects.json"))
    assert [r.kp for r in readings] == [2.33, 3.0, 4.67, 5.67, 3.33, 1.33]
    assert readings[-1].time == utc(2026, 9, 6, 9)
    assert readings[3].a_running == 67


def test_reordered_legacy_columns_still_match_by_name() -> None:
    payload = [
        ["Kp", "station_count", "time_tag", "a_running"],
        ["5.33", "8", "2025-08-27 09:00:00.000", "56"],
    ]
    assert sw.parse_kp_product(payload) == [sw.KpReading(utc(2025, 8, 27, 9), 5.33, 56.0, 8)]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"Kp": 3}, "array"),
        ([["time_tag", "Kp"], ["2025-08-27 00:00:00.000"]], "columns"),
        ([["time_tag", "a_running"], ["2025-08-27 00:00:00.000", "5"]], "Kp"),
        ([{"time_tag": "2026-09-06T12:00:00", "Kp": None}], "missing"),
        ([{"time_tag": "2026-09-06T12:00:00", "Kp": 12}], "0..9"),
        ([{"time_tag": "2026-09-06T12:00:00", "Kp": "high"}], "number"),
        ([3, 4], "arrays or objects"),
    ],
)
def test_malformed_kp_is_an_error_not_a_zero(payload: object, message: str) -> None:
    with pytest.raises(sw.SpaceWeatherDataError, match=message):
        sw.parse_kp_product(payload)


def test_kp_forecast_both_shapes() -> None:
    legacy = sw.parse_kp_forecast(
        noaa_fixture("noaa-planetary-k-index-forecast.legacy-arrays.json")
    )
    objects = sw.parse_kp_forecast(noaa_fixture("noaa-planetary-k-index-forecast.objects.json"))
    assert [(r.kp, r.observed, r.noaa_scale) for r in legacy][-2:] == [
        (5.0, "predicted", "G1"),
        (6.33, "predicted", "G2"),
    ]
    assert objects[-1] == sw.KpForecastRow(utc(2026, 9, 8, 9), 5.0, "predicted", "G1")
    # NOAA's own forecast agrees with our scale: 5- is no storm, 5o is G1.
    for row in legacy + objects:
        assert (f"G{sw.g_scale(row.kp)}" if sw.g_scale(row.kp) else None) == row.noaa_scale


def test_one_minute_kp() -> None:
    quiet = sw.parse_kp_1m(noaa_fixture("planetary_k_index_1m.json"))
    storm = sw.parse_kp_1m(noaa_fixture("planetary_k_index_1m.storm.json"))
    assert quiet[-1] == sw.KpEstimate(utc(2026, 9, 6, 17, 20), 0.67, 1, "1M")
    assert [e.kp for e in storm] == [5.33, 5.67, 6.0, 6.67]
    assert storm[-1].kp_index == 7


def test_gfz_series() -> None:
    readings = sw.parse_gfz_kp(gfz_fixture("kp-2024-05-09.json"))
    assert len(readings) == 24
    assert readings[14] == sw.KpReading(utc(2024, 5, 10, 18), 9.0, status="def")
    assert max(readings, key=lambda r: r.kp).time == utc(2024, 5, 10, 18)


def test_gfz_empty_and_missing_intervals() -> None:
    assert sw.parse_gfz_kp({"datetime": [], "Kp": [], "status": []}) == []
    gappy = {
        "datetime": ["2024-05-09T00:00:00Z", "2024-05-09T06:00:00Z"],
        "Kp": [2.333, 1.667],
        "status": ["def", "pre"],
    }
    assert [(r.time.hour, r.status) for r in sw.parse_gfz_kp(gappy)] == [(0, "def"), (6, "pre")]


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"datetime": ["2024-05-09T00:00:00Z"], "Kp": []},
        {"Kp": [1.0]},
        {"datetime": "x", "Kp": []},
    ],
)
def test_gfz_malformed(payload: object) -> None:
    with pytest.raises(sw.SpaceWeatherDataError):
        sw.parse_gfz_kp(payload)


# --- status and G scale ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kp", "level", "g"),
    [
        (0.0, "quiet", 0),
        (2.67, "quiet", 0),
        (3.0, "unsettled", 0),
        (4.0, "active", 0),
        (4.67, "active", 0),
        (4.667, "active", 0),
        (5.0, "G1", 1),
        (5.33, "G1", 1),
        (5.333, "G1", 1),
        (6.0, "G2", 2),
        (7.0, "G3", 3),
        (8.0, "G4", 4),
        (8.67, "G4", 4),
        (9.0, "G5", 5),
    ],
)
def test_status_boundaries(kp: float, level: str, g: int) -> None:
    assert (sw.status_level(kp), sw.g_scale(kp)) == (level, g)


@given(st.integers(min_value=0, max_value=27))
def test_g_scale_is_kp_minus_four_by_whole_kp(thirds: int) -> None:
    # Feeds round thirds to two or three decimals; either way the same level.
    for kp in (round(thirds / 3, 2), round(thirds / 3, 3)):
        assert sw.g_scale(kp) == max(0, thirds // 3 - 4)
        assert sw.status_level(kp).startswith("G") == (thirds >= 15)


@given(st.floats(min_value=0, max_value=9), st.floats(min_value=0, max_value=9))
def test_g_scale_never_decreases_with_kp(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert sw.g_scale(low) <= sw.g_scale(high)


def test_storm_status_says_which_kp_it_used() -> None:
    official = sw.KpReading(utc(2026, 9, 8, 3), 4.67)
    estimate = sw.KpEstimate(utc(2026, 9, 8, 5, 57), 5.33, 5, "5P")
    assert sw.storm_status(official, estimate) == sw.StormStatus(
        "G1", 1, 5.33, "estimated_1m", utc(2026, 9, 8, 5, 57)
    )
    assert sw.storm_status(official, None) == sw.StormStatus(
        "active", 0, 4.67, "official_3h", utc(2026, 9, 8, 3)
    )
    assert sw.storm_status(None, None) is None


def test_a_five_minus_estimate_is_not_a_storm_even_if_kp_index_rounds_to_five() -> None:
    estimate = sw.KpEstimate(utc(2026, 9, 8, 5), 4.67, 5, "5M")
    status = sw.storm_status(None, estimate)
    assert status is not None and (status.level, status.g_scale) == ("active", 0)


# --- X-rays and flares ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flux", "name"),
    [
        (1.6234e-05, "M1.6"),
        (9.99e-08, "A9.9"),
        (1e-07, "B1.0"),
        (9.999e-07, "B9.9"),
        (1e-06, "C1.0"),
        (1e-05, "M1.0"),
        (1e-04, "X1.0"),
        (2.8e-03, "X28.0"),
        (3.688e-07, "B3.6"),
        (5e-09, "A0.5"),
    ],
)
def test_flare_class(flux: float, name: str) -> None:
    assert sw.flare_class(flux) == name


@given(st.sampled_from(sw.FLARE_CLASS_FLOORS[:-1]), st.floats(min_value=1.0, max_value=9.99))
def test_flare_class_letter_and_number(letter_floor: tuple[str, float], multiplier: float) -> None:
    letter, floor = letter_floor
    name = sw.flare_class(floor * multiplier)
    assert name[0] == letter
    assert 1.0 <= float(name[1:]) < 10.0
    assert abs(float(name[1:]) - multiplier) < 0.1 + 1e-9
    assert sw.class_flux(name) <= floor * multiplier * (1 + 1e-9)


@pytest.mark.parametrize("flux", [0.0, -1e-6, float("nan"), float("inf")])
def test_flare_class_refuses_impossible_flux(flux: float) -> None:
    with pytest.raises(sw.SpaceWeatherDataError):
        sw.flare_class(flux)


def test_xrays_use_the_long_band_only() -> None:
    readings = sw.parse_xrays(noaa_fixture("xrays-6-hour.json"))
    assert len(readings) == len(noaa_fixture("xrays-6-hour.json")) // 2
    peak = sw.xray_peak(readings)
    assert peak is not None and peak["class"].startswith("B3.")
    flare = sw.xray_peak(sw.parse_xrays(noaa_fixture("xrays-6-hour.flare.json")))
    assert flare is not None
    assert (flare["class"], flare["flux"], flare["time"]) == (
        "M1.6",
        1.6234e-05,
        "2026-07-12T14:19:00+00:00",
    )


def test_xray_peak_keeps_to_the_last_hour() -> None:
    old = sw.XrayFlux(utc(2026, 7, 12, 10), 5e-05, 18)
    new = sw.XrayFlux(utc(2026, 7, 12, 14), 2e-06, 18)
    peak = sw.xray_peak([old, new])
    assert peak is not None and peak["class"] == "C2.0"
    assert sw.xray_peak([]) is None


def test_latest_flare_finished_and_ongoing() -> None:
    done = sw.parse_latest_flare(noaa_fixture("xray-flares-latest.json"))
    assert done is not None and not done.ongoing
    assert (done.max_class, done.end_time, done.peak_class) == (
        "C1.1",
        utc(2026, 9, 6, 13, 51),
        "C1.1",
    )
    ongoing = sw.parse_latest_flare(noaa_fixture("xray-flares-latest.ongoing.json"))
    assert ongoing is not None and ongoing.ongoing
    assert (ongoing.max_time, ongoing.max_class, ongoing.max_flux) == (None, None, None)
    assert ongoing.peak_class == "C1.0"
    stored = sw.flare_dict(ongoing)
    assert stored["ongoing"] is True and stored["begin_time"] == "2025-01-09T04:29:00+00:00"
    assert sw.parse_latest_flare([]) is None


def test_seven_day_flares() -> None:
    flares = sw.parse_flares(noaa_fixture("xray-flares-7-day.json"))
    assert [f.max_class for f in flares] == ["B9.4", "M1.6"]
    assert flares[1].current_class is None


def test_malformed_flare() -> None:
    with pytest.raises(sw.SpaceWeatherDataError):
        sw.parse_latest_flare({"begin_time": "x"})
    with pytest.raises(sw.SpaceWeatherDataError, match="time tag"):
        sw.parse_latest_flare([{"begin_time": "soon"}])


# --- scales ---------------------------------------------------------------------------------


def test_scales_strings_and_null_forecasts() -> None:
    days = sw.parse_scales(noaa_fixture("noaa-scales.json"))
    assert set(days) == {"-1", "0", "1", "2", "3"}
    assert (days["0"].r, days["0"].s, days["0"].g) == (0, 0, 0)
    assert days["0"].time == utc(2026, 9, 6, 17, 24)
    assert (days["1"].r, days["1"].s, days["1"].r_minor_prob, days["1"].s_prob) == (
        None,
        None,
        20,
        75,
    )
    assert days["-1"].s == 1
    storm = sw.parse_scales(noaa_fixture("noaa-scales.storm.json"))
    assert (storm["0"].r, storm["0"].g, storm["1"].g) == (1, 2, 3)


def test_malformed_scales() -> None:
    with pytest.raises(sw.SpaceWeatherDataError):
        sw.parse_scales([])
    with pytest.raises(sw.SpaceWeatherDataError, match=r"0\.\.5"):
        sw.parse_scales({"0": {"G": {"Scale": "7"}}})


# --- solar wind -----------------------------------------------------------------------------


def test_rtsw_uses_the_active_spacecraft_newest_first() -> None:
    wind = sw.parse_rtsw_wind(noaa_fixture("rtsw_wind_1m.json"))
    assert wind == sw.PlasmaReading(utc(2026, 9, 6, 17, 20), 340.9, 4.82, "SOLAR1")
    mag = sw.parse_rtsw_mag(noaa_fixture("rtsw_mag_1m.json"))
    # max_data_flag -9999 is "no flag", not bad data: the active row counts.
    assert mag == sw.MagReading(utc(2026, 9, 6, 17, 20), -4.47, 6.93, "SOLAR1")


def test_rtsw_skips_gaps_and_bad_quality() -> None:
    rows = noaa_fixture("rtsw_wind_1m.json")
    newest_active = [r for r in rows if r["active"] and r["time_tag"] == "2026-09-06T17:20:00"]
    for row in newest_active:
        row["overall_quality"] = 1
    wind = sw.parse_rtsw_wind(rows)
    assert wind is not None and wind.time == utc(2026, 9, 6, 17, 18)
    assert sw.parse_rtsw_wind([]) is None
    inactive = [{**r, "active": False} for r in noaa_fixture("rtsw_mag_1m.json")]
    assert sw.parse_rtsw_mag(inactive) is None


def test_legacy_solar_wind_lists_with_nulls() -> None:
    plasma = sw.parse_legacy_plasma(noaa_fixture("plasma-7-day.json"))
    assert plasma == sw.PlasmaReading(utc(2026, 5, 9, 0, 40), 702.9, 12.4, None)
    mag = sw.parse_legacy_mag(noaa_fixture("mag-7-day.json"))
    assert mag == sw.MagReading(utc(2026, 5, 9, 0, 40), -11.37, 12.22, None)
    gap_last = noaa_fixture("plasma-7-day.json")[:4]
    older = sw.parse_legacy_plasma(gap_last)
    assert older is not None and older.time == utc(2026, 5, 9, 0, 37)


# --- staleness and changes ------------------------------------------------------------------


def test_staleness() -> None:
    now = utc(2026, 9, 6, 18)
    assert sw.staleness(utc(2026, 9, 6, 17, 50), now, timedelta(minutes=15)) == {
        "stale": False,
        "age_seconds": 600.0,
    }
    assert sw.staleness(utc(2026, 9, 6, 17), now, timedelta(minutes=15))["stale"] is True
    with pytest.raises(ValueError, match="aware"):
        sw.staleness(datetime(2026, 9, 6), now, timedelta(minutes=1))


def test_storm_level_change() -> None:
    assert sw.storm_level_changed("active", "G1")
    assert sw.storm_level_changed("G2", "G1")
    assert not sw.storm_level_changed("G1", "G1")
    assert not sw.storm_level_changed(None, "G1")
    assert not sw.storm_level_changed("G1", None)


@pytest.mark.parametrize(
    ("before", "after", "fires"),
    [
        (-4.0, -10.0, True),
        (-4.0, -12.5, True),
        (-10.0, -12.0, False),
        (-12.0, -4.0, False),
        (None, -12.0, False),
        (3.0, -9.9, False),
    ],
)
def test_bz_turning_south(before: float | None, after: float | None, fires: bool) -> None:
    assert sw.bz_turned_south(before, after, -10.0) is fires


@pytest.mark.parametrize(
    ("before", "after", "crossing"),
    [
        (450.0, 500.0, "up"),
        (499.9, 700.0, "up"),
        (700.0, 420.0, "down"),
        (500.0, 520.0, None),
        (None, 700.0, None),
        (400.0, 499.0, None),
    ],
)
def test_wind_speed_crossing(
    before: float | None, after: float | None, crossing: str | None
) -> None:
    assert sw.wind_crossing(before, after, 500.0) == crossing


def test_major_flares_are_announced_once() -> None:
    ongoing = sw.flare_dict(
        sw.Flare(utc(2026, 7, 12, 14, 2), "C2.1", None, None, None, None, None, "C8.0", 18)
    )
    grown = {**ongoing, "peak_class": "M1.2"}
    done = {**grown, "peak_class": "M1.6", "end_time": "2026-07-12T14:41:00+00:00"}
    assert not sw.new_major_flare(None, ongoing)
    assert sw.new_major_flare(ongoing, grown)
    assert not sw.new_major_flare(grown, done)
    assert sw.new_major_flare(None, done)
    assert not sw.new_major_flare(done, done, "X1.0")
    assert sw.new_major_flare(None, {**done, "peak_class": "X2.3"}, "X1.0")
    assert not sw.new_major_flare(done, None)


def test_class_flux() -> None:
    assert sw.class_flux("M1.6") == pytest.approx(1.6e-05)
    with pytest.raises(sw.SpaceWeatherDataError):
        sw.class_flux("Q1")


def test_as_dict_is_json_ready() -> None:
    reading = sw.KpReading(utc(2026, 9, 6, 9), 1.33, 5.0, 7)
    assert sw.as_dict(reading) == {
        "time": "2026-09-06T09:00:00+00:00",
        "kp": 1.33,
        "a_running": 5.0,
        "station_count": 7,
        "status": None,
    }


def test_solar_events_between_two_snapshots() -> None:
    quiet: dict[str, Any] = {
        "status": {"level": "active", "kp": 4.33, "kp_source": "estimated_1m"},
        "mag": {"bz": -3.0},
        "wind": {"speed": 420.0},
        "flare": {"begin_time": "2026-07-12T14:02:00+00:00", "peak_class": "C2.1"},
    }
    storm: dict[str, Any] = {
        "status": {"level": "G1", "kp": 5.0, "kp_source": "estimated_1m"},
        "mag": {"bz": -11.4},
        "wind": {"speed": 702.9},
        "flare": {"begin_time": "2026-07-12T14:02:00+00:00", "peak_class": "M1.6"},
    }

    def between(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
        return sw.solar_events(
            before, after, bz_south_nt=-10.0, wind_speed_kms=600.0, flare_min_class="M1.0"
        )

    events = between(quiet, storm)
    assert [e["type"] for e in events] == [
        "storm_level_changed",
        "bz_south",
        "wind_speed_crossed",
        "major_flare",
    ]
    assert events[0] == {
        "type": "storm_level_changed",
        "from": "active",
        "to": "G1",
        "kp": 5.0,
        "kp_source": "estimated_1m",
    }
    assert events[2]["direction"] == "up"
    assert between(storm, storm) == []
    # A failed feed (a part missing) is not an event.
    gap = {**storm, "status": None, "mag": None, "wind": None, "flare": None}
    assert between(quiet, gap) == []
    assert [e["type"] for e in between(None, storm)] == ["major_flare"]
