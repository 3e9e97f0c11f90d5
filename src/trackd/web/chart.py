"""The metrics page's charts, laid out here and drawn as inline SVG by the template."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trackd.domain.metrics import DurationPoint
from trackd.reads.service import Outcomes

WIDTH = 640
LABEL_WIDTH = 180  # room for the agent's name left of its bar
ROW_HEIGHT = 24
BAR_HEIGHT = 16
MAX_LABEL_CHARS = 24


ENDED = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str  # the outcome: completed, failed or cancelled
    count: int
    x: float
    width: float


@dataclass(frozen=True, slots=True)
class Bar:
    """One agent's row: its ended tasks by outcome, stacked, scaled to the busiest agent."""

    agent_id: str
    label: str
    y: int
    segments: list[Segment]
    end: float  # x right of the bar, for its count

    @property
    def counts(self) -> str:
        return "/".join(str(s.count) for s in self.segments)


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]


def _label(agent_id: str) -> str:
    if len(agent_id) <= MAX_LABEL_CHARS:
        return agent_id
    return agent_id[: MAX_LABEL_CHARS - 1] + "…"


def ended_by_agent(agents: Sequence[Outcomes]) -> Chart:
    """Completed, failed and cancelled tasks per agent, stacked in that order."""
    room = WIDTH - LABEL_WIDTH - 72  # and room for the counts right of the bar
    busiest = max((sum(getattr(a, k) for k in ENDED) for a in agents), default=0)
    scale = room / busiest if busiest else 0.0
    bars = []
    for n, a in enumerate(a for a in agents if any(getattr(a, k) for k in ENDED)):
        x = float(LABEL_WIDTH)
        segments = []
        for kind in ENDED:
            width = round(getattr(a, kind) * scale, 1)
            segments.append(Segment(kind, getattr(a, kind), round(x, 1), width))
            x += width
        bars.append(Bar(a.agent_id, _label(a.agent_id), n * ROW_HEIGHT, segments, round(x, 1)))
    return Chart(WIDTH, max(1, len(bars)) * ROW_HEIGHT, LABEL_WIDTH, BAR_HEIGHT, bars)


LINE_WIDTH = 640
LINE_HEIGHT = 200
PAD_LEFT = 56  # room for the seconds on the y axis
PAD_BOTTOM = 24  # and for the times on the x axis
PAD_TOP = 10


@dataclass(frozen=True, slots=True)
class Line:
    """One series as SVG polyline points; a step with no task breaks it into segments."""

    name: str
    segments: list[str]  # each "x,y x,y ..."
    dots: list[tuple[float, float, str]]  # x, y and a title for each point


@dataclass(frozen=True, slots=True)
class LineChart:
    width: int
    height: int
    left: int
    bottom: int  # y of the x axis
    lines: list[Line]
    y_ticks: list[tuple[float, str]]  # y and label
    x_ticks: list[tuple[float, str]]  # x and label
    empty: bool


def _seconds_label(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def durations_over_time(points: Sequence[DurationPoint], time_format: str) -> LineChart:
    """p50 and p95 of task durations per step of the period, on one seconds axis from 0."""
    top = max((p.p95 or 0.0 for p in points), default=0.0)
    top = top * 1.1 if top > 0 else 1.0
    plot_w = LINE_WIDTH - PAD_LEFT - 8
    plot_h = LINE_HEIGHT - PAD_TOP - PAD_BOTTOM
    bottom = PAD_TOP + plot_h
    count = max(1, len(points) - 1)

    def xy(n: int, value: float) -> tuple[float, float]:
        return round(PAD_LEFT + plot_w * n / count, 1), round(bottom - plot_h * value / top, 1)

    lines = []
    for name in ("p50", "p95"):
        segments: list[list[str]] = [[]]
        dots = []
        for n, p in enumerate(points):
            value = getattr(p, name)
            if value is None:
                if segments[-1]:
                    segments.append([])
                continue
            x, y = xy(n, value)
            segments[-1].append(f"{x},{y}")
            label = f"{name} {_seconds_label(value)} of {p.count} tasks ending from "
            dots.append((x, y, label + p.start.strftime(time_format)))
        # A lone point draws no line (its dot shows it), so only runs of two or more are kept.
        lines.append(Line(name, [" ".join(s) for s in segments if len(s) > 1], dots))
    y_ticks = [(round(bottom - plot_h * f, 1), _seconds_label(top * f)) for f in (0, 0.5, 1)]
    every = max(1, len(points) // 4)
    x_ticks = [
        (xy(n, 0)[0], p.start.strftime(time_format)) for n, p in enumerate(points) if n % every == 0
    ]
    empty = all(p.count == 0 for p in points)
    return LineChart(LINE_WIDTH, LINE_HEIGHT, PAD_LEFT, bottom, lines, y_ticks, x_ticks, empty)
