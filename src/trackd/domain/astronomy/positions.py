"""Where the Sun, the Moon and the planets are at an instant: the same for every user."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from trackd.domain.astronomy.ephemeris import BODIES, require_utc, sample, speed_times, tt_of
from trackd.domain.astronomy.zodiac import normalize, zodiac_place


@dataclass(frozen=True, slots=True)
class BodyPosition:
    """A body's apparent geocentric place in the ecliptic of date.

    Attributes:
        body: "sun", "moon", "mercury" … "pluto".
        longitude: ecliptic longitude in degrees, [0, 360).
        latitude: ecliptic latitude in degrees.
        distance_km: distance from the Earth's centre.
        speed: change of longitude in degrees per day (negative when retrograde).
        retrograde: speed < 0.
        sign: tropical sign of the longitude.
        degree: degrees into that sign, [0, 30).
    """

    body: str
    longitude: float
    latitude: float
    distance_km: float
    speed: float
    retrograde: bool
    sign: str
    degree: float


@dataclass(frozen=True, slots=True)
class Positions:
    """All bodies at one instant: computed once, then shared by every user's aspects."""

    instant: datetime
    bodies: dict[str, BodyPosition]

    def longitudes(self) -> dict[str, float]:
        """Body name → longitude, the form a chart's points are compared in."""
        return {name: p.longitude for name, p in self.bodies.items()}


def planet_positions(instant: datetime, bodies: Iterable[str] = BODIES) -> Positions:
    """The apparent places and speeds of the bodies at an instant.

    Args:
        instant: an aware datetime within DE421's span (1899-2053).
        bodies: which bodies, by default the Sun, the Moon and Mercury … Pluto.

    Raises:
        ValueError: a naive instant or an unknown body.
        OutOfEphemerisRange: an instant outside DE421's span.
    """
    tt = tt_of(instant)
    t = speed_times(tt)
    out: dict[str, BodyPosition] = {}
    for name in bodies:
        lat, lon, dist, speeds = sample(name, t)
        speed = float(speeds[0])
        longitude = normalize(float(lon[0]))
        place = zodiac_place(longitude)
        out[name] = BodyPosition(
            body=name,
            longitude=longitude,
            latitude=float(lat[0]),
            distance_km=float(dist[0]),
            speed=speed,
            retrograde=speed < 0,
            sign=place.sign,
            degree=place.degree,
        )
    return Positions(instant=require_utc(instant), bodies=out)
