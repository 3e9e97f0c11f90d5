"""A finding's chart figures: the outcome per driver level with t intervals, the effect per lag
with the run's bootstrap interval, and the series side by side, on series made by hand."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from scipy import stats

from trackd.domain.observer import AnalysisOptions, Driver, Outcome, analyze
from trackd.domain.observer.charts import PHASE_OCTANTS, beside, by_lag, by_level, paired

START = date(2024, 1, 1)


def days(n: int) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def test_a_binary_driver_gives_its_days_and_the_others_with_t_intervals() -> None:
    on = {d: float(i % 4 == 0) for i, d in enumerate(days(40))}
    mood = {d: 3.0 + (i % 3) if on[d] else 6.0 + (i % 5) for i, d in enumerate(days(40))}
    storm_day = Driver("storm", on, "binary", days_label="storm days")
    levels = by_level(Outcome("mood", mood), storm_day, 0)
    assert [lv.label for lv in levels] == ["storm days", "other days"]
    storm = np.array([mood[d] for d in days(40) if on[d]])
    assert levels[0].n == len(storm) == 10 and levels[1].n == 30
    assert levels[0].mean == pytest.approx(storm.mean())
    low, high = stats.t.interval(0.95, len(storm) - 1, loc=storm.mean(), scale=stats.sem(storm))
    assert (levels[0].low, levels[0].high) == (pytest.approx(low), pytest.approx(high))


def test_a_numeric_driver_is_cut_into_quantile_bins_and_the_lag_moves_it() -> None:
    kp = {d: float(i % 10) for i, d in enumerate(days(60))}
    # The outcome follows the driver of two days before.
    energy = {d: 10 - kp[d - timedelta(days=2)] for d in days(60)[2:]}
    levels = by_level(Outcome("energy", energy), Driver("kp", kp, "numeric"), 2)
    assert len(levels) == 5
    assert sum(lv.n for lv in levels) == 58
    means = [lv.mean for lv in levels]
    assert means == sorted(means, reverse=True)
    assert levels[0].label == "0\u20131.4"


def test_the_lunar_phase_is_cut_into_octants_around_new_moon() -> None:
    angles = [0.0, 10.0, 350.0, 44.0, 46.0, 180.0, 200.0, 270.0]
    phase = {d: a for d, a in zip(days(8), angles, strict=True)}
    mood = {d: float(i) for i, d in enumerate(days(8))}
    levels = by_level(Outcome("mood", mood), Driver("lunar_phase", phase, "circular"), 0)
    by_name = {lv.label: lv for lv in levels}
    assert by_name["new"].n == 2 + 1  # 0, 10 and 350 all round to new moon
    assert by_name["new"].mean == pytest.approx((0 + 1 + 2) / 3)
    assert by_name["waxing crescent"].n == 2  # 44 and 46
    assert by_name["full"].n == 2 and by_name["last quarter"].n == 1
    assert by_name["last quarter"].low is None  # one day: no interval
    assert [lv.label for lv in levels] == [n for n in PHASE_OCTANTS if n in by_name]


def test_the_effect_by_lag_peaks_at_the_planted_lag_and_matches_the_run() -> None:
    rng = np.random.default_rng(3)
    n = 120
    storm = {d: float(v) for d, v in zip(days(n), rng.random(n) < 0.25, strict=True)}
    energy = {
        d: 6 + float(rng.normal()) - 3 * storm.get(d - timedelta(days=1), 0.0) for d in days(n)[3:]
    }
    outcome = Outcome("energy", energy)
    driver = Driver("storm_day", storm, "binary")
    options = AnalysisOptions(lags=(0, 1, 2, 3), permutations=99, min_overlap_days=30)
    effects = by_lag(outcome, driver, 3, options)
    assert [e.lag for e in effects] == [0, 1, 2, 3]
    strongest = min(effects, key=lambda e: e.effect or 0.0)
    assert strongest.lag == 1 and strongest.high is not None and strongest.high < 0
    assert all(e.low is not None and e.low <= (e.effect or 0) <= (e.high or 0) for e in effects)
    run = analyze([outcome], [driver], options)
    tested = {t.lag: t for t in run.tests}
    for e in effects:
        assert e.effect == pytest.approx(tested[e.lag].effect)
        assert e.n == tested[e.lag].n_days
    # The finding's bootstrap interval and the chart's are the same kind: they agree closely.
    (found,) = [f for f in run.findings if f.lag == 1]
    assert effects[1].low == pytest.approx(found.ci_low, abs=0.5)


def test_too_few_days_at_a_lag_give_no_effect() -> None:
    outcome = Outcome("mood", {START: 5.0, START + timedelta(days=1): 6.0})
    driver = Driver("kp", {START: 1.0, START + timedelta(days=1): 2.0}, "numeric")
    (only,) = by_lag(outcome, driver, 0, AnalysisOptions())
    assert only.effect is None and only.n == 2


def test_beside_moves_the_driver_by_the_lag_over_the_outcomes_days() -> None:
    kp = {d: float(i) for i, d in enumerate(days(10))}
    mood = {d: 5.0 for d in days(10)[3:8]}
    out, moved = beside(Outcome("mood", mood), Driver("kp", kp, "numeric"), 2)
    assert [d for d, _ in out] == days(10)[3:8]
    assert moved == [(d, kp[d - timedelta(days=2)]) for d in days(10)[3:8]]
    got, x, y = paired(Outcome("mood", mood), Driver("kp", kp, "numeric"), 2)
    assert got == days(10)[3:8] and list(x) == [1.0, 2.0, 3.0, 4.0, 5.0] and list(y) == [5.0] * 5
