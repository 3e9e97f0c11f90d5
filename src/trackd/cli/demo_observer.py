"""The demo user's journal and one observer run, so that the dashboard's observer pages have
something to show.

120 days of mood and energy (autocorrelated noise, seeded), mood rising towards the full Moon,
and a run of the real analysis over the drivers the demo can supply (the Moon and Mercury,
computed; the demo's solar history holds only a few days, so its tests are skipped and the run
says so). The run is stored as a nightly run is: without a tracked task.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np

from trackd.domain.journal import JournalEntryIn
from trackd.errors import Conflict
from trackd.modules import journal, service
from trackd.modules.observer_drivers import sky_drivers
from trackd.modules.observer_runs import run_for_user
from trackd.runtime import Runtime

JOURNAL_DAYS = 120
SEED = 2026
CONFIG = {
    "drivers": ["kp_max", "storm_day", "lunar_phase", "lunar_illumination", "retrograde"],
    "outcomes": ["mood", "energy"],
}


def _ar1(days: int, phi: float, rng: np.random.Generator) -> list[float]:
    out, value = [], 0.0
    for noise in rng.standard_normal(days):
        value = phi * value + math.sqrt(1 - phi**2) * float(noise)
        out.append(value)
    return out


async def demo_observer(runtime: Runtime, tenant: str, user: str, now: datetime) -> uuid.UUID:
    """Store `user`'s journal and the tenant's observer configuration, run the analysis;
    returns the run's id."""
    rng = np.random.default_rng(SEED)
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=JOURNAL_DAYS)
    mood_noise, energy_noise = _ar1(JOURNAL_DAYS, 0.5, rng), _ar1(JOURNAL_DAYS, 0.5, rng)
    async with runtime.sessions() as s, s.begin():
        # Kept as it is when an earlier start on the same database wrote it.
        with contextlib.suppress(Conflict):
            await service.write_config(s, tenant, "observer", config=CONFIG, version=0)
        config = await journal.observer_config(s, tenant)
        (lunar,) = sky_drivers(first, today, {"lunar_phase"})
        for i in range(JOURNAL_DAYS):
            day = first + timedelta(days=i)
            # Highest at the full Moon (180°), lowest at the new Moon.
            lift = -1.5 * math.cos(math.radians(lunar.values[day]))
            entry = JournalEntryIn(
                id=f"demo-{day.isoformat()}",
                timestamp=datetime(day.year, day.month, day.day, 20, tzinfo=UTC),
                mood_score=round(min(10.0, max(1.0, 6 + lift + 1.2 * mood_noise[i]))),
                energy_score=round(min(10.0, max(1.0, 6 + 1.5 * energy_noise[i]))),
            )
            await journal.record(s, tenant, user, entry, config)
    return await run_for_user(runtime.sessions, tenant, user, config, now=now)
