"""The aspects of one instant's bodies to many charts at once: the daily refresh's per-user part.

`aspects(positions, chart)` walks the body by point pairs in Python; for a hundred thousand
charts the same test is one set of array operations over users by bodies by points, and only
the pairs in aspect become objects. The rules are those of `aspects`: the first aspect (in
`ASPECTS` order) whose orb holds, exact below `exact_within`, applying when the orb shrinks.

Each aspect comes as a row `(transiting, natal, aspect, orb, exact, applying)` of native values
(the fields of `Aspect` without the angle): a hundred thousand users hold millions of aspects,
and rows are what is stored, at a fraction of the objects' cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from trackd.domain.astronomy.aspects import ASPECTS, DEFAULT_ORBS, EXACT_WITHIN
from trackd.domain.astronomy.positions import Positions

# (transiting, natal, aspect, orb, exact, applying)
AspectRow = tuple[str, str, str, float, bool, bool]


def aspects_many(
    positions: Positions,
    charts: Sequence[Mapping[str, float]],
    orbs: Mapping[str, float] = DEFAULT_ORBS,
    exact_within: float = EXACT_WITHIN,
    decimals: int | None = None,
) -> list[list[AspectRow]]:
    """Per chart, the aspects of the bodies at an instant to its points, tightest first.

    Args:
        positions: `planet_positions(instant)`, shared by every chart.
        charts: per chart, point → longitude (`NatalChart.longitudes()`); a chart may lack
            points the others have.
        orbs: the allowed orb per aspect (validated with `check_orbs`).
        exact_within: an orb below this is exact.
        decimals: round the orbs to this many decimals (None: not rounded).

    Returns:
        One list of rows per chart, in the order given: what `aspects(positions, chart)`
        returns, as rows.
    """
    if not charts:
        return []
    bodies = list(positions.bodies.values())
    names = [b.body for b in bodies]
    points = list(dict.fromkeys(p for chart in charts for p in chart))
    column = {p: i for i, p in enumerate(points)}
    natal = np.full((len(charts), len(points)), np.nan)
    for row, chart in enumerate(charts):
        for name, value in chart.items():
            natal[row, column[name]] = value
    lon = np.array([b.longitude for b in bodies])
    speed = np.array([b.speed for b in bodies])
    # users by bodies by points
    turn = (lon[None, :, None] - natal[:, None, :] + 180.0) % 360.0 - 180.0
    separation = np.abs(turn)
    which = np.full(turn.shape, -1, dtype=np.int8)
    orb = np.full(turn.shape, np.inf)
    table = list(ASPECTS.items())
    for k, (aspect, degrees) in enumerate(table):
        off = np.abs(separation - degrees)
        hit = (which < 0) & (off <= orbs[aspect])
        which[hit] = k
        orb[hit] = off[hit]
    user, body, point = np.nonzero(which >= 0)
    if not len(user):
        return [[] for _ in charts]
    kind = which[user, body, point]
    angle = np.array([a for _, a in table])[kind]
    found_orb = orb[user, body, point]
    found_turn = turn[user, body, point]
    separation_rate = np.where(found_turn >= 0, speed[body], -speed[body])
    orb_rate = np.where(np.abs(found_turn) >= angle, separation_rate, -separation_rate)
    # Tightest first within each chart; ties keep the body-then-point order `aspects` keeps.
    by_orb = np.argsort(found_orb, kind="stable")
    order = by_orb[np.argsort(user[by_orb], kind="stable")]
    exact = (found_orb < exact_within)[order].tolist()
    shown = found_orb if decimals is None else np.round(found_orb, decimals)
    aspect_names = [name for name, _ in table]
    out: list[list[AspectRow]] = [[] for _ in charts]
    for u, b, p, k, o, e, r in zip(
        user[order].tolist(),
        body[order].tolist(),
        point[order].tolist(),
        kind[order].tolist(),
        shown[order].tolist(),
        exact,
        (orb_rate < 0)[order].tolist(),
        strict=True,
    ):
        out[u].append((names[b], points[p], aspect_names[k], o, e, r))
    return out
