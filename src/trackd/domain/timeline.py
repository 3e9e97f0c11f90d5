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
    every event exactly once. A parent chain that loops back on itself is broken at the event
    that closes the loop.
    """
    by_id = {e.event_id: e for e in events}
    roots: list[TimelineNode] = []
    for node in events:
        node.children = []
    for node in events:
        parent = by_id.get(node.parent_event_id) if node.parent_event_id else None
        if parent is None or parent is node or _descends(parent, node, by_id):
            roots.append(node)
        else:
            parent.children.append(node)
    return roots


def _descends(
    candidate: TimelineNode, ancestor: TimelineNode, by_id: dict[str, TimelineNode]
) -> bool:
    """Whether `candidate` sits below `ancestor` in the parent chain (a cycle if linked)."""
    seen = set()
    current: TimelineNode | None = candidate
    while current is not None and current.event_id not in seen:
        if current is ancestor:
            return True
        seen.add(current.event_id)
        current = by_id.get(current.parent_event_id) if current.parent_event_id else None
    return False
