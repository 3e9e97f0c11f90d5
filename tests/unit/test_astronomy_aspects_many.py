"""`aspects_many` over many charts at once gives, per chart, exactly what `aspects` gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackd.domain.astronomy import (
    DEFAULT_ORBS,
    Aspect,
    aspects,
    aspects_many,
    check_orbs,
    planet_positions,
)

POSITIONS = planet_positions(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
POINTS = ("sun", "moon", "mercury", "venus", "mars", "ascendant", "midheaven")

charts = st.lists(
    st.fixed_dictionaries(
        {p: st.floats(min_value=0.0, max_value=359.999999, allow_nan=False) for p in POINTS}
    ),
    max_size=20,
)
orb_sets = st.fixed_dictionaries(
    {name: st.floats(min_value=0.0, max_value=15.0) for name in DEFAULT_ORBS}
)


def _row(a: Aspect) -> tuple[str, str, str, float, bool, bool]:
    return (a.transiting, a.natal, a.aspect, a.orb, a.exact, a.applying)


def _rows(chart: dict[str, float], orbs: dict[str, float] = DEFAULT_ORBS) -> list[Any]:
    return [_row(a) for a in aspects(POSITIONS, chart, orbs)]


@settings(deadline=None, max_examples=100)
@given(charts, orb_sets)
def test_each_chart_gets_what_aspects_gives(
    many: list[dict[str, float]], orbs: dict[str, float]
) -> None:
    orbs = check_orbs(orbs)
    got = aspects_many(POSITIONS, many, orbs)
    for chart, found in zip(many, got, strict=True):
        # Equal orbs may come in another order when the charts list their points in another.
        assert sorted(found) == sorted(_rows(chart, orbs))
        assert [a[3] for a in found] == sorted(a[3] for a in found)


def test_charts_on_the_aspects_edges_and_with_missing_points() -> None:
    lon = POSITIONS.bodies["mars"].longitude
    rng = random.Random(7)
    many: list[dict[str, float]] = [
        {"sun": (lon + 90.0) % 360.0, "moon": (lon - 8.0) % 360.0, "ascendant": lon},
        {"moon": (lon + 180.0 + 7.999) % 360.0},
        {},
        *({p: rng.uniform(0, 360) for p in POINTS} for _ in range(300)),
    ]
    got = aspects_many(POSITIONS, many)
    assert got == [_rows(c) for c in many]
    square = next(a for a in got[0] if a[:2] == ("mars", "sun"))
    assert (square[2], square[4]) == ("square", True)
    assert square[3] == pytest.approx(0.0, abs=1e-9)
    rounded = aspects_many(POSITIONS, many, decimals=2)
    assert [[a[3] for a in c] for c in rounded] == [[round(a[3], 2) for a in c] for c in got]
    assert got[2] == []
    assert sum(len(a) for a in got) > 300


def test_no_charts() -> None:
    assert aspects_many(POSITIONS, []) == []
