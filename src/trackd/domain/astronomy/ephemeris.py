"""The one way into JPL's DE421 ephemeris: loading it, converting instants, apparent places.

DE421 comes from the `skyfield-data` package, so nothing is downloaded at run time. The file is
opened with `skyfield.api.load_file` (no `Loader`, which could fetch) and located with
`importlib.resources` rather than `skyfield_data.get_skyfield_data_path()`, because the latter
warns about the package's *other* file (an IERS table trackd does not use: the timescale is
skyfield's built-in one) going stale, and a warning is not news to a user.

Everything here works on TT Julian dates (floats) and numpy arrays; the modules beside it turn
the results into native Python values before they leave the package.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from skyfield.api import load, load_file
from skyfield.framelib import ecliptic_frame
from skyfield.nutationlib import iau2000a_radians, mean_obliquity

if TYPE_CHECKING:
    from skyfield.jpllib import SpiceKernel
    from skyfield.timelib import Time, Timescale

# Sun, Moon and the planets in the usual order. DE421 holds barycentres for Mars … Pluto; the
# offset of a planet's centre from its system's barycentre is under 0.1″ seen from the Earth.
BODIES: tuple[str, ...] = (
    "sun",
    "moon",
    "mercury",
    "venus",
    "mars",
    "jupiter",
    "saturn",
    "uranus",
    "neptune",
    "pluto",
)
_TARGETS = {
    "sun": "sun",
    "moon": "moon",
    "mercury": "mercury",
    "venus": "venus",
    "mars": "mars barycenter",
    "jupiter": "jupiter barycenter",
    "saturn": "saturn barycenter",
    "uranus": "uranus barycenter",
    "neptune": "neptune barycenter",
    "pluto": "pluto barycenter",
}
# Half-width of the central difference that gives speeds in longitude. Speed is the derivative
# of the *apparent* longitude (what a station is defined on), so it is differenced rather than
# taken from the velocity vector, which leaves out the change of aberration (~1e-4°/day, hours
# on a station's instant).
SPEED_HALF_STEP_DAYS = 0.005
_AU_KM = 149_597_870.7
# Before 1972, UTC was steered to stay within 0.1 s of UT1 (the Earth's rotation) by changes of
# rate and small steps that skyfield's leap-second table does not hold: it reads such instants
# as TAI - 10 s, up to 6 s away from the civil time of the 1960s, which is 90″ of sidereal time
# on an Ascendant. So civil times before 1972 are read as UT1, which they were to 0.1 s.
_LEAP_SECOND_UTC_FROM = datetime(1972, 1, 1, tzinfo=UTC)
_J2000 = datetime(2000, 1, 1, 12, tzinfo=UTC)
_J2000_JD = 2451545.0


class OutOfEphemerisRange(ValueError):
    """An instant outside the span DE421 covers (1899-07-29 … 2053-10-08)."""


@dataclass(frozen=True, slots=True)
class Ephemeris:
    """The loaded kernel and timescale, with the kernel's span as TT Julian dates."""

    kernel: SpiceKernel
    timescale: Timescale
    start_tt: float
    end_tt: float


@functools.cache
def ephemeris() -> Ephemeris:
    """DE421 and skyfield's built-in timescale, loaded once per process on first use."""
    path = importlib.resources.files("skyfield_data") / "data" / "de421.bsp"
    with importlib.resources.as_file(path) as file:
        kernel = load_file(str(file))
    segments = kernel.segments
    start = max(float(s.spk_segment.start_jd) for s in segments)
    end = min(float(s.spk_segment.end_jd) for s in segments)
    # A margin inside the span keeps the speed differences and light-time iterations in it.
    return Ephemeris(kernel, load.timescale(builtin=True), start + 1.0, end - 1.0)


