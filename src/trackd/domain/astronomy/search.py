"""Finding the instants at which something changes: skyfield's `find_discrete`, in TT floats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from skyfield.searchlib import find_discrete

from trackd.domain.astronomy.ephemeris import check_span, times

# find_discrete narrows each change to this width (1 ms, its own default).
EPSILON_DAYS = 0.001 / 86_400


def changes(
    start_tt: float,
    end_tt: float,
    step_days: float,
    value_at: Callable[[Any], Any],
) -> list[tuple[float, int]]:
    """The instants in (start, end] where an integer function of time changes, and its new value.

    Args:
        start_tt: start of the window (TT Julian date).
        end_tt: end of the window.
        step_days: grid step of the first pass: shorter than the shortest time between two
            changes, or a pair of changes inside one step is missed.
        value_at: maps an array of TT Julian dates to an integer array.

    Returns:
        (TT Julian date, new value) for each change, in time order, to within 1 ms.
    """
    check_span(start_tt, end_tt)

    def f(t: Any) -> Any:
        return np.asarray(value_at(t.tt), dtype=np.int64)

    f.step_days = step_days  # type: ignore[attr-defined]
    found, values = find_discrete(times(start_tt), times(end_tt), f, epsilon=EPSILON_DAYS)
    return [(float(tt), int(v)) for tt, v in zip(np.atleast_1d(found.tt), values, strict=True)]
