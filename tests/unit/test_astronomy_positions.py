"""Positions from trackd's astronomy against PyEphem, an independent library and theory."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from astronomy_ephem import arcseconds_apart, ephem_longitude
from hypothesis import given, settings
from hypothesis import strategies as st

from trackd.domain.astronomy import BODIES, OutOfEphemerisRange, planet_positions

# Worst differences measured at the same TT over 1950-2050 (arcseconds, 600-4,000 random
# instants per body): Sun 0.6, Moon 0.7, Mercury 1.2, Venus 1.6, Mars 2.5, Jupiter 0.9, Saturn
# 1.1, Uranus 1.8, Neptune 2.5. Pluto is the exception: ephem's Pluto theory drifts away from
# DE421 linearly, from 2″ in 1950 to 13.7″ at the end of 2049, so it is held to 15″, not 10″.
TOLERANCE_ARCSEC = {body: 10.0 for body in BODIES} | {"pluto": 15.0}

EPOCH = datetime(1950, 1, 1, tzinfo=UTC)
# Minutes across 1950-2050: a cheap strategy that covers the century evenly.
instants = st.integers(min_value=0, max_value=100 * 365 * 24 * 60).map(
    lambda m: EPOCH + timedelta(minutes=m)
)


@settings(max_examples=30, deadline=None)
@given(instants)
def test_every_body_agrees_with_ephem_over_the_century(instant: datetime) -> None:
    positions = planet_positions(instant)
    for name, body in positions.bodies.items():
        apart = arcseconds_apart(body.longitude, ephem_longitude(name, instant))
        assert apart < TOLERANCE_ARCSEC[name], (name, instant, apart)


@pytest.mark.parametrize(
    "instant",
    [
        datetime(1969, 7, 20, 20, 17, tzinfo=UTC),
        datetime(2000, 1, 1, 12, 0, tzinfo=UTC),
        datetime(2024, 4, 8, 18, 21, tzinfo=UTC),
        datetime(2049, 12, 31, 23, 59, tzinfo=UTC),
    ],
)
def test_fixed_instants_agree_with_ephem(instant: datetime) -> None:
    positions = planet_positions(instant)
    for name, body in positions.bodies.items():
        assert (
            arcseconds_apart(body.longitude, ephem_longitude(name, instant))
            < (TOLERANCE_ARCSEC[name])
        )


def test_a_known_day_the_2024_eclipse() -> None:
    # The total solar eclipse of 2024-04-08: Sun and Moon in Aries 19°, Mercury retrograde.
    positions = planet_positions(datetime(2024, 4, 8, 18, 18, tzinfo=UTC))
    sun, moon, mercury = (positions.bodies[b] for b in ("sun", "moon", "mercury"))
    assert (sun.sign, int(sun.degree)) == ("aries", 19)
    assert (moon.sign, int(moon.degree)) == ("aries", 19)
    assert abs(sun.longitude - moon.longitude) < 0.1
    assert mercury.retrograde and mercury.speed < 0
    assert 355_000 < moon.distance_km < 365_000


def test_everything_that_leaves_is_a_native_value() -> None:
    positions = planet_positions(datetime(2030, 6, 1, tzinfo=timezone(timedelta(hours=2))))
    assert positions.instant == datetime(2030, 5, 31, 22, 0, tzinfo=UTC)
    assert positions.instant.tzinfo is UTC
    for body in positions.bodies.values():
        for field in dataclasses.fields(body):
            value = getattr(body, field.name)
            assert type(value) in (str, float, bool), (field.name, type(value))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        planet_positions(datetime(2024, 1, 1))


@pytest.mark.parametrize("year", [1890, 2060])
def test_an_instant_outside_de421_is_refused_with_the_span(year: int) -> None:
    with pytest.raises(OutOfEphemerisRange, match=r"1899.*2053"):
        planet_positions(datetime(year, 1, 1, tzinfo=UTC))


def test_an_unknown_body_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown body"):
        planet_positions(datetime(2024, 1, 1, tzinfo=UTC), ["vulcan"])
