"""The `solar` tracking module: space weather from the latest `noaa_swpc` snapshot.

Space weather is the same for every user, so it is read from the tenant's one stored
snapshot history (source `noaa_swpc`, subject `solar`), never copied per user. The thresholds
of the solar rules live in this module's configuration.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from trackd.domain import space_weather as sw
from trackd.modules.base import (
    Contribution,
    Module,
    SynthesisContext,
    TrackingConfig,
    TrackingHistory,
)
from trackd.snapshots.service import latest_snapshot

SOURCE = "noaa_swpc"
SUBJECT = "solar"

FlareLetter = Literal["A", "B", "C", "M", "X"]


class SolarConfig(TrackingConfig):
    """Space weather thresholds."""

    bz_south_nt: float = Field(
        default=-10.0, lt=0, ge=-500, description="Bz at or below this (nT, negative) is south."
    )
    wind_speed_kms: float = Field(
        default=600.0, gt=0, le=5000, description="Solar wind speed (km/s) worth a notice."
    )
    flare_classes: list[FlareLetter] = Field(
        default=["M", "X"], description="GOES flare classes to notify."
    )
    storm_kp: Literal["estimated_1m", "official_3h"] = Field(
        default="estimated_1m",
        description="Which Kp drives the storm flag: NOAA's 1-minute estimate (falling back "
        "to the official value when it is older) or only the official 3-hourly Kp.",
    )
    stale_after_minutes: int = Field(
        default=180, ge=1, le=10_080, description="A reading older than this is marked stale."
    )


class SolarModule(Module[SolarConfig]):
    name = "solar"
    layer = "tracking"
    version = "1.0.0"
    description = "Space weather from NOAA SWPC: Kp and storm level, X-rays, flares, solar wind."
    config_model = SolarConfig
    history = TrackingHistory("solar_tracking", SOURCE, SUBJECT)
    poll_every = 3600.0

    def judge(
        self, previous: dict[str, Any] | None, current: dict[str, Any], config: SolarConfig
    ) -> list[dict[str, Any]]:
        """Storm level changes, Bz turning south past `bz_south_nt`, the wind speed crossing
        `wind_speed_kms`, and new flares of the configured classes."""
        # Flares are judged here by class letter (the configured set need not be contiguous).
        events = [
            event
            for event in sw.solar_events(
                previous,
                current,
                bz_south_nt=config.bz_south_nt,
                wind_speed_kms=config.wind_speed_kms,
                flare_min_class="A1.0",
            )
            if event["type"] != "major_flare"
        ]
        flare = current.get("flare") if isinstance(current.get("flare"), dict) else None
        peak = str(flare.get("peak_class") or "") if flare else ""
        before = previous.get("flare") if previous else None
        if flare and peak[:1] in config.flare_classes and not _same_flare(before, flare):
            events.append({"type": "major_flare", "flare": flare})
        return [{**event, "summary": _summary(event)} for event in events]

    async def contribute_to_synthesis(
        self, tenant: str, user: str | None, context: SynthesisContext[SolarConfig]
    ) -> Contribution:
        snapshot = await latest_snapshot(context.session, tenant, SOURCE, SUBJECT)
        if snapshot is None:
            return self.contribution(
                {"reading": None},
                ["no space weather reading yet: the noaa_swpc source has not been polled"],
                confidence=0.0,
                as_of=None,
            )
        data = snapshot.data
        as_of = sw.parse_time(data["as_of"]) if data.get("as_of") else snapshot.taken_at
        config = context.config
        freshness = sw.staleness(as_of, context.now, timedelta(minutes=config.stale_after_minutes))
        reading = summarize(data, config)
        return self.contribution(
            {**reading, **freshness, "snapshot_taken_at": snapshot.taken_at.isoformat()},
            insights(reading, config, freshness["stale"], as_of),
            confidence=0.5 if freshness["stale"] else 1.0,
            as_of=as_of,
        )


def _same_flare(before: Any, flare: dict[str, Any]) -> bool:
    """Whether `before` is the same flare already at the same class letter (announced)."""
    if not isinstance(before, dict) or before.get("begin_time") != flare.get("begin_time"):
        return False
    return str(before.get("peak_class") or "")[:1] == str(flare.get("peak_class") or "")[:1]


def _summary(event: dict[str, Any]) -> str:
    kind = event["type"]
    if kind == "storm_level_changed":
        return (
            f"Geomagnetic status {event['from']} → {event['to']} "
            f"(Kp {event['kp']}, {event['kp_source']})"
        )
    if kind == "bz_south":
        return f"Bz turned south: {event['bz']} nT (threshold {event['threshold']} nT)"
    if kind == "wind_speed_crossed":
        side = "rose to" if event["direction"] == "up" else "fell to"
        return f"Solar wind {side} {event['speed']} km/s (threshold {event['threshold']})"
    return f"{event['flare'].get('peak_class')} solar flare"


def _part(data: dict[str, Any], name: str) -> dict[str, Any]:
    part = data.get(name)
    return part if isinstance(part, dict) else {}


def storm(data: dict[str, Any], storm_kp: str) -> dict[str, Any] | None:
    """The storm level from the Kp the configuration names, or None when it is missing."""
    if storm_kp == "official_3h":
        official = _part(_part(data, "kp"), "official")
        if official.get("kp") is None:
            return None
        kp = float(official["kp"])
        return {
            "level": sw.status_level(kp),
            "g_scale": sw.g_scale(kp),
            "kp": kp,
            "kp_source": "official_3h",
        }
    status = _part(data, "status")
    if not status:
        return None
    return {key: status.get(key) for key in ("level", "g_scale", "kp", "kp_source")}


def summarize(data: dict[str, Any], config: SolarConfig) -> dict[str, Any]:
    """The parts of a `noaa_swpc` snapshot's data the module reports, judged by `config`."""
    bz = _part(data, "mag").get("bz")
    speed = _part(data, "wind").get("speed")
    flare = data.get("flare") if isinstance(data.get("flare"), dict) else None
    peak = str(flare.get("peak_class") or "") if flare else ""
    return {
        "storm": storm(data, config.storm_kp),
        "bz": bz,
        "bz_south": bz is not None and bz <= config.bz_south_nt,
        "wind_speed": speed,
        "wind_fast": speed is not None and speed >= config.wind_speed_kms,
        "xray": data.get("xray"),
        "flare": flare,
        "flare_notable": bool(peak) and peak[0] in config.flare_classes,
        "missing": data.get("missing", {}),
    }


def insights(
    reading: dict[str, Any], config: SolarConfig, stale: bool, as_of: datetime
) -> list[str]:
    """What a person should notice, in words; only from what was measured."""
    said = []
    if stale:
        said.append(f"the last reading is from {as_of.isoformat()}: it is stale")
    storm_now = reading["storm"]
    if storm_now:
        said.append(
            f"geomagnetic status {storm_now['level']} (Kp {storm_now['kp']}, "
            f"{storm_now['kp_source']})"
        )
    if reading["bz_south"]:
        said.append(f"Bz {reading['bz']} nT is south of {config.bz_south_nt} nT")
    if reading["wind_fast"]:
        said.append(f"solar wind {reading['wind_speed']} km/s (≥ {config.wind_speed_kms})")
    if reading["flare_notable"]:
        said.append(f"{reading['flare']['peak_class']} flare")
    return said
