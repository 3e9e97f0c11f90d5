"""The NOAA SWPC source: one space weather snapshot from the feeds of services.swpc.noaa.gov.

Target: `{}` (space weather is the same for everyone), or `{"subject": "..."}` to store the
snapshot under another subject than `solar`. Each poll reads the official 3-hourly Kp, the
1-minute Kp estimate, the GOES X-rays of the last hours, the latest flare, the NOAA scales and
the solar wind, and builds ONE snapshot of them (see `NoaaSwpcSource.fetch`).

A feed that fails leaves its part of the snapshot `null` and named in `missing` with the
reason; the solar wind falls back from the real-time `json/rtsw/*_1m.json` feeds to the older
`products/solar-wind/*` lists (which NOAA may have retired) when the first does not answer.
Nothing is ever invented in place of a missing value. Only when every feed fails does the
fetch raise, so the poll fails and is retried; the last stored snapshot stays the reading,
and `trackd.domain.space_weather.staleness` says at read time how old it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import httpx

from trackd.domain import space_weather as sw
from trackd.sources.base import InvalidTarget, Snapshot, SourceBlocked, SourceError
from trackd.sources.json_feed import base_url_setting, get_json

if TYPE_CHECKING:
    from trackd.settings import Settings

log = logging.getLogger(__name__)

NAME: Final = "noaa_swpc"
SUBJECT: Final = "solar"

FEEDS: Final = {
    "kp": "/products/noaa-planetary-k-index.json",
    "kp_1m": "/json/planetary_k_index_1m.json",
    "xrays": "/json/goes/primary/xrays-6-hour.json",
    "flare": "/json/goes/primary/xray-flares-latest.json",
    "scales": "/products/noaa-scales.json",
    "rtsw_wind": "/json/rtsw/rtsw_wind_1m.json",
    "rtsw_mag": "/json/rtsw/rtsw_mag_1m.json",
    "legacy_plasma": "/products/solar-wind/plasma-2-hour.json",
    "legacy_mag": "/products/solar-wind/mag-2-hour.json",
}

# A part older than this, when the snapshot is taken, is flagged stale: the official Kp is
# published after its 3-hour interval ends; the 1-minute feeds should be minutes old.
MAX_AGE: Final = {
    "kp_official": timedelta(hours=6),
    "kp_estimate": timedelta(minutes=15),
    "xray": timedelta(minutes=15),
    "wind": timedelta(minutes=15),
    "mag": timedelta(minutes=15),
    "scales": timedelta(days=1),
}


class NoaaSwpcSource:
    """Space weather from NOAA SWPC (see the module docstring).

    Args:
        base_url: the service's base URL (TRACKD_NOAA_SWPC_URL through `from_settings`).
        clock: the time snapshots are stamped with (tests pass a fixed one).
    """

    name = NAME

    def __init__(self, *, base_url: str, clock: Callable[[], datetime] | None = None) -> None:
        self.base_url = base_url_setting(base_url, "TRACKD_NOAA_SWPC_URL")
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(cls, settings: Settings) -> NoaaSwpcSource:
        return cls(base_url=settings.noaa_swpc_url)

    def validate(self, target: Mapping[str, Any]) -> dict[str, Any]:
        """`{"subject": ...}`, `solar` unless another is given.

        Raises:
            InvalidTarget: not an object, an unknown key, or a bad subject.
        """
        if not isinstance(target, Mapping):
            raise InvalidTarget("a noaa_swpc target is an object (usually empty)")
        unknown = set(target) - {"subject"}
        if unknown:
            raise InvalidTarget(f"unknown target keys {sorted(unknown)}; noaa_swpc takes subject")
        subject = target.get("subject", SUBJECT)
        if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
            raise InvalidTarget("target.subject must be a string of 1 to 255 characters")
        return {"subject": subject}

    async def fetch(self, target: Mapping[str, Any], client: httpx.AsyncClient) -> list[Snapshot]:
        """One snapshot of space weather now.

        Its `data`: `kp` (`official`, `estimate`, `used`), `status` (level quiet…G5, g_scale,
        the Kp and which Kp it came from), `scales` (NOAA R/S/G by day), `xray` (class and flux
        of the last hour's peak), `flare` (the latest, `ongoing` while it is), `wind` (speed,
        density) and `mag` (Bz, Bt) each with the `feed` that answered, `stale` and
        `age_seconds` on each timed part, `missing` (part → why), and `as_of`.

        Raises:
            InvalidTarget: the target is invalid or the service's address is refused.
            SourceBlocked: every feed was refused (403/429).
            SourceError: every feed failed.
        """
        canonical = self.validate(target)
        taken_at = self._clock()
        reader = _Reader(client, self.base_url)
        kp, kp_1m, xrays, flare, scales, (wind, wind_feed), (mag, mag_feed) = await asyncio.gather(
            reader.read("kp", sw.parse_kp_product),
            reader.read("kp_1m", sw.parse_kp_1m),
            reader.read("xrays", sw.parse_xrays),
            reader.read("flare", sw.parse_latest_flare),
            reader.read("scales", sw.parse_scales),
            reader.first(
                ("rtsw", "rtsw_wind", sw.parse_rtsw_wind),
                ("legacy", "legacy_plasma", sw.parse_legacy_plasma),
            ),
            reader.first(
                ("rtsw", "rtsw_mag", sw.parse_rtsw_mag),
                ("legacy", "legacy_mag", sw.parse_legacy_mag),
            ),
        )
        if not reader.answered:
            raise reader.failure()

        official = kp[-1] if kp else None
        estimate = kp_1m[-1] if kp_1m else None
        status = sw.storm_status(official, estimate)
        missing = {
            part: reason
            for part, reason in (
                ("kp", reader.missing("kp")),
                ("kp_1m", reader.missing("kp_1m")),
                ("xrays", reader.missing("xrays")),
                # An empty list of latest flares is an answer (no flare yet), not a gap.
                ("flare", reader.missing("flare") if "flare" in reader.errors else None),
                ("scales", reader.missing("scales")),
                ("wind", reader.missing("rtsw_wind", "legacy_plasma")),
                ("mag", reader.missing("rtsw_mag", "legacy_mag")),
            )
            if reason is not None
        }
        data: dict[str, Any] = {
            "kp": {
                "official": _timed(official, "kp_official", taken_at),
                "estimate": _timed(estimate, "kp_estimate", taken_at),
                "used": status.kp_source if status else None,
            },
            "status": sw.as_dict(status) if status else None,
            "scales": (
                {day: sw.as_dict(value) for day, value in scales.items()} if scales else None
            ),
            "xray": _xray(xrays, taken_at),
            "flare": sw.flare_dict(flare) if flare else None,
            "wind": _with_feed(_timed(wind, "wind", taken_at), wind_feed),
            "mag": _with_feed(_timed(mag, "mag", taken_at), mag_feed),
            "missing": missing,
        }
        times = [reading.time for reading in (official, estimate, wind, mag) if reading is not None]
        if xrays:
            times.append(xrays[-1].time)
        data["as_of"] = max(times).isoformat() if times else None
        return [
            Snapshot(
                subject=canonical["subject"],
                source=self.name,
                data=data,
                taken_at=taken_at,
                meta={"base_url": self.base_url, "feeds_failed": sorted(reader.errors)},
            )
        ]


class _Reader:
    """Reads feeds and remembers which answered and why the others did not."""

    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base_url = base_url
        self.answered: list[str] = []
        self.errors: dict[str, SourceError | sw.SpaceWeatherDataError] = {}
        # Feeds that answered without a single reading (an empty list, no active row).
        self.empty: set[str] = set()

    async def read(self, feed: str, parse: Callable[[Any], Any]) -> Any:
        """The parsed feed, or None when it failed (the reason is kept)."""
        url = self._base_url + FEEDS[feed]
        try:
            value = parse(await get_json(self._client, url))
        except (SourceError, sw.SpaceWeatherDataError) as exc:
            log.warning("space weather feed failed feed=%s reason=%s", feed, exc)
            self.errors[feed] = exc
            return None
        self.answered.append(feed)
        if value is None or value == []:
            self.empty.add(feed)
        return value

    async def first(
        self, *choices: tuple[str, str, Callable[[Any], Any]]
    ) -> tuple[Any, str | None]:
        """The first feed of `choices` that answers with a reading, and its label."""
        for label, feed, parse in choices:
            value = await self.read(feed, parse)
            if value is not None:
                return value, label
        return None, None

    def missing(self, *feeds: str) -> str | None:
        """Why none of `feeds` gave a reading, or None when one did."""
        if any(feed in self.answered and feed not in self.empty for feed in feeds):
            return None
        reasons = [
            f"{feed}: {_reason(self.errors[feed])}"
            if feed in self.errors
            else f"{feed}: no reading"
            for feed in feeds
        ]
        return "; ".join(reasons)

    def failure(self) -> SourceError:
        """What to raise when no feed answered: the most specific shared cause."""
        errors = list(self.errors.values())
        for error in errors:
            if isinstance(error, InvalidTarget):
                return error
        blocked = [error for error in errors if isinstance(error, SourceBlocked)]
        if blocked and len(blocked) == len(errors):
            return blocked[0]
        summary = "; ".join(f"{feed}: {_reason(error)}" for feed, error in self.errors.items())
        return SourceError(f"no NOAA SWPC feed answered ({summary})")


def _reason(error: Exception) -> str:
    if isinstance(error, sw.SpaceWeatherDataError):
        return f"malformed: {error}"
    return str(error)


def _timed(reading: Any, part: str, now: datetime) -> dict[str, Any] | None:
    if reading is None:
        return None
    return {**sw.as_dict(reading), **sw.staleness(reading.time, now, MAX_AGE[part])}


def _with_feed(part: dict[str, Any] | None, feed: str | None) -> dict[str, Any] | None:
    return None if part is None else {**part, "feed": feed}


def _xray(readings: list[sw.XrayFlux] | None, now: datetime) -> dict[str, Any] | None:
    peak = sw.xray_peak(readings or [])
    if peak is None or not readings:
        return None
    return {**peak, **sw.staleness(readings[-1].time, now, MAX_AGE["xray"])}
