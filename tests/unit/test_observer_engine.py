"""The observer's run: lags, skips, Benjamini-Hochberg, reproducibility, findings, sentences."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pytest
from scipy import stats

from trackd.domain.observer import AnalysisOptions, Comparison, Driver, Outcome, analyze
from trackd.domain.observer import sentences as say
from trackd.domain.observer import statistics as st

START = date(2025, 1, 1)
DAYS = 150


def _dates(days: int = DAYS, start: date = START) -> list[date]:
    return [start + timedelta(days=i) for i in range(days)]


def _ar1(rng: np.random.Generator, days: int, phi: float = 0.5) -> np.ndarray:
    out = np.zeros(days)
    for t in range(1, days):
        out[t] = phi * out[t - 1] + rng.normal() * np.sqrt(1 - phi**2)
    return out


def _storms(rng: np.random.Generator, days: int) -> np.ndarray:
    return (_ar1(rng, days, 0.6) > 1.3).astype(float)


def _user(seed: int, effect: float = 0.0, lag: int = 1) -> tuple[list[Outcome], list[Driver]]:
    """Energy that drops by `effect` points `lag` days after storm days, with missing days."""
    rng = np.random.default_rng(seed)
    days = _dates(DAYS + 3, START - timedelta(days=3))
    storm = _storms(rng, len(days))
    kp = np.round((2 + 3 * storm + rng.normal(0, 0.8, len(days))) * 3) / 3
    latent = 6 + 1.5 * _ar1(rng, len(days)) - effect * np.roll(storm, lag)
    energy = np.clip(np.round(latent), 1, 10)
    kept = rng.random(len(days)) > 0.1
    phase = (np.arange(len(days)) * 12.19 + 40) % 360
    outcome = Outcome(
        "energy", {d: float(v) for d, v, k in zip(days[3:], energy[3:], kept[3:], strict=True) if k}
    )
    drivers = [
        Driver(
            "storm_day",
            dict(zip(days, storm.tolist(), strict=True)),
            "binary",
            "a geomagnetic storm",
            "storm days",
        ),
        Driver(
            "kp_max", dict(zip(days, kp.tolist(), strict=True)), "numeric", "the daily maximum Kp"
        ),
        Driver(
            "lunar_phase",
            dict(zip(days, phase.tolist(), strict=True)),
            "circular",
            "the lunar phase",
        ),
    ]
    return [outcome], drivers


OPTIONS = AnalysisOptions(permutations=199, bootstrap_draws=300, min_overlap_days=60)


def _tested(values: dict[date, float]) -> dict[date, float]:
    """A numeric outcome as the run tests it: its residuals after its own lag-1
    autocorrelation (statistics.prewhitened) on its window's days."""
    first = min(values)
    days = (max(values) - first).days + 1
    daily = np.full(days, np.nan)
    for day, value in values.items():
        daily[(day - first).days] = value
    residuals = st.prewhitened(daily)
    return {d: float(residuals[(d - first).days]) for d in values}


def test_a_run_tests_every_outcome_driver_and_lag() -> None:
    outcomes, drivers = _user(1)
    run = analyze(outcomes, drivers, OPTIONS)
    assert run.tests_run + run.tests_skipped == 1 * 3 * 4
    keys = {(t.outcome, t.driver, t.lag) for t in run.tests}
    keys |= {(s.outcome, s.driver, s.lag) for s in run.skipped}
    assert keys == {("energy", d.name, lag) for d in drivers for lag in range(4)}
    tests = {t.driver: t.test for t in run.tests}
    assert tests == {
        "storm_day": "mann_whitney",
        "kp_max": "spearman",
        "lunar_phase": "circular_linear",
    }


def test_lag_pairs_the_outcome_with_the_driver_lag_days_before() -> None:
    outcomes, drivers = _user(2)
    run = analyze(outcomes, drivers[1:2], OPTIONS)
    energy, kp = outcomes[0].values, drivers[1].values
    tested = _tested(dict(energy))
    for test in run.tests:
        days = sorted(energy)
        x = [kp[d - timedelta(days=test.lag)] for d in days]
        expected = stats.spearmanr(x, [energy[d] for d in days]).statistic
        assert test.effect == pytest.approx(expected, abs=1e-12)
        statistic = stats.spearmanr(x, [tested[d] for d in days]).statistic
        assert test.statistic == pytest.approx(statistic, abs=1e-12)
        assert test.n_days == len(days)
    raw = analyze(outcomes, drivers[1:2], replace(OPTIONS, prewhiten=False))
    assert [t.statistic for t in raw.tests] == [t.effect for t in run.tests]


