"""The observer's statistics: each row kernel against scipy, shifts, p-values, resampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from trackd.domain.observer import statistics as st


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    days = 40
    x = np.round(rng.gamma(4, 0.7, days) * 3) / 3  # ties, like Kp in thirds
    y = np.clip(np.round(rng.normal(5, 2, days)), 1, 10)  # ties, like a 1-10 score
    present = rng.random(days) > 0.2
    return x, y, present


def _row(values: np.ndarray) -> np.ndarray:
    return values[None, :]


def test_spearman_rows_is_scipys_spearman(pair: tuple[np.ndarray, ...]) -> None:
    x, y, present = pair
    mask = _row(present)
    rho = st.spearman_rows(_row(x), st.row_ranks(_row(y), mask), mask)[0]
    assert rho == pytest.approx(stats.spearmanr(x[present], y[present]).statistic, abs=1e-12)
    assert st.spearman(x[present], y[present]) == pytest.approx(rho, abs=1e-12)


def test_spearman_over_shifts_matches_the_row_kernel_and_scipy(
    pair: tuple[np.ndarray, ...],
) -> None:
    x, y, present = pair
    shifts = st.shifts_for(len(x), 999, 3, seed=0)
    fast = st.spearman_shift_rows(x, y, present, shifts)
    moved = st.shifted(x, shifts)
    mask = np.broadcast_to(present, moved.shape)
    general = st.spearman_rows(moved, st.row_ranks(np.broadcast_to(y, moved.shape), mask), mask)
    np.testing.assert_allclose(fast, general, atol=1e-12)
    s = int(shifts[5])
    expected = stats.spearmanr(np.roll(x, s)[present], y[present]).statistic
    assert fast[5] == pytest.approx(expected, abs=1e-12)


def test_rank_biserial_is_scipys_mann_whitney_u(pair: tuple[np.ndarray, ...]) -> None:
    x, y, present = pair
    on = (x >= np.median(x)).astype(float)
    mask = _row(present)
    r = st.rank_biserial_rows(_row(on), st.row_ranks(_row(y), mask), mask)[0]
    y1, y0 = y[present & (on == 1)], y[present & (on == 0)]
    u = stats.mannwhitneyu(y1, y0).statistic
    assert r == pytest.approx(2 * u / (len(y1) * len(y0)) - 1, abs=1e-12)
    assert st.rank_biserial(on[present], y[present]) == pytest.approx(r, abs=1e-12)


def test_rank_biserial_sign_follows_the_driver_days() -> None:
    on = np.array([1.0, 1, 1, 0, 0, 0])
    assert st.rank_biserial(on, np.array([7.0, 8, 9, 1, 2, 3])) == 1.0
    assert st.rank_biserial(on, np.array([1.0, 2, 3, 7, 8, 9])) == -1.0


def test_circular_r2_is_the_r2_of_a_cosine_regression() -> None:
    rng = np.random.default_rng(9)
    angle = rng.uniform(0, 360, 40)
    y = 3 * np.cos(np.deg2rad(angle - 120)) + rng.normal(0, 2, 40)
    design = np.column_stack([np.ones(40), np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    r2 = stats.pearsonr(design @ coef, y).statistic ** 2
    assert st.circular_r2(angle, y) == pytest.approx(r2, abs=1e-12)
    everywhere = np.ones((1, 40), dtype=bool)
    assert st.circular_r2_rows(_row(angle), _row(y), everywhere)[0] == pytest.approx(r2)
    peak, amplitude = st.cosine_fit(angle, y)
    assert peak == pytest.approx(120, abs=25)
    assert amplitude == pytest.approx(3, abs=1)


def test_circular_r2_is_the_same_for_every_rotation_of_the_angle() -> None:
    # Why a circular driver's null permutes the outcome's blocks instead of shifting a
    # periodic angle: rotating the angle leaves R unchanged.
    rng = np.random.default_rng(1)
    angle, y = rng.uniform(0, 360, 50), rng.normal(size=50)
    assert st.circular_r2(angle + 77, y) == pytest.approx(st.circular_r2(angle, y))


def test_shifts_all_admissible_or_a_seeded_sample() -> None:
    np.testing.assert_array_equal(st.shifts_for(20, 999, 3, seed=1), np.arange(3, 18))
    a = st.shifts_for(3000, 99, 7, seed=1)
    assert len(a) == 99 and len(set(a.tolist())) == 99
    assert a.min() >= 7 and a.max() <= 3000 - 7
    np.testing.assert_array_equal(a, st.shifts_for(3000, 99, 7, seed=1))
    assert not np.array_equal(a, st.shifts_for(3000, 99, 7, seed=2))


def test_shifted_rows_are_circular_shifts() -> None:
    x = np.arange(6.0)
    rows = st.shifted(x, np.array([1, 4]))
    np.testing.assert_array_equal(rows[0], np.roll(x, 1))
    np.testing.assert_array_equal(rows[1], np.roll(x, 4))


def test_block_permutations_move_whole_blocks() -> None:
    rng = np.random.default_rng(3)
    rows = st.block_permutations(23, 50, 7, rng)
    assert rows.shape == (50, 23)
    for row in rows:
        assert sorted(row.tolist()) == list(range(23))
        # Consecutive positions are consecutive days except at a block's edge (4 blocks).
        steps = (np.diff(row) % 23) != 1
        assert steps.sum() <= 4


def test_block_indices_are_runs_of_consecutive_days() -> None:
    rng = np.random.default_rng(5)
    rows = st.block_indices(20, 30, 4, rng)
    assert rows.shape == (30, 20)
    assert rows.min() >= 0 and rows.max() < 20
    blocks = rows.reshape(30, 5, 4)
    assert (np.diff(blocks, axis=2) == 1).all()


def test_empirical_p_counts_the_observation_itself() -> None:
    null = np.linspace(-0.5, 0.5, 99)
    p = st.permutation_p(0.0, null, upper=False)
    assert p.shifts == 99
    assert p.p == p.p_empirical == pytest.approx(100 / 100)
    upper = st.permutation_p(0.5, np.linspace(0, 1, 101), upper=True)
    assert upper.p_empirical == pytest.approx((1 + 51) / 102)


def test_tail_p_below_the_count_resolution_and_conservative_for_few_draws() -> None:
    rng = np.random.default_rng(2)
    null = np.tanh(rng.normal(0, 0.1, 200))
    far = st.permutation_p(float(np.tanh(0.45)), null, upper=False)
    assert far.p_empirical == pytest.approx(1 / 201)
    assert 0 < far.p < 1 / 201
    # The t tail with the null's effective draws: never smaller than the normal tail.
    z = np.arctanh(null)
    normal = 2 * stats.norm.sf(abs(0.45 - z.mean()) / z.std(ddof=1))
    assert far.p >= normal
    smooth = np.tanh(np.convolve(rng.normal(0, 0.1, 260), np.ones(30) / 5.5, "valid")[:200])
    assert st.effective_draws(np.arctanh(smooth)) < 40
    assert st.effective_draws(z) > 100


def test_nan_draws_are_left_out_of_the_null() -> None:
    null = np.r_[np.linspace(-0.3, 0.3, 50), np.nan, np.nan]
    assert st.permutation_p(0.1, null, upper=False).shifts == 50


def test_percentile_interval_ignores_failed_draws() -> None:
    low, high = st.percentile_interval(np.r_[np.arange(101.0), np.nan], 0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))


def test_an_empty_null_gives_p_one() -> None:
    p = st.permutation_p(0.5, np.array([np.nan, np.nan]), upper=False)
    assert (p.p, p.p_empirical, p.shifts) == (1.0, 1.0, 0)


def _ar1(phi: float, days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros(days)
    noise = rng.normal(0, np.sqrt(1 - phi**2), days)
    for t in range(1, days):
        out[t] = phi * out[t - 1] + noise[t]
    return out


def test_lag1_autocorrelation_is_robust_and_clipped() -> None:
    y = 6 + 1.5 * _ar1(0.6, 3000, 1)
    y[np.random.default_rng(2).random(3000) < 0.15] = np.nan
    assert st.lag1_autocorrelation(y) == pytest.approx(0.6, abs=0.05)
    # A few wild days barely move it (ranks).
    wild = y.copy()
    wild[::100] = 1e6
    assert st.lag1_autocorrelation(wild) == pytest.approx(0.6, abs=0.06)
    assert st.lag1_autocorrelation(_ar1(0.0, 3000, 3)) < 0.06
    assert st.lag1_autocorrelation(_ar1(-0.5, 3000, 4)) == 0.0  # clipped at 0
    assert st.lag1_autocorrelation(_ar1(0.98, 3000, 5)) == st.MAX_PHI  # clipped at 0.9
    assert st.lag1_autocorrelation(np.full(100, 5.0)) == 0.0
    assert st.lag1_autocorrelation(_ar1(0.6, st.MIN_PHI_PAIRS, 6)) == 0.0  # too few pairs


def test_prewhitened_residuals_lose_the_autocorrelation() -> None:
    y = 6 + 1.5 * _ar1(0.6, 3000, 7)
    y[np.random.default_rng(8).random(3000) < 0.15] = np.nan
    e = st.prewhitened(y)
    np.testing.assert_array_equal(np.isnan(e), np.isnan(y))
    both = ~np.isnan(e[:-1]) & ~np.isnan(e[1:])
    assert abs(np.corrcoef(e[:-1][both], e[1:][both])[0, 1]) < 0.05
    # Every day is a residual of the same spread, after a gap too.
    after_gap = np.r_[False, np.isnan(y[:-1])] & ~np.isnan(y)
    assert np.std(e[after_gap]) == pytest.approx(np.nanstd(e), rel=0.12)


def test_prewhitened_is_the_one_step_residual_and_the_k_step_after_a_gap() -> None:
    y = 6 + 1.5 * _ar1(0.5, 200, 9)
    y[[50, 51, 52, 120]] = np.nan
    e = st.prewhitened(y)
    phi = st.lag1_autocorrelation(y)
    mean = np.nanmean(y)
    c = y - mean
    assert e[10] == pytest.approx(c[10] - phi * c[9])
    # Day 53 follows day 49, four days before: its prediction is phi^4 of it.
    scale = np.sqrt((1 - phi**8) / (1 - phi**2))
    assert e[53] == pytest.approx((c[53] - phi**4 * c[49]) / scale)
    assert e[0] == pytest.approx(c[0] * np.sqrt(1 - phi**2))
    # A series without lag-1 autocorrelation is tested as it is.
    flat = np.r_[np.tile([4.0, 6.0], 50)]
    assert st.prewhitened(flat) is flat
