"""A user's daily drivers over a window, from what trackd tracked and what it computes.

- Space weather (the tenant's `solar_tracking` history, source `noaa_swpc`, subject `solar`):
  `kp_max` the day's highest Kp (official where a snapshot has it, else the estimate the
  status used), `storm_day` (that Kp >= 5), `bz_south` the day's most southward Bz (its
  minimum, nT), `flare_mx_day` (an M or X flare peaked that day).
- The sky, computed per day at 12:00 UTC: `lunar_phase` (the Moon-Sun angle: circular),
  `lunar_illumination` ((1 - cos phase) / 2), `moon_sign` (the Moon's sign as the angle of
  its middle: circular, so that Pisces neighbours Aries), `retrograde` (Mercury retrograde).
- `transit_aspects`: how many transits to the user's chart were active, from the user's
  `transit_tracking` history (the daily refresh), the day's highest count; the days that
  history lacks are computed (the bodies at 12:00 UTC against the chart, with the tenant's
  transit orbs) when the user has a chart.
- `history.<source>.<field>`: the day's mean of a numeric field (a dotted path into the
  snapshot's data) of a history the user owns: the snapshots of that source whose subject is
  the user's id or one of the user's league trackers.

Days are the user's local days (the journal's time zone); a driver lacks the days trackd has
no reading for, and the analysis leaves them out.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.astronomy import Positions, aspects_many, planet_positions, position_series
from trackd.domain.journal import local_day
from trackd.domain.observer import GEOMAGNETIC, LUNAR, Driver
from trackd.modules import transits as transits_module
from trackd.modules.natal import longitudes
from trackd.store.models import SnapshotRow, TrackerRow
from trackd.store.repos import natal_charts

SOLAR_SOURCE, SOLAR_SUBJECT = "noaa_swpc", "solar"
TRANSITS_SOURCE = "transits"
STORM_KP = 5.0

Reading = tuple[datetime, Mapping[str, Any]]


def _part(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    part = data.get(name)
    return part if isinstance(part, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def kp_of(data: Mapping[str, Any]) -> float | None:
    """A solar snapshot's Kp: the official one when it carries it, else the status's."""
    official = _number(_part(_part(data, "kp"), "official").get("kp"))
    return official if official is not None else _number(_part(data, "status").get("kp"))


def _flare_day(data: Mapping[str, Any], tz: ZoneInfo) -> date | None:
    flare = _part(data, "flare")
    peak = str(flare.get("peak_class") or flare.get("max_class") or "")
    when = flare.get("max_time") or flare.get("begin_time")
    if not peak or peak[0] not in "MX" or not isinstance(when, str):
        return None
    try:
        moment = datetime.fromisoformat(when)
    except ValueError:
        return None
    return local_day(moment if moment.tzinfo else moment.replace(tzinfo=UTC), tz)


def solar_drivers(readings: Iterable[Reading], tz: ZoneInfo, wanted: set[str]) -> list[Driver]:
    """`kp_max`, `storm_day`, `bz_south` and `flare_mx_day` per local day."""
    kp: dict[date, float] = {}
    bz: dict[date, float] = {}
    flares: set[date] = set()
    for taken_at, data in readings:
        day = local_day(taken_at, tz)
        value = kp_of(data)
        if value is not None:
            kp[day] = max(kp.get(day, value), value)
        south = _number(_part(data, "mag").get("bz"))
        if south is not None:
            bz[day] = min(bz.get(day, south), south)
        flare_day = _flare_day(data, tz)
        if flare_day is not None:
            flares.add(flare_day)
    # Flare days are known only for days with readings: the others are missing, not quiet.
    observed = set(kp) | set(bz)
    found = [
        Driver("kp_max", kp, "numeric", "the daily maximum Kp", family=GEOMAGNETIC),
        Driver(
            "storm_day",
            {d: float(v >= STORM_KP) for d, v in kp.items()},
            "binary",
            "a geomagnetic storm",
            "storm days",
            family=GEOMAGNETIC,
        ),
        Driver("bz_south", bz, "numeric", "the most southward Bz", family=GEOMAGNETIC),
        Driver(
            "flare_mx_day",
            {d: float(d in flares) for d in observed | flares},
            "binary",
            "an M or X flare",
            "flare days",
        ),
    ]
    return [d for d in found if d.name in wanted]


@functools.lru_cache(maxsize=8)
def _sky(start: date, days: int) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per day from `start` at 12:00 UTC: the lunar phase angle, the Moon's longitude and
    Mercury's retrograde (0/1); computed once per window and shared by every user."""
    noon = datetime(start.year, start.month, start.day, 12, tzinfo=UTC)
    series = position_series(noon, max(days - 1, 1), ("sun", "moon", "mercury"), step_days=1.0)
    grid = series.bodies["sun"].tt[:days]
    sun = series.bodies["sun"].longitudes[:days]
    moon = series.bodies["moon"].longitudes[:days]
    mercury = series.bodies["mercury"]
    # Mercury's samples add its stations to the daily grid: keep the grid's instants.
    speed = dict(zip(mercury.tt, mercury.speeds, strict=True))
    phase = tuple((m - s) % 360.0 for m, s in zip(moon, sun, strict=True))
    return phase, tuple(m % 360.0 for m in moon), tuple(float(speed[t] < 0) for t in grid)


