"""The metrics page's bar chart, laid out here and drawn as inline SVG by the template."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trackd.domain.metrics import AgentMetrics

WIDTH = 640
LABEL_WIDTH = 180  # room for the agent's name left of its bar
ROW_HEIGHT = 24
BAR_HEIGHT = 16
MAX_LABEL_CHARS = 24


@dataclass(frozen=True, slots=True)
class Bar:
    """One agent's row: completed then failed tasks, stacked, scaled to the busiest agent."""

    agent_id: str
    label: str
    y: int
    completed: int
    failed: int
    completed_width: float
    failed_width: float


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


def completed_vs_failed(agents: Sequence[AgentMetrics]) -> Chart:
    """Completed and failed tasks per agent; cancelled ones are in the table, not the bars."""
    room = WIDTH - LABEL_WIDTH - 48  # and room for the count right of the bar
    busiest = max((a.completed_tasks + a.failed_tasks for a in agents), default=0)
    scale = room / busiest if busiest else 0.0
    bars = [
        Bar(
            a.agent_id,
            _label(a.agent_id),
            n * ROW_HEIGHT,
            a.completed_tasks,
            a.failed_tasks,
            round(a.completed_tasks * scale, 1),
            round(a.failed_tasks * scale, 1),
        )
        for n, a in enumerate(agents)
    ]
    return Chart(WIDTH, max(1, len(bars)) * ROW_HEIGHT, LABEL_WIDTH, BAR_HEIGHT, bars)
