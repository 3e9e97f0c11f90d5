"""Transits: stations of the planets, and the exact instants of their aspects to a chart.

The expensive part, where the bodies are, is computed once for everyone: `stations` and
`position_series` sample the ephemeris for a window. Per chart, `upcoming_exact` only
interpolates that shared series (cubic Hermite on longitude and speed, exact to ~1e-5° at the
default half-day step) and solves for the crossings with a few Newton steps on arrays, so a
chart costs about a millisecond however many users share the series.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from trackd.domain.astronomy.aspects import ASPECT_TURNS, ASPECTS
from trackd.domain.astronomy.ephemeris import (
    BODIES,
    check_span,
    datetime_of,
    require_utc,
    sample,
    speed_times,
    tt_of,
)
from trackd.domain.astronomy.search import changes
from trackd.domain.astronomy.zodiac import normalize, zodiac_place

# The bodies that can turn retrograde (seen from the Earth, the Sun and Moon never do).
PLANETS: tuple[str, ...] = tuple(b for b in BODIES if b not in ("sun", "moon"))
# Mercury's shortest retrograde or direct run is about three weeks: a 2-day grid sees each.
_STATION_STEP_DAYS = 2.0
_NEWTON_STEPS = 6


@dataclass(frozen=True, slots=True)
class Station:
    """A planet standing still in longitude before it turns.

    Attributes:
        body: "mercury" … "pluto".
        kind: "retrograde" (it turns backwards) or "direct" (it resumes forwards).
        instant: when its speed in longitude is zero (UTC, to within 1 ms of the root).
        longitude: where it stands, degrees.
        sign: tropical sign there.
        degree: degrees into that sign.
    """

    body: str
    kind: str
    instant: datetime
    longitude: float
    sign: str
    degree: float


@dataclass(frozen=True, slots=True)
class ExactAspect:
    """The instant a transiting body makes an aspect to a chart point exactly.

    Attributes:
        instant: when the separation equals the aspect's angle (UTC).
        transiting: the moving body.
        natal: the chart point.
        aspect: "conjunction" … "opposition".
        angle: the aspect's angle in degrees.
        longitude: the transiting body's longitude then, degrees.
        retrograde: the body is moving backwards then.
    """

    instant: datetime
    transiting: str
    natal: str
    aspect: str
    angle: float
    longitude: float
    retrograde: bool


@dataclass(frozen=True, slots=True)
class BodySeries:
    """One body sampled over a window.

    Attributes:
        tt: sample instants (TT Julian dates): a regular grid plus the body's stations, so
            that the longitude is monotonic between two neighbours.
        longitudes: longitudes in degrees, unwrapped (continuous past 360).
        speeds: degrees per day.
    """

    tt: tuple[float, ...]
    longitudes: tuple[float, ...]
    speeds: tuple[float, ...]


@dataclass(frozen=True)
class PositionSeries:
    """Where the bodies are over a window, sampled once and shared by every chart.

    Build it with `position_series`. Its fields are native values (it can be pickled or sent
    between processes); arrays for the arithmetic are made from them once per process.

    Attributes:
        start: start of the window (UTC).
        end: end of the window (UTC).
        bodies: body → samples.
        stations: the stations of the planets in the window, in time order.
    """

    start: datetime
    end: datetime
    bodies: dict[str, BodySeries]
    stations: tuple[Station, ...]

    @functools.cached_property
    def _arrays(self) -> tuple[list[str], Any, Any, Any, Any, Any]:
        """All bodies' samples end to end, so that a chart is one set of array operations.

        Returns:
            body names, the index of each sample's body, tt, longitudes, speeds, and the
            indexes of the intervals that lie within one body's samples.
        """
        names = list(self.bodies)
        owner = np.concatenate([np.full(len(s.tt), i) for i, s in enumerate(self.bodies.values())])
        tt = np.concatenate([np.array(s.tt) for s in self.bodies.values()])
        lon = np.concatenate([np.array(s.longitudes) for s in self.bodies.values()])
        speed = np.concatenate([np.array(s.speeds) for s in self.bodies.values()])
        within = np.flatnonzero(owner[:-1] == owner[1:])
        return names, owner, tt, lon, speed, within

    @functools.cached_property
    def _start_tt(self) -> float:
        return tt_of(self.start)

    @functools.cached_property
    def _uniform_utc(self) -> bool:
        # TT and UTC run at the same rate unless a leap second falls in the window.
        end_tt = tt_of(self.end)
        linear = self.start + timedelta(days=end_tt - self._start_tt)
        return abs((linear - self.end).total_seconds()) < 1e-3

    def utc(self, tt: float) -> datetime:
        """The UTC datetime of a TT Julian date in the window.

        Offsetting from the start is exact when no leap second falls in the window and far
        cheaper than a calendar conversion per event.
        """
        if self._uniform_utc:
            return self.start + timedelta(days=tt - self._start_tt)
        return datetime_of(tt)


def _speed_sign(body: str) -> Any:
    def retrograde(jd: Any) -> Any:
        _, _, _, speed = sample(body, speed_times(jd))
        return (speed < 0).astype(np.int64)

    return retrograde


def _stations(start_tt: float, end_tt: float, bodies: Iterable[str]) -> list[tuple[float, str]]:
    found: list[tuple[float, str]] = []
    for body in bodies:
        if body not in PLANETS:
            raise ValueError(f"{body!r} has no stations; planets: {', '.join(PLANETS)}")
        found += [
            (tt, body) for tt, _ in changes(start_tt, end_tt, _STATION_STEP_DAYS, _speed_sign(body))
        ]
    found.sort()
    return found


def stations(start: datetime, end: datetime, bodies: Iterable[str] = PLANETS) -> list[Station]:
    """The stations of the planets between two instants, found as roots of their speed.

    Args:
        start: aware datetime.
        end: aware datetime after start.
        bodies: planets to look at (default Mercury … Pluto).

    Raises:
        ValueError: naive instants, end before start, or a body that has no stations.
        OutOfEphemerisRange: a window outside DE421's span.
    """
    start_tt, end_tt = _window(start, end)
    return _describe(_stations(start_tt, end_tt, bodies))


def _describe(found: Sequence[tuple[float, str]]) -> list[Station]:
    out = []
    for tt, body in found:
        _, lon, _, _ = sample(body, speed_times(tt))
        # Just after the root the speed has the sign the planet turns to.
        _, _, _, after = sample(body, speed_times(tt + 0.01))
        place = zodiac_place(float(lon[0]))
        out.append(
            Station(
                body=body,
                kind="retrograde" if after[0] < 0 else "direct",
                instant=datetime_of(tt),
                longitude=normalize(float(lon[0])),
                sign=place.sign,
                degree=place.degree,
            )
        )
    return out


def _window(start: datetime, end: datetime) -> tuple[float, float]:
    start_tt, end_tt = tt_of(start), tt_of(end)
    if end_tt <= start_tt:
        raise ValueError("the window's end must be after its start")
    check_span(start_tt, end_tt)
    return start_tt, end_tt


def position_series(
    start: datetime,
    days: float,
    bodies: Sequence[str] = BODIES,
    step_days: float = 0.5,
) -> PositionSeries:
    """Sample the bodies over a window, once, for every chart's `upcoming_exact`.

    Args:
        start: aware datetime.
        days: length of the window in days (> 0).
        bodies: the transiting bodies (default the Sun, the Moon and Mercury … Pluto).
        step_days: grid step; half a day keeps the Moon's interpolated longitude within
            ~1e-5° of the ephemeris.

    Raises:
        ValueError: a naive start, a window or step that is not positive, an unknown body.
        OutOfEphemerisRange: a window outside DE421's span.
    """
    if not days > 0 or not 0 < step_days <= 1.0:
        raise ValueError("days must be positive and step_days in (0, 1]")
    start = require_utc(start)
    start_tt, end_tt = _window(start, start + timedelta(days=days))
    grid = np.linspace(start_tt, end_tt, int(np.ceil((end_tt - start_tt) / step_days)) + 1)
    found = _stations(start_tt, end_tt, [b for b in bodies if b in PLANETS])
    # One Time for the grid, shared by every body: its nutation is most of the cost.
    on_grid = speed_times(grid)
    series: dict[str, BodySeries] = {}
    for body in bodies:
        _, lon, _, speed = sample(body, on_grid)
        tt = grid
        turns = np.array([when for when, b in found if b == body])
        if len(turns):
            _, turn_lon, _, turn_speed = sample(body, speed_times(turns))
            order = np.argsort(np.concatenate([grid, turns]), kind="stable")
            tt = np.concatenate([grid, turns])[order]
            lon = np.concatenate([lon, turn_lon])[order]
            speed = np.concatenate([speed, turn_speed])[order]
        series[body] = BodySeries(
            tt=tuple(float(v) for v in tt),
            longitudes=tuple(float(v) for v in np.unwrap(lon, period=360.0)),
            speeds=tuple(float(v) for v in speed),
        )
    return PositionSeries(
        start=start,
        end=datetime_of(end_tt),
        bodies=series,
        stations=tuple(_describe(found)),
    )


def _targets(
    natal: Mapping[str, float], aspects: Iterable[str]
) -> tuple[Any, list[str], list[tuple[str, float]]]:
    """Longitudes at which an aspect is exact, point-major: target k is point k // len(turns)
    with turn k % len(turns). Returns the targets, the point names and (aspect, angle) per turn.
    """
    wanted = set(aspects)
    turns = [(turn, name) for turn, name in ASPECT_TURNS.items() if name in wanted]
    points = list(natal)
    longitudes = np.array([natal[p] for p in points], dtype=float)
    offsets = np.array([turn for turn, _ in turns], dtype=float)
    targets = ((longitudes[:, None] + offsets[None, :]) % 360.0).ravel()
    return targets, points, [(name, ASPECTS[name]) for _, name in turns]


def upcoming_exact(
    series: PositionSeries,
    natal: Mapping[str, float],
    aspects: Iterable[str] = tuple(ASPECTS),
) -> list[ExactAspect]:
    """The instants in the series' window at which its bodies aspect the chart's points exactly.

    Crossings are bracketed on the shared samples (a sign change of the body's longitude minus
    the target, per interval) and refined by Newton's method on the cubic Hermite interpolant
    of longitude and speed; no ephemeris call is made per chart.

    Args:
        series: `position_series(...)`, shared by every chart.
        natal: chart point → longitude in degrees (`NatalChart.longitudes()`).
        aspects: which aspects to look for (default all five).

    Returns:
        The exact aspects in time order.
    """
    names = list(aspects)
    unknown = set(names) - set(ASPECTS)
    if unknown:
        raise ValueError(f"unknown aspects {sorted(unknown)}; known: {', '.join(ASPECTS)}")
    targets, points, turns = _targets(natal, names)
    if not len(targets) or not series.bodies:
        return []
    bodies, owner, tt, lon, speed, within = series._arrays
    # A body crosses target τ between two samples when some τ + 360k lies in (low, high] of
    # their longitudes. Targets sorted over two turns, searched from each interval's turn.
    y0, y1 = lon[within], lon[within + 1]
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    base = np.floor(low / 360.0) * 360.0
    order = np.argsort(targets)
    ladder = np.concatenate([targets[order], targets[order] + 360.0])
    ladder_target = np.concatenate([order, order])
    first = np.searchsorted(ladder, low - base, side="right")
    counts = np.searchsorted(ladder, high - base, side="right") - first
    total = int(counts.sum())
    if not total:
        return []
    row = np.repeat(np.arange(len(within)), counts)
    # Position of each crossing within its interval's run of targets.
    step = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rung = first[row] + step
    interval = within[row]
    target = ladder_target[rung]
    value = ladder[rung] + base[row]
    roots, rates = _solve_hermite(tt, lon, speed, interval, value)
    found: list[ExactAspect] = []
    for body, when, idx, v, rate in zip(
        owner[interval].tolist(),
        roots.tolist(),
        target.tolist(),
        value.tolist(),
        rates.tolist(),
        strict=True,
    ):
        name, angle = turns[idx % len(turns)]
        point = points[idx // len(turns)]
        found.append(
            ExactAspect(
                instant=series.utc(when),
                transiting=bodies[body],
                natal=point,
                aspect=name,
                angle=angle,
                longitude=normalize(v),
                retrograde=rate < 0,
            )
        )
    found.sort(key=lambda e: e.instant)
    return found


def _solve_hermite(tt: Any, lon: Any, speed: Any, interval: Any, value: Any) -> tuple[Any, Any]:
    """Where the cubic Hermite interpolant reaches `value` in each interval, and its rate.

    Args:
        tt: sample instants.
        lon: longitudes at the samples.
        speed: their rates per day.
        interval: index of each interval's first sample.
        value: the longitude to reach in each interval.
    """
    t0 = tt[interval]
    h = tt[interval + 1] - t0
    y0, y1 = lon[interval], lon[interval + 1]
    m0, m1 = speed[interval] * h, speed[interval + 1] * h
    # The interpolant minus the value as a cubic in s ∈ [0, 1]: a s³ + b s² + m0 s + c.
    a = 2 * (y0 - y1) + m0 + m1
    b = 3 * (y1 - y0) - 2 * m0 - m1
    c = y0 - value
    # Start from the chord, then Newton; the interpolant is monotonic in the interval.
    s = np.minimum(np.maximum(-c / np.where(y1 != y0, y1 - y0, 1.0), 0.0), 1.0)
    for _ in range(_NEWTON_STEPS):
        f = ((a * s + b) * s + m0) * s + c
        df = (3 * a * s + 2 * b) * s + m0
        s = np.minimum(np.maximum(s - f / np.where(df != 0, df, 1.0), 0.0), 1.0)
    rate = ((3 * a * s + 2 * b) * s + m0) / h
    return t0 + s * h, rate
