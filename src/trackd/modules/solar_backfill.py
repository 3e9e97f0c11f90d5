"""Backfill of the solar history from GFZ Potsdam's Kp series (definitive since 1932).

Each 3-hourly Kp becomes an entry of the tenant's `solar_tracking` history (source `noaa_swpc`,
subject `solar`) in its own season `gfz`, stamped with the interval's start, so it never
becomes the "latest" live reading and a history read finds it in place by its time. A re-run
stores nothing twice. The history's retention still applies: a backfill reaching further back
than the module's `history_days` (or the deployment's snapshot retention for `noaa_swpc`) is
refused with what to raise, rather than stored and pruned at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain import space_weather as sw
from trackd.errors import TrackdError
from trackd.modules import config as configs
from trackd.modules.registry import ModuleRegistry
from trackd.modules.registry import registry as default_registry
from trackd.modules.solar import SOURCE, SUBJECT, SolarConfig
from trackd.modules.tracking import retention
from trackd.settings import Settings
from trackd.snapshots.service import backfill_history, retention_for
from trackd.sources.base import Snapshot
from trackd.sources.gfz_kp import FIRST_DAY, GfzKpSource

SEASON: Final = "gfz"
SPAN: Final = timedelta(days=365)


class BackfillRefused(TrackdError):
    """The range cannot be backfilled as asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class BackfillResult:
    fetched: int
    stored: int

    @property
    def already_there(self) -> int:
        return self.fetched - self.stored


def spans(since: date, until: date) -> list[tuple[date, date]]:
    """[since, until] cut into pieces GFZ answers in one request (a year at most)."""
    out = []
    start = since
    while start <= until:
        end = min(until, start + SPAN - timedelta(days=1))
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


def entry(reading: sw.KpReading) -> Snapshot:
    """One GFZ Kp as an entry of the solar history, shaped as the live readings' Kp parts."""
    kp_source = f"gfz_{reading.status or 'kp'}"
    data: dict[str, Any] = {
        "kp": {
            "official": {"time": reading.time.isoformat(), "kp": reading.kp},
            "estimate": None,
            "used": kp_source,
        },
        "status": {
            "level": sw.status_level(reading.kp),
            "g_scale": sw.g_scale(reading.kp),
            "kp": reading.kp,
            "kp_source": kp_source,
        },
        "as_of": reading.time.isoformat(),
        "backfilled_from": "gfz",
    }
    return Snapshot(SUBJECT, SOURCE, data, reading.time, season=SEASON)


async def backfill_solar(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    gfz: GfzKpSource,
    client: httpx.AsyncClient,
    *,
    since: date,
    until: date,
    settings: Settings,
    today: date | None = None,
    progress: Callable[[int, int, int], None] | None = None,
    registry: ModuleRegistry = default_registry,
) -> BackfillResult:
    """Store GFZ's Kp from `since` to `until` (whole days, UTC) into `tenant_id`'s solar
    history; `progress(spans done, spans in all, stored so far)` after each request.

    Raises:
        BackfillRefused: a range before 1932, reversed, in the future, or beyond retention.
        SourceError: GFZ failed (what was stored before stays stored).
    """
    today = today or datetime.now(UTC).date()
    if since < FIRST_DAY:
        raise BackfillRefused(f"GFZ's Kp series starts on {FIRST_DAY.isoformat()}")
    if until > today:
        until = today
    if since > until:
        raise BackfillRefused(f"--since {since.isoformat()} is after {until.isoformat()}")
    async with sessions() as session:
        effective = await configs.load(session, registry, tenant_id, "solar")
    config = SolarConfig.model_validate(effective.config)
    needed = (today - since).days + 1
    if needed > config.history_days:
        raise BackfillRefused(
            f"the solar history keeps {config.history_days} days; to backfill from "
            f"{since.isoformat()} raise it first: trackd modules config solar --tenant "
            f"{tenant_id} --set history_days={needed}"
        )
    if needed > retention_for(SOURCE, settings).max_age.days:
        raise BackfillRefused(
            f"snapshots of {SOURCE} are kept {retention_for(SOURCE, settings).max_age.days} "
            f'days; set TRACKD_SNAPSHOT_RETENTION=\'{{"{SOURCE}": {{"days": {needed}}}}}\''
        )
    keep = retention(config)
    pieces = spans(since, until)
    fetched = stored = 0
    for done, (start, end) in enumerate(pieces, start=1):
        readings = await gfz.series({"start": start.isoformat(), "end": end.isoformat()}, client)
        fetched += len(readings)
        async with sessions() as session, session.begin():
            stored += await backfill_history(
                session, tenant_id, [entry(r) for r in readings], retention=keep
            )
        if progress is not None:
            progress(done, len(pieces), stored)
    return BackfillResult(fetched, stored)
