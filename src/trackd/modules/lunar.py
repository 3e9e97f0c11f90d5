"""The `lunar` tracking module: the Moon now, computed locally from DE421.

The Moon is the same for every user: it is computed for the instant asked, nothing per user.
Which planets end the Moon's course (void of course) is this module's configuration.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal, cast

from pydantic import Field

from trackd.domain.astronomy import VOID_OF_COURSE_BODIES, moon_state
from trackd.modules.base import Contribution, Module, ModuleConfig, SynthesisContext

Planet = Literal[
    "sun", "mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune", "pluto"
]


class LunarConfig(ModuleConfig):
    """Lunar settings."""

    void_of_course_bodies: list[Planet] = Field(
        default=cast(list[Planet], list(VOID_OF_COURSE_BODIES)),
        min_length=1,
        description="Bodies whose aspects to the Moon end its course (traditionally Sun … "
        "Saturn; add the modern planets to reckon with them too).",
    )


class LunarModule(Module[LunarConfig]):
    name = "lunar"
    layer = "tracking"
    version = "1.0.0"
    description = (
        "The Moon: phase, illumination, sign, distance, next phases and ingress, void of course."
    )
    config_model = LunarConfig

    async def contribute_to_synthesis(
        self, tenant: str, user: str | None, context: SynthesisContext[LunarConfig]
    ) -> Contribution:
        state = moon_state(context.now, tuple(dict.fromkeys(context.config.void_of_course_bodies)))
        data = _jsonable(asdict(state))
        phase = state.phase
        void = state.void_of_course
        said = [
            f"{phase.phase_name.replace('_', ' ')}, {phase.illumination:.0%} lit, "
            f"{'waxing' if phase.waxing else 'waning'}",
            f"Moon in {phase.sign} {phase.degree:.1f}°",
        ]
        if void.is_void:
            said.append(f"void of course until {void.end.isoformat()}")
        return self.contribution(data, said, confidence=1.0, as_of=context.now)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
