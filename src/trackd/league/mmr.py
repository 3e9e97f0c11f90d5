"""A league's internal MMR for a player, from the player's tracker (seed 002's MMR module).

Four algorithms, chosen per league (guild) in an MmrConfig:

* WEIGHTED_AVERAGE: the average of the latest season's ratings, each playlist weighted as
  configured, counting only playlists with a positive weight and at least their minimum games.
* PEAK_MMR: the highest of those playlists' season peaks (the rating when no peak is known).
* ASCENDANCY: for 2v2 and 3v3, a score of current x 0.25 + peak x 0.75 (weights configurable),
  then the two scores averaged by each mode's share of the games played in the latest and the
  previous season; the peak is the best of those two seasons. (The reference implementation
  used the current rating as the peak; trackd has the real one.)
* CUSTOM: a formula over the variables in VARIABLES (rating_2v2, peak_3v3, games_1v1, ...),
  evaluated by trackd.domain.formula, never by `eval`.

Results are rounded half up to an integer. A player with nothing to count gets no MMR (None,
with the reason), never a silent 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from trackd.domain.formula import FormulaError, compile_formula
from trackd.errors import RuleBroken
from trackd.sources.rocket_league_stats import Mode, SeasonStats

MODES: Final = tuple(Mode)
# Bounds of a league's rules when they are set: far above what any league uses, and low
# enough that no sum or product of them and ratings leaves the range of a float.
MAX_WEIGHT: Final = 1000.0
MAX_MIN_GAMES: Final = 1_000_000
_SUFFIX: Final = {mode: mode.value for mode in Mode}  # "1v1" ... as in rating_1v1
# The names a reference league's formulas use, kept so they carry over unchanged.
_LEGACY_NAMES: Final = {
    Mode.ONES: "ones",
    Mode.TWOS: "twos",
    Mode.THREES: "threes",
    Mode.FOURS: "fours",
}


def _variable_names() -> frozenset[str]:
    names = {"total_games", "totalGames"}
    for mode in MODES:
        suffix = _SUFFIX[mode]
        legacy = _LEGACY_NAMES[mode]
        names |= {
            f"rating_{suffix}",
            f"peak_{suffix}",
            f"games_{suffix}",
            f"games_prev_{suffix}",
            f"peak_prev_{suffix}",
            f"alltime_peak_{suffix}",
            legacy,
            f"{legacy}Games",
        }
    return frozenset(names)


VARIABLES: Final = _variable_names()
"""What a CUSTOM formula may read. Per mode (1v1, 2v2, 3v3, 4v4): rating_, peak_ (this season's
best), games_ (this season), games_prev_ and peak_prev_ (the season before), alltime_peak_;
and total_games. The reference names ones/twos/threes/fours and onesGames... /totalGames are
accepted too. A value the tracker does not have is 0."""


class Algorithm(StrEnum):
    WEIGHTED_AVERAGE = "WEIGHTED_AVERAGE"
    PEAK_MMR = "PEAK_MMR"
    ASCENDANCY = "ASCENDANCY"
    CUSTOM = "CUSTOM"


class AscendancyWeights(BaseModel):
    """How much the current rating and the peak count in a mode's ascendancy score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    current: float = Field(default=0.25, ge=0, le=1000)
    peak: float = Field(default=0.75, ge=0, le=1000)

    @model_validator(mode="after")
    def _not_both_zero(self) -> Self:
        if self.current + self.peak <= 0:
            raise ValueError("ascendancy weights current and peak must not both be 0")
        return self


