"""The dependency graph of a tenant's open tasks: prerequisites (`depends_on`) and parents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.jobs import Prerequisite
from trackd.domain.states import TaskState
from trackd.jobs.crud import BaseTaskTrackingCRUD
from trackd.jobs.models import BaseTaskTracking

# Prerequisites and parent of each open task, by id.
Graph = dict[int, tuple[list[int], int | None]]

_SCAN_PAGE = 500


async def open_graph(db: AsyncSession, crud: BaseTaskTrackingCRUD[Any]) -> Graph:
    """Prerequisites and parent of every open task of the crud's tenant, by id.

    Dependencies live in JSON, which each backend searches differently; the open tasks
    are few next to the finished ones, so they are read in pages and searched here.
    """
    graph: Graph = {}
    after = 0
    while True:
        page = await crud.get_open_after(db, after, limit=_SCAN_PAGE)
        for row in page:
            graph[row.id] = (row.depends_on, row.parent_id)
        if len(page) < _SCAN_PAGE:
            return graph
        after = page[-1].id


def referenced(graph: Graph) -> set[int]:
    """Tasks that an open task depends on or is a child of."""
    out: set[int] = set()
    for deps, parent in graph.values():
        out.update(deps)
        if parent is not None:
            out.add(parent)
    return out


def reachable(graph: Graph, root: int, *, via_children: bool) -> list[int]:
    """Open tasks that depend on `root`, directly or through others (and its descendants
    when `via_children`), in the order they are reached."""
    dependents: dict[int, list[int]] = {}
    for task_id, (deps, parent) in graph.items():
        for d in deps:
            dependents.setdefault(d, []).append(task_id)
        if via_children and parent is not None:
            dependents.setdefault(parent, []).append(task_id)
    seen = {root}
    order: list[int] = []
    frontier = [root]
    while frontier:
        nxt: list[int] = []
        for node in frontier:
            for child in sorted(dependents.get(node, ())):
                if child not in seen:
                    seen.add(child)
                    order.append(child)
                    nxt.append(child)
        frontier = nxt
    return order


def prerequisite_facts(
    ids: Iterable[int], found: Mapping[int, BaseTaskTracking]
) -> list[Prerequisite]:
    """The domain's view of prerequisites `ids`, as far as `found` has them."""
    out = []
    for task_id in ids:
        row = found.get(task_id)
        if row is None:
            out.append(Prerequisite(task_id, None))
        else:
            out.append(Prerequisite(task_id, TaskState(row.status), row.error_message))
    return out
