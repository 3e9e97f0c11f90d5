"""The Moon at an instant: phase, illumination, sign, distance, next events, void of course."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from skyfield import almanac

from trackd.domain.astronomy.aspects import ASPECT_TURNS
from trackd.domain.astronomy.ephemeris import (
    BODIES,
    apparent,
    datetime_of,
    ephemeris,
    require_utc,
    sample,
    speed_times,
    times,
    tt_of,
)
from trackd.domain.astronomy.search import changes
from trackd.domain.astronomy.zodiac import SIGNS, normalize, zodiac_place

# Eight names, each the 45° of phase angle centred on its principal angle (new moon 337.5°-
# 22.5°, waxing crescent 22.5°-67.5°, …), so that a name holds for about 3.7 days.
PHASE_NAMES: tuple[str, ...] = (
    "new_moon",
    "waxing_crescent",
    "first_quarter",
    "waxing_gibbous",
    "full_moon",
    "waning_gibbous",
    "last_quarter",
    "waning_crescent",
)
# The four instants skyfield's almanac finds, in its order (phase angle 0, 90, 180, 270°).
QUARTERS: tuple[str, ...] = ("new_moon", "first_quarter", "full_moon", "last_quarter")
# Traditional void-of-course reckoning uses the seven classical bodies: Sun … Saturn.
VOID_OF_COURSE_BODIES: tuple[str, ...] = (
    "sun",
    "mercury",
    "venus",
    "mars",
    "jupiter",
    "saturn",
)
_TURNS = np.array(sorted(ASPECT_TURNS))
# The Moon keeps a sign for at most ~2.7 days: this window holds the current sign whole.
_SIGN_WINDOW_DAYS = 3.0
# Every quarter happens within one synodic month (29.53 days).
_PHASE_WINDOW_DAYS = 30.0


@dataclass(frozen=True, slots=True)
class LunarAspect:
    """An exact aspect of the Moon to a body.

    Attributes:
        body: the body ("sun" … "saturn" by default).
        aspect: "conjunction" … "opposition".
        instant: when it is exact (UTC).
    """

    body: str
    aspect: str
    instant: datetime


@dataclass(frozen=True, slots=True)
class VoidOfCourse:
    """The void-of-course period of the Moon's current sign.

    It starts at the Moon's last exact major aspect to one of `bodies` while in the sign (at
    the ingress if it makes none) and ends when the Moon leaves the sign.

    Attributes:
        is_void: the instant asked about lies in the period.
        start: when the period starts (later than the instant when it is not void yet).
        end: when the Moon enters the next sign.
        sign: the sign the Moon is void in.
        last_aspect: the aspect that starts the period, None if the sign has none.
        bodies: the bodies whose aspects count.
    """

    is_void: bool
    start: datetime
    end: datetime
    sign: str
    last_aspect: LunarAspect | None
    bodies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SignIngress:
    """The Moon entering a sign."""

    sign: str
    instant: datetime


@dataclass(frozen=True, slots=True)
class MoonPhase:
    """The Moon's place and phase at an instant (the cheap part of `moon_state`).

    Attributes:
        instant: the instant (UTC).
        phase_angle: Moon minus Sun apparent ecliptic longitude, [0, 360): 0 new, 180 full.
        waxing: phase angle below 180°.
        phase_name: one of PHASE_NAMES.
        illumination: illuminated fraction of the disc, 0-1, from the true Sun-Moon
            elongation and both distances (the Sun-Moon-Earth angle i; fraction (1 + cos i)/2).
        elongation: angular distance between the Moon and the Sun, degrees [0, 180].
        longitude: apparent ecliptic longitude of date, degrees [0, 360).
        latitude: apparent ecliptic latitude of date, degrees.
        sign: tropical sign of the longitude.
        degree: degrees into the sign.
        distance_km: distance between the Earth's and the Moon's centres.
        speed: degrees of longitude per day.
    """

    instant: datetime
    phase_angle: float
    waxing: bool
    phase_name: str
    illumination: float
    elongation: float
    longitude: float
    latitude: float
    sign: str
    degree: float
    distance_km: float
    speed: float


@dataclass(frozen=True, slots=True)
class MoonState:
    """The Moon at an instant, with what comes next.

    Attributes:
        phase: place and phase now.
        next_phases: "new_moon", "first_quarter", "full_moon", "last_quarter" → next instant.
        next_ingress: the next sign the Moon enters, and when.
        void_of_course: the void-of-course period of the current sign.
    """

    phase: MoonPhase
    next_phases: dict[str, datetime]
    next_ingress: SignIngress
    void_of_course: VoidOfCourse


def phase_name(phase_angle: float) -> str:
    """The name of the phase at a phase angle in degrees."""
    return PHASE_NAMES[int(((normalize(phase_angle) + 22.5) % 360.0) // 45.0)]


def illuminated_fraction(elongation: float, moon_km: float, sun_km: float) -> float:
    """The lit fraction of the Moon's disc from the Sun-Moon elongation and both distances.

    Args:
        elongation: angle Sun-Earth-Moon in degrees.
        moon_km: Earth-Moon distance.
        sun_km: Earth-Sun distance.
    """
    psi = math.radians(elongation)
    # The phase angle i (Sun-Moon-Earth) from the triangle, Meeus eq. 48.3.
    i = math.atan2(sun_km * math.sin(psi), moon_km - sun_km * math.cos(psi))
    return (1.0 + math.cos(i)) / 2.0


def next_phases(tt: float) -> dict[str, datetime]:
    """The next instant of each of the four quarters after a TT Julian date."""
    f = almanac.moon_phases(ephemeris().kernel)
    found = changes(tt, tt + _PHASE_WINDOW_DAYS, f.step_days, lambda jd: f(times(jd)))
    out: dict[str, datetime] = {}
    for when, quarter in found:
        out.setdefault(QUARTERS[quarter], datetime_of(when))
    return {name: out[name] for name in QUARTERS}


def _moon_sign_index(jd: Any) -> Any:
    _, lon, _ = apparent("moon", times(jd))
    return (lon // 30.0).astype(np.int64) % 12


def _sign_span(tt: float) -> tuple[float, float, int]:
    """When the Moon entered its current sign, when it leaves it, and the sign's index."""
    found = changes(tt - _SIGN_WINDOW_DAYS, tt + _SIGN_WINDOW_DAYS, 0.25, _moon_sign_index)
    entered = max(when for when, _ in found if when <= tt)
    leaves, next_sign = min((when, sign) for when, sign in found if when > tt)
    return entered, leaves, (next_sign - 1) % 12


