"""Aurora visibility from a place's magnetic latitude and the Kp index (pure math).

Three stated models, all named in every answer:

* The auroral oval's equatorward boundary from Gussenhoven, Hardy & Heinemann (1983),
  "Systematics of the equatorward diffuse auroral boundary", J. Geophys. Res. 88(A7),
  5692-5708: a linear fit in Kp per magnetic-local-time hour, in corrected geomagnetic
  latitude (`NIGHT_FITS`, the night-side hours of the paper's table; e.g. 00 MLT:
  66.1° - 1.99° x Kp, 01 MLT: 65.1° - 1.55° x Kp). The boundary used is the most equatorward
  of those hours at the given Kp: the best case of the night (at low Kp that is 01 MLT, not
  midnight). The coefficients are as transcribed in ocbpy's `gussenhoven_colatitudes`
  (aburrell/ocbpy, ocbpy/boundaries/models.py).
* The place's corrected geomagnetic latitude from AACGM-v2 (Shepherd 2014, J. Geophys. Res.
  Space Physics 119, 7501-7521) through the `aacgmv2` package: the frame the fits are given
  in. A centred dipole would not do: over Western Europe it puts places 5-6° further
  poleward than their corrected latitude (London: 53.3° dipole, 47.2° AACGM in 2026), so
  every storm would look visible there several Kp too early. AACGM is undefined near the
  magnetic equator, where no aurora is seen anyway.
* For reference, the centred dipole of IGRF-14 at epoch 2025.0 (first-degree Gauss
  coefficients g10 = -29350.0, g11 = -1410.3, h11 = 4545.5 nT, from IAGA V-MOD's
  igrf14coeffs.txt); its north pole is the published IGRF-14 geomagnetic pole of 2025.0,
  80.85° N 72.76° W (geodetic). Places are given in geodetic (GPS) latitude, which is turned
  into geocentric latitude (WGS84) before the dipole is applied.

From below the boundary an aurora can still be seen low on the poleward horizon: its lower
edge (about 110 km up) rises above 10° of elevation up to a few degrees of latitude away;
that reach is computed from the geometry, not guessed.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any, Final, Literal

import aacgmv2

# IGRF-14, epoch 2025.0, nT (IAGA Working Group V-MOD, 2024).
IGRF_EPOCH: Final = "IGRF-14 2025.0"
G10: Final = -29350.0
G11: Final = -1410.3
H11: Final = 4545.5
# WGS84 first eccentricity squared.
WGS84_E2: Final = 6.69437999014e-3

# Gussenhoven et al. (1983): equatorward boundary = offset + slope x Kp, degrees corrected
# geomagnetic latitude, by magnetic local time hour (night side; the paper has no fit for
# 02-03 MLT).
NIGHT_FITS: Final[dict[int, tuple[float, float]]] = {
    18: (71.2, -1.74),
    19: (70.4, -1.83),
    20: (69.4, -1.89),
    21: (68.6, -1.86),
    22: (67.9, -1.78),
    23: (67.8, -2.07),
    0: (66.1, -1.99),
    1: (65.1, -1.55),
    4: (67.7, -1.48),
    5: (67.8, -1.87),
    6: (68.2, -1.90),
}
EARTH_RADIUS_KM: Final = 6371.0
AURORA_LOWER_EDGE_KM: Final = 110.0
MIN_ELEVATION_DEG: Final = 10.0

Visibility = Literal["overhead", "horizon", "unlikely"]


class _ExpectedNearTheEquator(logging.Filter):
    """aacgmv2 logs a warning for every place near the magnetic equator, where AACGM is
    undefined; that case is answered (no aurora), so its warning is dropped, others kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "undefined near the equator" not in record.getMessage()


logging.getLogger("aacgmv2_logger").addFilter(_ExpectedNearTheEquator())

MODEL: Final = (
    "auroral oval equatorward boundary: the most equatorward night-side (18-06 MLT) linear "
    "Kp fit of Gussenhoven, Hardy & Heinemann 1983 (J. Geophys. Res. 88, 5692), in corrected "
    "geomagnetic latitude; the place's corrected geomagnetic latitude from AACGM-v2 (Shepherd "
    f"2014) at ground level; 'horizon' = the aurora's lower edge at {AURORA_LOWER_EDGE_KM:.0f} "
    f"km stands at least {MIN_ELEVATION_DEG:.0f} degrees above the horizon; "
    f"geomagnetic_latitude is the centred dipole of {IGRF_EPOCH} (g10={G10}, g11={G11}, "
    f"h11={H11} nT), for reference"
)


