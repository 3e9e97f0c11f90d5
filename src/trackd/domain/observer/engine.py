"""One user's run: every outcome x driver x lag tested, corrected together, findings described.

See docs/observer.md for the method. In short: a rank statistic per test (scipy) on the
outcome's prewhitened residuals, a null distribution from circular shifts of the driver and of
the driver reversed in time (which keep both series' autocorrelation), Benjamini-Hochberg over
every test of the run, the tests that pass reported one finding per phenomenon (one outcome,
one driver family, neighbouring lags), a moving-block bootstrap interval for each finding's
effect on the outcome's own scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np

from trackd.domain.observer import sentences
from trackd.domain.observer import statistics as st
from trackd.domain.observer.model import (
    TEST_OF_DRIVER,
    AnalysisOptions,
    Comparison,
    Driver,
    Finding,
    Outcome,
    RunResult,
    Skipped,
    Supporting,
)

# scipy.stats is imported inside the functions that use it: it takes half a second to load,
# and every trackd process imports this module (tests/unit/test_cli_startup.py).

# Fewer circular shifts than this and the null distribution says nothing.
MIN_SHIFTS = 19
# Blocks of the outcome permuted for a circular driver: two weeks keep most of a daily score's
# autocorrelation (shorter blocks break it at their edges and make the null too narrow), and
# half a lunar month leaves each block's alignment with the cycle to chance.
CIRCULAR_BLOCK_DAYS = 14


@dataclass(frozen=True, slots=True)
class _Ran:
    """A test that ran, with its paired days kept for the finding's bootstrap."""

    result: Comparison
    outcome: Outcome
    driver: Driver
    x: Any
    y: Any


def _daily(values: Mapping[date, float], first: date, days: int) -> Any:
    """The values on the `days` days from `first` as an array, NaN where a day is missing."""
    out = np.full(days, np.nan)
    for day, value in values.items():
        index = (day - first).days
        if 0 <= index < days:
            out[index] = value
    return out


def _check_names(outcomes: Sequence[Outcome], drivers: Sequence[Driver]) -> None:
    for what, names in (
        ("outcome", [o.name for o in outcomes]),
        ("driver", [d.name for d in drivers]),
    ):
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{what} names must be distinct: {', '.join(repeated)} repeated")


def analyze(
    outcomes: Sequence[Outcome],
    drivers: Sequence[Driver],
    options: AnalysisOptions | None = None,
) -> RunResult:
    """Test every outcome against every driver at every lag; see the module's docstring.

    Args:
        outcomes: the user's daily outcomes.
        drivers: the daily drivers; each should cover the outcomes' days (and `max(lags)`
            days before them); days a driver lacks are left out of that test.
        options: lags, thresholds, shifts, seed (defaults: `AnalysisOptions()`).

    Raises:
        ValueError: repeated names.
    """
    options = options or AnalysisOptions()
    _check_names(outcomes, drivers)
    ran: list[_Ran] = []
    skipped: list[Skipped] = []
    longest = max(options.lags)
    for o_index, outcome in enumerate(outcomes):
        if len(outcome.values) < options.min_overlap_days:
            skipped += [
                Skipped(
                    outcome.name,
                    d.name,
                    lag,
                    f"{len(outcome.values)} days of {outcome.title}, fewer than the minimum "
                    f"of {options.min_overlap_days}",
                )
                for d in drivers
                for lag in options.lags
            ]
            continue
        first, last = min(outcome.values), max(outcome.values)
        days = (last - first).days + 1
        y = _daily(outcome.values, first, days)
        # A symptom's presence too: measured, it keeps fewer chance findings beside a true one.
        tested = st.prewhitened(y) if options.prewhiten else y
        shifts = st.shifts_for(days, options.permutations, options.min_shift_days, options.seed)
        for d_index, driver in enumerate(drivers):
            start = first - timedelta(days=longest)
            full = _daily(driver.values, start, days + longest)
            for lag in options.lags:
                x = full[longest - lag : longest - lag + days]
                stream = (options.seed, o_index, d_index, lag)
                done = _run_test(outcome, driver, lag, x, (y, tested), shifts, options, stream)
                if isinstance(done, Skipped):
                    skipped.append(done)
                else:
                    ran.append(done)
    return _conclude(ran, skipped, options)


