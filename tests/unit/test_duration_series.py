"""Duration percentiles over time, as the metrics page charts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from trackd.domain.metrics import duration_series, percentile

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
STEP = timedelta(minutes=5)


def test_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 21)]  # 1..20
    assert percentile(values, 0.5) == 10.0
    assert percentile(values, 0.95) == 19.0
    assert percentile([7.0], 0.95) == 7.0


def test_steps_with_no_task_are_gaps_not_zeros() -> None:
    ended = [(T0 + timedelta(minutes=1), 2.0), (T0 + timedelta(minutes=2), 4.0)]
    ended += [(T0 + timedelta(minutes=11), 30.0)]
    series = duration_series(ended, T0, T0 + 3 * STEP, STEP)
    assert [(p.start, p.count, p.p50, p.p95) for p in series] == [
        (T0, 2, 2.0, 4.0),
        (T0 + STEP, 0, None, None),
        (T0 + 2 * STEP, 1, 30.0, 30.0),
    ]


def test_tasks_outside_the_period_are_left_out() -> None:
    ended = [(T0 - timedelta(seconds=1), 9.0), (T0 + 3 * STEP, 9.0)]
    assert sum(p.count for p in duration_series(ended, T0, T0 + 3 * STEP, STEP)) == 0


@given(st.lists(st.tuples(st.integers(0, 899), st.floats(0, 1e5)), max_size=60))
def test_every_task_in_the_period_counts_once_and_p50_never_exceeds_p95(
    found: list[tuple[int, float]],
) -> None:
    ended = [(T0 + timedelta(seconds=s), d) for s, d in found]
    series = duration_series(ended, T0, T0 + 3 * STEP, STEP)
    assert sum(p.count for p in series) == len(found)
    for p in series:
        assert (p.p50 is None) == (p.count == 0)
        if p.p50 is not None and p.p95 is not None:
            assert p.p50 <= p.p95
