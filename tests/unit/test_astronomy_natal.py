"""Natal charts: the bodies against PyEphem, the Ascendant and Midheaven against an independent
search for the ecliptic points on ephem's horizon and meridian."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import ephem
import pytest
from astronomy_ephem import EPHEM_EPOCH_JD, arcseconds_apart, ephem_longitude
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from trackd.domain.astronomy import natal_chart
from trackd.domain.astronomy.ephemeris import ephemeris, tt_of


def _true_obliquity(date: float) -> float:
    """True obliquity of date in radians, from Meeus ch. 22 (IAU 1980 mean obliquity and the
    four largest nutation terms, good to 0.1″): independent of skyfield's IAU 2000A."""
    t = (date + ephem.delta_t(ephem.Date(date)) / 86_400 + EPHEM_EPOCH_JD - 2451545.0) / 36525
    mean = 84381.448 - 46.8150 * t - 0.00059 * t**2 + 0.001813 * t**3
    node = math.radians(125.04452 - 1934.136261 * t)
    sun = math.radians(280.4665 + 36000.7698 * t)
    moon = math.radians(218.3165 + 481267.8813 * t)
    nutation = (
        9.20 * math.cos(node)
        + 0.57 * math.cos(2 * sun)
        + 0.10 * math.cos(2 * moon)
        - 0.09 * math.cos(2 * node)
    )
    return math.radians((mean + nutation) / 3600)


def _horizon_and_meridian(
    birth: datetime, latitude: float, longitude: float
) -> tuple[float, float]:
    """The Ascendant and Midheaven found by search, from ephem's apparent sidereal time.

    No formula for the angles is used: each is the ecliptic longitude whose point (latitude 0)
    sits on the eastern horizon, or on the upper meridian, for ephem's observer. The ecliptic
    is turned to the equator by the true obliquity (ephem's own frames use the mean one, which
    moves a high-latitude Ascendant by up to a minute of arc).
    """
    observer = ephem.Observer()
    observer.lat, observer.lon = math.radians(latitude), math.radians(longitude)
    # ephem takes its date as UT1 for sidereal time; UTC differs from it by up to 0.9 s (13″ of
    # sidereal time) since 1972, so it is given UT1, as for the positions it is given TT.
    ut1 = float(ephemeris().timescale.tt_jd(tt_of(birth)).ut1)
    observer.date = ephem.Date(ut1 - EPHEM_EPOCH_JD)
    lst = float(observer.sidereal_time())
    eps = _true_obliquity(float(observer.date))
    phi = math.radians(latitude)

    def hour_angle_and_altitude(lon_deg: float) -> tuple[float, float]:
        lam = math.radians(lon_deg)
        ra = math.atan2(math.sin(lam) * math.cos(eps), math.cos(lam))
        dec = math.asin(math.sin(eps) * math.sin(lam))
        h = lst - ra
        alt = math.asin(math.sin(phi) * math.sin(dec) + math.cos(phi) * math.cos(dec) * math.cos(h))
        return h, alt

    def altitude(lon_deg: float) -> float:
        return hour_angle_and_altitude(lon_deg)[1]

    def meridian(lon_deg: float) -> float:
        return math.sin(hour_angle_and_altitude(lon_deg)[0])

    def roots(f: Callable[[float], float]) -> list[float]:
        out = []
        for start in range(0, 360, 2):
            a, b = f(start), f(start + 2)
            if a == 0 or a * b < 0:
                out.append(float(brentq(f, start, start + 2, xtol=1e-9)))
        return out

    # East: the hour angle is negative (sin H < 0) as the point rises.
    asc = next(x for x in roots(altitude) if math.sin(hour_angle_and_altitude(x)[0]) < 0)
    mc = next(x for x in roots(meridian) if math.cos(hour_angle_and_altitude(x)[0]) > 0)
    return asc % 360, mc % 360


