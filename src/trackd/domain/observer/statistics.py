"""The test statistics, their null distributions over circular shifts, and block bootstraps.

The statistic of an observed pairing comes from scipy (`spearmanr`, `mannwhitneyu`) or from
numpy's correlations (Mardia's circular-linear R). Its null distribution is the same statistic
over every circular shift of the driver: one row per shift of a (shifts x days) matrix, with a
mask of the days where both series exist, so that a test costs a few matrix operations rather
than a loop over shifts. The tests check the row kernels against scipy on the unshifted
series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy.stats is imported inside the functions that use it: it takes half a second to load,
# and every trackd process imports this module (tests/unit/test_cli_startup.py).

Array = Any  # numpy arrays; the package's public values are native Python types.

# Fewer shifts than this at least as extreme as the observed statistic, and the p-value comes
# from the tail fitted to the shift distribution (the count alone cannot go below
# 1 / (shifts + 1), far above what Benjamini-Hochberg needs over dozens of tests).
TAIL_BELOW_EXCEEDANCES = 10
_CLIP = 1.0 - 1e-12


# The largest lag-1 autocorrelation prewhitening removes, and the fewest pairs of consecutive
# days it is estimated from (fewer and the outcome is tested as it is).
MAX_PHI = 0.9
MIN_PHI_PAIRS = 20


def lag1_autocorrelation(y: Array) -> float:
    """A robust lag-1 autocorrelation of a daily series with missing days (NaN).

    Spearman's rho of the pairs of consecutive observed days, turned into the Pearson
    correlation it implies for a Gaussian series (2 sin(pi rho / 6)), clipped to
    [0, MAX_PHI]; 0 with fewer than MIN_PHI_PAIRS pairs.
    """
    from scipy import stats

    both = ~np.isnan(y[:-1]) & ~np.isnan(y[1:])
    if int(both.sum()) < MIN_PHI_PAIRS:
        return 0.0
    before, after = y[:-1][both], y[1:][both]
    if np.ptp(before) == 0 or np.ptp(after) == 0:
        return 0.0
    rho = float(stats.spearmanr(before, after).statistic)
    if not math.isfinite(rho):
        return 0.0
    return min(MAX_PHI, max(0.0, 2 * math.sin(math.pi * rho / 6)))


def prewhitened(y: Array) -> Array:
    """The residuals of a daily series after its own lag-1 autocorrelation (NaN on missing days).

    With phi = `lag1_autocorrelation(y)` and the series centred on its mean, e_t = y_t - phi
    y_(t-1). A day whose previous day is missing is predicted from the last observed day k days
    back (phi^k times it) and its residual divided by sqrt((1 - phi^(2k)) / (1 - phi^2)), so
    that every residual has the spread of a one-day one (the first day: its own value, scaled
    likewise). A series with phi = 0 is returned as it is.
    """
    phi = lag1_autocorrelation(y)
    if phi == 0.0:
        return y
    days = len(y)
    present = ~np.isnan(y)
    centred = np.where(present, y - float(y[present].mean()), np.nan)
    last_seen = np.maximum.accumulate(np.where(present, np.arange(days), -1))
    previous = np.r_[-1, last_seen[:-1]]
    known = previous >= 0
    gap = np.where(known, np.arange(days) - previous, days)
    predicted = np.where(known, phi**gap * centred[np.maximum(previous, 0)], 0.0)
    spread = np.sqrt((1 - phi ** (2 * gap)) / (1 - phi**2))
    return (centred - predicted) / spread


def shifts_for(days: int, permutations: int, min_shift: int, seed: int) -> Array:
    """The circular shifts of a window of `days` days: all admissible ones, or a seeded sample.

    A shift s moves the driver s days later, wrapping round the window; shifts closer than
    `min_shift` to 0 (either way) are left out.
    """
    admissible = np.arange(min_shift, days - min_shift + 1)
    if len(admissible) <= permutations:
        return admissible
    rng = np.random.default_rng([seed, days])
    return np.sort(rng.choice(admissible, size=permutations, replace=False))


def shifted(x: Array, shifts: Array) -> Array:
    """Row i is `x` moved shifts[i] days later, wrapping round: x[(t - s) mod T]."""
    days = len(x)
    return x[(np.arange(days)[None, :] - shifts[:, None]) % days]


def row_ranks(values: Array, mask: Array) -> Array:
    """Average ranks of each row's masked-in values (NaN where masked out)."""
    from scipy import stats

    return stats.rankdata(np.where(mask, values, np.nan), axis=1, nan_policy="omit")


