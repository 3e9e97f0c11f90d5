"""PyEphem as the independent check of trackd's astronomy (its own VSOP87/ELP-based theories).

Both libraries are asked about the same instant of Terrestrial Time: for dates after today the
two predict the Earth's rotation (ΔT = TT - UT) differently (by 36 s at 2050), which moves the
Moon by up to 20″ at a given UTC without either ephemeris being wrong. That is a difference of
clocks, not of positions, so it is taken out here and the positions are compared as such.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

import ephem

from trackd.domain.astronomy.ephemeris import tt_of

BODIES = {
    "sun": ephem.Sun,
    "moon": ephem.Moon,
    "mercury": ephem.Mercury,
    "venus": ephem.Venus,
    "mars": ephem.Mars,
    "jupiter": ephem.Jupiter,
    "saturn": ephem.Saturn,
    "uranus": ephem.Uranus,
    "neptune": ephem.Neptune,
    "pluto": ephem.Pluto,
}
# ephem's dates count days from 1899-12-31 12:00, Julian date 2415020.
EPHEM_EPOCH_JD = 2415020.0


def ephem_date(instant: datetime) -> ephem.Date:
    """The ephem date (UT by ephem's ΔT) whose TT is the TT skyfield gives `instant`."""
    tt = tt_of(instant)
    ut = ephem.Date(tt - EPHEM_EPOCH_JD)
    # Two passes: ephem's ΔT barely changes within a minute.
    ut = ephem.Date(tt - EPHEM_EPOCH_JD - ephem.delta_t(ut) / 86_400)
    return ephem.Date(tt - EPHEM_EPOCH_JD - ephem.delta_t(ut) / 86_400)


def tt_seconds_of_ephem(date: float) -> float:
    """An ephem date as TT seconds since ephem's epoch (by ephem's own ΔT)."""
    return (date + ephem.delta_t(ephem.Date(date)) / 86_400) * 86_400


def tt_seconds_of(instant: datetime) -> float:
    """An instant as TT seconds since ephem's epoch (by skyfield's ΔT)."""
    return (tt_of(instant) - EPHEM_EPOCH_JD) * 86_400


def ephem_body(name: str, instant: datetime) -> ephem.Body:
    body = BODIES[name]()
    body.compute(ephem_date(instant))
    return body


def ephem_longitude(name: str, instant: datetime) -> float:
    """ephem's apparent geocentric ecliptic longitude of date at an instant, degrees."""
    return ephem_longitude_at(name, float(ephem_date(instant)))


def ephem_longitude_at(name: str, date: float) -> float:
    """The same at an ephem date (UT by ephem's ΔT)."""
    body = BODIES[name]()
    body.compute(ephem.Date(date))
    place = ephem.Ecliptic(ephem.Equatorial(body.g_ra, body.g_dec, epoch=date), epoch=date)
    return math.degrees(place.lon)


def arcseconds_apart(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0) * 3600.0


def assert_native(value: object, path: str = "result") -> None:
    """Fail unless a result holds only native values: no numpy or skyfield object leaks out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            assert_native(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, path
            assert_native(item, f"{path}[{key!r}]")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            assert_native(item, f"{path}[{index}]")
    elif isinstance(value, datetime):
        assert value.tzinfo is UTC, path
    else:
        assert type(value) in (str, float, int, bool, type(None)), (path, type(value))
