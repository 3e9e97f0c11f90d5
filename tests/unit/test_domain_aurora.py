"""Aurora visibility: the IGRF dipole, AACGM latitude, the Kp-dependent oval boundary, and the
answer, checked against published values."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackd.domain import aurora

RANK = {"unlikely": 0, "horizon": 1, "overhead": 2}
NOW = datetime(2026, 12, 1, tzinfo=UTC)
WHEN_2013 = datetime(2013, 11, 3, tzinfo=UTC)


def unit_vector(latitude: float, longitude: float) -> tuple[float, float, float]:
    lat, lon = math.radians(latitude), math.radians(longitude)
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def test_the_dipole_pole_is_igrf14s_published_pole_of_2025() -> None:
    latitude, longitude = aurora.dipole_pole()
    # IGRF-14's geomagnetic north pole for 2025.0 (its table of pole positions, geodetic):
    # 80.85° N, 72.76° W.
    assert aurora.geodetic_latitude(latitude) == pytest.approx(80.85, abs=0.01)
    assert longitude == pytest.approx(-72.76, abs=0.01)


def test_the_poles_are_at_plus_and_minus_ninety() -> None:
    latitude, longitude = aurora.dipole_pole()
    north = aurora.geodetic_latitude(latitude)
    assert aurora.geomagnetic_latitude(north, longitude) == pytest.approx(90.0)
    assert aurora.geomagnetic_latitude(-north, longitude + 180.0) == pytest.approx(-90.0)


@given(
    st.floats(min_value=-90, max_value=90, allow_nan=False),
    st.floats(min_value=-180, max_value=180, allow_nan=False),
)
def test_geomagnetic_latitude_agrees_with_the_dipole_axis_by_vectors(
    lat: float, lon: float
) -> None:
    # An independent route: the angle between the place and the dipole axis as 3-D vectors.
    axis = unit_vector(*aurora.dipole_pole())
    place = unit_vector(aurora.geocentric_latitude(lat), lon)
    expected = math.degrees(
        math.asin(max(-1.0, min(1.0, sum(a * b for a, b in zip(axis, place, strict=True)))))
    )
    assert aurora.geomagnetic_latitude(lat, lon) == pytest.approx(expected, abs=1e-6)


def test_corrected_latitude_matches_the_aacgmv2_documented_example() -> None:
    # aacgmv2's README: 60° N 15° E, 300 km, 2013-11-03 -> AACGM latitude 57.4736.
    found = aurora.corrected_geomagnetic_latitude(60, 15, WHEN_2013, height_km=300)
    assert found == pytest.approx(57.4736, abs=1e-3)


def test_over_europe_the_dipole_is_far_from_the_corrected_latitude() -> None:
    # Why the oval is compared with AACGM: the fits are in corrected geomagnetic latitude,
    # and over Western Europe the dipole puts places 5-6° further poleward.
    london = aurora.corrected_geomagnetic_latitude(51.5, -0.12, NOW)
    assert london is not None
    assert aurora.geomagnetic_latitude(51.5, -0.12) - london > 5.0
    assert aurora.corrected_geomagnetic_latitude(0.0, 0.0, NOW) is None


def test_the_equator_is_answered_without_a_library_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        assert aurora.corrected_geomagnetic_latitude(20.0, 0.0, NOW) is None
    assert not [r for r in caplog.records if r.name == "aacgmv2_logger"]


def test_oval_boundary_follows_gussenhovens_night_side_fits() -> None:
    # The most equatorward night-side hour: 01 MLT at Kp 0 (65.1), midnight when it is high
    # (66.1 - 1.99 Kp).
    assert aurora.oval_boundary(0) == pytest.approx(65.1)
    assert aurora.oval_boundary(5) == pytest.approx(56.15)
    assert aurora.oval_boundary(9) == pytest.approx(48.19)
    for kp in (0.0, 2.33, 4.67, 7.0, 9.0):
        assert aurora.oval_boundary(kp) <= 66.1 - 1.99 * kp + 1e-9
    with pytest.raises(ValueError, match=r"0\.\.9"):
        aurora.oval_boundary(9.5)


def test_horizon_reach_from_the_geometry() -> None:
    # Lower edge 110 km up, seen 10° above the horizon: about 4.5° of latitude.
    assert aurora.horizon_reach() == pytest.approx(4.51, abs=0.01)


@pytest.mark.parametrize(
    ("latitude", "longitude", "kp", "visibility"),
    [
        (69.65, 18.96, 0.0, "overhead"),  # Tromsø
        (59.33, 18.07, 1.0, "unlikely"),  # Stockholm
        (59.33, 18.07, 3.0, "horizon"),
        (59.33, 18.07, 5.33, "overhead"),
        (40.71, -74.01, 5.0, "unlikely"),  # New York
        (40.71, -74.01, 7.0, "horizon"),
        (40.71, -74.01, 9.0, "overhead"),
        (51.5, -0.12, 7.0, "unlikely"),  # London
        (51.5, -0.12, 7.67, "horizon"),
        (-42.88, 147.33, 6.0, "horizon"),  # Hobart
        (-42.88, 147.33, 6.67, "overhead"),
        (0.0, 0.0, 9.0, "unlikely"),
    ],
)
def test_visibility(latitude: float, longitude: float, kp: float, visibility: str) -> None:
    answer = aurora.aurora_visibility(latitude, longitude, kp, NOW)
    assert answer["visibility"] == visibility
    assert answer["visible"] is (visibility != "unlikely")
    assert "AACGM" in answer["model"] and "Gussenhoven" in answer["model"]
    assert all(isinstance(v, str | float | int | bool | None) for v in answer.values())


@given(
    st.floats(min_value=-90, max_value=90, allow_nan=False),
    st.floats(min_value=-180, max_value=180, allow_nan=False),
    st.floats(min_value=0, max_value=9),
    st.floats(min_value=0, max_value=9),
)
def test_more_kp_never_means_less_aurora(lat: float, lon: float, a: float, b: float) -> None:
    low, high = sorted((a, b))
    before = aurora.aurora_visibility(lat, lon, low, NOW)["visibility"]
    after = aurora.aurora_visibility(lat, lon, high, NOW)["visibility"]
    assert RANK[after] >= RANK[before]


@pytest.mark.parametrize(
    ("latitude", "longitude"), [(91, 0), (-91, 0), (0, 181), (float("nan"), 0)]
)
def test_places_off_the_globe_are_refused(latitude: float, longitude: float) -> None:
    with pytest.raises(ValueError, match="must be within"):
        aurora.geomagnetic_latitude(latitude, longitude)
