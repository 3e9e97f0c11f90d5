"""Line charts over time (a tracker's ratings), laid out here and drawn as inline SVG by the
template, like the metrics page's bars: no script, nothing fetched, readable without CSS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH = 640
HEIGHT = 260
LEFT = 56  # room for the value labels
RIGHT = 24  # half a time label right of the last point
TOP = 12
BOTTOM = 28  # room for the time labels
X_TICKS = 4
Y_TICKS = 5


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its name and its values over time, in any order."""

    label: str
    points: Sequence[tuple[datetime, float]]


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    index: int  # which of the chart's colours
    points: str  # the polyline's "x,y x,y …"
    dots: list[Dot]


@dataclass(frozen=True, slots=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True, slots=True)
class LineChart:
    width: int
    height: int
    left: int
    top: int
    right: float
    bottom: float
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]


def nice_step(span: float, ticks: int) -> float:
    """A round step (1, 2 or 5 times a power of ten) that cuts `span` into about `ticks`."""
    raw = span / max(1, ticks)
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10


def value_range(values: Sequence[float]) -> tuple[float, float, float]:
    """A value axis around `values`: its low and high ends on round steps, and the step."""
    low, high = min(values), max(values)
    if high == low:  # one value: centre it in a band around it
        low, high = low - 1, high + 1
    step = nice_step(high - low, Y_TICKS)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _time_label(moment: datetime, span: timedelta) -> str:
    return moment.strftime("%H:%M" if span < timedelta(days=2) else "%Y-%m-%d")


def _value_label(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def lines_over_time(
    series: Sequence[Series],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    between: tuple[datetime, datetime] | None = None,
) -> LineChart | None:
    """Lay out `series` on one time axis and one value axis; None when there is no point.

    `between` fixes the time axis (first, last) so that charts drawn one above the other share
    it; by default it runs from the first point to the last.
    """
    everything = [p for s in series for p in s.points]
    if not everything:
        return None
    right, bottom = width - RIGHT, height - BOTTOM
    first = between[0] if between else min(t for t, _ in everything)
    last = between[1] if between else max(t for t, _ in everything)
    span = last - first
    low, high, step = value_range([v for _, v in everything])

    def x(moment: datetime) -> float:
        if span.total_seconds() == 0:  # a single moment sits in the middle
            return round((LEFT + right) / 2, 1)
        share = (moment - first).total_seconds() / span.total_seconds()
        return round(LEFT + share * (right - LEFT), 1)

    def y(value: float) -> float:
        return round(bottom - (value - low) / (high - low) * (bottom - TOP), 1)

    lines = []
    for index, s in enumerate(series):
        ordered = sorted(s.points)
        dots = [
            Dot(x(t), y(v), f"{s.label} {_value_label(v)} at {t:%Y-%m-%d %H:%M}Z")
            for t, v in ordered
        ]
        lines.append(Line(s.label, index, " ".join(f"{d.x},{d.y}" for d in dots), dots))
    y_ticks = [
        Tick(y(low + n * step), _value_label(low + n * step))
        for n in range(round((high - low) / step) + 1)
    ]
    moments = (
        [first]
        if span.total_seconds() == 0
        else [first + span * n / X_TICKS for n in range(X_TICKS + 1)]
    )
    x_ticks = [Tick(x(m), _time_label(m, span)) for m in moments]
    return LineChart(width, height, LEFT, TOP, right, bottom, lines, x_ticks, y_ticks)
