"""The `natal` calculation module: a user's birth chart, and the service behind `/v1/me/natal`.

A chart is computed once, when the user stores their birth instant and place (DE421 through
`trackd.domain.astronomy.natal_chart`), and kept with its points: Sun … Pluto with sign and
retrograde flag, the Ascendant and the Midheaven. Every query names the tenant; a user reads
and changes only their own chart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.astronomy import OutOfEphemerisRange, natal_chart
from trackd.domain.birth import InvalidBirth, birth_instant
from trackd.errors import TrackdError
from trackd.modules.base import Contribution, Module, ModuleConfig, SynthesisContext
from trackd.store.repos import natal_charts as repo
from trackd.store.repos.natal_charts import StoredChart

LOCAL_FORMAT_LENGTH = 40


class InvalidChart(TrackdError):
    """The birth data cannot make a chart; the message says what to fix."""


class NatalConfig(ModuleConfig):
    """The natal chart has nothing to configure: its points are fixed."""


def longitudes(points: dict[str, Any]) -> dict[str, float]:
    """Point name → longitude of a stored chart's points."""
    return {name: float(point["longitude"]) for name, point in points.items()}


async def set_chart(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    *,
    birth: datetime,
    timezone: str | None,
    latitude: float,
    longitude: float,
) -> StoredChart:
    """Compute and store the user's chart (replacing theirs); the caller commits.

    Args:
        birth: an aware instant, or a naive wall-clock time read in `timezone`.
        timezone: IANA zone of a naive `birth`, else None.

    Raises:
        InvalidChart: a naive time without zone, an unknown zone, an ambiguous or skipped
            local time, a place off the globe, or a birth outside 1900-2050 (DE421's span).
    """
    try:
        instant = birth_instant(birth, timezone)
        chart = natal_chart(instant, latitude, longitude)
    except (InvalidBirth, OutOfEphemerisRange, ValueError) as exc:
        raise InvalidChart(str(exc)) from None
    points = {
        name: {
            "longitude": p.longitude,
            "sign": p.sign,
            "degree": p.degree,
            "retrograde": p.retrograde,
        }
        for name, p in chart.points.items()
    }
    return await repo.put(
        session,
        tenant_id,
        user_id,
        birth_at=chart.birth,
        birth_zone=timezone,
        birth_local=birth.isoformat()[:LOCAL_FORMAT_LENGTH] if timezone else None,
        latitude=latitude,
        longitude=longitude,
        points=points,
    )


async def get_chart(session: AsyncSession, tenant_id: str, user_id: str) -> StoredChart | None:
    return await repo.get(session, tenant_id, user_id)


async def delete_chart(session: AsyncSession, tenant_id: str, user_id: str) -> bool:
    """Delete the user's chart; False when they had none. The caller commits."""
    return await repo.remove(session, tenant_id, user_id)


def chart_view(chart: StoredChart) -> dict[str, Any]:
    """A stored chart as JSON."""
    return {
        "user_id": chart.user_id,
        "birth": chart.birth_at.isoformat(),
        "birth_local": chart.birth_local,
        "timezone": chart.birth_zone,
        "latitude": chart.latitude,
        "longitude": chart.longitude,
        "points": chart.points,
        "updated_at": chart.updated_at.isoformat(),
    }


class NatalModule(Module[NatalConfig]):
    name = "natal"
    layer = "calculation"
    version = "1.0.0"
    description = "A user's birth chart: Sun … Pluto with signs and retrograde flags, ASC, MC."
    config_model = NatalConfig

    async def contribute_to_synthesis(
        self, tenant: str, user: str | None, context: SynthesisContext[NatalConfig]
    ) -> Contribution:
        chart = await get_chart(context.session, tenant, user) if user else None
        if chart is None:
            return self.contribution(
                {"chart": None},
                ["no natal chart: store one with PUT /v1/me/natal"] if user else [],
                confidence=0.0,
                as_of=None,
            )
        sun, asc = chart.points["sun"], chart.points["ascendant"]
        return self.contribution(
            {"chart": chart_view(chart)},
            [f"Sun in {sun['sign']}, Ascendant in {asc['sign']}"],
            confidence=1.0,
            as_of=chart.updated_at,
        )
