"""Aurora visibility: the IGRF dipole, the Kp-dependent oval boundary, and the answer."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackd.domain import aurora

RANK = {"unlikely": 0, "horizon": 1, "overhead": 2}


def unit_vector(latitude: float, longitude: float) -> tuple[float, float, float]:
    lat, lon = math.radians(latitude), math.radians(longitude)
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def test_the_dipole_pole_of_igrf14_2025() -> None:
    latitude, longitude = aurora.dipole_pole()
    # IGRF-14's published geomagnetic north pole for 2025.0: 80.8° N, 72.8° W.
    assert latitude == pytest.approx(80.8, abs=0.05)
    assert longitude == pytest.approx(-72.8, abs=0.05)


def test_the_poles_are_at_plus_and_minus_ninety() -> None:
    latitude, longitude = aurora.dipole_pole()
    assert aurora.geomagnetic_latitude(latitude, longitude) == pytest.approx(90.0)
    assert aurora.geomagnetic_latitude(-latitude, longitude + 180.0) == pytest.approx(-90.0)


@given(
    st.floats(min_value=-90, max_value=90, allow_nan=False),
    st.floats(min_value=-180, max_value=180, allow_nan=False),
)
def test_geomagnetic_latitude_agrees_with_the_dipole_axis_by_vectors(
    lat: float, lon: float
) -> None:
    # An independent route: the angle between the place and the dipole axis as 3-D vectors.
    axis = unit_vector(*aurora.dipole_pole())
    place = unit_vector(lat, lon)
    expected = math.degrees(
        math.asin(max(-1.0, min(1.0, sum(a * b for a, b in zip(axis, place, strict=True)))))
    )
    assert aurora.geomagnetic_latitude(lat, lon) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("place", "latitude", "longitude", "expected"),
    [
        ("Tromsø", 69.65, 18.96, 67.5),
        ("Stockholm", 59.33, 18.07, 58.0),
        ("New York", 40.71, -74.01, 49.9),
        ("Hobart", -42.88, 147.33, -49.6),
    ],
)
def test_geomagnetic_latitude_of_known_places(
    place: str, latitude: float, longitude: float, expected: float
) -> None:
    assert aurora.geomagnetic_latitude(latitude, longitude) == pytest.approx(expected, abs=0.3), (
        place
    )


def test_oval_boundary_follows_gussenhoven() -> None:
    assert aurora.oval_boundary(0) == pytest.approx(66.1)
    assert aurora.oval_boundary(5) == pytest.approx(56.15)
    assert aurora.oval_boundary(9) == pytest.approx(48.19)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        aurora.oval_boundary(9.5)


def test_horizon_reach_from_the_geometry() -> None:
    # Lower edge 110 km up, seen 10° above the horizon: about 4.5° of latitude.
    assert aurora.horizon_reach() == pytest.approx(4.51, abs=0.01)


@pytest.mark.parametrize(
    ("latitude", "longitude", "kp", "visibility"),
    [
        (69.65, 18.96, 2.0, "overhead"),
        (59.33, 18.07, 1.0, "unlikely"),
        (59.33, 18.07, 3.0, "horizon"),
        (59.33, 18.07, 4.67, "overhead"),
        (40.71, -74.01, 5.0, "unlikely"),
        (40.71, -74.01, 7.0, "horizon"),
        (40.71, -74.01, 9.0, "overhead"),
        (-42.88, 147.33, 8.0, "horizon"),
        (-42.88, 147.33, 8.67, "overhead"),
        (0.0, 0.0, 9.0, "unlikely"),
    ],
)
def test_visibility(latitude: float, longitude: float, kp: float, visibility: str) -> None:
    answer = aurora.aurora_visibility(latitude, longitude, kp)
    assert answer["visibility"] == visibility
    assert answer["visible"] is (visibility != "unlikely")
    assert "IGRF-14" in answer["model"] and "Gussenhoven" in answer["model"]
    assert all(isinstance(v, str | float | int | bool) for v in answer.values())


@given(
    st.floats(min_value=-90, max_value=90, allow_nan=False),
    st.floats(min_value=-180, max_value=180, allow_nan=False),
    st.floats(min_value=0, max_value=9),
    st.floats(min_value=0, max_value=9),
)
def test_more_kp_never_means_less_aurora(lat: float, lon: float, a: float, b: float) -> None:
    low, high = sorted((a, b))
    before = aurora.aurora_visibility(lat, lon, low)["visibility"]
    after = aurora.aurora_visibility(lat, lon, high)["visibility"]
    assert RANK[after] >= RANK[before]


@pytest.mark.parametrize(
    ("latitude", "longitude"), [(91, 0), (-91, 0), (0, 181), (float("nan"), 0)]
)
def test_places_off_the_globe_are_refused(latitude: float, longitude: float) -> None:
    with pytest.raises(ValueError, match="must be within"):
        aurora.geomagnetic_latitude(latitude, longitude)