def pearson_rows(a: Array, b: Array, mask: Array) -> Array:
    """Pearson's r of each row pair over its masked-in days (NaN for a constant row)."""
    w = mask.astype(float)
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = np.where(mask, a, 0.0).sum(axis=1) / n
        mb = np.where(mask, b, 0.0).sum(axis=1) / n
        da = np.where(mask, a - ma[:, None], 0.0)
        db = np.where(mask, b - mb[:, None], 0.0)
        r = (da * db).sum(axis=1) / np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    return np.clip(r, -1.0, 1.0)


def spearman_rows(x: Array, y_ranks: Array, mask: Array) -> Array:
    """Spearman's rho per row: Pearson's r of the ranks among each row's paired days.

    `y_ranks` are the outcome's ranks among each row's paired days (`row_ranks`; one row
    broadcast to all when the driver has every day, so the pairs never change).
    """
    return pearson_rows(row_ranks(x, mask), y_ranks, mask)


def spearman_shift_rows(x: Array, y: Array, present: Array, shifts: Array) -> Array:
    """Spearman's rho per shift of a driver that has every day (the outcome has `present`).

    The same as `spearman_rows` on `shifted(x, shifts)` without sorting a row per shift: the
    driver is sorted once, and a row's ranks among the days it lands on are running counts
    along that order (ties get the mean of their group's first and last rank).
    """
    from scipy import stats

    days = len(x)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], days] - 1
    group = np.repeat(np.arange(len(starts)), ends - starts + 1)
    lands = (order[None, :] + shifts[:, None]) % days
    counted = present[lands]
    running = np.cumsum(counted, axis=1)
    before = np.where(starts > 0, running[:, np.maximum(starts - 1, 0)], 0)
    mean_rank = (before + 1 + running[:, ends]) / 2
    rx = np.where(counted, mean_rank[:, group], 0.0)
    y_ranks = np.zeros(days)
    y_ranks[present] = stats.rankdata(y[present])
    ry = y_ranks[lands]
    n = int(present.sum())
    centre = (n + 1) / 2
    cov = (rx * ry).sum(axis=1) - n * centre * centre
    var_x = (rx * rx).sum(axis=1) - n * centre * centre
    var_y = float(y_ranks @ y_ranks) - n * centre * centre
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(cov / np.sqrt(var_x * var_y), -1.0, 1.0)