def test_the_same_seed_gives_the_same_run_and_another_seed_other_draws() -> None:
    outcomes, drivers = _user(3, effect=2.0)
    first = analyze(outcomes, drivers, OPTIONS)
    assert analyze(outcomes, drivers, OPTIONS) == first
    other = analyze(outcomes, drivers, replace(OPTIONS, seed=1))
    circular = [t.p for t in first.tests if t.test == "circular_linear"]
    assert circular != [t.p for t in other.tests if t.test == "circular_linear"]


def test_q_values_are_benjamini_hochberg_over_the_whole_run() -> None:
    outcomes, drivers = _user(4, effect=2.0)
    run = analyze(outcomes, drivers, OPTIONS)
    ps = [t.p for t in run.tests]
    expected = stats.false_discovery_control(ps, method="bh")
    np.testing.assert_allclose([t.q for t in run.tests], expected)
    passed = {(t.driver, t.lag) for t in run.tests if t.q <= OPTIONS.q}
    # Every test that passed is a finding or supports one, exactly once.
    reported = [key for f in run.findings for key in sorted(f.tests)]
    assert sorted(reported) == sorted(passed)
    assert run.tests_passed == len(passed)
    assert [f.result.q for f in run.findings] == sorted(f.result.q for f in run.findings)
    for finding in run.findings:
        assert all(finding.result.p <= a.p for a in finding.also)


def test_a_planted_effect_is_found_at_its_lag_with_its_size() -> None:
    outcomes, drivers = _user(5, effect=2.0, lag=1)
    run = analyze(outcomes, drivers, OPTIONS)
    found = {(f.driver, f.lag): f for f in run.findings}
    storm = found[("storm_day", 1)]
    assert storm.direction == "lower"
    assert storm.result.effect < 0
    assert storm.ci_low < storm.result.effect < storm.ci_high
    assert storm.ci_high < 0
    assert storm.result.days_on is not None and storm.result.means is not None
    on, off = storm.result.means
    assert on - off == pytest.approx(storm.result.effect)
    assert storm.sentence.startswith("On days after a geomagnetic storm your energy was ")
    assert f"storm days out of {storm.result.n_days}." in storm.sentence
    assert "findings" in run.summary or "finding" in run.summary


def test_nothing_found_is_said_with_the_number_of_tests() -> None:
    outcomes, drivers = _user(6)
    run = analyze(outcomes, drivers, replace(OPTIONS, q=1e-9))
    assert run.findings == ()
    assert (
        run.summary == "12 tests run, 0 skipped; nothing passed the false discovery rate of 1e-09."
    )


def test_too_few_days_skips_with_the_reason() -> None:
    outcomes, drivers = _user(7)
    short = Outcome("energy", dict(sorted(outcomes[0].values.items())[:40]))
    run = analyze([short], drivers, OPTIONS)
    assert run.tests == () and run.findings == ()
    assert len(run.skipped) == 12
    assert run.skipped[0].reason == "40 days of energy, fewer than the minimum of 60"
    assert run.summary.startswith("0 tests run, 12 skipped; nothing passed")


def test_a_driver_missing_days_runs_on_the_overlap_or_skips() -> None:
    outcomes, drivers = _user(8)
    kp = drivers[1]
    holes = {d: v for i, (d, v) in enumerate(sorted(kp.values.items())) if i % 3}
    run = analyze(outcomes, [replace(kp, values=holes)], OPTIONS)
    energy = _tested(dict(outcomes[0].values))
    for test in run.tests:
        pairs = [
            (holes[d - timedelta(days=test.lag)], energy[d])
            for d in energy
            if d - timedelta(days=test.lag) in holes
        ]
        assert test.n_days == len(pairs)
        expected = stats.spearmanr(*zip(*pairs, strict=True)).statistic
        assert test.statistic == pytest.approx(expected, abs=1e-12)
    sparse = {d: v for i, (d, v) in enumerate(sorted(kp.values.items())) if i % 3 == 0}
    run = analyze(outcomes, [replace(kp, values=sparse)], OPTIONS)
    assert run.tests == ()
    assert "fewer than the minimum of 60" in run.skipped[0].reason
    assert "at lag 1" in run.skipped[1].reason


def test_a_binary_driver_with_a_small_group_is_skipped() -> None:
    outcomes, drivers = _user(9)
    few = dict.fromkeys(drivers[0].values, 0.0)
    for d in list(few)[10:14]:
        few[d] = 1.0
    run = analyze(outcomes, [replace(drivers[0], values=few)], OPTIONS)
    assert run.tests == ()
    assert (
        run.skipped[0].reason.endswith(
            "storm days and 131 other days, fewer than the minimum group size of 5"
        )
        or "fewer than the minimum group size of 5" in run.skipped[0].reason
    )


