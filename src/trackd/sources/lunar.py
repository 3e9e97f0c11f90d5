"""The `lunar` source: the Moon computed locally from JPL's DE421 (no network).

Target: `{}` or `{"bodies": ["sun", ...]}`, the bodies whose aspects end the Moon's course
(default Sun … Saturn). A fetch returns ONE snapshot (subject `moon`): the phase, sign and
distance at the poll's instant, the next new / first quarter / full / last quarter instants,
the next sign ingress and the void-of-course period (`trackd.domain.astronomy.moon_state`).
Those slow parts are computed once per poll and read from the snapshot, never per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from trackd.domain.astronomy import BODIES, VOID_OF_COURSE_BODIES, as_json, moon_state
from trackd.sources.base import InvalidTarget, Snapshot

NAME: Final = "lunar"
SUBJECT: Final = "moon"


class LunarSource:
    """The Moon now (see the module docstring).

    Args:
        clock: the instant a poll computes for (tests pass a fixed one).
    """

    name = NAME

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))

    def validate(self, target: Mapping[str, Any]) -> dict[str, Any]:
        """`{"bodies": [...]}`, Sun … Saturn unless given.

        Raises:
            InvalidTarget: not an object, an unknown key, or an unknown body.
        """
        if not isinstance(target, Mapping):
            raise InvalidTarget("a lunar target is an object (usually empty)")
        unknown = set(target) - {"bodies"}
        if unknown:
            raise InvalidTarget(f"unknown target keys {sorted(unknown)}; lunar takes bodies")
        bodies = target.get("bodies", list(VOID_OF_COURSE_BODIES))
        known = [b for b in BODIES if b != "moon"]
        if (
            not isinstance(bodies, list)
            or not bodies
            or not all(isinstance(b, str) and b in known for b in bodies)
        ):
            raise InvalidTarget(f"target.bodies is a non-empty list of {', '.join(known)}")
        return {"bodies": list(dict.fromkeys(bodies))}

    async def fetch(self, target: Mapping[str, Any], client: httpx.AsyncClient) -> list[Snapshot]:
        """One snapshot of the Moon at the poll's instant; `client` is not used."""
        bodies = self.validate(target)["bodies"]
        taken_at = self._clock()
        # A fraction of a second of numerical work: off the event loop.
        state = await asyncio.to_thread(moon_state, taken_at, tuple(bodies))
        data = {**as_json(state), "as_of": taken_at.isoformat()}
        return [Snapshot(subject=SUBJECT, source=NAME, data=data, taken_at=taken_at)]
