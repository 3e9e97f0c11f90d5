"""The journal's entry for routers and commands: a user's entries, settings, daily outcome
series and CSV import.

Every call names the tenant and the user; nothing here reads or changes another user's
journal. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.journal import (
    DailySeries,
    InvalidEntry,
    JournalEntryIn,
    check_text,
    daily_outcomes,
    day_bounds,
    free_tags,
    local_day,
    zone,
)
from trackd.domain.journal_csv import Row
from trackd.modules import config as configs
from trackd.modules.observer import NAME, ObserverConfig, ObserverModule
from trackd.store.models import JournalEntryRow, new_id
from trackd.store.repos import journal as repo
from trackd.store.repos import module_config

__all__ = ["InvalidEntry", "JournalEntryIn"]

_OBSERVER = ObserverModule()

Outcome = Literal["new", "updated", "unchanged", "invalid"]


async def observer_config(session: AsyncSession, tenant_id: str) -> ObserverConfig:
    """The observer's configuration in force for `tenant_id` (vocabulary, text length...)."""
    rows = await module_config.visible(session, tenant_id, NAME)
    return _OBSERVER.parse_config(configs.merge(_OBSERVER, rows, tenant_id).config)


def view(row: JournalEntryRow, timezone: str, config: ObserverConfig) -> dict[str, Any]:
    """An entry as the API shows it: with the day it is on in the user's `timezone`, and its
    symptom tags outside the vocabulary flagged as free tags."""
    return {
        "id": row.entry_id,
        "timestamp": row.timestamp.isoformat(),
        "day": local_day(row.timestamp, zone(timezone)).isoformat(),
        "timezone": timezone,
        "mood_score": row.mood_score,
        "energy_score": row.energy_score,
        "sleep_hours": row.sleep_hours,
        "symptoms": list(row.symptoms),
        "free_tags": free_tags(row.symptoms, config.symptom_vocabulary),
        "text": row.text,
        "metrics": dict(row.metrics),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


async def record(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    entry: JournalEntryIn,
    config: ObserverConfig,
) -> tuple[JournalEntryRow, repo.Saved]:
    """Store `entry` for the user, under its own id or a new one.

    Raises:
        InvalidEntry: its text is longer than the configuration allows.
    """
    check_text(entry.text, config.text_max_length)
    entry_id = entry.id or str(new_id())
    return await repo.save(session, tenant_id, user_id, entry_id, entry)


async def timezone(session: AsyncSession, tenant_id: str, user_id: str) -> str:
    return await repo.timezone(session, tenant_id, user_id)


async def set_timezone(session: AsyncSession, tenant_id: str, user_id: str, name: str) -> str:
    """Store the user's time zone.

    Raises:
        InvalidEntry: `name` is not an IANA time zone (field `timezone`).
    """
    zone(name)
    await repo.set_timezone(session, tenant_id, user_id, name)
    return name


get = repo.get
remove = repo.remove


async def page(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> tuple[list[JournalEntryRow], tuple[datetime, UUID] | None]:
    """One page of the user's entries, newest first, and where the next page starts (None
    on the last page)."""
    rows = await repo.page(
        session, tenant_id, user_id, since=since, until=until, after=after, limit=limit + 1
    )
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], (last.timestamp, last.id)


async def daily_series(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    *,
    since: date | None = None,
    until: date | None = None,
) -> DailySeries:
    """The user's outcomes per local day (the user's time zone), from day `since` to day
    `until` included (None: from the first entry, to the last): what the observer reads."""
    tz = zone(await repo.timezone(session, tenant_id, user_id))
    start = day_bounds(since, tz)[0] if since else None
    end = day_bounds(until, tz)[1] if until else None
    return daily_outcomes(await repo.between(session, tenant_id, user_id, start, end), tz)


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do), with the lines of each outcome."""

    lines: dict[Outcome, list[int]] = field(
        default_factory=lambda: {"new": [], "updated": [], "unchanged": [], "invalid": []}
    )
    problems: list[str] = field(default_factory=list)


async def import_rows(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    rows: Iterable[Row],
    *,
    progress: Callable[[int], None] = lambda done: None,
) -> ImportReport:
    """Store the valid `rows` as the user's entries; each is matched by its own id, else by
    its timestamp, so importing a file again changes nothing. Invalid rows are counted and
    left out (the caller decides whether any makes the import fail)."""
    report = ImportReport()
    done = 0
    for row in rows:
        if row.entry is None:
            report.lines["invalid"].append(row.line)
            report.problems.extend(f"line {row.line}: {p}" for p in row.problems)
            continue
        entry = row.entry
        existing = None
        if entry.id is None:
            existing = await repo.at(session, tenant_id, user_id, entry.timestamp)
        entry_id = entry.id or (existing.entry_id if existing else str(new_id()))
        _, saved = await repo.save(session, tenant_id, user_id, entry_id, entry, existing=existing)
        report.lines[saved].append(row.line)
        done += 1
        progress(done)
    return report
