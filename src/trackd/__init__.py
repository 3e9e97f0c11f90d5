"""trackd: records what background work and the outside world are doing, and answers
questions about it."""

from __future__ import annotations

__version__ = "0.1.0"
