"""The five major (Ptolemaic) aspects and a transiting body's aspects to a chart's points.

Pure arithmetic on floats: the planets' places are computed once per instant
(`planet_positions`), and this part, which runs once per user, costs microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trackd.domain.astronomy.positions import Positions
from trackd.domain.astronomy.zodiac import signed_difference

# Aspect name → angle in degrees.
ASPECTS: dict[str, float] = {
    "conjunction": 0.0,
    "sextile": 60.0,
    "square": 90.0,
    "trine": 120.0,
    "opposition": 180.0,
}
# DESIGN.md §10: conjunction/opposition ±8°, square/trine ±6°, sextile ±4°.
DEFAULT_ORBS: dict[str, float] = {
    "conjunction": 8.0,
    "sextile": 4.0,
    "square": 6.0,
    "trine": 6.0,
    "opposition": 8.0,
}
# An aspect this close is called exact.
EXACT_WITHIN = 1.0
# Neighbouring aspects are 30° apart (sextile-square, square-trine): an orb up to half of that
# keeps every separation within at most one aspect.
MAX_ORB = 15.0


@dataclass(frozen=True, slots=True)
class Aspect:
    """A transiting body in aspect to a chart point.

    Attributes:
        transiting: the moving body ("sun" … "pluto").
        natal: the chart point it aspects ("sun" … "pluto", "ascendant", "midheaven").
        aspect: "conjunction", "sextile", "square", "trine" or "opposition".
        angle: the aspect's angle in degrees.
        orb: how far the separation is from the angle, in degrees (≥ 0).
        exact: orb < 1°.
        applying: the orb is shrinking (separating when it grows).
    """

    transiting: str
    natal: str
    aspect: str
    angle: float
    orb: float
    exact: bool
    applying: bool


def check_orbs(orbs: Mapping[str, float]) -> dict[str, float]:
    """The orbs with every aspect given, each in [0, 15]; a clear ValueError otherwise."""
    unknown = set(orbs) - set(ASPECTS)
    if unknown:
        raise ValueError(f"unknown aspects {sorted(unknown)}; known: {', '.join(ASPECTS)}")
    out = {**DEFAULT_ORBS, **orbs}
    for name, orb in out.items():
        if not 0.0 <= orb <= MAX_ORB:
            raise ValueError(f"orb of {name} must be between 0 and {MAX_ORB}°, got {orb}")
    return out


def aspect_between(
    a: float, b: float, orbs: Mapping[str, float] = DEFAULT_ORBS
) -> tuple[str, float] | None:
    """The aspect two longitudes make and its orb, or None: symmetric in a and b.

    Args:
        a: a longitude in degrees.
        b: another.
        orbs: the allowed orb per aspect (all five, as `check_orbs` returns).
    """
    separation = abs(signed_difference(a, b))
    for name, angle in ASPECTS.items():
        orb = abs(separation - angle)
        if orb <= orbs[name]:
            return name, orb
    return None


def aspects(
    positions: Positions,
    natal: Mapping[str, float],
    orbs: Mapping[str, float] = DEFAULT_ORBS,
    exact_within: float = EXACT_WITHIN,
) -> list[Aspect]:
    """The aspects of the bodies at an instant to a chart's points.

    Args:
        positions: `planet_positions(instant)`, shared by every chart.
        natal: chart point → longitude in degrees (`NatalChart.longitudes()`).
        orbs: the allowed orb per aspect (validate config with `check_orbs`).
        exact_within: an orb below this is exact.

    Returns:
        One Aspect per (body, point) pair in aspect, tightest first.
    """
    found: list[Aspect] = []
    for body in positions.bodies.values():
        for point, natal_lon in natal.items():
            hit = aspect_between(body.longitude, natal_lon, orbs)
            if hit is None:
                continue
            name, orb = hit
            angle = ASPECTS[name]
            turn = signed_difference(body.longitude, natal_lon)
            # The point stands still; the separation |turn| changes at ±speed, and the orb
            # |separation - angle| shrinks when that change heads towards the angle.
            separation_rate = body.speed if turn >= 0 else -body.speed
            orb_rate = separation_rate if abs(turn) >= angle else -separation_rate
            found.append(
                Aspect(
                    transiting=body.body,
                    natal=point,
                    aspect=name,
                    angle=angle,
                    orb=orb,
                    exact=orb < exact_within,
                    applying=orb_rate < 0,
                )
            )
    found.sort(key=lambda a: a.orb)
    return found
