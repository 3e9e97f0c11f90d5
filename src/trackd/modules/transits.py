"""The `transits` tracking module: where Sun … Pluto are, and their aspects to each user's chart.

The sky is the same for everyone: the bodies' places, speeds and the planets' stations are
computed once per instant (`sky_at`) and shared; per user only the aspects to their chart's
points are worked out, for a whole batch of users at once (`aspects_many`). A daily schedule
(`ensure_refresh_schedule`) polls the `transits` source (`TransitRefresh`) once per shard of
the tenant's users; each poll stores one snapshot per user, source `transits`, subject the
user id: the user's transit history (`history_key` "transit_tracking").
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.astronomy import (
    ASPECTS,
    BODIES,
    DEFAULT_ORBS,
    EXACT_WITHIN,
    PLANETS,
    aspects_many,
    check_orbs,
    moon_ingresses_between,
    moon_phases_between,
    planet_positions,
    position_series,
    stations,
    upcoming_exact,
)
from trackd.errors import NotFound
from trackd.modules.base import (
    Contribution,
    Module,
    ModuleConfig,
    SynthesisContext,
    TrackingHistory,
)
from trackd.modules.config import load as load_config
from trackd.modules.natal import longitudes
from trackd.modules.registry import registry as module_registry
from trackd.scheduling.service import active_schedule, create_schedule
from trackd.snapshots.service import latest_snapshot
from trackd.sources.base import InvalidTarget, Snapshot
from trackd.store.repos import natal_charts
from trackd.store.repos.natal_charts import BUCKETS

if TYPE_CHECKING:
    import httpx

    from trackd.modules.config import ModuleConfigCache

SOURCE = "transits"
HISTORY_KEY = "transit_tracking"
# The fields of each stored aspect row, in order.
ASPECT_FIELDS = ("transiting", "natal", "aspect", "orb", "exact", "applying")
DEFAULT_CRON = "0 0 * * *"
MAX_UPCOMING_DAYS = 90

Body = Literal[
    "sun", "moon", "mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune", "pluto"
]
AspectName = Literal["conjunction", "sextile", "square", "trine", "opposition"]


class TransitsConfig(ModuleConfig):
    """Transit settings."""

    orbs: dict[AspectName, float] = Field(
        default_factory=lambda: cast(dict[AspectName, float], dict(DEFAULT_ORBS)),
        description="Allowed orb per aspect in degrees (0 to 15); aspects not named keep "
        "their default (conjunction 8, sextile 4, square 6, trine 6, opposition 8).",
    )
    exact_within: float = Field(
        default=EXACT_WITHIN, gt=0, le=5, description="An orb below this (degrees) is exact."
    )
    bodies: list[Body] = Field(
        default_factory=lambda: cast(list[Body], list(BODIES)),
        min_length=1,
        description="The transiting bodies (Sun, Moon, Mercury … Pluto by default).",
    )
    station_window_days: int = Field(
        default=7,
        ge=0,
        le=60,
        description="Stations this many days either side of the reading are reported.",
    )
    stale_after_hours: float = Field(
        default=36.0, gt=0, le=24 * 30, description="A stored reading older than this is stale."
    )
    shards: int = Field(
        default=8,
        ge=1,
        le=BUCKETS,
        description="Polls per daily refresh: the tenant's users are split over this many.",
    )

    @field_validator("orbs")
    @classmethod
    def _orbs(cls, value: dict[str, float]) -> dict[str, float]:
        return check_orbs(value)


@dataclass(frozen=True, slots=True)
class Sky:
    """The part of a transit reading that is the same for every user."""

    instant: datetime
    positions: Any  # trackd.domain.astronomy.Positions
    shown: dict[str, dict[str, Any]]
    stations: list[dict[str, Any]]


def _when(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


@functools.lru_cache(maxsize=4)
def _sky(instant: datetime, bodies: tuple[str, ...], window_days: int) -> Sky:
    positions = planet_positions(instant, bodies)
    shown = {
        name: {
            "longitude": round(p.longitude, 4),
            "sign": p.sign,
            "degree": round(p.degree, 4),
            "speed": round(p.speed, 5),
            "retrograde": p.retrograde,
        }
        for name, p in positions.bodies.items()
    }
    planets = [b for b in bodies if b in PLANETS]
    found = []
    if window_days and planets:
        span = timedelta(days=window_days)
        found = [
            {
                "body": s.body,
                "kind": s.kind,
                "instant": _when(s.instant),
                "sign": s.sign,
                "degree": round(s.degree, 4),
            }
            for s in stations(instant - span, instant + span, planets)
        ]
    return Sky(instant, positions, shown, found)


def sky_at(instant: datetime, config: TransitsConfig) -> Sky:
    """The bodies' places and the stations around `instant`: computed once, shared by every
    user (the last few instants are kept in memory)."""
    return _sky(
        instant.astimezone(UTC), tuple(dict.fromkeys(config.bodies)), config.station_window_days
    )


def readings(
    sky: Sky, charts: Sequence[Mapping[str, float]], config: TransitsConfig
) -> list[dict[str, Any]]:
    """Each chart's transit reading: the shared sky and that chart's aspects.

    Each aspect is a row in `ASPECT_FIELDS` order, tightest first; orbs in degrees to 1e-3.
    """
    rows = aspects_many(
        sky.positions, charts, cast(dict[str, float], config.orbs), config.exact_within, decimals=3
    )
    base = {
        "as_of": _when(sky.instant),
        "positions": sky.shown,
        "stations": sky.stations,
        "aspect_fields": list(ASPECT_FIELDS),
    }
    return [{**base, "aspects": [list(r) for r in found]} for found in rows]


def expand(reading: Mapping[str, Any]) -> dict[str, Any]:
    """A stored reading with its aspect rows as objects (what the routes answer)."""
    fields = reading.get("aspect_fields") or ASPECT_FIELDS
    return {
        **reading,
        "aspects": [dict(zip(fields, row, strict=True)) for row in reading.get("aspects", [])],
    }


def refresh_instant(now: datetime) -> datetime:
    """The instant a refresh computes for: the start of the hour, so that every shard of one
    run (and a retry within the hour) reads the same sky."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Transits:
    """A user's transits as answered: the reading, when it was true, and whether it is old."""

    reading: dict[str, Any]
    as_of: datetime
    stale: bool
    stored: bool

    def view(self, user_id: str) -> dict[str, Any]:
        """As JSON: the reading, whose it is, `as_of`, `stale`, and `stored` (false when
        computed on the spot because no reading was stored since the chart)."""
        return {
            "user_id": user_id,
            **self.reading,
            "as_of": self.as_of.isoformat(),
            "stale": self.stale,
            "stored": self.stored,
        }


