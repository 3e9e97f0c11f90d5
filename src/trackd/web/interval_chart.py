"""Estimates with intervals by category (a mean per level, an effect per lag): a dot and a
whisker per category, laid out here and drawn as inline SVG by `_interval_chart.html`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trackd.web.line_chart import Tick, value_range

WIDTH = 640
HEIGHT = 240
LEFT = 56
RIGHT = 12
TOP = 12
BOTTOM = 40  # room for two lines of category labels
CHARS_PER_PX = 1 / 7  # about 7 px a character at the charts' 12 px


@dataclass(frozen=True, slots=True)
class Estimate:
    """One category's estimate; `value` None when there is none (the slot stays, empty)."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class Whisker:
    x: float
    y: float
    low: float | None  # y of the interval's ends, None without an interval
    high: float | None
    title: str
    marked: bool


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    lines: list[str]


@dataclass(frozen=True, slots=True)
class IntervalChart:
    width: int
    height: int
    left: int
    right: int
    bottom: int
    points: list[Whisker]
    labels: list[Label]
    y_ticks: list[Tick]
    zero: float | None  # y of the zero line when 0 is on the axis


def _fit(label: str, room: float) -> list[str]:
    """The label in at most two lines of the room it has (words cut to fit)."""
    most = max(3, int(room * CHARS_PER_PX))
    words = label.split()
    lines = [" ".join(words[:1]), " ".join(words[1:])] if len(label) > most else [label]
    return [w if len(w) <= most else w[: most - 1] + "." for w in lines if w]


def intervals(
    estimates: Sequence[Estimate],
    *,
    marked: int | None = None,
    zero_line: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> IntervalChart | None:
    """One slot per estimate, left to right; `marked` is the index of the one to mark (the
    reported lag); `zero_line` keeps 0 on the axis and draws it. None without any value."""
    values = [v for e in estimates for v in (e.value, e.low, e.high) if v is not None]
    if not values:
        return None
    low, high, step = value_range([*values, 0.0] if zero_line else values)
    bottom = height - BOTTOM
    slot = (width - LEFT - RIGHT) / len(estimates)

    def y(value: float) -> float:
        return round(bottom - (value - low) / (high - low) * (bottom - TOP), 1)

    points, labels = [], []
    for n, e in enumerate(estimates):
        x = round(LEFT + slot * (n + 0.5), 1)
        labels.append(Label(x, _fit(e.label, slot)))
        if e.value is None:
            continue
        has_ends = e.low is not None and e.high is not None
        points.append(
            Whisker(
                x,
                y(e.value),
                y(e.low) if e.low is not None and has_ends else None,
                y(e.high) if e.high is not None and has_ends else None,
                e.title or e.label,
                n == marked,
            )
        )
    y_ticks = [
        Tick(y(low + k * step), f"{low + k * step:g}")
        for k in range(round((high - low) / step) + 1)
    ]
    zero = y(0.0) if zero_line and low <= 0 <= high else None
    return IntervalChart(width, height, LEFT, width - RIGHT, bottom, points, labels, y_ticks, zero)
