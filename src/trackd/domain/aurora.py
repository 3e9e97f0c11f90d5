"""Aurora visibility from a place's geomagnetic latitude and the Kp index (pure math).

Two stated models, both named in every answer:

* Geomagnetic latitude from the centred dipole of IGRF-14 at epoch 2025.0 (the first-degree
  Gauss coefficients g10, g11, h11 below); its north pole falls near 80.8° N, 72.8° W.
* The equatorward boundary of the diffuse auroral oval near magnetic midnight from
  Gussenhoven, Hardy & Heinemann (1983), "Systematics of the equatorward diffuse auroral
  boundary", J. Geophys. Res. 88, 5692-5708: boundary = 66.1° - 1.99° x Kp. Away from midnight
  the oval lies further poleward, so this is the best case of the night.

From below the boundary an aurora can still be seen low on the poleward horizon: its lower
edge (about 110 km up) rises above 10° of elevation up to a few degrees of latitude away;
that reach is computed from the geometry, not guessed.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal

# IGRF-14, epoch 2025.0, nT (IAGA Working Group V-MOD, 2024).
IGRF_EPOCH: Final = "IGRF-14 2025.0"
G10: Final = -29350.0
G11: Final = -1410.3
H11: Final = 4545.5

OVAL_AT_KP0_DEG: Final = 66.1
OVAL_SHIFT_PER_KP_DEG: Final = 1.99
EARTH_RADIUS_KM: Final = 6371.0
AURORA_LOWER_EDGE_KM: Final = 110.0
MIN_ELEVATION_DEG: Final = 10.0

Visibility = Literal["overhead", "horizon", "unlikely"]

MODEL: Final = (
    f"geomagnetic latitude from the centred dipole of {IGRF_EPOCH} (g10={G10}, g11={G11}, "
    f"h11={H11} nT); auroral oval equatorward boundary near magnetic midnight "
    f"{OVAL_AT_KP0_DEG} - {OVAL_SHIFT_PER_KP_DEG} x Kp degrees geomagnetic latitude "
    "(Gussenhoven, Hardy & Heinemann 1983, J. Geophys. Res. 88, 5692); 'horizon' = the "
    f"aurora's lower edge at {AURORA_LOWER_EDGE_KM:.0f} km stands at least "
    f"{MIN_ELEVATION_DEG:.0f} degrees above the horizon"
)


def dipole_pole() -> tuple[float, float]:
    """The north geomagnetic pole (latitude, longitude in degrees) of the IGRF dipole."""
    b0 = math.sqrt(G10**2 + G11**2 + H11**2)
    colatitude = math.acos(-G10 / b0)
    longitude = math.atan2(-H11, -G11)
    return 90.0 - math.degrees(colatitude), math.degrees(longitude)


def geomagnetic_latitude(latitude: float, longitude: float) -> float:
    """Dipole geomagnetic latitude in degrees of a geographic place (degrees, east positive).

    Raises:
        ValueError: latitude outside -90..90 or longitude outside -180..180.
    """
    if not -90.0 <= latitude <= 90.0 or not math.isfinite(latitude):
        raise ValueError(f"latitude must be within -90..90, got {latitude}")
    if not -180.0 <= longitude <= 180.0 or not math.isfinite(longitude):
        raise ValueError(f"longitude must be within -180..180, got {longitude}")
    pole_lat, pole_lon = (math.radians(angle) for angle in dipole_pole())
    lat, lon = math.radians(latitude), math.radians(longitude)
    sin_mlat = math.sin(lat) * math.sin(pole_lat) + math.cos(lat) * math.cos(pole_lat) * math.cos(
        lon - pole_lon
    )
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_mlat))))


def oval_boundary(kp: float) -> float:
    """Geomagnetic latitude (degrees, either hemisphere) of the oval's equatorward edge."""
    if not 0.0 <= kp <= 9.0:
        raise ValueError(f"Kp must be within 0..9, got {kp}")
    return OVAL_AT_KP0_DEG - OVAL_SHIFT_PER_KP_DEG * kp


def horizon_reach() -> float:
    """Degrees of latitude from which the aurora's lower edge still stands at the minimum
    elevation: the central angle g with cos(e + g) = R cos(e) / (R + h)."""
    elevation = math.radians(MIN_ELEVATION_DEG)
    ratio = EARTH_RADIUS_KM * math.cos(elevation) / (EARTH_RADIUS_KM + AURORA_LOWER_EDGE_KM)
    return math.degrees(math.acos(ratio) - elevation)


def aurora_visibility(latitude: float, longitude: float, kp: float) -> dict[str, Any]:
    """Whether an aurora may be seen from a place at a Kp, with the model stated.

    Returns:
        Native values: `geomagnetic_latitude`, `oval_boundary` (degrees), `visibility`
        (`overhead`, `horizon` or `unlikely`), `visible`, the inputs, and `model`.
    """
    mlat = geomagnetic_latitude(latitude, longitude)
    boundary = oval_boundary(kp)
    distance = abs(mlat)
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
        "geomagnetic_latitude": round(mlat, 2),
        "oval_boundary": round(boundary, 2),
        "visibility": visibility,
        "visible": visibility != "unlikely",
        "model": MODEL,
    }
