"""The `lunar` tracking module: the Moon, computed locally from DE421.

The Moon is the same for every user. The hourly `lunar` poll stores the slow parts (the next
phases, the next ingress, the void-of-course period) once in the tenant's history (source
`lunar`, subject `moon`); a read computes only the phase at its own instant (milliseconds) and
takes the rest from the latest snapshot while it is still ahead. Without a usable snapshot the
whole state is computed once per hour in this process and kept. Which planets end the Moon's
course (void of course) is this module's configuration.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from pydantic import Field

from trackd.domain.astronomy import VOID_OF_COURSE_BODIES, as_json, moon_phase, moon_state
from trackd.modules.base import (
    Contribution,
    Module,
    SynthesisContext,
    TrackingConfig,
    TrackingHistory,
)
from trackd.snapshots.service import latest_snapshot

SOURCE = "lunar"
SUBJECT = "moon"

Planet = Literal[
    "sun", "mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune", "pluto"
]


class LunarConfig(TrackingConfig):
    """Lunar settings."""

    void_of_course_bodies: list[Planet] = Field(
        default=cast(list[Planet], list(VOID_OF_COURSE_BODIES)),
        min_length=1,
        description="Bodies whose aspects to the Moon end its course (traditionally Sun … "
        "Saturn; add the modern planets to reckon with them too).",
    )
    stale_after_minutes: int = Field(
        default=180, ge=1, le=10_080, description="A stored reading older than this is stale."
    )


@functools.lru_cache(maxsize=64)
def _hourly_state(hour: datetime, bodies: tuple[str, ...]) -> dict[str, Any]:
    """The Moon's slow parts at the start of `hour`, computed once per hour and process."""
    return dict(as_json(moon_state(hour, bodies)))


class LunarModule(Module[LunarConfig]):
    name = "lunar"
    layer = "tracking"
    version = "1.1.0"
    description = (
        "The Moon: phase, illumination, sign, distance, next phases and ingress, void of course."
    )
    config_model = LunarConfig
    history = TrackingHistory("lunar_tracking", SOURCE, SUBJECT)
    poll_every = 3600.0

    def poll_target(self, config: LunarConfig) -> dict[str, Any]:
        return {"bodies": list(dict.fromkeys(config.void_of_course_bodies))}

    async def contribute_to_synthesis(
        self, tenant: str, user: str | None, context: SynthesisContext[LunarConfig]
    ) -> Contribution:
        now, config = context.now, context.config
        bodies = tuple(dict.fromkeys(config.void_of_course_bodies))
        snapshot = await latest_snapshot(context.session, tenant, SOURCE, SUBJECT)
        slow: dict[str, Any] | None = None
        polled_at = None
        if snapshot is not None and _usable(snapshot.data, bodies, now):
            slow, polled_at = snapshot.data, snapshot.taken_at
        if slow is None:
            slow = _hourly_state(now.replace(minute=0, second=0, microsecond=0), bodies)
        phase = moon_phase(now)
        void = dict(slow["void_of_course"])
        void["is_void"] = (
            datetime.fromisoformat(void["start"]) <= now < datetime.fromisoformat(void["end"])
        )
        age = (now - polled_at).total_seconds() if polled_at else None
        data = {
            "phase": as_json(phase),
            "next_phases": slow["next_phases"],
            "next_ingress": slow["next_ingress"],
            "void_of_course": void,
            "polled_at": polled_at.isoformat() if polled_at else None,
            "stale": age is not None
            and age > timedelta(minutes=config.stale_after_minutes).total_seconds(),
            "age_seconds": max(0.0, age) if age is not None else None,
        }
        said = [
            f"{phase.phase_name.replace('_', ' ')}, {phase.illumination:.0%} lit, "
            f"{'waxing' if phase.waxing else 'waning'}",
            f"Moon in {phase.sign} {phase.degree:.1f}°",
        ]
        if void["is_void"]:
            said.append(f"void of course until {void['end']}")
        return self.contribution(data, said, confidence=1.0, as_of=now)


def _usable(data: dict[str, Any], bodies: tuple[str, ...], now: datetime) -> bool:
    """Whether a stored reading's slow parts still hold at `now`: computed for the same
    bodies, before `now`, and its next events all still ahead."""
    try:
        void = data["void_of_course"]
        ahead = [
            datetime.fromisoformat(data["next_ingress"]["instant"]),
            *(datetime.fromisoformat(t) for t in data["next_phases"].values()),
        ]
        taken = datetime.fromisoformat(data["phase"]["instant"])
        return tuple(void["bodies"]) == bodies and taken <= now and min(ahead) > now
    except (KeyError, TypeError, ValueError):
        return False
