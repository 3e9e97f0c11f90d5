"""The trace tree of a timeline: events nested under their parent event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class TimelineNode:
    event_id: str
    event_type: str
    timestamp: datetime
    parent_event_id: str | None
    children: list[TimelineNode] = field(default_factory=list)


def build_tree(events: Sequence[TimelineNode]) -> list[TimelineNode]:
    """Nest events under their parents, in the given (time) order.

    An event whose parent is not among `events` is a root, so a partial timeline still shows
    every event exactly once. Events whose parent links go round in a loop are roots too
    (what hangs below them stays nested), so a malformed trace never hides an event.
    Linear in the number of events, however long the parent chains.
    """
    by_id = {e.event_id: e for e in events}
    looped = _on_loops(by_id)
    roots: list[TimelineNode] = []
    for node in events:
        node.children = []
    for node in events:
        parent = by_id.get(node.parent_event_id) if node.parent_event_id else None
        if parent is None or node.event_id in looped:
            roots.append(node)
        else:
            parent.children.append(node)
    return roots


def _on_loops(by_id: dict[str, TimelineNode]) -> set[str]:
    """The ids of events on a loop of parent links (one parent each: every walk up ends at a
    root, at an event seen by an earlier walk, or back on itself)."""
    finished: set[str] = set()
    looped: set[str] = set()
    for start in by_id:
        path: dict[str, int] = {}  # this walk's events, in order
        current: str | None = start
        while current is not None and current not in finished and current not in path:
            path[current] = len(path)
            parent = by_id[current].parent_event_id
            current = parent if parent in by_id else None
        if current is not None and current in path:
            looped.update(list(path)[path[current] :])
        finished.update(path)
    return looped
