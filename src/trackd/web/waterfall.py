"""A plan's trace as a waterfall: one row per task (a bar from its start to its end, a tick per
event) and per plan event (a point), nested by parent task, in the order things started.

Positions are in 0..WIDTH units of the plan's time span, drawn by the template as SVG
attributes (the pages' CSP forbids inline styles). Indentation stops at MAX_INDENT levels, so
a long chain of tasks each started by the one before is a column, not a staircase.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from trackd.store.models import AnomalyRow
from trackd.store.repos.tasks import TaskListRow
from trackd.store.repos.timeline import TimelineEntry

WIDTH = 1000
MAX_INDENT = 4


@dataclass(slots=True)
class Row:
    """One line of the waterfall: a task, or an event that belongs to no task."""

    depth: int  # indentation, at most MAX_INDENT
    start: datetime
    end: datetime | None  # None: a point (an event, or a task cancelled before it ran)
    x: float
    width: float
    task: TaskListRow | None = None
    entry: TimelineEntry | None = None
    open: bool = False  # a task that has not ended: its bar runs to the end of the span
    ticks: list[float] = field(default_factory=list)  # the task's events
    anomalies: list[AnomalyRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Waterfall:
    rows: list[Row]
    start: datetime | None
    seconds: float  # the span's length


def build(
    tasks: Sequence[TaskListRow],
    events: Sequence[TimelineEntry],
    anomalies: Sequence[AnomalyRow],
    as_of: datetime | None,
) -> Waterfall:
    """Lay out a plan's tasks and events; `as_of` is where open tasks' bars end."""
    by_task: dict[str, list[TimelineEntry]] = defaultdict(list)
    task_of_event: dict[str, str] = {}
    for e in events:
        if e.task_id:
            by_task[e.task_id].append(e)
            task_of_event[e.event_id] = e.task_id
    times = [e.occurred_at for e in events]
    times += [t.ran_from for t in tasks if t.ran_from] + [t.last_event_at for t in tasks]
    if as_of is not None and any(not t.completed_at for t in tasks):
        times.append(as_of)
    if not times:
        return Waterfall([], None, 0.0)
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 0.001)

    def at(moment: datetime) -> float:
        return round((moment - t0).total_seconds() / span * WIDTH, 1)

    rows: dict[str, Row] = {}
    for t in tasks:
        mine = by_task.get(t.task_id, [])
        first = min(
            [e.occurred_at for e in mine] + ([t.ran_from] if t.ran_from else []), default=None
        )
        start = t.ran_from or first or t.last_event_at
        end = t.completed_at if t.completed_at else (t1 if as_of else t.last_event_at)
        point = t.ran_from is None and t.completed_at is not None
        row = Row(0, start, None if point else end, at(start), 0.0, task=t, open=not t.completed_at)
        if point:
            row.start, row.x = t.completed_at or start, at(t.completed_at or start)
        else:
            row.width = max(at(end) - row.x, 0.0)
        row.ticks = [at(e.occurred_at) for e in mine]
        rows[t.task_id] = row
    for a in anomalies:
        if a.task_id in rows:
            rows[a.task_id].anomalies.append(a)

    children: dict[str | None, list[Row]] = defaultdict(list)
    for t in tasks:
        parent = task_of_event.get(t.parent_event_id or "")
        children[parent if parent in rows and parent != t.task_id else None].append(rows[t.task_id])
    for e in events:
        if not e.task_id:
            children[None].append(Row(0, e.occurred_at, None, at(e.occurred_at), 0.0, entry=e))

    ordered: list[Row] = []
    placed: set[int] = set()
    # Depth first with a stack (a chain of thousands of tasks must not recurse), siblings
    # in the order they started; a loop of parent links cannot place a row twice.
    stack = [(r, 0) for r in sorted(children[None], key=_when, reverse=True)]
    while stack:
        row, depth = stack.pop()
        if id(row) in placed:
            continue
        placed.add(id(row))
        row.depth = min(depth, MAX_INDENT)
        ordered.append(row)
        if row.task is not None:
            below = sorted(children.get(row.task.task_id, []), key=_when, reverse=True)
            stack.extend((r, depth + 1) for r in below)
    # Tasks whose parents form a loop are reachable from no root: shown at the top level.
    ordered += sorted((r for r in rows.values() if id(r) not in placed), key=_when)
    return Waterfall(ordered, t0, span)


def _when(row: Row) -> tuple[datetime, str]:
    name = row.task.task_id if row.task else (row.entry.event_id if row.entry else "")
    return (row.start, name)


def offset(start: datetime | None, moment: datetime | None) -> timedelta | None:
    """How long after the plan's first moment something happened."""
    if start is None or moment is None:
        return None
    return moment - start