BIRTHS = [
    # (birth, latitude, longitude): mid-latitudes both sides of the equator and meridian.
    (datetime(1990, 5, 17, 8, 30, tzinfo=UTC), 48.8566, 2.3522),
    (datetime(1965, 11, 3, 23, 5, tzinfo=timezone(timedelta(hours=-5))), 40.7128, -74.006),
    (datetime(2001, 2, 28, 4, 45, tzinfo=UTC), -33.8688, 151.2093),
    (datetime(1955, 8, 9, 14, 0, tzinfo=UTC), 0.5, -78.5),
    (datetime(2019, 12, 21, 18, 0, tzinfo=UTC), 59.9, 10.75),
]
# Measured over 60 random charts 1950-2025, latitudes ±60°: Ascendant within 0.4″, Midheaven
# within 0.15″ (the search's obliquity is good to 0.1″, and the Ascendant amplifies it).
ANGLE_ARCSEC = 2.0


@pytest.mark.parametrize(("birth", "latitude", "longitude"), BIRTHS)
def test_chart_bodies_and_angles_agree_with_independent_computation(
    birth: datetime, latitude: float, longitude: float
) -> None:
    chart = natal_chart(birth, latitude, longitude)
    assert chart.birth == birth.astimezone(UTC)
    assert set(chart.points) == {
        "sun", "moon", "mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune",
        "pluto", "ascendant", "midheaven",
    }  # fmt: skip
    for name, point in chart.points.items():
        if name in ("ascendant", "midheaven"):
            continue
        limit = 15.0 if name == "pluto" else 10.0
        assert arcseconds_apart(point.longitude, ephem_longitude(name, birth)) < limit, name
    asc, mc = _horizon_and_meridian(birth, latitude, longitude)
    assert arcseconds_apart(chart.points["ascendant"].longitude, asc) < ANGLE_ARCSEC
    assert arcseconds_apart(chart.points["midheaven"].longitude, mc) < ANGLE_ARCSEC


EPOCH = datetime(1950, 1, 1, tzinfo=UTC)


@settings(max_examples=15, deadline=None)
@given(
    st.integers(min_value=0, max_value=75 * 365 * 24 * 60).map(
        lambda m: EPOCH + timedelta(minutes=m)
    ),
    st.integers(min_value=-600, max_value=600).map(lambda v: v / 10),
    st.integers(min_value=-1800, max_value=1800).map(lambda v: v / 10),
)
def test_angles_agree_with_the_search_anywhere_outside_the_polar_circles(
    birth: datetime, latitude: float, longitude: float
) -> None:
    chart = natal_chart(birth, latitude, longitude)
    asc, mc = _horizon_and_meridian(birth, latitude, longitude)
    assert arcseconds_apart(chart.points["ascendant"].longitude, asc) < ANGLE_ARCSEC
    assert arcseconds_apart(chart.points["midheaven"].longitude, mc) < ANGLE_ARCSEC
    # The Ascendant is on the Midheaven's eastern side, less than 180° ahead of it.
    assert (
        0 < (chart.points["ascendant"].longitude - chart.points["midheaven"].longitude) % 360 < 180
    )


def test_points_carry_sign_degree_and_retrograde_as_native_values() -> None:
    chart = natal_chart(datetime(2024, 4, 8, 18, 21, tzinfo=UTC), 32.78, -96.8)
    assert chart.points["mercury"].retrograde  # Mercury was retrograde from 1 to 25 April 2024
    assert not chart.points["ascendant"].retrograde
    for point in chart.points.values():
        assert point.sign and 0 <= point.degree < 30
        for field in dataclasses.fields(point):
            assert type(getattr(point, field.name)) in (str, float, bool)
    assert chart.longitudes()["sun"] == chart.points["sun"].longitude


@pytest.mark.parametrize(
    ("latitude", "longitude", "message"),
    [(90.0, 0.0, "latitude"), (-95.0, 0.0, "latitude"), (10.0, 181.0, "longitude"),
     (math.nan, 0.0, "latitude")],
)  # fmt: skip
def test_a_place_off_the_globe_is_refused(latitude: float, longitude: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        natal_chart(datetime(2000, 1, 1, tzinfo=UTC), latitude, longitude)


def test_a_naive_birth_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        natal_chart(datetime(2000, 1, 1), 10.0, 10.0)