def sky_drivers(start: date, end: date, wanted: set[str]) -> list[Driver]:
    """`lunar_phase`, `lunar_illumination`, `moon_sign` and `retrograde` from `start` to `end`."""
    days = (end - start).days + 1
    if days < 1 or not wanted & {"lunar_phase", "lunar_illumination", "moon_sign", "retrograde"}:
        return []
    phase, moon, retro = _sky(start, days)
    dates = [start + timedelta(days=i) for i in range(days)]

    def series(values: Sequence[float]) -> dict[date, float]:
        return dict(zip(dates, values, strict=True))

    found = [
        Driver("lunar_phase", series(phase), "circular", "the lunar phase", family=LUNAR),
        Driver(
            "lunar_illumination",
            series([(1 - _cos(p)) / 2 for p in phase]),
            "numeric",
            "the Moon's illumination",
            family=LUNAR,
        ),
        Driver(
            "moon_sign",
            series([(m // 30) * 30 + 15 for m in moon]),
            "circular",
            "the Moon's sign",
        ),
        Driver(
            "retrograde",
            series(retro),
            "binary",
            "Mercury retrograde",
            "days of Mercury retrograde",
        ),
    ]
    return [d for d in found if d.name in wanted]


def _cos(degrees: float) -> float:
    return math.cos(math.radians(degrees))


def transit_driver(readings: Iterable[Reading], tz: ZoneInfo) -> Driver:
    """`transit_aspects`: the day's highest count of transits to the user's chart."""
    counts: dict[date, float] = {}
    for taken_at, data in readings:
        aspects = data.get("aspects")
        if isinstance(aspects, list):
            day = local_day(taken_at, tz)
            counts[day] = max(counts.get(day, 0.0), float(len(aspects)))
    return Driver("transit_aspects", counts, "numeric", "the transits to your chart")


@functools.lru_cache(maxsize=1024)
def _noon_positions(day: date) -> Positions:
    """The bodies at 12:00 UTC of `day`: computed once per day and process, for every user."""
    return planet_positions(datetime(day.year, day.month, day.day, 12, tzinfo=UTC))


def computed_aspect_counts(
    chart: Mapping[str, float],
    days: Iterable[date],
    orbs: Mapping[str, float],
    exact_within: float,
) -> dict[date, float]:
    """Per day, how many transits to `chart` are active at 12:00 UTC."""
    return {
        day: float(len(aspects_many(_noon_positions(day), [chart], orbs, exact_within)[0]))
        for day in days
    }


def field_of(data: Mapping[str, Any], path: str) -> float | None:
    """The number at a dotted `path` in a snapshot's data, or None."""
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return _number(value)


def history_driver(name: str, readings: Iterable[Reading], tz: ZoneInfo) -> Driver:
    """`history.<source>.<field>`: the day's mean of the field over the user's snapshots."""
    path = name.split(".", 2)[2]
    values: dict[date, list[float]] = defaultdict(list)
    for taken_at, data in readings:
        value = field_of(data, path)
        if value is not None:
            values[local_day(taken_at, tz)].append(value)
    return Driver(
        name,
        {d: sum(v) / len(v) for d, v in values.items()},
        "numeric",
        f"your {path.replace('_', ' ')} ({name.split('.')[1]})",
    )


async def readings(
    session: AsyncSession,
    tenant_id: str,
    source: str,
    subjects: Sequence[str],
    start: datetime,
    end: datetime,
) -> list[Reading]:
    """(taken_at, data) of the tenant's snapshots of `source` for `subjects` in [start, end),
    every season, oldest first."""
    if not subjects:
        return []
    rows = await session.execute(
        select(SnapshotRow.taken_at, SnapshotRow.data)
        .where(
            SnapshotRow.tenant_id == tenant_id,
            SnapshotRow.source == source,
            SnapshotRow.subject.in_(list(subjects)),
            SnapshotRow.taken_at >= start,
            SnapshotRow.taken_at < end,
        )
        .order_by(SnapshotRow.taken_at)
    )
    return [(taken_at, data) for taken_at, data in rows]


async def owned_subjects(session: AsyncSession, tenant_id: str, user_id: str) -> list[str]:
    """The subjects of histories the user owns: their id and their live league trackers."""
    trackers = await session.scalars(
        select(TrackerRow.id).where(
            TrackerRow.tenant_id == tenant_id,
            TrackerRow.user_id == user_id,
            TrackerRow.deleted_at.is_(None),
        )
    )
    return [user_id, *(str(t) for t in trackers)]


async def _transit_aspects(
    session: AsyncSession, tenant_id: str, user_id: str, first: date, last: date, tz: ZoneInfo
) -> Driver:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(days=1)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=2)
    stored = transit_driver(
        await readings(session, tenant_id, TRANSITS_SOURCE, [user_id], start, end), tz
    )
    chart = await natal_charts.get(session, tenant_id, user_id)
    if chart is None:
        return stored
    missing = [
        day
        for day in (first + timedelta(days=i) for i in range((last - first).days + 1))
        if day not in stored.values
    ]
    if not missing:
        return stored
    config = await transits_module.config_of(session, tenant_id)
    computed = await asyncio.to_thread(
        computed_aspect_counts,
        longitudes(chart.points),
        missing,
        cast(dict[str, float], config.orbs),
        config.exact_within,
    )
    return Driver(
        stored.name, {**computed, **stored.values}, stored.kind, stored.label, stored.days_label
    )


async def user_drivers(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    names: Sequence[str],
    *,
    first: date,
    last: date,
    tz: ZoneInfo,
    solar: Sequence[Reading] | None = None,
) -> list[Driver]:
    """The drivers `names` for the user's local days `first` to `last` (`solar`: the solar
    history's readings when the caller has them already, as a nightly batch does)."""
    wanted = set(names)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(days=1)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=2)
    found: list[Driver] = []
    if wanted & {"kp_max", "storm_day", "bz_south", "flare_mx_day"}:
        if solar is None:
            solar = await readings(session, tenant_id, SOLAR_SOURCE, [SOLAR_SUBJECT], start, end)
        found += solar_drivers(solar, tz, wanted)
    found += sky_drivers(first, last, wanted)
    if "transit_aspects" in wanted:
        found.append(await _transit_aspects(session, tenant_id, user_id, first, last, tz))
    history = [n for n in names if n.startswith("history.")]
    if history:
        subjects = await owned_subjects(session, tenant_id, user_id)
        for name in history:
            source = name.split(".")[1]
            rows = await readings(session, tenant_id, source, subjects, start, end)
            found.append(history_driver(name, rows, tz))
    order = {name: i for i, name in enumerate(names)}
    return sorted(found, key=lambda d: order.get(d.name, len(order)))
