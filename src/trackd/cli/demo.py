"""`trackd demo` (written next)."""

from __future__ import annotations


def demo() -> None:
    """Serve trackd with a simulated multi-agent workload."""
    raise SystemExit("not yet")