def _run_test(
    outcome: Outcome,
    driver: Driver,
    lag: int,
    x: Any,
    outcome_days: tuple[Any, Any],
    shifts: Any,
    options: AnalysisOptions,
    stream: tuple[int, ...],
) -> _Ran | Skipped:
    """One test: the statistic and its null on `tested` (the outcome, or its prewhitened
    residuals), the effect on the outcome `y` itself."""
    y, tested = outcome_days

    def skip(reason: str) -> Skipped:
        return Skipped(outcome.name, driver.name, lag, reason)

    present = ~np.isnan(y)
    paired = present & ~np.isnan(x)
    n = int(paired.sum())
    at_lag = f" at lag {lag}" if lag else ""
    if n < options.min_overlap_days:
        return skip(
            f"{n} days with both {outcome.title} and {driver.title}{at_lag}, fewer than the "
            f"minimum of {options.min_overlap_days}"
        )
    if len(shifts) < MIN_SHIFTS:
        return skip(f"{len(y)} days allow {len(shifts)} circular shifts, fewer than {MIN_SHIFTS}")
    xs, ys = x[paired], y[paired]
    if np.ptp(ys) == 0:
        return skip(f"{outcome.title} takes one value over the {n} days")
    if driver.kind != "circular" and np.ptp(xs) == 0:
        return skip(f"{driver.title} takes one value over the {n} days")
    if driver.kind == "binary":
        on = int((xs > 0.5).sum())
        if min(on, n - on) < options.min_group_size:
            return skip(
                f"{on} {driver.days_title} and {n - on} other days, fewer than the minimum "
                f"group size of {options.min_group_size}"
            )

    # The statistic and its null are computed on the tested series (the prewhitened outcome:
    # the same days, other values).
    present = ~np.isnan(tested)
    on_days = present & ~np.isnan(x)
    xt, yt = x[on_days], tested[on_days]
    if len(yt) < 3 or np.ptp(yt) == 0:
        return skip(f"{outcome.title} takes one value over the {n} days")
    complete = not np.isnan(x).any()

    def shifted_pairs(driver_days: Any) -> tuple[Any, Any, Any]:
        """The shifted driver rows, the outcome's ranks among their paired days, those days."""
        xm = st.shifted(driver_days, shifts)
        mask = ~np.isnan(xm) & present[None, :]
        if complete:
            # The driver has every day: each shift pairs the same outcome days, ranked once.
            y_ranks = np.broadcast_to(st.row_ranks(tested[None, :], present[None, :]), xm.shape)
        else:
            y_ranks = st.row_ranks(np.broadcast_to(np.where(present, tested, 0.0), xm.shape), mask)
        return np.where(mask, xm, 0.0), y_ranks, mask

    # The null draws: every shift of the driver and of the driver reversed in time. Reversal
    # keeps a series' autocorrelation (and its values), so it doubles the draws that keep it.
    base: dict[str, Any] = {"outcome": outcome.name, "driver": driver.name, "lag": lag}
    both_ways = (x, x[::-1])
    if driver.kind == "numeric":
        rho = st.spearman(xt, yt)
        if complete:
            null = [st.spearman_shift_rows(d, tested, present, shifts) for d in both_ways]
        else:
            null = [st.spearman_rows(*shifted_pairs(d)) for d in both_ways]
        p = st.permutation_p(rho, np.concatenate(null), upper=False)
        effect = st.spearman(xs, ys) if tested is not y else rho
        result = Comparison(
            **base, test="spearman", statistic=rho, effect=effect, **_p(p), q=1.0, n_days=n
        )
    elif driver.kind == "binary":
        r = st.rank_biserial(xt, yt)
        null = [st.rank_biserial_rows(*shifted_pairs(d)) for d in both_ways]
        p = st.permutation_p(r, np.concatenate(null), upper=False)
        on_mean, off_mean = float(ys[xs > 0.5].mean()), float(ys[xs <= 0.5].mean())
        result = Comparison(
            **base,
            test="mann_whitney",
            statistic=r,
            effect=on_mean - off_mean,
            **_p(p),
            q=1.0,
            n_days=n,
            days_on=int((xs > 0.5).sum()),
            means=(on_mean, off_mean),
        )
    else:
        # A circular shift only rotates a periodic angle (the lunar phase), and R is the same
        # for every rotation: the null permutes blocks of the outcome's days instead.
        rng = np.random.default_rng(stream)
        index = st.block_permutations(len(tested), options.permutations, CIRCULAR_BLOCK_DAYS, rng)
        moved = present[index] & ~np.isnan(x)[None, :]
        null = st.circular_r2_rows(
            np.where(np.isnan(x), 0.0, x)[None, :], np.where(moved, tested[index], 0.0), moved
        )
        r2 = st.circular_r2(xt, yt)
        p = st.permutation_p(r2, null, upper=True)
        peak, amplitude = st.cosine_fit(xs, ys)
        effect = math.sqrt(st.circular_r2(xs, ys)) if tested is not y else math.sqrt(r2)
        result = Comparison(
            **base,
            test=TEST_OF_DRIVER["circular"],
            statistic=math.sqrt(r2),
            effect=effect,
            **_p(p),
            q=1.0,
            n_days=n,
            peak_degrees=peak,
            amplitude=amplitude,
        )
    return _Ran(result, outcome, driver, xs, ys)