async def current_transits(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    config: TransitsConfig,
    now: datetime,
) -> Transits | None:
    """The user's latest stored reading, or one computed now when none is stored yet; None
    when the user has no chart."""
    chart = await natal_charts.get(session, tenant_id, user_id)
    if chart is None:
        return None
    stored = await latest_snapshot(session, tenant_id, SOURCE, user_id)
    # A reading computed before the chart last changed is of the old chart.
    if stored is not None and stored.recorded_at >= chart.updated_at:
        age = now - stored.taken_at
        stale = age > timedelta(hours=config.stale_after_hours)
        return Transits(expand(stored.data), stored.taken_at, stale, True)
    sky = sky_at(now, config)
    (reading,) = readings(sky, [longitudes(chart.points)], config)
    return Transits(expand(reading), sky.instant, False, False)


async def upcoming(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    config: TransitsConfig,
    now: datetime,
    days: int,
) -> dict[str, Any]:
    """The next `days` days: the Moon's phases and sign ingresses, the planets' stations, and
    (when the user has a chart) the exact instants of transits to it, found by root-finding."""
    if not 1 <= days <= MAX_UPCOMING_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_UPCOMING_DAYS}, got {days}")
    chart = await natal_charts.get(session, tenant_id, user_id)
    end = now + timedelta(days=days)
    bodies = tuple(dict.fromkeys(config.bodies))
    series = position_series(now, days, bodies)
    exact = (
        [
            {
                "instant": _when(e.instant),
                "transiting": e.transiting,
                "natal": e.natal,
                "aspect": e.aspect,
                "longitude": round(e.longitude, 4),
                "retrograde": e.retrograde,
            }
            for e in upcoming_exact(series, longitudes(chart.points), tuple(ASPECTS))
        ]
        if chart is not None
        else None
    )
    return {
        "from": _when(now),
        "until": _when(end),
        "moon_phases": [
            {"phase": name, "instant": _when(when)} for name, when in moon_phases_between(now, end)
        ],
        "moon_ingresses": [
            {"sign": i.sign, "instant": _when(i.instant)} for i in moon_ingresses_between(now, end)
        ],
        "stations": [
            {
                "body": s.body,
                "kind": s.kind,
                "instant": _when(s.instant),
                "sign": s.sign,
                "degree": round(s.degree, 4),
            }
            for s in series.stations
        ],
        "exact_transits": exact,
        "chart": chart is not None,
    }


class TransitsModule(Module[TransitsConfig]):
    name = "transits"
    layer = "tracking"
    version = "1.0.0"
    description = (
        "Transits: Sun … Pluto now (speed, retrograde), their aspects to the user's natal "
        "points (applying or separating, exact), stations; refreshed daily for every chart."
    )
    config_model = TransitsConfig
    history_key = HISTORY_KEY
    # Per user: the subject of each snapshot is the user's id.
    history = TrackingHistory(HISTORY_KEY, SOURCE)

    async def contribute_to_synthesis(
        self, tenant: str, user: str | None, context: SynthesisContext[TransitsConfig]
    ) -> Contribution:
        found = (
            await current_transits(context.session, tenant, user, context.config, context.now)
            if user
            else None
        )
        if found is None:
            return self.contribution(
                {"transits": None},
                ["no natal chart: store one with PUT /v1/me/natal to see transits"] if user else [],
                confidence=0.0,
                as_of=None,
            )
        reading = found.reading
        said = [
            f"{a['transiting']} {a['aspect']} natal {a['natal']} "
            f"({'exact' if a['exact'] else 'applying' if a['applying'] else 'separating'}, "
            f"orb {a['orb']:.1f}°)"
            for a in reading["aspects"][:3]
        ]
        said += [f"{s['body']} stations {s['kind']} {s['instant']}" for s in reading["stations"]]
        if found.stale:
            said.insert(0, f"the last reading is from {found.as_of.isoformat()}: it is stale")
        return self.contribution(
            {**reading, "stale": found.stale},
            said,
            confidence=0.5 if found.stale else 1.0,
            as_of=found.as_of,
        )