def lunar_aspects(start_tt: float, end_tt: float, bodies: Sequence[str]) -> list[LunarAspect]:
    """The Moon's exact major aspects to the bodies between two TT Julian dates, in order."""
    found: list[tuple[float, LunarAspect]] = []
    for body in bodies:
        if body == "moon":
            raise ValueError("the Moon cannot aspect itself")

        def sector(jd: Any, body: str = body) -> Any:
            t = times(jd)
            _, moon, _ = apparent("moon", t)
            _, other, _ = apparent(body, t)
            # The Moon outruns every body, so this index steps up by one at each aspect.
            return np.searchsorted(_TURNS, (moon - other) % 360.0, side="right")

        for when, index in changes(start_tt, end_tt, 0.25, sector):
            name = ASPECT_TURNS[float(_TURNS[index - 1])]
            found.append((when, LunarAspect(body, name, datetime_of(when))))
    found.sort(key=lambda pair: pair[0])
    return [aspect for _, aspect in found]


def void_of_course(
    instant: datetime, bodies: Sequence[str] = VOID_OF_COURSE_BODIES
) -> VoidOfCourse:
    """The void-of-course period of the sign the Moon is in at an instant.

    Args:
        instant: an aware datetime.
        bodies: the bodies whose aspects count (default Sun … Saturn, the traditional set;
            pass BODIES without "moon" to count Uranus, Neptune and Pluto as well).
    """
    tt = tt_of(instant)
    return _void_of_course(tt, _sign_span(tt), bodies)


def _void_of_course(
    tt: float, span: tuple[float, float, int], bodies: Sequence[str]
) -> VoidOfCourse:
    unknown = set(bodies) - set(BODIES)
    if unknown:
        raise ValueError(f"unknown bodies {sorted(unknown)}; known: {', '.join(BODIES)}")
    entered, leaves, sign = span
    in_sign = lunar_aspects(entered, leaves, bodies)
    last = in_sign[-1] if in_sign else None
    start_tt = tt_of(last.instant) if last else entered
    return VoidOfCourse(
        is_void=start_tt <= tt,
        start=last.instant if last else datetime_of(entered),
        end=datetime_of(leaves),
        sign=SIGNS[sign],
        last_aspect=last,
        bodies=tuple(bodies),
    )