def _p(p: st.PValue) -> dict[str, Any]:
    return {"p": p.p, "p_empirical": p.p_empirical, "shifts": p.shifts}


def effects(kind: str, x: Any, y: Any) -> Any:
    """The effect of each row of paired days (a driver of `kind`): rho, the difference in the
    outcome's means (driver days minus the others), or Mardia's R."""
    everywhere = np.ones(x.shape, dtype=bool)
    if kind == "numeric":
        return st.spearman_rows(x, st.row_ranks(y, everywhere), everywhere)
    if kind == "binary":
        on = x > 0.5
        with np.errstate(invalid="ignore", divide="ignore"):
            return (np.where(on, y, 0).sum(1) / on.sum(1)) - (
                np.where(on, 0, y).sum(1) / (~on).sum(1)
            )
    return np.sqrt(st.circular_r2_rows(x, y, everywhere))


def effect_interval(
    kind: str, x: Any, y: Any, options: AnalysisOptions, stream: Sequence[int]
) -> tuple[float, float]:
    """The moving-block bootstrap interval of the effect of paired days `x`, `y` (in date
    order), at `options.ci_level`, from the seeded random `stream`."""
    n = len(x)
    block = options.block_days or max(1, round(n ** (1 / 3)))
    rng = np.random.default_rng(list(stream))
    rows = st.block_indices(n, options.bootstrap_draws, block, rng)
    return st.percentile_interval(effects(kind, x[rows], y[rows]), options.ci_level)


def _finding(
    ran: _Ran, index: int, options: AnalysisOptions, also: tuple[Supporting, ...]
) -> Finding:
    r = ran.result
    low, high = effect_interval(ran.driver.kind, ran.x, ran.y, options, (options.seed, index))
    level = options.ci_level
    if ran.driver.kind == "numeric":
        direction = "positive" if r.effect > 0 else "negative"
        sentence = sentences.numeric_sentence(ran.outcome, ran.driver, r, low, high, level)
    elif ran.driver.kind == "binary":
        direction = "higher" if r.effect > 0 else "lower"
        sentence = sentences.binary_sentence(ran.outcome, ran.driver, r, low, high, level)
    else:
        direction = "cyclic"
        sentence = sentences.circular_sentence(ran.outcome, ran.driver, r, low, high, level)
    return Finding(r, direction, low, high, level, sentence, ran.driver.phenomenon, also)


def _phenomena(passed: list[tuple[int, _Ran]], lags: tuple[int, ...]) -> list[list[int]]:
    """The passed tests (strongest first) cut into phenomena, each strongest first.

    Two tests are one phenomenon when they share the outcome and the driver family and
    their lags are the same or neighbours among the lags tested; a phenomenon is every
    test linked to another of it (so storm days at lag 1 and Kp at lags 1 and 2 are one).
    """
    position = {lag: i for i, lag in enumerate(sorted(lags))}
    groups: list[list[int]] = []
    for at, (_, ran) in enumerate(passed):
        key = (ran.outcome.name, ran.driver.phenomenon)
        linked = [
            g
            for g in groups
            if any(
                (passed[i][1].outcome.name, passed[i][1].driver.phenomenon) == key
                and abs(position[passed[i][1].result.lag] - position[ran.result.lag]) <= 1
                for i in g
            )
        ]
        merged = sorted([at, *(i for g in linked for i in g)])
        groups = [g for g in groups if g not in linked] + [merged]
    return sorted(groups, key=lambda g: g[0])


def _conclude(ran: list[_Ran], skipped: list[Skipped], options: AnalysisOptions) -> RunResult:
    from scipy import stats

    if ran:
        qs = stats.false_discovery_control([x.result.p for x in ran], method="bh")
        ran = [
            replace(x, result=replace(x.result, q=float(q))) for x, q in zip(ran, qs, strict=True)
        ]
    # Benjamini-Hochberg runs over every test; the tests that pass are then reported by
    # phenomenon: the strongest test of each is the finding, the others support it.
    passed = [(i, x) for i, x in enumerate(ran) if x.result.q <= options.q]
    passed.sort(key=lambda pair: (pair[1].result.q, pair[1].result.p))
    findings = []
    for group in _phenomena(passed, options.lags):
        index, strongest = passed[group[0]]
        also = tuple(
            Supporting(r.driver, r.lag, r.p, r.q, r.effect)
            for r in (passed[i][1].result for i in group[1:])
        )
        findings.append(_finding(strongest, index, options, also))
    return RunResult(
        tests=tuple(x.result for x in ran),
        skipped=tuple(skipped),
        findings=tuple(findings),
        summary=sentences.summary(len(ran), len(skipped), len(findings), options.q, len(passed)),
        q=options.q,
        options=options,
    )