def rank_biserial_rows(on: Array, y_ranks: Array, mask: Array) -> Array:
    """The rank-biserial correlation 2U/(n1 n0) - 1 per row (U of the driver's days).

    Positive when the outcome ranks higher on the driver's days; NaN when a group is empty.
    `y_ranks` as for `spearman_rows`.
    """
    ranks = np.where(mask, y_ranks, 0.0)
    group = mask & (on > 0.5)
    n1 = group.sum(axis=1).astype(float)
    n0 = mask.sum(axis=1) - n1
    u1 = np.where(group, ranks, 0.0).sum(axis=1) - n1 * (n1 + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * u1 / (n1 * n0) - 1


def circular_r2_rows(angle_degrees: Array, y: Array, mask: Array) -> Array:
    """Mardia's circular-linear R squared per row, from the three Pearson correlations."""
    radians = np.deg2rad(angle_degrees)
    cos, sin = np.cos(radians), np.sin(radians)
    rc = pearson_rows(y, cos, mask)
    rs = pearson_rows(y, sin, mask)
    rcs = pearson_rows(cos, sin, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = (rc**2 + rs**2 - 2 * rc * rs * rcs) / (1 - rcs**2)
    return np.clip(r2, 0.0, 1.0)


def spearman(x: Array, y: Array) -> float:
    """Spearman's rho of paired samples (scipy)."""
    from scipy import stats

    return float(stats.spearmanr(x, y).statistic)


def rank_biserial(on: Array, y: Array) -> float:
    """2U/(n1 n0) - 1 with U from scipy's Mann-Whitney test of the driver's days vs the rest."""
    from scipy import stats

    y1, y0 = y[on > 0.5], y[on <= 0.5]
    u = float(stats.mannwhitneyu(y1, y0, alternative="two-sided").statistic)
    return 2 * u / (len(y1) * len(y0)) - 1


def circular_r2(angle_degrees: Array, y: Array) -> float:
    """Mardia's circular-linear R squared (Mardia & Jupp 2000, §11.2.1)."""
    radians = np.deg2rad(angle_degrees)
    corr = np.corrcoef(np.vstack([y, np.cos(radians), np.sin(radians)]))
    rc, rs, rcs = corr[0, 1], corr[0, 2], corr[1, 2]
    return float(np.clip((rc**2 + rs**2 - 2 * rc * rs * rcs) / (1 - rcs**2), 0.0, 1.0))


def cosine_fit(angle_degrees: Array, y: Array) -> tuple[float, float]:
    """Least-squares y = a + b cos + c sin: the angle of the peak (degrees) and the amplitude."""
    radians = np.deg2rad(angle_degrees)
    design = np.column_stack([np.ones_like(radians), np.cos(radians), np.sin(radians)])
    (_, b, c), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(np.rad2deg(np.arctan2(c, b)) % 360.0), float(math.hypot(b, c))


@dataclass(frozen=True, slots=True)
class PValue:
    p: float
    p_empirical: float
    shifts: int


def effective_draws(null: Array) -> float:
    """How many independent draws the null sample is worth.

    Neighbouring circular shifts give nearly the same statistic when the series are
    autocorrelated; the sample (in shift order) is worth N / tau draws, with tau the
    integrated autocorrelation time summed over the initial positive autocorrelations.
    """
    n = len(null)
    centred = null - null.mean()
    var = float(centred @ centred)
    if n < 4 or var == 0:
        return float(n)
    tau = 1.0
    for k in range(1, n // 2):
        rho = float(centred[:-k] @ centred[k:]) / var
        if rho <= 0:
            break
        tau += 2 * rho
    return max(2.0, n / tau)


def permutation_p(observed: float, null: Array, *, upper: bool) -> PValue:
    """The p-value of `observed` against the null sample `null` (in shift order).

    Two-sided correlations (upper=False) are compared on Fisher's z scale, centred on the
    null's mean; a squared correlation (upper=True) counts draws at least as large. When
    fewer than TAIL_BELOW_EXCEEDANCES draws are as extreme, the count is too coarse and the
    p-value comes from the tail of a distribution fitted to the draws: Student's t for z, an F
    for R squared (n R^2 is chi-squared with 2 degrees of freedom for independent days, so a
    scaled chi-squared absorbs the autocorrelation). Their degrees of freedom come from the
    null's effective number of independent draws, so that the uncertainty of the fitted scale
    is carried into the p-value.
    """
    from scipy import stats

    null = null[np.isfinite(null)]
    draws = len(null)
    if draws < 2:
        return PValue(p=1.0, p_empirical=1.0, shifts=draws)
    if upper:
        exceed = int((null >= observed - 1e-12).sum())
        mean = float(null.mean())
        dfd = 2 * effective_draws(null)
        tail = float(stats.f.sf(observed / mean, 2, dfd)) if mean > 0 else 0.0
    else:
        z = np.arctanh(np.clip(null, -_CLIP, _CLIP))
        zo = math.atanh(max(-_CLIP, min(_CLIP, observed)))
        centre, sd = float(z.mean()), float(z.std(ddof=1))
        exceed = int((np.abs(z - centre) >= abs(zo - centre) - 1e-12).sum())
        df = effective_draws(z) - 1
        tail = 2 * float(stats.t.sf(abs(zo - centre) / sd, max(df, 1.0))) if sd > 0 else 0.0
    empirical = (1 + exceed) / (1 + draws)
    p = empirical if exceed >= TAIL_BELOW_EXCEEDANCES or tail == 0.0 else tail
    return PValue(p=min(1.0, p), p_empirical=empirical, shifts=draws)


def block_permutations(days: int, count: int, block: int, rng: np.random.Generator) -> Array:
    """Rows of day indices: the days cut into blocks of `block` consecutive days (from a
    random offset, wrapping round) and the blocks put in a random order.

    Within a block the days keep their order, so the outcome keeps its short-range
    autocorrelation; a periodic structure longer than the block is broken.
    """
    blocks = -(-days // block)
    order = np.argsort(rng.random((count, blocks)), axis=1)
    index = (order[:, :, None] * block + np.arange(block)).reshape(count, -1)
    # The last block is short when `block` does not divide `days`: drop its missing days.
    index = index[index < days].reshape(count, days)
    offset = rng.integers(0, block, size=(count, 1))
    return (index + offset) % days


def block_indices(n: int, draws: int, block: int, rng: np.random.Generator) -> Array:
    """Moving-block bootstrap: `draws` rows of n indices made of runs of `block` consecutive."""
    block = max(1, min(block, n))
    count = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(draws, count))
    return (starts[:, :, None] + np.arange(block)).reshape(draws, -1)[:, :n]


def percentile_interval(values: Array, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
