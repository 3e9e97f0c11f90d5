"""The GFZ Potsdam Kp source: the 3-hourly planetary Kp series for a date range (backfill).

Target: `{"start": "2024-05-09", "end": "2024-05-11"}` (dates, or ISO-8601 instants; a date
`end` takes the whole day), optionally `"status": "def"` for definitive values only (they lag
by weeks). A fetch returns one snapshot per 3-hour interval GFZ has a value for, stamped with
the interval's start: the history the solar module's backfill stores. GFZ's definitive Kp
goes back to 1932 (CC BY 4.0, GFZ German Research Centre for Geosciences).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

import httpx

from trackd.domain import space_weather as sw
from trackd.sources.base import InvalidTarget, Snapshot, SourceError
from trackd.sources.json_feed import base_url_setting, get_json

if TYPE_CHECKING:
    from trackd.settings import Settings

NAME: Final = "gfz_kp"
SUBJECT: Final = "kp"
PATH: Final = "/app/json/"
FIRST_DAY: Final = date(1932, 1, 1)
# One request per year at most: the backfill walks longer ranges a year at a time, which
# keeps every answer well under the outbound size cap.
MAX_SPAN: Final = timedelta(days=366)
STATUSES: Final = ("def",)


class GfzKpSource:
    """Kp from GFZ Potsdam (see the module docstring).

    Args:
        base_url: the API's base URL (TRACKD_GFZ_KP_URL through `from_settings`).
        clock: "now", to refuse ranges that start in the future (tests pass a fixed one).
    """

    name = NAME

    def __init__(self, *, base_url: str, clock: Callable[[], datetime] | None = None) -> None:
        self.base_url = base_url_setting(base_url, "TRACKD_GFZ_KP_URL")
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(cls, settings: Settings) -> GfzKpSource:
        return cls(base_url=settings.gfz_kp_url)

    def validate(self, target: Mapping[str, Any]) -> dict[str, Any]:
        """`{"start", "end"}` as ISO-8601 UTC instants, plus `status` when given.

        Raises:
            InvalidTarget: a missing or unreadable bound, end before start, a start before
                1932 or in the future, a span over a year, or an unknown status.
        """
        if not isinstance(target, Mapping):
            raise InvalidTarget('a gfz_kp target is {"start": DATE, "end": DATE}')
        unknown = set(target) - {"start", "end", "status"}
        if unknown:
            raise InvalidTarget(f"unknown target keys {sorted(unknown)}; gfz_kp takes start, end")
        start = _instant(target.get("start"), "start", end_of_day=False)
        end = _instant(target.get("end"), "end", end_of_day=True)
        if end < start:
            raise InvalidTarget("target.end is before target.start")
        if start.date() < FIRST_DAY:
            raise InvalidTarget(f"GFZ's Kp series starts on {FIRST_DAY.isoformat()}")
        if start > self._clock():
            raise InvalidTarget("target.start is in the future")
        if end - start > MAX_SPAN:
            raise InvalidTarget("a gfz_kp range spans at most a year; split longer ones")
        canonical: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat()}
        status = target.get("status")
        if status is not None:
            if status not in STATUSES:
                raise InvalidTarget(f"target.status must be one of {list(STATUSES)}")
            canonical["status"] = status
        return canonical

    async def series(
        self, target: Mapping[str, Any], client: httpx.AsyncClient
    ) -> list[sw.KpReading]:
        """The (time, Kp, status) series of the target's range, oldest first.

        Raises:
            InvalidTarget: the target is invalid.
            SourceError: GFZ failed or answered something that is not its Kp JSON.
        """
        canonical = self.validate(target)
        query = {
            "start": _z(canonical["start"]),
            "end": _z(canonical["end"]),
            "index": "Kp",
        }
        if "status" in canonical:
            query["status"] = canonical["status"]
        document = await get_json(client, f"{self.base_url}{PATH}?{urlencode(query)}")
        try:
            readings = sw.parse_gfz_kp(document)
        except sw.SpaceWeatherDataError as exc:
            raise SourceError(f"GFZ answered an unreadable Kp series: {exc}") from None
        start, end = (datetime.fromisoformat(canonical[key]) for key in ("start", "end"))
        return [reading for reading in readings if start <= reading.time <= end]

    async def fetch(self, target: Mapping[str, Any], client: httpx.AsyncClient) -> list[Snapshot]:
        """One snapshot per 3-hour interval with a value: `kp`, `status`, `level`, `g_scale`."""
        return [
            Snapshot(
                subject=SUBJECT,
                source=self.name,
                data={
                    "kp": reading.kp,
                    "status": reading.status,
                    "level": sw.status_level(reading.kp),
                    "g_scale": sw.g_scale(reading.kp),
                },
                taken_at=reading.time,
                meta={"base_url": self.base_url},
            )
            for reading in await self.series(target, client)
        ]


def _instant(value: Any, what: str, *, end_of_day: bool) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise InvalidTarget(f"target.{what} is required: a date (YYYY-MM-DD) or ISO-8601 instant")
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = time(23, 59, 59) if end_of_day else time(0, 0)
            return datetime.combine(day, moment, tzinfo=UTC)
        parsed = sw.parse_time(text)
    except (ValueError, sw.SpaceWeatherDataError):
        raise InvalidTarget(f"target.{what} is not a date or instant: {value!r}") from None
    return parsed


def _z(instant: str) -> str:
    return datetime.fromisoformat(instant).strftime("%Y-%m-%dT%H:%M:%SZ")
