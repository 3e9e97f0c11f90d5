"""Simulated users and skies for the observer's calibration and power checks (tests, bench).

The Moon is real: its daily phase angle (and the illumination it implies) and Mercury's
retrograde periods come from DE421 through trackd's astronomy. Geomagnetic activity is
*generated*: trackd stores no daily Kp record long enough (the GFZ and NOAA fixtures hold a few
days), so `Sky` draws daily maximum Kp from a stated model instead (see `kp_series`). The users
are AR(1) autocorrelated mood and energy around a personal mean, rounded to 1-10 with missing
days, and a symptom that comes and goes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from scipy import stats

from trackd.domain.astronomy import position_series
from trackd.domain.observer import GEOMAGNETIC, LUNAR, Driver, Outcome

# The generated daily maximum Kp: a gamma marginal with median 3+ and 22.4% of days at Kp >= 5
# (G1 or more: NOAA's space weather scales give G1 conditions on "900 days per cycle", 900 of an
# 11-year cycle's 4,018 days), in thirds, over a latent Gaussian series with lag-1 correlation
# 0.6 and a 27-day (solar rotation) recurrence of 0.3. These targets are stated, not fitted to
# a long record: replace `kp_series` with a GFZ download to check them.
KP_GAMMA_SHAPE = 3.9426
KP_GAMMA_SCALE = 0.92205
KP_LAG1 = 0.6
KP_RECURRENCE = 0.3
SOLAR_ROTATION_DAYS = 27
STORM_KP = 5.0


def kp_series(days: int, rng: np.random.Generator) -> Any:
    """Daily maximum Kp (thirds, 0-9) for `days` days from the model above."""
    burn = 4 * SOLAR_ROTATION_DAYS
    noise = rng.standard_normal(days + burn)
    latent = np.zeros(days + burn)
    for t in range(1, days + burn):
        latent[t] = KP_LAG1 * latent[t - 1] + noise[t] * np.sqrt(1 - KP_LAG1**2)
    recurrent = latent.copy()
    for t in range(SOLAR_ROTATION_DAYS, days + burn):
        recurrent[t] = KP_RECURRENCE * recurrent[t - SOLAR_ROTATION_DAYS] + latent[t] * np.sqrt(
            1 - KP_RECURRENCE**2
        )
    quantile = stats.norm.cdf(recurrent[burn:])
    kp = stats.gamma.ppf(quantile, KP_GAMMA_SHAPE, scale=KP_GAMMA_SCALE)
    return np.clip(np.round(kp * 3) / 3, 0.0, 9.0)


def _markov_days(days: int, share: float, stay: float, rng: np.random.Generator) -> Any:
    """0/1 days from a two-state chain that is on `share` of days and stays on with `stay`."""
    enter = share * (1 - stay) / (1 - share)
    out = np.zeros(days)
    draws = rng.random(days)
    for t in range(1, days):
        out[t] = draws[t] < (stay if out[t - 1] else enter)
    return out


@functools.cache
def moon_and_mercury(start: date, days: int) -> tuple[Any, Any]:
    """Real daily lunar phase angle (degrees, at 12:00 UTC) and Mercury retrograde (0/1)."""
    noon = datetime(start.year, start.month, start.day, 12, tzinfo=UTC)
    series = position_series(noon, days - 1, ("sun", "moon", "mercury"), step_days=1.0)
    grid = np.array(series.bodies["sun"].tt)
    sun, moon = (np.array(series.bodies[b].longitudes) for b in ("sun", "moon"))
    mercury = series.bodies["mercury"]
    # Mercury's samples add its stations to the daily grid: keep the grid's instants.
    on_grid = np.isin(np.array(mercury.tt), grid)
    retrograde = (np.array(mercury.speeds)[on_grid] < 0).astype(float)
    return (moon - sun) % 360.0, retrograde


@dataclass(frozen=True)
class Sky:
    """The real Moon and Mercury over `days` days from `start`, shared by simulated users."""

    start: date
    days: int
    phase: Any
    retrograde: Any

    @classmethod
    def build(cls, start: date, days: int) -> Sky:
        phase, retrograde = moon_and_mercury(start, days)
        return cls(start, days, phase, retrograde)

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)


@dataclass(frozen=True)
class Geomagnetic:
    """One draw of daily geomagnetic and solar activity (generated: see `kp_series`)."""

    kp: Any
    bz_min: Any
    flare_day: Any

    @classmethod
    def draw(cls, days: int, rng: np.random.Generator) -> Geomagnetic:
        kp = kp_series(days, rng)
        # The day's most southward Bz deepens with activity (nT).
        bz = np.round(-0.8 - 1.6 * kp + rng.normal(0, 2.0, days), 1)
        return cls(kp, bz, _markov_days(days, 0.15, 0.5, rng))

    @property
    def storm_day(self) -> Any:
        return (self.kp >= STORM_KP - 1e-9).astype(float)


def drivers(
    sky: Sky, first: int, activity: Geomagnetic, rating: dict[date, float]
) -> tuple[Driver, ...]:
    """The eight drivers from the sky's day `first` on (as many days as `activity` holds)."""
    days = len(activity.kp)
    span = range(first, first + days)

    def series(values: Any, offset: int = 0) -> dict[date, float]:
        return {sky.day(i): float(values[i - offset]) for i in span}

    illumination = (1 - np.cos(np.deg2rad(sky.phase))) / 2
    return (
        Driver(
            "kp_max",
            series(activity.kp, first),
            "numeric",
            "the daily maximum Kp",
            family=GEOMAGNETIC,
        ),
        Driver(
            "storm_day",
            series(activity.storm_day, first),
            "binary",
            "a geomagnetic storm",
            "storm days",
            family=GEOMAGNETIC,
        ),
        Driver(
            "bz_min",
            series(activity.bz_min, first),
            "numeric",
            "the most southward Bz",
            family=GEOMAGNETIC,
        ),
        Driver(
            "flare_day", series(activity.flare_day, first), "binary", "an M/X flare", "flare days"
        ),
        Driver("lunar_phase", series(sky.phase), "circular", "the lunar phase", family=LUNAR),
        Driver(
            "illumination",
            series(illumination),
            "numeric",
            "the Moon's illumination",
            family=LUNAR,
        ),
        Driver(
            "mercury_retrograde",
            series(sky.retrograde),
            "binary",
            "Mercury retrograde",
            "days of Mercury retrograde",
        ),
        Driver("rating", rating, "numeric", "your league rating"),
    )