def require_utc(instant: datetime) -> datetime:
    """The instant in UTC; a naive datetime is refused, since its zone would be a guess."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant {instant.isoformat()} has no time zone; give it one (UTC)")
    return instant.astimezone(UTC)


def tt_of(instant: datetime) -> float:
    """The TT Julian date of an aware datetime, refused outside DE421's span."""
    instant = require_utc(instant)
    timescale = ephemeris().timescale
    if instant < _LEAP_SECOND_UTC_FROM:
        t = timescale.ut1_jd(_J2000_JD + (instant - _J2000) / timedelta(days=1))
    else:
        t = timescale.from_datetime(instant)
    tt = float(t.tt)
    check_span(tt, tt)
    return tt


def check_span(start_tt: float, end_tt: float) -> None:
    """Refuse a TT interval that leaves DE421's span, with the span in the message."""
    eph = ephemeris()
    if start_tt < eph.start_tt or end_tt > eph.end_tt:
        first = datetime_of(eph.start_tt).date().isoformat()
        last = datetime_of(eph.end_tt).date().isoformat()
        raise OutOfEphemerisRange(f"the ephemeris (JPL DE421) covers {first} to {last} only")


def datetime_of(tt: float) -> datetime:
    """The UTC datetime of a TT Julian date (UT1 before 1972, as `tt_of` reads it)."""
    t = ephemeris().timescale.tt_jd(tt)
    ut1 = float(t.ut1)
    if ut1 < _J2000_JD + (_LEAP_SECOND_UTC_FROM - _J2000) / timedelta(days=1):
        return _J2000 + timedelta(days=ut1 - _J2000_JD)
    value: datetime = t.utc_datetime()
    return value


def times(tt: Any) -> Time:
    """A skyfield Time for a TT Julian date or an array of them."""
    return ephemeris().timescale.tt_jd(tt)


def apparent(body: str, t: Time) -> tuple[Any, Any, Any]:
    """Apparent geocentric ecliptic latitude, longitude (degrees) and distance (km) of date.

    "Apparent" includes light time, aberration and light deflection; "of date" means the true
    ecliptic and equinox of the instant (skyfield's `ecliptic_frame`), which is the frame of
    the tropical zodiac.
    """
    if body not in _TARGETS:
        raise ValueError(f"unknown body {body!r}; known: {', '.join(BODIES)}")
    eph = ephemeris()
    position = eph.kernel["earth"].at(t).observe(eph.kernel[_TARGETS[body]]).apparent()
    lat, lon, distance = position.frame_latlon(ecliptic_frame)
    return lat.degrees, lon.degrees, distance.au * _AU_KM


def speed_times(tt: Any) -> Time:
    """The instants `sample` needs for TT dates: each one, and half a step either side.

    Build it once and pass it for every body, so that nutation and precession (most of the
    cost) are computed once per instant rather than once per body.
    """
    tt = np.atleast_1d(np.asarray(tt, dtype=float))
    h = SPEED_HALF_STEP_DAYS
    return times(np.concatenate([tt - h, tt, tt + h]))


def sample(body: str, t: Time) -> tuple[Any, Any, Any, Any]:
    """Latitude, longitude (degrees), distance (km) and speed (degrees/day) at `speed_times`.

    Args:
        body: one of BODIES.
        t: what `speed_times` returned.

    Returns:
        Arrays with one value per instant given to `speed_times`.
    """
    lat, lon, distance = apparent(body, t)
    thirds = len(lon) // 3
    before, after = lon[:thirds], lon[2 * thirds :]
    middle = slice(thirds, 2 * thirds)
    speed = ((after - before + 180.0) % 360.0 - 180.0) / (2 * SPEED_HALF_STEP_DAYS)
    return lat[middle], lon[middle], distance[middle], speed


def true_obliquity(t: Time) -> float:
    """The true obliquity of the ecliptic at an instant, in degrees (mean + nutation)."""
    _, d_eps = iau2000a_radians(t)
    mean = float(mean_obliquity(t.tdb)) / 3600.0
    return mean + math.degrees(float(d_eps))


def local_apparent_sidereal_degrees(t: Time, east_longitude: float) -> float:
    """Local apparent sidereal time in degrees: Greenwich apparent sidereal time + longitude."""
    return (float(t.gast) * 15.0 + east_longitude) % 360.0