def test_a_constant_series_is_skipped() -> None:
    outcomes, drivers = _user(10)
    flat = Outcome("energy", dict.fromkeys(outcomes[0].values, 5.0))
    run = analyze([flat], drivers[1:2], OPTIONS)
    assert run.skipped[0].reason.startswith("energy takes one value over the")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Outcome("x", {START: float("nan")}), "not a finite number"),
        (lambda: Outcome("x", {START: 2.0}, kind="binary"), "holds 0 or 1"),
        (lambda: Driver("x", {}, "ordinal"), "kind must be"),  # type: ignore[arg-type]
        (lambda: AnalysisOptions(lags=()), "lags"),
        (lambda: AnalysisOptions(q=1.5), "q must"),
        (lambda: AnalysisOptions(permutations=5), "permutations"),
        (lambda: AnalysisOptions(ci_level=1.0), "ci_level"),
    ],
)
def test_bad_input_names_what_to_fix(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_repeated_names_are_refused() -> None:
    outcomes, drivers = _user(11)
    with pytest.raises(ValueError, match="kp_max repeated"):
        analyze(outcomes, [drivers[1], drivers[1]], OPTIONS)


def _result(**changes: object) -> Comparison:
    base = Comparison(
        outcome="energy",
        driver="storm_day",
        lag=1,
        test="mann_whitney",
        statistic=-0.4,
        effect=-1.4,
        p=0.001,
        p_empirical=0.006,
        shifts=166,
        q=0.05,
        n_days=164,
        days_on=11,
        means=(4.6, 6.0),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


STORM = Driver("storm_day", {}, "binary", "a geomagnetic storm", "storm days")
KP = Driver("kp_max", {}, "numeric", "the daily maximum Kp")
PHASE = Driver("lunar_phase", {}, "circular", "the lunar phase")
ENERGY = Outcome("energy", {})


def test_sentences_say_the_finding_in_plain_words() -> None:
    assert say.binary_sentence(ENERGY, STORM, _result(), -2.0, -0.8, 0.95) == (
        "On days after a geomagnetic storm your energy was 1.4 points lower, 95% CI 0.8\u20132.0, "
        "11 storm days out of 164."
    )
    assert say.binary_sentence(ENERGY, STORM, _result(lag=0, effect=0.5), -0.2, 1.1, 0.9) == (
        "On storm days your energy was 0.5 points higher, 90% CI -0.2 to 1.1, "
        "11 storm days out of 164."
    )
    headache = Outcome("headache", {}, kind="binary")
    assert say.binary_sentence(
        headache, STORM, _result(lag=2, effect=0.2, means=(0.35, 0.15)), 0.05, 0.33, 0.95
    ) == (
        "2 days after a geomagnetic storm you reported headache on 20 percentage points more "
        "of the days (35% against 15%), 95% CI 5\u201333, 11 storm days out of 164."
    )
    rho = _result(test="spearman", driver="kp_max", effect=-0.31, statistic=-0.31)
    assert say.numeric_sentence(ENERGY, KP, rho, -0.45, -0.16, 0.95) == (
        "The higher the daily maximum Kp, the lower your energy the next day (Spearman's rho "
        "-0.31, 95% CI -0.45 to -0.16, 164 days)."
    )
    circular = _result(
        test="circular_linear", lag=0, effect=0.28, peak_degrees=181.0, amplitude=0.62
    )
    assert say.circular_sentence(ENERGY, PHASE, circular, 0.15, 0.4, 0.95) == (
        "Your energy followed the lunar phase the same day: highest near 181° and lowest near "
        "1°, 0.6 points either side of its mean (Mardia's R 0.28, 95% CI 0.15\u20130.40, 164 days)."
    )


def test_results_hold_native_python_values_only() -> None:
    outcomes, drivers = _user(5, effect=2.0)
    run = analyze(outcomes, drivers, OPTIONS)
    assert run.findings

    def native(value: object) -> bool:
        if isinstance(value, tuple):
            return all(native(v) for v in value)
        return value is None or type(value) in (int, float, str, bool)

    for test in run.tests:
        assert all(native(getattr(test, f)) for f in test.__dataclass_fields__)
    for finding in run.findings:
        assert all(
            native(getattr(finding, f))
            for f in finding.__dataclass_fields__
            if f not in ("result", "also")
        )
        for also in finding.also:
            assert all(native(getattr(also, f)) for f in also.__dataclass_fields__)


def test_a_window_too_short_to_shift_is_skipped() -> None:
    outcomes, drivers = _user(13)
    short = Outcome(
        "energy", {d: v for d, v in outcomes[0].values.items() if d < START + timedelta(days=25)}
    )
    options = replace(OPTIONS, min_overlap_days=15)
    run = analyze([short], drivers[1:2], options)
    assert run.tests == ()
    assert run.skipped[0].reason == "25 days allow 12 circular shifts, fewer than 19"


def test_a_binary_driver_missing_days_is_tested_on_the_overlap() -> None:
    outcomes, drivers = _user(14)
    storm = drivers[0]
    holes = {d: v for i, (d, v) in enumerate(sorted(storm.values.items())) if i % 4}
    run = analyze(outcomes, [replace(storm, values=holes)], OPTIONS)
    energy = _tested(dict(outcomes[0].values))
    for test in run.tests:
        pairs = [
            (holes[d - timedelta(days=test.lag)], energy[d])
            for d in energy
            if d - timedelta(days=test.lag) in holes
        ]
        on = [y for x, y in pairs if x == 1]
        off = [y for x, y in pairs if x == 0]
        u = stats.mannwhitneyu(on, off).statistic
        assert test.statistic == pytest.approx(2 * u / (len(on) * len(off)) - 1, abs=1e-12)
        assert test.days_on == len(on) and test.n_days == len(pairs)
        window = (max(energy) - min(energy)).days + 1
        assert 0 < test.p <= 1 and test.shifts == 2 * (window - 13)


def _linked(a: tuple[str, int], b: tuple[str, int], family: dict[str, str]) -> bool:
    return family[a[0]] == family[b[0]] and abs(a[1] - b[1]) <= 1


def test_tests_that_pass_are_reported_one_finding_per_phenomenon() -> None:
    outcomes, drivers = _user(9, effect=2.0, lag=1)
    family = {"storm_day": "geomagnetic", "kp_max": "geomagnetic", "lunar_phase": "lunar_phase"}
    grouped = [replace(d, family=family[d.name]) for d in drivers]
    run = analyze(outcomes, grouped, OPTIONS)
    passed = {(t.driver, t.lag) for t in run.tests if t.q <= OPTIONS.q}
    # The planted effect passes on storm days at lags 1 and 2 and on Kp at lag 1: one finding.
    assert passed == {("storm_day", 1), ("storm_day", 2), ("kp_max", 1)}
    (storm,) = [f for f in run.findings if f.family == "geomagnetic"]
    assert sorted(k for f in run.findings for k in f.tests) == sorted(passed)
    assert run.tests_passed == len(passed) > len(run.findings)
    assert run.summary.endswith(
        f"{len(passed)} passed the false discovery rate of 0.1, as {len(run.findings)} finding"
        + "s" * (len(run.findings) != 1)
        + "."
    )
    # The finding is the strongest test; the others are its supporting evidence, strongest
    # first, each linked to another test of the phenomenon (same family, neighbouring lag).
    tests = {(t.driver, t.lag): t for t in run.tests}
    assert storm.result == tests[(storm.driver, storm.lag)]
    assert [(a.p, a.q) for a in storm.also] == [
        (tests[(a.driver, a.lag)].p, tests[(a.driver, a.lag)].q) for a in storm.also
    ]
    assert [a.q for a in storm.also] == sorted(a.q for a in storm.also)
    assert all(storm.result.q <= a.q for a in storm.also)
    members = sorted(storm.tests)
    for key in members:
        assert any(_linked(key, other, family) for other in members if other != key)
    # Findings are phenomena no test links: none of two findings could be one.
    for first, second in itertools.combinations(run.findings, 2):
        assert (
            not any(_linked(a, b, family) for a in first.tests for b in second.tests)
            or first.outcome != second.outcome
        )

    # Without families, storm days and Kp are phenomena of their own.
    apart = analyze(outcomes, drivers, OPTIONS)
    assert {f.family for f in apart.findings} >= {"storm_day", "kp_max"}
    assert len(apart.findings) > len(run.findings)


def test_lags_that_are_not_neighbours_are_separate_phenomena() -> None:
    outcomes, drivers = _user(6, effect=2.0, lag=1)
    storm = drivers[0]
    run = analyze(outcomes, [storm], OPTIONS)
    # Lags 0 and 1 are neighbours, 3 is not (lag 2 did not pass): two phenomena.
    assert sorted(sorted(f.tests) for f in run.findings) == [
        [("storm_day", 0), ("storm_day", 1)],
        [("storm_day", 3)],
    ]
    assert run.summary == (
        "4 tests run, 0 skipped; 3 passed the false discovery rate of 0.1, as 2 findings."
    )
    # Neighbours among the lags tested: with lags 1 and 3 only, they are one phenomenon.
    only = analyze(outcomes, [storm], replace(OPTIONS, lags=(1, 3)))
    passed = {(t.driver, t.lag) for t in only.tests if t.q <= OPTIONS.q}
    assert [f.tests for f in only.findings] == [frozenset(passed)]
