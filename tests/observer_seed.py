"""A tenant with observed users, for the observer's chart and page tests: a solar history of
one Kp a day, journals whose energy is `effect` points lower on storm days (mood is noise), and
a run of the real analysis for each user, stored through the observer's runs code."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.history import Retention
from trackd.domain.journal import JournalEntryIn
from trackd.modules import journal, service
from trackd.modules.observer_runs import run_for_user
from trackd.snapshots.service import backfill_history
from trackd.sources.base import Snapshot

DAYS = 150
CONFIG = {
    "drivers": ["kp_max", "storm_day", "lunar_phase"],
    "outcomes": ["mood", "energy"],
    "lags": [0, 1, 2],
    "permutations": 199,
    "min_overlap_days": 30,
}
TESTS_PER_RUN = 2 * 3 * 3


@dataclass(frozen=True)
class Observed:
    storm_days: set[date]
    kp: dict[date, float]
    runs: dict[str, uuid.UUID]  # user -> their run's id
    now: datetime


async def _solar(session: AsyncSession, tenant: str, first: date, kp: np.ndarray) -> None:
    snapshots = [
        Snapshot(
            subject="solar",
            source="noaa_swpc",
            data={"kp": {"official": {"kp": float(kp[i])}}, "mag": {"bz": -2.0 * float(kp[i])}},
            taken_at=datetime(d.year, d.month, d.day, 12, tzinfo=UTC),
        )
        for i in range(len(kp))
        for d in [first + timedelta(days=i)]
    ]
    await backfill_history(session, tenant, snapshots, retention=Retention(keep=10_000))


async def seed_journals(
    session: AsyncSession,
    tenant: str,
    effects: Mapping[str, float],
    *,
    config: Mapping[str, object] = CONFIG,
    seed: int = 11,
    journal_days: int | None = None,
    today: date,
) -> dict[date, float]:
    """In `session`'s transaction: the tenant's observer `config`, a solar history of DAYS days
    up to `today` (one Kp a day, Bz following it) and, for each user of `effects`, a journal of
    `journal_days` (default DAYS) days whose energy is `effect` points off on storm days (Kp of 5
    or more). The days' Kp."""
    rng = np.random.default_rng(seed)
    first = today - timedelta(days=DAYS)
    kp = np.where(rng.random(DAYS) < 0.18, 6.0, rng.uniform(0.5, 3.5, DAYS)).round(2)
    days = {first + timedelta(days=i): float(kp[i]) for i in range(DAYS)}
    await service.write_config(session, tenant, "observer", config=dict(config), version=0)
    stored = await journal.observer_config(session, tenant)
    await _solar(session, tenant, first, kp)
    for user, effect in effects.items():
        noise = rng.normal(0, 1.0, (DAYS, 2))
        for i in range(DAYS - (journal_days or DAYS), DAYS):
            d = first + timedelta(days=i)
            energy = 6 + noise[i, 0] + (effect if days[d] >= 5 else 0.0)
            entry = JournalEntryIn(
                id=f"{user}-{i}",
                timestamp=datetime(d.year, d.month, d.day, 18, tzinfo=UTC),
                mood_score=int(np.clip(round(6 + noise[i, 1]), 1, 10)),
                energy_score=int(np.clip(round(energy), 1, 10)),
            )
            await journal.record(session, tenant, user, entry, stored)
    return days


def storm_days_of(days: Mapping[date, float]) -> set[date]:
    return {d for d, kp in days.items() if kp >= 5}


async def seed_observed(
    sessions: async_sessionmaker[AsyncSession],
    tenant: str,
    effects: Mapping[str, float],
    *,
    seed: int = 11,
    journal_days: int | None = None,
) -> Observed:
    """The tenant's observer configuration, solar history and, for each user of `effects`,
    a journal of `journal_days` (default DAYS) days and one run (see `seed_journals`)."""
    now = datetime.now(UTC).replace(microsecond=0)
    async with sessions() as s, s.begin():
        days = await seed_journals(
            s, tenant, effects, seed=seed, journal_days=journal_days, today=now.date()
        )
        config = await journal.observer_config(s, tenant)
    runs = {user: await run_for_user(sessions, tenant, user, config, now=now) for user in effects}
    return Observed(storm_days_of(days), days, runs, now)