def _check_place(latitude: float, longitude: float) -> None:
    if not -90.0 <= latitude <= 90.0 or not math.isfinite(latitude):
        raise ValueError(f"latitude must be within -90..90, got {latitude}")
    if not -180.0 <= longitude <= 180.0 or not math.isfinite(longitude):
        raise ValueError(f"longitude must be within -180..180, got {longitude}")


def dipole_pole() -> tuple[float, float]:
    """The north geomagnetic pole (geocentric latitude, longitude in degrees) of the IGRF
    dipole."""
    b0 = math.sqrt(G10**2 + G11**2 + H11**2)
    colatitude = math.acos(-G10 / b0)
    longitude = math.atan2(-H11, -G11)
    return 90.0 - math.degrees(colatitude), math.degrees(longitude)


def geocentric_latitude(latitude: float) -> float:
    """The geocentric latitude (degrees) of a geodetic (WGS84) latitude at sea level."""
    if abs(latitude) == 90.0:
        return latitude
    return math.degrees(math.atan((1.0 - WGS84_E2) * math.tan(math.radians(latitude))))


def geodetic_latitude(latitude: float) -> float:
    """The geodetic (WGS84) latitude (degrees) of a geocentric latitude at sea level."""
    if abs(latitude) == 90.0:
        return latitude
    return math.degrees(math.atan(math.tan(math.radians(latitude)) / (1.0 - WGS84_E2)))


def geomagnetic_latitude(latitude: float, longitude: float) -> float:
    """Dipole geomagnetic latitude in degrees of a geographic place (geodetic degrees, east
    positive).

    Raises:
        ValueError: latitude outside -90..90 or longitude outside -180..180.
    """
    _check_place(latitude, longitude)
    pole_lat, pole_lon = (math.radians(angle) for angle in dipole_pole())
    lat, lon = math.radians(geocentric_latitude(latitude)), math.radians(longitude)
    sin_mlat = math.sin(lat) * math.sin(pole_lat) + math.cos(lat) * math.cos(pole_lat) * math.cos(
        lon - pole_lon
    )
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_mlat))))


def corrected_geomagnetic_latitude(
    latitude: float, longitude: float, when: datetime, height_km: float = 0.0
) -> float | None:
    """AACGM-v2 latitude in degrees of a geographic place (geodetic degrees, east positive)
    at `when`; None near the magnetic equator, where it is undefined.

    Raises:
        ValueError: latitude outside -90..90 or longitude outside -180..180.
    """
    _check_place(latitude, longitude)
    moment = when.astimezone(UTC).replace(tzinfo=None)
    mlat, _, _ = aacgmv2.convert_latlon(latitude, longitude, height_km, moment, method_code="G2A")
    value = float(mlat)
    return value if math.isfinite(value) else None


def oval_boundary(kp: float) -> float:
    """Corrected geomagnetic latitude (degrees, either hemisphere) of the oval's equatorward
    edge at its most equatorward night-side hour."""
    if not 0.0 <= kp <= 9.0:
        raise ValueError(f"Kp must be within 0..9, got {kp}")
    return min(offset + slope * kp for offset, slope in NIGHT_FITS.values())


def horizon_reach() -> float:
    """Degrees of latitude from which the aurora's lower edge still stands at the minimum
    elevation: the central angle g with cos(e + g) = R cos(e) / (R + h)."""
    elevation = math.radians(MIN_ELEVATION_DEG)
    ratio = EARTH_RADIUS_KM * math.cos(elevation) / (EARTH_RADIUS_KM + AURORA_LOWER_EDGE_KM)
    return math.degrees(math.acos(ratio) - elevation)


def aurora_visibility(
    latitude: float, longitude: float, kp: float, when: datetime
) -> dict[str, Any]:
    """Whether an aurora may be seen from a place at a Kp, with the models stated.

    Returns:
        Native values: `corrected_geomagnetic_latitude` (None near the magnetic equator),
        `geomagnetic_latitude` (dipole), `oval_boundary` (degrees), `visibility`
        (`overhead`, `horizon` or `unlikely`), `visible`, the inputs, and `model`.
    """
    cgm = corrected_geomagnetic_latitude(latitude, longitude, when)
    dipole = geomagnetic_latitude(latitude, longitude)
    boundary = oval_boundary(kp)
    distance = abs(cgm) if cgm is not None else 0.0
    visibility: Visibility
    if distance >= boundary:
        visibility = "overhead"
    elif distance >= boundary - horizon_reach():
        visibility = "horizon"
    else:
        visibility = "unlikely"
    return {
        "latitude": latitude,
        "longitude": longitude,
        "kp": kp,
        "corrected_geomagnetic_latitude": round(cgm, 2) if cgm is not None else None,
        "geomagnetic_latitude": round(dipole, 2),
        "oval_boundary": round(boundary, 2),
        "visibility": visibility,
        "visible": visibility != "unlikely",
        "model": MODEL,
    }
