"""The observer's analysis: a user's daily outcomes against daily drivers, honestly tested.

Pure computation (numpy and scipy): series in, native Python values out. `analyze` runs every
outcome x driver x lag test of one user, with permutation p-values over circular shifts of the
driver, Benjamini-Hochberg across the run, and bootstrap intervals for the findings.
"""

from __future__ import annotations

from trackd.domain.observer.engine import analyze
from trackd.domain.observer.model import (
    GEOMAGNETIC,
    LUNAR,
    AnalysisOptions,
    Comparison,
    Driver,
    DriverKind,
    Finding,
    Outcome,
    OutcomeKind,
    RunResult,
    Skipped,
    Supporting,
)

__all__ = [
    "GEOMAGNETIC",
    "LUNAR",
    "AnalysisOptions",
    "Comparison",
    "Driver",
    "DriverKind",
    "Finding",
    "Outcome",
    "OutcomeKind",
    "RunResult",
    "Skipped",
    "Supporting",
    "analyze",
]
