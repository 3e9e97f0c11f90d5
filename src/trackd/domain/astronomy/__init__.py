"""Astronomy for trackd's cosmic tracking: pure computation on JPL's DE421, no network.

Everything leaving this package is a native Python value (float, str, bool, UTC datetime, and
frozen dataclasses, dicts and tuples of those), never a numpy or skyfield object. The
positions of the bodies are the same for everyone, so the API splits the work:
`planet_positions(t)` / `position_series(start, days)` once per instant or window, then
`aspects(positions, chart)` / `upcoming_exact(series, chart)` per chart.
"""

from __future__ import annotations

from trackd.domain.astronomy.aspects import (
    ASPECTS,
    DEFAULT_ORBS,
    EXACT_WITHIN,
    Aspect,
    aspect_between,
    aspects,
    check_orbs,
)
from trackd.domain.astronomy.ephemeris import BODIES, OutOfEphemerisRange
from trackd.domain.astronomy.lunar import (
    PHASE_NAMES,
    QUARTERS,
    VOID_OF_COURSE_BODIES,
    LunarAspect,
    MoonPhase,
    MoonState,
    SignIngress,
    VoidOfCourse,
    as_json,
    lunar_aspects,
    moon_ingresses_between,
    moon_phase,
    moon_phases_between,
    moon_state,
    void_of_course,
)
from trackd.domain.astronomy.many import AspectRow, aspects_many
from trackd.domain.astronomy.natal import ChartPoint, NatalChart, natal_chart
from trackd.domain.astronomy.positions import BodyPosition, Positions, planet_positions
from trackd.domain.astronomy.transits import (
    PLANETS,
    BodySeries,
    ExactAspect,
    PositionSeries,
    Station,
    position_series,
    stations,
    upcoming_exact,
)
from trackd.domain.astronomy.zodiac import SIGNS, ZodiacPlace, zodiac_place

__all__ = [
    "ASPECTS",
    "BODIES",
    "DEFAULT_ORBS",
    "EXACT_WITHIN",
    "PHASE_NAMES",
    "PLANETS",
    "QUARTERS",
    "SIGNS",
    "VOID_OF_COURSE_BODIES",
    "Aspect",
    "AspectRow",
    "BodyPosition",
    "BodySeries",
    "ChartPoint",
    "ExactAspect",
    "LunarAspect",
    "MoonPhase",
    "MoonState",
    "NatalChart",
    "OutOfEphemerisRange",
    "PositionSeries",
    "Positions",
    "SignIngress",
    "Station",
    "VoidOfCourse",
    "ZodiacPlace",
    "as_json",
    "aspect_between",
    "aspects",
    "aspects_many",
    "check_orbs",
    "lunar_aspects",
    "moon_ingresses_between",
    "moon_phase",
    "moon_phases_between",
    "moon_state",
    "natal_chart",
    "planet_positions",
    "position_series",
    "stations",
    "upcoming_exact",
    "void_of_course",
    "zodiac_place",
]
