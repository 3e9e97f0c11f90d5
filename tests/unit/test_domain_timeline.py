from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from trackd.domain.timeline import MAX_TREE_DEPTH, TimelineNode, build_tree

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def _nodes(parents: list[str | None]) -> list[TimelineNode]:
    return [TimelineNode(f"e{i}", "t", T0, parent) for i, parent in enumerate(parents)]


def _shape(nodes: list[TimelineNode]) -> dict[str, list[str]]:
    return {n.event_id: [c.event_id for c in n.children] for n in nodes}


def test_children_nest_under_their_parents_in_order() -> None:
    nodes = _nodes([None, "e0", "e0", "e1"])
    roots = build_tree(nodes)
    assert [r.event_id for r in roots] == ["e0"]
    assert _shape(nodes) == {"e0": ["e1", "e2"], "e1": ["e3"], "e2": [], "e3": []}


def test_an_event_whose_parent_is_missing_is_a_root() -> None:
    roots = build_tree(_nodes(["elsewhere", "e0"]))
    assert [r.event_id for r in roots] == ["e0"]


def test_a_loop_of_parents_is_broken_and_what_hangs_below_stays_nested() -> None:
    # e0 -> e1 -> e0 loop; e2 hangs below e1; e3 is its own parent.
    nodes = _nodes(["e1", "e0", "e1", "e3"])
    roots = build_tree(nodes)
    assert [r.event_id for r in roots] == ["e0", "e1", "e3"]
    assert _shape(nodes)["e1"] == ["e2"]


def _depth(roots: list[TimelineNode]) -> int:
    deepest, stack = 0, [(r, 1) for r in roots]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in node.children)
    return deepest


def test_a_long_chain_is_nested_to_the_depth_limit_then_goes_on_as_new_roots() -> None:
    n = 20_000
    nodes = _nodes([None] + [f"e{i}" for i in range(n - 1)])
    roots = build_tree(nodes)
    assert _depth(roots) == MAX_TREE_DEPTH
    # Each cut-off part starts where the one before it ended, in time order, and keeps its
    # parent link, so a reader can join the parts again.
    assert [r.event_id for r in roots] == [f"e{i}" for i in range(0, n, MAX_TREE_DEPTH)]
    assert all(r.parent_event_id == f"e{int(r.event_id[1:]) - 1}" for r in roots[1:])


def test_a_tree_within_the_limit_is_not_cut() -> None:
    nodes = _nodes([None] + [f"e{i}" for i in range(4)] + ["e0"])
    roots = build_tree(nodes, max_depth=5)
    assert [r.event_id for r in roots] == ["e0"]
    assert _depth(roots) == 5


def _loops_by_walking(nodes: list[TimelineNode]) -> set[str]:
    """The definition, slowly: an event is on a loop if walking up from it comes back."""
    by_id = {n.event_id: n for n in nodes}
    out = set()
    for n in nodes:
        seen: set[str] = set()
        current = n.parent_event_id
        while current in by_id and current not in seen:
            if current == n.event_id:
                out.add(n.event_id)
                break
            seen.add(current)
            current = by_id[current].parent_event_id
    return out


@given(st.lists(st.one_of(st.none(), st.integers(0, 30)), min_size=1, max_size=30))
def test_every_event_appears_once_and_only_looped_or_orphaned_ones_are_roots(
    parents: list[int | None],
) -> None:
    nodes = _nodes([None if p is None else f"e{p}" for p in parents])
    roots = build_tree(nodes)
    seen: list[str] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        seen.append(node.event_id)
        stack.extend(node.children)
    assert sorted(seen) == sorted(n.event_id for n in nodes)
    ids = {n.event_id for n in nodes}
    expected_roots = {
        n.event_id for n in nodes if n.parent_event_id not in ids
    } | _loops_by_walking(nodes)
    assert {r.event_id for r in roots} == expected_roots
