"""Draw which of trackd's top-level packages import which, as a Mermaid diagram in docs/layers.md.

    python scripts/layers_diagram.py          rewrite the diagram in docs/layers.md
    python scripts/layers_diagram.py --check  exit 1 if docs/layers.md is out of date
    (--page PATH works on another copy of the page)

The graph comes from the code (grimp, the import graph import-linter checks the contracts on).
An arrow `a --> b` means a module of `a` imports one of `b`; an arrow is left out when a longer
path already leads from `a` to `b` (the graph has no cycles, so what remains is its transitive
reduction), so the picture shows the flow without drawing every import of `domain`.
"""

from __future__ import annotations

import argparse
import sys
from itertools import permutations
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "layers.md"
START = "<!-- layers-diagram:start (scripts/layers_diagram.py writes this block) -->"
END = "<!-- layers-diagram:end -->"


def edges() -> set[tuple[str, str]]:
    """The direct imports between trackd's top-level packages, by short name."""
    graph = grimp.build_graph("trackd")
    packages = sorted(graph.find_children("trackd"))
    found = set()
    for importer, imported in permutations(packages, 2):
        if graph.direct_import_exists(importer=importer, imported=imported, as_packages=True):
            found.add((importer.removeprefix("trackd."), imported.removeprefix("trackd.")))
    return found


def reduced(found: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """The edges no longer path implies (the transitive reduction of an acyclic graph)."""
    after: dict[str, set[str]] = {}
    for a, b in found:
        after.setdefault(a, set()).add(b)

    def reachable(start: str, skip: tuple[str, str]) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            node = todo.pop()
            for nxt in after.get(node, ()):
                if (node, nxt) != skip and nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    return sorted(edge for edge in found if edge[1] not in reachable(edge[0], edge))


def block() -> str:
    lines = [START, "```mermaid", "graph TD"]
    lines += [f"    {a} --> {b}" for a, b in reduced(edges())]
    lines += ["```", END]
    return "\n".join(lines)


def updated(page: str) -> str | None:
    """The page with its diagram block drawn afresh; None when it has no block."""
    head, start, rest = page.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        return None
    return head + block() + tail


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is current")
    parser.add_argument("--page", type=Path, default=PAGE, help="the page to draw in")
    args = parser.parse_args(argv)
    page = args.page.read_text()
    new = updated(page)
    if new is None:
        print(f"{args.page} has no layers-diagram block: add the {START} and {END} lines")
        return 2
    if args.check:
        if new != page:
            print(f"{args.page.name} is out of date: run python scripts/layers_diagram.py")
            return 1
        return 0
    args.page.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