# -- the daily refresh ------------------------------------------------------------------------


def shard_targets(tenant_id: str, shards: int) -> list[dict[str, Any]]:
    """The targets of a refresh: the tenant's buckets split into `shards` ranges."""
    edges = [round(i * BUCKETS / shards) for i in range(shards + 1)]
    return [
        {"tenant": tenant_id, "buckets": [lo, hi]}
        for lo, hi in itertools.pairwise(edges)
        if hi > lo
    ]


async def ensure_refresh_schedule(
    session: AsyncSession,
    tenant_id: str,
    config: TransitsConfig,
    *,
    cron: str = DEFAULT_CRON,
    now: datetime | None = None,
) -> bool:
    """Create the tenant's daily transit refresh unless it has one; True when created."""
    if await active_schedule(session, tenant_id, source=SOURCE) is not None:
        return False
    await create_schedule(
        session,
        tenant_id,
        name="transits daily refresh",
        source=SOURCE,
        targets=shard_targets(tenant_id, config.shards),
        cron=cron,
        labels={"module": "transits"},
        # Built here in the source's canonical form; a process that runs no worker (the
        # CLI) need not have the source registered.
        validate_targets=False,
        now=now,
    )
    return True


async def config_of(session: AsyncSession, tenant_id: str) -> TransitsConfig:
    """The tenant's effective transits configuration, read from the store."""
    module = TransitsModule()
    effective = await load_config(session, module_registry, tenant_id, module.name)
    return module.parse_config(effective.config)


class NoChart(NotFound):
    """The user has no natal chart; the message says how to store one."""


async def transits_of(
    session: AsyncSession, tenant_id: str, user_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """A user's transits as `GET /v1/tracking/transits` answers them, with the tenant's
    configuration read from the store (for commands such as `trackd tracking show transits`).

    Raises:
        NoChart: the user has no chart in the tenant.
    """
    config = await config_of(session, tenant_id)
    found = await current_transits(session, tenant_id, user_id, config, now or datetime.now(UTC))
    if found is None:
        raise NoChart(
            f"user {user_id!r} has no natal chart in tenant {tenant_id!r}: store one with "
            "`trackd natal set` or PUT /v1/me/natal"
        )
    return found.view(user_id)


class TransitRefresh:
    """The `transits` source: one shard of a tenant's users, a snapshot per user.

    Built by the runtime with its sessions and module configuration cache (it reads the
    charts from the store; nothing goes over the network). The poller records its snapshots in
    bulk (`bulk_history`): one statement per batch, not a round trip per user.
    """

    name = SOURCE
    bulk_history = True

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        configs: ModuleConfigCache,
        module: TransitsModule | None = None,
        clock: Any = None,
    ) -> None:
        self._sessions = sessions
        self._configs = configs
        self._module = module or TransitsModule()
        self._clock = clock or (lambda: datetime.now(UTC))

    def validate(self, target: Mapping[str, Any]) -> Mapping[str, Any]:
        tenant = target.get("tenant")
        buckets = target.get("buckets")
        if not isinstance(tenant, str) or not tenant:
            raise InvalidTarget("a transits target names its tenant: {'tenant': 'acme', ...}")
        if (
            not isinstance(buckets, list | tuple)
            or len(buckets) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in buckets)
            or not 0 <= buckets[0] < buckets[1] <= BUCKETS
        ):
            raise InvalidTarget(
                f"a transits target's 'buckets' is [low, high] with 0 <= low < high <= {BUCKETS}"
            )
        return {"tenant": tenant, "buckets": [buckets[0], buckets[1]]}

    async def fetch(self, target: Mapping[str, Any], client: httpx.AsyncClient) -> list[Snapshot]:
        tenant = str(target["tenant"])
        low, high = target["buckets"]
        config = await self._configs.config(tenant, self._module)
        async with self._sessions() as session:
            charts = await natal_charts.points_in_buckets(session, tenant, range(low, high))
        if not charts:
            return []
        # CPU work off the event loop, so that the poll's lease heartbeat keeps beating.
        sky = await asyncio.to_thread(sky_at, refresh_instant(self._clock()), config)
        found = await asyncio.to_thread(
            readings, sky, [longitudes(points) for _, points in charts], config
        )
        return [
            Snapshot(subject=user, source=SOURCE, data=reading, taken_at=sky.instant)
            for (user, _), reading in zip(charts, found, strict=True)
        ]
