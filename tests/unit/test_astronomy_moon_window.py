"""The Moon's quarters and sign ingresses over a window, against ephem (an independent library):
quarters within 60 s, ingresses within 60 s, none missed and none invented."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import ephem
import pytest
from astronomy_ephem import (
    ephem_date,
    ephem_longitude_at,
    tt_seconds_of,
    tt_seconds_of_ephem,
)

from trackd.domain.astronomy import SIGNS, moon_ingresses_between, moon_phases_between

SECONDS = 60.0
NEXT = {
    "new_moon": ephem.next_new_moon,
    "first_quarter": ephem.next_first_quarter_moon,
    "full_moon": ephem.next_full_moon,
    "last_quarter": ephem.next_last_quarter_moon,
}
STARTS = [datetime(2026, 12, 2, 16, 0, tzinfo=UTC), datetime(1987, 3, 9, 4, 30, tzinfo=UTC)]


@pytest.mark.parametrize("start", STARTS)
def test_quarters_in_a_window(start: datetime) -> None:
    end = start + timedelta(days=60)
    found = moon_phases_between(start, end)
    # Two months hold eight quarters, give or take one at either end.
    assert 7 <= len(found) <= 9
    for (name, _), (following, _) in itertools.pairwise(found):
        assert list(NEXT).index(following) == (list(NEXT).index(name) + 1) % 4
    for name, when in found:
        assert start < when <= end
        theirs = tt_seconds_of_ephem(NEXT[name](ephem_date(when - timedelta(days=1))))
        assert abs(tt_seconds_of(when) - theirs) < SECONDS, name


@pytest.mark.parametrize("start", STARTS)
def test_sign_ingresses_in_a_window(start: datetime) -> None:
    end = start + timedelta(days=30)
    found = moon_ingresses_between(start, end)
    # The Moon goes round the zodiac in 27.3 days, 2.3 days a sign: 13 or 14 in 30 days.
    assert 13 <= len(found) <= 14
    for ingress in found:
        assert start < ingress.instant <= end
        # ephem puts the Moon in the new sign a minute after, and in the previous one a
        # minute before.
        sign = SIGNS.index(ingress.sign)
        at = float(ephem_date(ingress.instant))
        minute = SECONDS / 86_400
        assert int(ephem_longitude_at("moon", at + minute) // 30) == sign
        assert int(ephem_longitude_at("moon", at - minute) // 30) == (sign - 1) % 12


def test_a_window_must_move_forward() -> None:
    start = STARTS[0]
    with pytest.raises(ValueError):
        moon_phases_between(start, start)
    with pytest.raises(ValueError):
        moon_ingresses_between(start, start - timedelta(days=1))
