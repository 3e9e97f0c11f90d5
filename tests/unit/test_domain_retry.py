from __future__ import annotations

import random

import pytest

from trackd.domain.retry import Backoff, may_retry


def test_delay_doubles_from_the_base_and_stops_at_the_cap() -> None:
    backoff = Backoff(base=5, factor=2, cap=60, jitter=0)
    assert [backoff.delay(n) for n in range(1, 6)] == [5, 10, 20, 40, 60]
    assert backoff.delay(10_000) == 60


def test_jitter_stays_within_its_share_below_the_ceiling() -> None:
    backoff = Backoff(base=10, factor=2, cap=1000, jitter=0.5)
    rng = random.Random(7)
    delays = [backoff.delay(3, rng) for _ in range(500)]
    assert all(20 <= delay <= 40 for delay in delays)
    # Spread, not one value: the point of jitter.
    assert max(delays) - min(delays) > 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": -1}, "negative"),
        ({"factor": 0.5}, "factor"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        Backoff().delay(0)


def test_may_retry_only_below_max_attempts() -> None:
    assert may_retry(2, 3)
    assert not may_retry(3, 3)