class MmrConfig(BaseModel):
    """A league's MMR rules.

    Attributes:
        algorithm: which calculation to use.
        weights: per mode, for WEIGHTED_AVERAGE; also the modes PEAK_MMR considers (those with
            a positive weight). By default 2v2 and 3v3 count equally.
        min_games: per mode, the games this season a playlist needs to count.
        ascendancy_weights: current and peak weights for ASCENDANCY.
        formula: the expression for CUSTOM, checked when the config is made.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Algorithm = Algorithm.WEIGHTED_AVERAGE
    weights: dict[Mode, float] = Field(default_factory=lambda: {Mode.TWOS: 1.0, Mode.THREES: 1.0})
    min_games: dict[Mode, int] = Field(default_factory=dict)
    ascendancy_weights: AscendancyWeights = Field(default_factory=AscendancyWeights)
    formula: str | None = Field(default=None, max_length=500)

    @classmethod
    def stored(cls, data: Mapping[str, Any]) -> MmrConfig:
        """Rules as a guild's row holds them: checked as when they are set, except for the
        upper bounds, which rules stored before those bounds existed may pass (the
        calculation copes with any finite weight).

        Raises:
            pydantic.ValidationError: the stored rules cannot be read as rules at all.
        """
        return cls.model_validate(data, context={"stored": True})

    @field_validator("weights")
    @classmethod
    def _weights(cls, weights: dict[Mode, float], info: ValidationInfo) -> dict[Mode, float]:
        bounded = not _is_stored(info)
        for mode, weight in weights.items():
            if not math.isfinite(weight) or weight < 0 or (bounded and weight > MAX_WEIGHT):
                raise ValueError(f"the weight of {mode} must be from 0 to {MAX_WEIGHT:g}")
        return weights

    @field_validator("min_games")
    @classmethod
    def _min_games(cls, min_games: dict[Mode, int], info: ValidationInfo) -> dict[Mode, int]:
        bounded = not _is_stored(info)
        for mode, games in min_games.items():
            if games < 0 or (bounded and games > MAX_MIN_GAMES):
                raise ValueError(f"the minimum games of {mode} must be from 0 to {MAX_MIN_GAMES}")
        return min_games

    @model_validator(mode="after")
    def _formula(self) -> Self:
        if self.algorithm is Algorithm.CUSTOM:
            if not self.formula:
                raise ValueError("the CUSTOM algorithm needs a formula")
            try:
                compile_formula(self.formula, VARIABLES)
            except FormulaError as exc:
                raise ValueError(f"formula: {exc}") from None
        return self


def problems(exc: ValidationError) -> str:
    """What is wrong with rules that did not validate: `field: why` per problem."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'mmr'}: {e['msg']}" for e in exc.errors()
    )


def _is_stored(info: ValidationInfo) -> bool:
    return isinstance(info.context, Mapping) and bool(info.context.get("stored"))


@dataclass(frozen=True, slots=True)
class ModeFigures:
    """One mode's numbers for the calculation.

    Attributes:
        rating: the rating in the latest season, or None when the player has none.
        peak: the best rating of the latest season (at least `rating`).
        games: games played in the latest season.
        previous_games: games played in the season before.
        previous_peak: the best rating of the season before.
        all_time_peak: the best rating ever.
    """

    rating: int | None = None
    peak: int | None = None
    games: int = 0
    previous_games: int = 0
    previous_peak: int | None = None
    all_time_peak: int | None = None


@dataclass(frozen=True, slots=True)
class MmrInputs:
    """What the calculation reads: per mode, the latest season and the one before."""

    season: int | None
    modes: dict[Mode, ModeFigures]

    @classmethod
    def from_seasons(cls, latest: SeasonStats, previous: SeasonStats | None = None) -> MmrInputs:
        """The inputs from a tracker's latest season and, when known, the season before it."""
        modes: dict[Mode, ModeFigures] = {}
        for mode in MODES:
            now = latest.playlists.get(mode)
            before = previous.playlists.get(mode) if previous is not None else None
            ever = latest.all_time_peaks.get(mode)
            rating = now.rating if now is not None else None
            modes[mode] = ModeFigures(
                rating=rating,
                peak=_best(now.peak_rating if now else None, rating),
                games=(now.matches_played or 0) if now else 0,
                previous_games=(before.matches_played or 0) if before else 0,
                previous_peak=_best(
                    before.peak_rating if before else None, before.rating if before else None
                ),
                all_time_peak=ever.rating if ever is not None else None,
            )
        return cls(latest.season, modes)

    def figures(self, mode: Mode) -> ModeFigures:
        return self.modes.get(mode) or ModeFigures()

    def variables(self) -> dict[str, float]:
        """The values a CUSTOM formula reads (see VARIABLES); what is unknown is 0."""
        values: dict[str, float] = {}
        total = 0
        for mode in MODES:
            f = self.figures(mode)
            suffix, legacy = _SUFFIX[mode], _LEGACY_NAMES[mode]
            values[f"rating_{suffix}"] = values[legacy] = float(f.rating or 0)
            values[f"peak_{suffix}"] = float(f.peak or f.rating or 0)
            values[f"games_{suffix}"] = values[f"{legacy}Games"] = float(f.games)
            values[f"games_prev_{suffix}"] = float(f.previous_games)
            values[f"peak_prev_{suffix}"] = float(f.previous_peak or 0)
            values[f"alltime_peak_{suffix}"] = float(f.all_time_peak or 0)
            total += f.games
        values["total_games"] = values["totalGames"] = float(total)
        return values


@dataclass(frozen=True, slots=True)
class MmrResult:
    """The MMR, or None with the reason there is none; `parts` shows how it was reached."""

    mmr: int | None
    algorithm: Algorithm
    season: int | None
    reason: str | None = None
    parts: dict[str, float] = field(default_factory=dict)


class MmrError(RuleBroken):
    """The MMR cannot be calculated (a custom formula failed on these numbers)."""


