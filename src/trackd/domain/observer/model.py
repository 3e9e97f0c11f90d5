"""What the observer's analysis takes in and gives back: daily series, options, results.

Everything here holds native Python values (str, int, float, date, tuples, dicts), never a
numpy object, so that a result can be stored, sent between processes or rendered as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

OutcomeKind = Literal["numeric", "binary"]
DriverKind = Literal["numeric", "binary", "circular"]
TestName = Literal["spearman", "mann_whitney", "circular_linear"]

# Driver families of trackd's own drivers: the daily maximum Kp, storm days and southward Bz
# measure one geomagnetic activity; the lunar phase and the Moon's illumination one Moon.
GEOMAGNETIC = "geomagnetic"
LUNAR = "lunar"

TEST_OF_DRIVER: dict[str, TestName] = {
    "numeric": "spearman",
    "binary": "mann_whitney",
    "circular": "circular_linear",
}


def _check_values(what: str, name: str, values: Mapping[date, float], binary: bool) -> None:
    if not name:
        raise ValueError(f"{what} needs a name")
    for day, value in values.items():
        if not isinstance(day, date):
            raise ValueError(f"{what} {name!r}: keys must be dates, got {day!r}")
        if not math.isfinite(value):
            raise ValueError(f"{what} {name!r}: the value on {day} is not a finite number")
        if binary and value not in (0, 1):
            raise ValueError(f"{what} {name!r}: a binary series holds 0 or 1, got {value} on {day}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A user's daily outcome: the mean of a score, or a symptom's presence (1) or absence (0).

    Attributes:
        name: identifier ("energy", "headache").
        values: day -> value; a missing day is simply absent.
        kind: "numeric" (means of a score or metric) or "binary" (presence per day).
        label: how a sentence names it ("energy"); defaults to the name.
        unit: the unit of a numeric outcome's differences ("points").
    """

    name: str
    values: Mapping[date, float]
    kind: OutcomeKind = "numeric"
    label: str = ""
    unit: str = "points"

    def __post_init__(self) -> None:
        if self.kind not in ("numeric", "binary"):
            raise ValueError(f"outcome {self.name!r}: kind must be numeric or binary")
        _check_values("outcome", self.name, self.values, self.kind == "binary")

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True, slots=True)
class Driver:
    """A daily driver the outcomes are tested against.

    Attributes:
        name: identifier ("kp_max", "storm_day", "lunar_phase").
        values: day -> value (numeric; 0/1 for binary; degrees for circular).
        kind: "numeric", "binary" or "circular" (an angle: 0° and 360° are the same day).
        label: how a sentence names it: "the daily maximum Kp", "a geomagnetic storm",
            "the lunar phase"; defaults to the name.
        days_label: for a binary driver, what its days are called ("storm days").
        family: drivers that measure one phenomenon share a family ("geomagnetic" for the
            daily maximum Kp, storm days and southward Bz): a run reports the tests of one
            outcome that pass against one family as one finding. Empty: its own family.
    """

    name: str
    values: Mapping[date, float]
    kind: DriverKind
    label: str = ""
    days_label: str = ""
    family: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TEST_OF_DRIVER:
            raise ValueError(f"driver {self.name!r}: kind must be numeric, binary or circular")
        _check_values("driver", self.name, self.values, self.kind == "binary")

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def days_title(self) -> str:
        return self.days_label or f"{self.title} days"

    @property
    def phenomenon(self) -> str:
        """The family a finding groups this driver's tests by: the declared one, or its name."""
        return self.family or self.name


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    """How a run tests and what it reports.

    Attributes:
        lags: day lags tested: lag k pairs the outcome of day d with the driver of day d - k.
        q: false discovery rate of the Benjamini-Hochberg procedure; a finding has q <= this.
        min_overlap_days: fewest days with both outcome and (lagged) driver to run a test.
        min_group_size: fewest days on each side of a binary driver to run a test.
        permutations: most circular shifts of the driver per test (all admissible shifts are
            used when there are fewer: a window of T days has T - 2 * min_shift_days + 1),
            each applied to the driver and to the driver reversed in time (twice as many
            draws); for a circular driver, the number of block permutations of the outcome.
        min_shift_days: smallest circular shift; nearer shifts keep the observed alignment.
        seed: seeds the choice of shifts and the bootstrap, so a run is reproducible.
        bootstrap_draws: moving-block bootstrap draws for a finding's confidence interval.
        ci_level: confidence level of that interval.
        block_days: bootstrap block length; None picks round(n ** (1/3)) for n paired days.
        prewhiten: test an outcome's residuals after its own lag-1 autocorrelation
            (e_t = y_t - phi y_(t-1)) instead of the outcome itself; effects stay on the
            outcome's scale.
    """

    lags: tuple[int, ...] = (0, 1, 2, 3)
    q: float = 0.1
    min_overlap_days: int = 60
    min_group_size: int = 5
    permutations: int = 999
    min_shift_days: int = 7
    seed: int = 0
    bootstrap_draws: int = 1000
    ci_level: float = 0.95
    block_days: int | None = None
    prewhiten: bool = True

    def __post_init__(self) -> None:
        if (
            not self.lags
            or any(lag < 0 for lag in self.lags)
            or len(set(self.lags)) != len(self.lags)
        ):
            raise ValueError("lags must be distinct whole days >= 0, at least one")
        if not 0 < self.q < 1:
            raise ValueError("q must lie between 0 and 1")
        if self.min_overlap_days < 3:
            raise ValueError("min_overlap_days must be at least 3")
        if self.min_group_size < 1:
            raise ValueError("min_group_size must be at least 1")
        if self.permutations < 19:
            raise ValueError("permutations must be at least 19")
        if self.min_shift_days < 1:
            raise ValueError("min_shift_days must be at least 1")
        if self.bootstrap_draws < 100:
            raise ValueError("bootstrap_draws must be at least 100")
        if not 0.5 <= self.ci_level < 1:
            raise ValueError("ci_level must lie in [0.5, 1)")
        if self.block_days is not None and self.block_days < 1:
            raise ValueError("block_days must be at least 1")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A test that was not run, and why."""

    outcome: str
    driver: str
    lag: int
    reason: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """One outcome x driver x lag test that ran.

    Attributes:
        test: "spearman" (numeric driver: rho), "mann_whitney" (binary driver: rank-biserial
            correlation from U) or "circular_linear" (Mardia's R from the correlations of the
            outcome with the cosine and sine of the angle).
        statistic: rho, the rank-biserial r, or R.
        effect: rho; the difference in the outcome's means (driver days minus other days,
            in the outcome's units); or R.
        p: permutation p-value over circular shifts of the driver (and of the driver
            reversed in time), or over block
            permutations of the outcome for a circular driver (see `p_empirical`; the tail
            of the null distribution gives it when too few draws reach the statistic).
        p_empirical: (1 + draws at least as extreme) / (1 + draws).
        shifts: draws in the null distribution (shifts of the driver both ways, or block
            permutations).
        q: Benjamini-Hochberg adjusted p-value over every test of the run.
        n_days: days with both the outcome and the lagged driver.
        days_on: binary driver: days of the driver among them (None otherwise).
        means: binary driver: the outcome's mean on driver days and on the others.
        peak_degrees: circular driver: the angle at which the fitted cosine peaks.
        amplitude: circular driver: the fitted cosine's amplitude, in the outcome's units.
    """

    outcome: str
    driver: str
    lag: int
    test: TestName
    statistic: float
    effect: float
    p: float
    p_empirical: float
    shifts: int
    q: float
    n_days: int
    days_on: int | None = None
    means: tuple[float, float] | None = None
    peak_degrees: float | None = None
    amplitude: float | None = None


@dataclass(frozen=True, slots=True)
class Supporting:
    """Another test of a finding's phenomenon that passed the false discovery rate too."""

    driver: str
    lag: int
    p: float
    q: float
    effect: float


