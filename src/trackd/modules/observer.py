"""The `observer` intelligence module: a user's journal against what trackd tracked.

Its configuration says what a journal entry may hold (the symptom vocabulary, the text's
length) and how the analysis runs (the false discovery rate `q`, the lags, the minimum days
and group sizes below which a test is not run, the permutations and their seed, the drivers
and the outcomes). Its contribution to a user's synthesis is the journal's counts and, once
a run has finished, the findings that hold (each a plain sentence), or that nothing passed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from trackd.domain.journal import MAX_TEXT, METRIC_PREFIX, SYMPTOM_PREFIX, TAG_PATTERN
from trackd.modules.base import Contribution, Module, ModuleConfig, SynthesisContext
from trackd.store.repos import journal as journal_repo
from trackd.store.repos import observer as observer_repo

NAME = "observer"

# Daily drivers the analysis knows; `history.<source>.<field>` names any other numeric
# history the user owns in trackd (a league tracker's rating, say).
DRIVERS = (
    "kp_max",
    "storm_day",
    "bz_south",
    "flare_mx_day",
    "lunar_phase",
    "lunar_illumination",
    "moon_sign",
    "retrograde",
    "transit_aspects",
)
HISTORY_DRIVER = re.compile(r"^history\.[a-z0-9_]{1,64}\.[A-Za-z0-9_.]{1,128}$")
# Outcomes of the daily series (trackd.domain.journal.DailySeries); `metric.*` and
# `symptom.*` take every metric or symptom the user recorded.
OUTCOMES = ("mood", "energy", "sleep_hours")
OUTCOME = re.compile(
    rf"^({'|'.join(OUTCOMES)}|{re.escape(METRIC_PREFIX)}([a-z][a-z0-9_]{{0,63}}|\*)"
    rf"|{re.escape(SYMPTOM_PREFIX)}([a-z0-9][a-z0-9_\-]{{0,63}}|\*))$"
)

Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN)]


class ObserverConfig(ModuleConfig):
    """What a journal entry may hold and how the observer's analysis runs."""

    symptom_vocabulary: list[Tag] = Field(
        default=[
            "headache",
            "migraine",
            "fatigue",
            "insomnia",
            "anxiety",
            "low_mood",
            "irritability",
            "brain_fog",
            "nausea",
            "joint_pain",
            "palpitations",
            "dizziness",
        ],
        max_length=500,
        description="Known symptom tags; other tags are kept as free tags and flagged so.",
    )
    text_max_length: int = Field(
        default=4000, ge=1, le=MAX_TEXT, description="Characters a journal entry's text may have."
    )
    q: float = Field(
        default=0.1, gt=0, lt=1, description="False discovery rate (Benjamini-Hochberg)."
    )
    lags: list[Annotated[int, Field(ge=0, le=14)]] = Field(
        default=[0, 1, 2, 3],
        min_length=1,
        max_length=15,
        description="Days between a driver and the outcome it is tested against.",
    )
    min_overlap_days: int = Field(
        default=30, ge=3, le=3650, description="Days with both driver and outcome to run a test."
    )
    min_group_size: int = Field(
        default=5, ge=2, le=1000, description="Days in each group of a binary driver to test it."
    )
    permutations: int = Field(
        default=1000, ge=99, le=100_000, description="Circular shifts for each p-value."
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the permutations.")
    drivers: list[str] = Field(
        default=list(DRIVERS),
        min_length=1,
        max_length=100,
        description=f"Drivers tested: {', '.join(DRIVERS)}, or history.<source>.<field>.",
    )
    outcomes: list[str] = Field(
        default=[*OUTCOMES, f"{METRIC_PREFIX}*", f"{SYMPTOM_PREFIX}*"],
        min_length=1,
        max_length=100,
        description="Outcomes tested: mood, energy, sleep_hours, metric.<name>, "
        "symptom.<tag>, metric.* or symptom.*.",
    )

    @field_validator("lags", "symptom_vocabulary", "drivers", "outcomes")
    @classmethod
    def _no_repeats(cls, values: list[int] | list[str]) -> list[int] | list[str]:
        if len(set(values)) != len(values):
            raise ValueError("has repeated values")
        return values

    @field_validator("drivers")
    @classmethod
    def _known_drivers(cls, values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in DRIVERS and not HISTORY_DRIVER.match(v)]
        if unknown:
            raise ValueError(f"unknown drivers {unknown}; known: {', '.join(DRIVERS)}")
        return values

    @field_validator("outcomes")
    @classmethod
    def _known_outcomes(cls, values: list[str]) -> list[str]:
        unknown = [v for v in values if not OUTCOME.match(v)]
        if unknown:
            raise ValueError(f"unknown outcomes {unknown}")
        return values


class ObserverModule(Module[ObserverConfig]):
    name = NAME
    layer = "intelligence"
    version = "0.1.0"
    description = (
        "A user's journal (mood, energy, sleep, symptoms, metrics) against what trackd "
        "tracked: rank tests with circular-shift nulls and Benjamini-Hochberg, run nightly "
        "and on demand; it reports the findings that hold."
    )
    config_model = ObserverConfig

    async def contribute_to_synthesis(
        self, tenant: str, user: str | None, context: SynthesisContext[ObserverConfig]
    ) -> Contribution:
        if user is None:
            return self.contribution(
                {"entries": None},
                ["the journal is a user's own: ask with a user's token"],
                confidence=0.0,
                as_of=None,
            )
        session = context.session
        entries, first, last = await journal_repo.summary(session, tenant, user, context.now)
        data: dict[str, Any] = {
            "entries": entries,
            "first_entry_at": first.isoformat() if first else None,
            "last_entry_at": last.isoformat() if last else None,
            "timezone": await journal_repo.timezone(session, tenant, user),
        }
        finished = [
            r for r in await observer_repo.runs(session, tenant, user, limit=5) if r.finished_at
        ]
        if not finished:
            said = (
                [f"{entries} journal entries; no analysis has run, so no pattern is reported"]
                if entries
                else ["no journal entries yet"]
            )
            return self.contribution(data, said, confidence=1.0, as_of=context.now)
        latest = finished[0]
        holding = await observer_repo.findings(session, tenant, user, status=observer_repo.HOLDING)
        data["last_run"] = {
            "id": str(latest.id),
            "finished_at": latest.finished_at.isoformat() if latest.finished_at else None,
            "tests_run": latest.tests_run,
            "found": latest.found,
        }
        data["findings"] = len(holding)
        said = [f.sentence for f in holding] or [
            f"{latest.tests_run} tests were run and none passed: no pattern is reported"
        ]
        return self.contribution(data, said, confidence=1.0, as_of=latest.finished_at)
