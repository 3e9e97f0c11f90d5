"""A trace tree as a flat run of list tags, so a template can nest it without recursion.

A chain of thousands of events (each the parent of the next) would exceed Python's and
Jinja's recursion limits as a recursive macro; walking it with a stack here does not. Past
MAX_DEPTH the list stops indenting: deeper events are shown at that depth, in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from trackd.domain.timeline import TimelineNode
from trackd.store.repos.timeline import TimelineEntry

MAX_DEPTH = 24


@dataclass(frozen=True, slots=True)
class Tag:
    """The start of a list item (with its node) or of a list, or the end of one."""

    kind: str  # "item", "end-item", "list", "end-list"
    node: TimelineNode | None = None
    entry: TimelineEntry | None = None  # the node's event: its task and source


def tags(roots: Sequence[TimelineNode], entries: Sequence[TimelineEntry]) -> Iterator[Tag]:
    """The tags of nested `<ul>` lists holding every node once, children under parents."""
    by_id = {e.event_id: e for e in entries}
    yield Tag("list")
    # Each stack entry: the nodes still to show at a level, and whether it opened a list.
    stack: list[tuple[Iterator[TimelineNode], bool]] = [(iter(roots), False)]
    while stack:
        level, nested = stack[-1]
        node = next(level, None)
        if node is None:
            stack.pop()
            if nested:
                yield Tag("end-list")
                yield Tag("end-item")
            continue
        yield Tag("item", node, by_id.get(node.event_id))
        if node.children and len(stack) < MAX_DEPTH:
            yield Tag("list")
            stack.append((iter(node.children), True))
        else:
            yield Tag("end-item")
            if node.children:  # too deep to indent: the children follow as siblings
                stack.append((iter(node.children), False))
    yield Tag("end-list")