def calculate(config: MmrConfig, inputs: MmrInputs) -> MmrResult:
    """The player's MMR under `config`.

    Raises:
        MmrError: a CUSTOM formula failed on these values (division by zero, overflow), or
            a figure is too large to calculate with (a float cannot hold it).
    """
    try:
        if config.algorithm is Algorithm.WEIGHTED_AVERAGE:
            return _weighted_average(config, inputs)
        if config.algorithm is Algorithm.PEAK_MMR:
            return _peak(config, inputs)
        if config.algorithm is Algorithm.ASCENDANCY:
            return _ascendancy(config, inputs)
        return _custom(config, inputs)
    except OverflowError:
        # A rating no float can hold (stored from a source that sent one): no MMR rather
        # than a crash of whatever view asked for it.
        raise MmrError("a rating or game count is too large to calculate an MMR with") from None


def _counted(config: MmrConfig, inputs: MmrInputs) -> list[tuple[Mode, ModeFigures, float]]:
    """The modes with a positive weight, a rating and at least their minimum games."""
    counted = []
    for mode in MODES:
        weight = config.weights.get(mode, 0.0)
        figures = inputs.figures(mode)
        if (
            weight > 0
            and figures.rating is not None
            and figures.games >= config.min_games.get(mode, 0)
        ):
            counted.append((mode, figures, weight))
    return counted


def _nothing(config: MmrConfig, inputs: MmrInputs, reason: str) -> MmrResult:
    return MmrResult(None, config.algorithm, inputs.season, reason)


def _weighted_average(config: MmrConfig, inputs: MmrInputs) -> MmrResult:
    counted = _counted(config, inputs)
    if not counted:
        return _nothing(config, inputs, _why_none(config))
    # Only the weights' ratios matter; scaled to at most 1 their sums cannot overflow,
    # whatever weights old stored rules hold.
    largest = max(weight for _, _, weight in counted)
    scaled = [(figures, weight / largest) for _, figures, weight in counted]
    total = sum(weight for _, weight in scaled)
    value = sum((figures.rating or 0) * weight for figures, weight in scaled) / total
    parts = {f"rating_{mode.value}": float(figures.rating or 0) for mode, figures, _ in counted}
    return MmrResult(round_half_up(value), config.algorithm, inputs.season, parts=parts)


def _peak(config: MmrConfig, inputs: MmrInputs) -> MmrResult:
    counted = _counted(config, inputs)
    if not counted:
        return _nothing(config, inputs, _why_none(config))
    peaks = {f"peak_{mode.value}": float(_best(f.peak, f.rating) or 0) for mode, f, _ in counted}
    return MmrResult(
        round_half_up(max(peaks.values())), config.algorithm, inputs.season, parts=peaks
    )


def _ascendancy(config: MmrConfig, inputs: MmrInputs) -> MmrResult:
    q, r = config.ascendancy_weights.current, config.ascendancy_weights.peak
    scores: dict[Mode, float] = {}
    games: dict[Mode, int] = {}
    for mode in (Mode.TWOS, Mode.THREES):
        f = inputs.figures(mode)
        played = f.games + f.previous_games
        if f.rating is None or played == 0:
            continue
        peak = _best(f.peak, f.previous_peak, f.rating) or f.rating
        scores[mode] = (f.rating * q + peak * r) / (q + r)
        games[mode] = played
    total = sum(games.values())
    if not total:
        return _nothing(
            config, inputs, "no 2v2 or 3v3 rating with games in this season or the one before"
        )
    value = sum(scores[mode] * games[mode] / total for mode in scores)
    parts: dict[str, float] = {}
    for mode in scores:
        parts[f"score_{mode.value}"] = scores[mode]
        parts[f"share_{mode.value}"] = games[mode] / total
    return MmrResult(round_half_up(value), config.algorithm, inputs.season, parts=parts)


def _custom(config: MmrConfig, inputs: MmrInputs) -> MmrResult:
    # The config's validator requires a formula for CUSTOM; model_construct can skip it.
    if not config.formula:
        raise MmrError("the CUSTOM algorithm needs a formula")
    formula = compile_formula(config.formula, VARIABLES)
    values = inputs.variables()
    try:
        value = formula.evaluate(values)
    except FormulaError as exc:
        raise MmrError(f"the MMR formula failed: {exc}") from None
    parts = {name: values[name] for name in sorted(formula.names)}
    return MmrResult(round_half_up(value), config.algorithm, inputs.season, parts=parts)


def _why_none(config: MmrConfig) -> str:
    modes = [mode.value for mode in MODES if config.weights.get(mode, 0) > 0]
    if not modes:
        return "no playlist has a positive weight"
    return f"no rating with enough games in {', '.join(modes)}"


def _best(*values: int | None) -> int | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def round_half_up(value: float) -> int:
    """Rounded as a league rounds (half up), not as Python's round (half to even).

    Raises:
        MmrError: `value` is not a finite number.
    """
    if not math.isfinite(value):
        raise MmrError("the MMR is not a finite number")
    return math.floor(value + 0.5)