@dataclass(frozen=True, slots=True)
class Finding:
    """One phenomenon: the strongest of the tests of one outcome that passed the run's
    threshold against one driver family at neighbouring lags, with its effect's bootstrap
    interval.

    `direction` is "positive"/"negative" (numeric driver), "higher"/"lower" (the outcome on
    a binary driver's days) or "cyclic" (circular driver). `sentence` says it in plain words.
    `family` is the drivers' family (or the driver's name); `also` the other tests of the
    phenomenon that passed, strongest first (supporting evidence, not separate findings).
    """

    result: Comparison
    direction: str
    ci_low: float
    ci_high: float
    ci_level: float
    sentence: str
    family: str = ""
    also: tuple[Supporting, ...] = ()

    @property
    def outcome(self) -> str:
        return self.result.outcome

    @property
    def driver(self) -> str:
        return self.result.driver

    @property
    def lag(self) -> int:
        return self.result.lag

    @property
    def tests(self) -> frozenset[tuple[str, int]]:
        """(driver, lag) of every test of the phenomenon: the finding's and the supporting."""
        return frozenset({(self.driver, self.lag), *((a.driver, a.lag) for a in self.also)})


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything one run tested and found.

    Attributes:
        tests: every test that ran (with p and q).
        skipped: the tests that did not run, each with its reason.
        findings: the phenomena among the tests with q <= options.q (the tests of one outcome
            against one driver family at neighbouring lags are one finding), strongest first.
        summary: one sentence: how many tests ran, were skipped, passed.
        q: the threshold used.
    """

    tests: tuple[Comparison, ...]
    skipped: tuple[Skipped, ...]
    findings: tuple[Finding, ...]
    summary: str
    q: float
    options: AnalysisOptions = field(default_factory=AnalysisOptions)

    @property
    def tests_run(self) -> int:
        return len(self.tests)

    @property
    def tests_skipped(self) -> int:
        return len(self.skipped)

    @property
    def tests_passed(self) -> int:
        """Tests with q <= the threshold (each a finding or a finding's supporting test)."""
        return sum(t.q <= self.q for t in self.tests)
