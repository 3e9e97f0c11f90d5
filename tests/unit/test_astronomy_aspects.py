"""Pure rules of the zodiac and the aspects: signs, orbs, exactness, applying or separating."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackd.domain.astronomy import (
    ASPECTS,
    DEFAULT_ORBS,
    SIGNS,
    BodyPosition,
    Positions,
    aspect_between,
    aspects,
    check_orbs,
    zodiac_place,
)

longitudes = st.floats(min_value=-720.0, max_value=720.0, allow_nan=False)


@settings(deadline=None)
@given(longitudes)
def test_sign_index_is_the_floor_of_longitude_over_thirty(lon: float) -> None:
    place = zodiac_place(lon)
    # A tiny negative longitude wraps to 360.0 in floating point, which is 0° (Aries).
    wrapped = lon % 360.0 if lon % 360.0 < 360.0 else 0.0
    assert place.sign_index == math.floor(wrapped / 30.0)
    assert place.sign == SIGNS[place.sign_index]
    assert 0.0 <= place.degree < 30.0 + 1e-9


def test_sign_boundaries() -> None:
    assert zodiac_place(0.0).sign == "aries"
    assert zodiac_place(29.999).sign == "aries"
    assert zodiac_place(30.0).sign == "taurus"
    assert zodiac_place(359.9).sign == "pisces"
    assert zodiac_place(-0.5).sign == "pisces"
    assert zodiac_place(-1e-17).sign == "aries"


@settings(deadline=None)
@given(longitudes, longitudes)
def test_aspects_are_symmetric(a: float, b: float) -> None:
    forward, backward = aspect_between(a, b), aspect_between(b, a)
    if forward is None:
        assert backward is None
    else:
        assert backward is not None
        assert forward[0] == backward[0]
        assert forward[1] == pytest.approx(backward[1], abs=1e-9)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (10.0, 17.9, "conjunction"),
        (10.0, 18.1, None),
        (355.0, 2.0, "conjunction"),
        (0.0, 63.9, "sextile"),
        (0.0, 64.1, None),
        (0.0, 275.0, "square"),
        (0.0, 125.5, "trine"),
        (0.0, 187.9, "opposition"),
    ],
)
def test_default_orbs_are_those_of_the_design(a: float, b: float, expected: str | None) -> None:
    hit = aspect_between(a, b)
    assert (hit[0] if hit else None) == expected


def _positions(**bodies: tuple[float, float]) -> Positions:
    """Bodies at longitude with speed, for rules that need no ephemeris."""
    made = {}
    for name, (lon, speed) in bodies.items():
        place = zodiac_place(lon)
        made[name] = BodyPosition(name, lon, 0.0, 1e8, speed, speed < 0, place.sign, place.degree)
    return Positions(datetime(2024, 1, 1, tzinfo=UTC), made)


def test_applying_when_the_orb_shrinks_and_separating_when_it_grows() -> None:
    positions = _positions(mars=(10.0, 0.5), saturn=(10.0, -0.05))
    natal = {"sun": 15.0, "moon": 5.0, "venus": 193.0, "mercury": 187.0}
    found = {(a.transiting, a.natal): a for a in aspects(positions, natal)}
    # Mars moving forwards towards a point ahead of it: applying conjunction.
    assert found["mars", "sun"].aspect == "conjunction"
    assert found["mars", "sun"].applying
    # ... and away from a point behind it.
    assert not found["mars", "moon"].applying
    # Opposition 177° (Mars 10°, Venus 193°): moving forwards widens the gap to 180: applying.
    assert found["mars", "venus"].aspect == "opposition"
    assert found["mars", "venus"].applying
    # Past the exact opposition (183°) the same motion separates.
    assert not found["mars", "mercury"].applying
    # Retrograde Saturn reverses every case.
    assert not found["saturn", "sun"].applying
    assert found["saturn", "moon"].applying


def test_exact_under_one_degree_and_tightest_first() -> None:
    positions = _positions(jupiter=(100.0, 0.2))
    found = aspects(positions, {"sun": 100.5, "moon": 195.0, "ascendant": 40.9})
    assert [(a.natal, a.aspect) for a in found] == [
        ("sun", "conjunction"),
        ("ascendant", "sextile"),
        ("moon", "square"),
    ]
    assert [a.exact for a in found] == [True, True, False]
    assert found[0].orb == pytest.approx(0.5)
    assert found[2].orb == pytest.approx(5.0)


def test_orbs_come_from_the_caller() -> None:
    positions = _positions(venus=(0.0, 1.2))
    assert aspects(positions, {"sun": 7.0}) != []
    assert aspects(positions, {"sun": 7.0}, check_orbs({"conjunction": 5.0})) == []


@pytest.mark.parametrize(
    ("orbs", "message"),
    [({"quincunx": 3.0}, "unknown aspects"), ({"trine": -1.0}, "between"), ({"square": 16}, "15")],
)
def test_bad_orbs_are_refused(orbs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_orbs(orbs)


def test_defaults_cover_every_aspect() -> None:
    assert set(DEFAULT_ORBS) == set(ASPECTS)
    assert check_orbs({}) == DEFAULT_ORBS