def moon_phase(instant: datetime) -> MoonPhase:
    """The Moon's place, phase and illumination at an instant.

    Raises:
        ValueError: a naive instant.
        OutOfEphemerisRange: an instant outside DE421's span.
    """
    return _moon_phase(instant, tt_of(instant))


def _moon_phase(instant: datetime, tt: float) -> MoonPhase:
    t = speed_times(tt)
    lat, lon, dist, speed = sample("moon", t)
    sun_lat, sun_lon, sun_dist, _ = sample("sun", t)
    moon_lon, moon_lat = normalize(float(lon[0])), float(lat[0])
    angle = normalize(moon_lon - float(sun_lon[0]))
    elongation = _angle_between(moon_lon, moon_lat, float(sun_lon[0]), float(sun_lat[0]))
    place = zodiac_place(moon_lon)
    return MoonPhase(
        instant=require_utc(instant),
        phase_angle=angle,
        waxing=angle < 180.0,
        phase_name=phase_name(angle),
        illumination=illuminated_fraction(elongation, float(dist[0]), float(sun_dist[0])),
        elongation=elongation,
        longitude=moon_lon,
        latitude=moon_lat,
        sign=place.sign,
        degree=place.degree,
        distance_km=float(dist[0]),
        speed=float(speed[0]),
    )


def moon_state(instant: datetime, void_bodies: Sequence[str] = VOID_OF_COURSE_BODIES) -> MoonState:
    """Everything about the Moon at an instant; the same for every user.

    Args:
        instant: an aware datetime within DE421's span (1899-2053, a month's margin).
        void_bodies: the bodies whose aspects end the Moon's course (default Sun … Saturn).

    Raises:
        ValueError: a naive instant or an unknown body.
        OutOfEphemerisRange: an instant (or the month after it) outside DE421's span.
    """
    tt = tt_of(instant)
    span = _sign_span(tt)
    _, leaves, sign = span
    return MoonState(
        phase=_moon_phase(instant, tt),
        next_phases=next_phases(tt),
        next_ingress=SignIngress(SIGNS[(sign + 1) % 12], datetime_of(leaves)),
        void_of_course=_void_of_course(tt, span, void_bodies),
    )


def _angle_between(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle angle between two ecliptic places, degrees (haversine: exact near 0°)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon1 - lon2)
    h = math.sin((p1 - p2) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def as_json(value: Any) -> Any:
    """A lunar result (dataclasses, dicts, tuples, datetimes) as native JSON values, datetimes
    as ISO-8601 UTC strings."""
    if hasattr(value, "__dataclass_fields__"):
        value = {name: getattr(value, name) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def moon_phases_between(start: datetime, end: datetime) -> list[tuple[str, datetime]]:
    """The Moon's quarters (new, first quarter, full, last quarter) in (start, end], in order.

    Raises:
        ValueError: naive instants or end not after start.
        OutOfEphemerisRange: a window outside DE421's span.
    """
    start_tt, end_tt = _between(start, end)
    f = almanac.moon_phases(ephemeris().kernel)
    found = changes(start_tt, end_tt, f.step_days, lambda jd: f(times(jd)))
    return [(QUARTERS[quarter], datetime_of(when)) for when, quarter in found]


def moon_ingresses_between(start: datetime, end: datetime) -> list[SignIngress]:
    """The Moon's entries into a new sign in (start, end], in order (found as roots, 1 ms)."""
    start_tt, end_tt = _between(start, end)
    found = changes(start_tt, end_tt, 0.25, _moon_sign_index)
    return [SignIngress(sign=SIGNS[sign], instant=datetime_of(when)) for when, sign in found]


def _between(start: datetime, end: datetime) -> tuple[float, float]:
    start_tt, end_tt = tt_of(start), tt_of(end)
    if end_tt <= start_tt:
        raise ValueError("the window's end must be after its start")
    return start_tt, end_tt