def _ar1(days: int, phi: float, rng: np.random.Generator) -> Any:
    """A stationary AR(1) series with unit variance."""
    noise = rng.standard_normal(days) * np.sqrt(1 - phi**2)
    out = np.empty(days)
    out[0] = rng.standard_normal()
    for t in range(1, days):
        out[t] = phi * out[t - 1] + noise[t]
    return out


@dataclass(frozen=True)
class SimulatedUser:
    outcomes: tuple[Outcome, ...]
    drivers: tuple[Driver, ...]
    first_day: date


def simulate_user(
    sky: Sky,
    rng: np.random.Generator,
    days: int = 180,
    storm_effect_sd: float = 0.0,
    lags: int = 3,
) -> SimulatedUser:
    """One user over `days` days somewhere in the sky's span, with their own draw of
    geomagnetic activity (so that simulated users are independent).

    Args:
        storm_effect_sd: energy moves by this many of the user's standard deviations on the
            day after a storm day (0: no planted effect; -1: one SD lower).
        lags: days of drivers kept before the first journal day.
    """
    first = int(rng.integers(lags, sky.days - days + 1))
    activity = Geomagnetic.draw(days + lags, rng)
    dates = [sky.day(first + i) for i in range(days)]
    missing = rng.uniform(0.05, 0.2)

    def score(mean: float, sd: float, phi: float, shift: Any) -> dict[date, float]:
        latent = mean + sd * (_ar1(days, phi, rng) + shift)
        kept = rng.random(days) >= missing
        values = np.clip(np.round(latent), 1, 10)
        return {d: float(v) for d, v, k in zip(dates, values, kept, strict=True) if k}

    # activity[i] is the day first - lags + i: the day before journal day j is lags + j - 1.
    storm_before = activity.storm_day[lags - 1 : lags - 1 + days]
    mood = score(rng.uniform(4.5, 7.0), rng.uniform(1.0, 2.0), rng.uniform(0.3, 0.7), 0.0)
    energy = score(
        rng.uniform(4.5, 7.0),
        rng.uniform(1.0, 2.0),
        rng.uniform(0.3, 0.7),
        storm_effect_sd * storm_before,
    )
    headache_latent = _ar1(days, rng.uniform(0.3, 0.7), rng)
    presence = headache_latent > stats.norm.ppf(1 - rng.uniform(0.1, 0.3))
    kept = rng.random(days) >= missing
    headache = {d: float(v) for d, v, k in zip(dates, presence, kept, strict=True) if k}
    # A league rating: a random walk on the days the user played.
    walk = 1000 + np.cumsum(rng.normal(0, 12, days + lags))
    played = rng.random(days + lags) < 0.7
    rating = {
        sky.day(first - lags + i): float(round(walk[i])) for i in range(days + lags) if played[i]
    }
    return SimulatedUser(
        outcomes=(
            Outcome("mood", mood),
            Outcome("energy", energy),
            Outcome("headache", headache, kind="binary"),
        ),
        drivers=drivers(sky, first - lags, activity, rating),
        first_day=dates[0],
    )
