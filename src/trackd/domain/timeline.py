"""The trace tree of a timeline: events nested under their parent event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

MAX_TREE_DEPTH: Final = 64
"""Levels of nesting in a trace tree. Deeper chains go on as new roots (each keeps its
`parent_event_id`): JSON encoders and the clients' decoders refuse deeply nested documents
(orjson at 255 levels, two per tree level), and a chain of thousands of events would be
one unreadable staircase anyway."""


@dataclass(slots=True)
class TimelineNode:
    event_id: str
    event_type: str
    timestamp: datetime
    parent_event_id: str | None
    children: list[TimelineNode] = field(default_factory=list)


def build_tree(
    events: Sequence[TimelineNode], max_depth: int = MAX_TREE_DEPTH
) -> list[TimelineNode]:
    """Nest events under their parents, in the given (time) order.

    An event whose parent is not among `events` is a root, so a partial timeline still shows
    every event exactly once. Events whose parent links go round in a loop are roots too
    (what hangs below them stays nested), so a malformed trace never hides an event. An
    event more than `max_depth` levels down starts a new root, so the tree is never nested
    deeper than that. Linear in the number of events, however long the parent chains.
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
    return _cap_depth(events, roots, max_depth)


def _cap_depth(
    events: Sequence[TimelineNode], roots: list[TimelineNode], max_depth: int
) -> list[TimelineNode]:
    """Cut the tree below `max_depth` levels; what was cut off becomes roots (time order)."""
    cut: set[int] = set()  # id() of the nodes that now start a root
    stack = [(root, 1) for root in roots]
    while stack:
        node, depth = stack.pop()
        if depth >= max_depth and node.children:
            cut.update(id(child) for child in node.children)
            stack.extend((child, 1) for child in node.children)
            node.children = []
        else:
            stack.extend((child, depth + 1) for child in node.children)
    if not cut:
        return roots
    rooted = {id(root) for root in roots} | cut
    return [node for node in events if id(node) in rooted]


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
