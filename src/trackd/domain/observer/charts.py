"""What a finding's charts show, from the same daily series its run tested.

- `by_level`: the outcome's mean per level of the driver at the finding's lag, with a
  Student's t interval of each mean (scipy): a binary driver's days against the others, a
  numeric driver's quantile bins, a circular driver's sectors (the lunar phase's octants);
- `by_lag`: the effect (rho, the difference in means, or Mardia's R, as the run measures it)
  at every lag from 0 to the run's longest, with a moving-block bootstrap interval (the
  run's method for a finding's interval);
- `beside`: the outcome per day and the driver moved `lag` days later, so that the driver
  a day's outcome was tested against sits on that day.

Pure computation: native Python values out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from trackd.domain.observer.engine import effect_interval, effects
from trackd.domain.observer.model import AnalysisOptions, Driver, Outcome

# scipy.stats is imported inside the functions that use it: it takes half a second to load,
# and every trackd process imports this module (tests/unit/test_cli_startup.py).

# Quantile bins of a numeric driver (fewer when its values tie across a quantile).
NUMERIC_BINS = 5
EN_DASH = "\u2013"
# The lunar phase's octants, centred on new moon (0°), first quarter (90°), full (180°)...
PHASE_OCTANTS = (
    "new",
    "waxing crescent",
    "first quarter",
    "waxing gibbous",
    "full",
    "waning gibbous",
    "last quarter",
    "waning crescent",
)


@dataclass(frozen=True, slots=True)
class Level:
    """The outcome's mean over the days of one level of the driver, with its interval
    (None when fewer than two days make the level)."""

    label: str
    n: int
    mean: float
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class LagEffect:
    """The effect at one lag with its bootstrap interval; `effect` None when the days at
    that lag are too few (under 3) or one series is constant over them."""

    lag: int
    n: int
    effect: float | None
    low: float | None
    high: float | None


def paired(outcome: Outcome, driver: Driver, lag: int) -> tuple[list[date], Any, Any]:
    """The outcome's days that have the driver `lag` days before, in date order, with the
    driver's values (x) and the outcome's (y): the pairs the run's test at `lag` used."""
    days = sorted(d for d in outcome.values if d - timedelta(days=lag) in driver.values)
    x = np.array([driver.values[d - timedelta(days=lag)] for d in days], dtype=float)
    y = np.array([outcome.values[d] for d in days], dtype=float)
    return days, x, y


def _mean_interval(label: str, values: Any, level: float) -> Level:
    from scipy import stats

    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return Level(label, n, mean, None, None)
    sem = float(stats.sem(values))
    if sem == 0:
        return Level(label, n, mean, mean, mean)
    low, high = stats.t.interval(level, n - 1, loc=mean, scale=sem)
    return Level(label, n, mean, float(low), float(high))


def _number(value: float) -> str:
    return f"{round(float(value), 2):g}"


def _groups(driver: Driver, x: Any, sectors: Sequence[str] | None) -> list[tuple[str, Any]]:
    """(label, mask of the days in it) of each level of the driver."""
    if driver.kind == "binary":
        return [(driver.days_title, x > 0.5), ("other days", x <= 0.5)]
    if driver.kind == "circular":
        names = list(sectors or PHASE_OCTANTS)
        width = 360.0 / len(names)
        # Sector k is centred on k * width: the first sector straddles 0°.
        index = np.floor(((x + width / 2) % 360.0) / width).astype(int) % len(names)
        return [(name, index == k) for k, name in enumerate(names)]
    edges = np.unique(np.quantile(x, np.linspace(0, 1, NUMERIC_BINS + 1)))
    if len(edges) < 2:
        return [(_number(float(x[0])), np.ones(len(x), dtype=bool))]
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    return [
        (f"{_number(edges[k])}{EN_DASH}{_number(edges[k + 1])}", index == k)
        for k in range(len(edges) - 1)
    ]


def by_level(
    outcome: Outcome,
    driver: Driver,
    lag: int,
    *,
    level: float = 0.95,
    sectors: Sequence[str] | None = None,
) -> list[Level]:
    """The outcome's mean per level of the driver `lag` days before, with t intervals;
    levels without a day are left out. `sectors` names a circular driver's equal sectors
    (default: the lunar phase's octants)."""
    _, x, y = paired(outcome, driver, lag)
    if not len(x):
        return []
    return [
        _mean_interval(label, y[mask], level)
        for label, mask in _groups(driver, x, sectors)
        if mask.any()
    ]


def by_lag(
    outcome: Outcome, driver: Driver, longest: int, options: AnalysisOptions
) -> list[LagEffect]:
    """The effect at each lag 0..`longest`, with the run's bootstrap interval."""
    found = []
    for lag in range(longest + 1):
        _, x, y = paired(outcome, driver, lag)
        n = len(x)
        constant = n == 0 or np.ptp(y) == 0 or (driver.kind != "circular" and np.ptp(x) == 0)
        value = float(effects(driver.kind, x[None, :], y[None, :])[0]) if n >= 3 else math.nan
        if n < 3 or constant or not math.isfinite(value):
            found.append(LagEffect(lag, n, None, None, None))
            continue
        low, high = effect_interval(driver.kind, x, y, options, (options.seed, lag))
        found.append(LagEffect(lag, n, value, low, high))
    return found


def beside(
    outcome: Outcome, driver: Driver, lag: int
) -> tuple[list[tuple[date, float]], list[tuple[date, float]]]:
    """The outcome per day, and the driver moved `lag` days later over the outcome's days
    (day d shows the driver of day d - lag), each in date order."""
    if not outcome.values:
        return [], []
    first, last = min(outcome.values), max(outcome.values)
    moved = sorted(
        (day + timedelta(days=lag), value)
        for day, value in driver.values.items()
        if first <= day + timedelta(days=lag) <= last
    )
    return sorted(outcome.values.items()), moved
