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
# Body-minus-point longitude differences in [0, 360) at which each aspect is exact: every
# aspect but the conjunction and the opposition is reached on either side.
ASPECT_TURNS: dict[float, str] = {
    a % 360.0: name for name, angle in ASPECTS.items() for a in (angle, -angle)
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


def _table(orbs: Mapping[str, float]) -> tuple[tuple[str, float, float], ...]:
    return tuple((name, angle, orbs[name]) for name, angle in ASPECTS.items())


def _match(
    separation: float, table: tuple[tuple[str, float, float], ...]
) -> tuple[str, float, float] | None:
    """The aspect (name, angle, orb) a separation in [0, 180] is within the orb of, or None."""
    for name, angle, allowed in table:
        orb = abs(separation - angle)
        if orb <= allowed:
            return name, angle, orb
    return None


def aspect_between(
    a: float, b: float, orbs: Mapping[str, float] = DEFAULT_ORBS
) -> tuple[str, float] | None:
    """The aspect two longitudes make and its orb, or None: symmetric in a and b.

    Args:
        a: a longitude in degrees.
        b: another.
        orbs: the allowed orb per aspect (all five, as `check_orbs` returns).
    """
    hit = _match(abs(signed_difference(a, b)), _table(orbs))
    return None if hit is None else (hit[0], hit[2])


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
    table = _table(orbs)
    points = list(natal.items())
    found: list[Aspect] = []
    for body in positions.bodies.values():
        lon, speed = body.longitude, body.speed
        for point, natal_lon in points:
            # Inlined signed_difference: this loop runs for every user's chart.
            turn = (lon - natal_lon + 180.0) % 360.0 - 180.0
            hit = _match(abs(turn), table)
            if hit is None:
                continue
            name, angle, orb = hit
            # The point stands still; the separation |turn| changes at ±speed, and the orb
            # |separation - angle| shrinks when that change heads towards the angle.
            separation_rate = speed if turn >= 0 else -speed
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
