"""A natal chart: the bodies' places at birth, plus the Ascendant and the Midheaven.

The angles come from the local apparent sidereal time θ (Greenwich apparent sidereal time plus
the east longitude) and the true obliquity ε of date, with φ the geographic latitude:

    Midheaven  λ_MC  = atan2(sin θ, cos θ · cos ε)
    Ascendant  λ_ASC = atan2(cos θ, -(sin θ · cos ε + tan φ · sin ε))

(the equatorial → ecliptic transformation of Meeus, *Astronomical Algorithms*, ch. 13, applied
to the ecliptic point on the upper meridian and to the one rising on the eastern horizon.)
Both are in the true equinox of date, the frame of the bodies' longitudes. Inside the polar
circles the ecliptic can lie along the horizon and the Ascendant formula gives the conventional
value only; latitude ±90° is refused because the horizon there has no east.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from trackd.domain.astronomy.ephemeris import (
    BODIES,
    local_apparent_sidereal_degrees,
    times,
    true_obliquity,
    tt_of,
)
from trackd.domain.astronomy.positions import planet_positions
from trackd.domain.astronomy.zodiac import normalize, zodiac_place

ANGLES: tuple[str, ...] = ("ascendant", "midheaven")


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """A point of a chart: a body at birth or one of the two angles.

    Attributes:
        name: "sun" … "pluto", "ascendant" or "midheaven".
        longitude: ecliptic longitude of date in degrees, [0, 360).
        sign: tropical sign.
        degree: degrees into the sign, [0, 30).
        retrograde: the body moved backwards at birth (always False for the angles).
    """

    name: str
    longitude: float
    sign: str
    degree: float
    retrograde: bool


@dataclass(frozen=True, slots=True)
class NatalChart:
    """A birth chart.

    Attributes:
        birth: the birth instant in UTC.
        latitude: geographic latitude in degrees, north positive.
        longitude: geographic longitude in degrees, east positive.
        points: name → point, for Sun … Pluto, ascendant and midheaven.
    """

    birth: datetime
    latitude: float
    longitude: float
    points: dict[str, ChartPoint]

    def longitudes(self) -> dict[str, float]:
        """Point name → longitude: what `aspects` compares the transiting bodies with."""
        return {name: p.longitude for name, p in self.points.items()}


def house_angles(tt: float, latitude: float, east_longitude: float) -> tuple[float, float]:
    """The Ascendant and the Midheaven (degrees of ecliptic longitude) at a TT Julian date.

    Args:
        tt: the instant (TT Julian date).
        latitude: geographic latitude in degrees, strictly between -90 and 90.
        east_longitude: geographic longitude in degrees, east positive.
    """
    t = times(tt)
    theta = math.radians(local_apparent_sidereal_degrees(t, east_longitude))
    eps = math.radians(true_obliquity(t))
    phi = math.radians(latitude)
    mc = math.atan2(math.sin(theta), math.cos(theta) * math.cos(eps))
    asc = math.atan2(
        math.cos(theta),
        -(math.sin(theta) * math.cos(eps) + math.tan(phi) * math.sin(eps)),
    )
    return normalize(math.degrees(asc)), normalize(math.degrees(mc))


def natal_chart(birth: datetime, latitude: float, longitude: float) -> NatalChart:
    """The chart of a birth instant and place.

    Args:
        birth: an aware datetime (any zone; stored as UTC) within 1899-2053.
        latitude: degrees north, strictly between -90 and 90.
        longitude: degrees east, -180 to 180.

    Raises:
        ValueError: a naive birth instant or a place off the globe.
        OutOfEphemerisRange: a birth outside DE421's span.
    """
    if not -90.0 < latitude < 90.0 or math.isnan(latitude):
        raise ValueError(f"latitude must be strictly between -90 and 90 degrees, got {latitude}")
    if not -180.0 <= longitude <= 180.0 or math.isnan(longitude):
        raise ValueError(f"longitude must be between -180 and 180 degrees, got {longitude}")
    positions = planet_positions(birth, BODIES)
    points: dict[str, ChartPoint] = {}
    for body in positions.bodies.values():
        points[body.body] = ChartPoint(
            body.body, body.longitude, body.sign, body.degree, body.retrograde
        )
    asc, mc = house_angles(tt_of(birth), latitude, longitude)
    for name, lon in zip(ANGLES, (asc, mc), strict=True):
        place = zodiac_place(lon)
        points[name] = ChartPoint(name, lon, place.sign, place.degree, False)
    return NatalChart(positions.instant, latitude, longitude, points)
