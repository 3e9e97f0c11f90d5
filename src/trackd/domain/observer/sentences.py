"""Plain sentences for findings and runs."""

from __future__ import annotations

from trackd.domain.observer.model import Comparison, Driver, Outcome


def _when(driver: Driver, lag: int) -> str:
    if lag == 0:
        return f"On {driver.days_title}"
    if lag == 1:
        return f"On days after {driver.title}"
    return f"{lag} days after {driver.title}"


def _later(lag: int) -> str:
    return {0: "the same day", 1: "the next day"}.get(lag, f"{lag} days later")


def _interval(low: float, high: float, digits: int, level: float) -> str:
    a, b = f"{low:.{digits}f}", f"{high:.{digits}f}"
    joiner = " to " if low < 0 or high < 0 else "\u2013"  # an en dash
    return f"{level:.0%} CI {a}{joiner}{b}"


def binary_sentence(
    outcome: Outcome, driver: Driver, r: Comparison, low: float, high: float, level: float
) -> str:
    """E.g. "On days after a geomagnetic storm your energy was 1.4 points lower, 95% CI
    0.8-2.0, 11 storm days out of 164."."""
    diff = r.effect
    # The interval of the size of the difference in the direction found.
    size_low, size_high = (-high, -low) if diff < 0 else (low, high)
    days = f"{r.days_on} {driver.days_title} out of {r.n_days}"
    if outcome.kind == "binary":
        word = "fewer" if diff < 0 else "more"
        on, off = r.means or (0.0, 0.0)
        return (
            f"{_when(driver, r.lag)} you reported {outcome.title} on "
            f"{abs(diff) * 100:.0f} percentage points {word} of the days ({on:.0%} against "
            f"{off:.0%}), {_interval(size_low * 100, size_high * 100, 0, level)}, {days}."
        )
    word = "lower" if diff < 0 else "higher"
    return (
        f"{_when(driver, r.lag)} your {outcome.title} was {abs(diff):.1f} {outcome.unit} "
        f"{word}, {_interval(size_low, size_high, 1, level)}, {days}."
    )


def numeric_sentence(
    outcome: Outcome, driver: Driver, r: Comparison, low: float, high: float, level: float
) -> str:
    """E.g. "The higher the daily maximum Kp, the lower your energy the next day (Spearman's
    rho -0.31, 95% CI -0.45 to -0.16, 164 days)."."""
    word = "higher" if r.effect > 0 else "lower"
    subject = (
        f"the more often you reported {outcome.title}"
        if outcome.kind == "binary" and r.effect > 0
        else f"the less often you reported {outcome.title}"
        if outcome.kind == "binary"
        else f"the {word} your {outcome.title}"
    )
    return (
        f"The higher {driver.title}, {subject} {_later(r.lag)} (Spearman's rho "
        f"{r.effect:+.2f}, {_interval(low, high, 2, level)}, {r.n_days} days)."
    )


def circular_sentence(
    outcome: Outcome, driver: Driver, r: Comparison, low: float, high: float, level: float
) -> str:
    """E.g. "Your mood followed the lunar phase the same day: highest near 180° and lowest
    near 0°, 0.6 points either side of its mean (Mardia's R 0.28, 95% CI 0.15-0.40, 164
    days)."."""
    peak = r.peak_degrees or 0.0
    amplitude = r.amplitude or 0.0
    size = (
        f"{amplitude * 100:.0f} percentage points"
        if outcome.kind == "binary"
        else f"{amplitude:.1f} {outcome.unit}"
    )
    return (
        f"Your {outcome.title} followed {driver.title} {_later(r.lag)}: highest near "
        f"{peak:.0f}° and lowest near {(peak + 180) % 360:.0f}°, {size} either side of its "
        f"mean (Mardia's R {r.effect:.2f}, {_interval(low, high, 2, level)}, "
        f"{r.n_days} days)."
    )


def summary(run: int, skipped: int, found: int, q: float, passed: int | None = None) -> str:
    """One sentence for a run: what ran, what was skipped, what passed (and, when several
    tests of one phenomenon passed, as how many findings)."""
    tests = f"{run} test{'s' * (run != 1)} run, {skipped} skipped"
    if found == 0:
        return f"{tests}; nothing passed the false discovery rate of {q:g}."
    findings = f"{found} finding{'s' * (found != 1)}"
    if passed is not None and passed > found:
        return f"{tests}; {passed} passed the false discovery rate of {q:g}, as {findings}."
    return f"{tests}; {findings} at a false discovery rate of {q:g}."
