"""The rating chart's layout: points inside the plot, time left to right, values bottom to top,
round ticks covering every value."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from trackd.web.line_chart import LEFT, TOP, Series, lines_over_time, nice_step

START = datetime(2026, 11, 1, tzinfo=UTC)


def test_no_points_no_chart() -> None:
    assert lines_over_time([]) is None
    assert lines_over_time([Series("2v2", [])]) is None


def test_two_lines_share_the_axes() -> None:
    day = timedelta(days=1)
    chart = lines_over_time(
        [
            Series("2v2", [(START + day, 1600.0), (START, 1500.0), (START + 2 * day, 1550.0)]),
            Series("3v3", [(START, 1400.0), (START + 2 * day, 1450.0)]),
        ]
    )
    assert chart is not None
    twos, threes = chart.lines
    # Sorted by time; the first point on the left edge, the last on the right.
    assert [d.x for d in twos.dots] == [LEFT, (LEFT + chart.right) / 2, chart.right]
    assert twos.dots[1].y < twos.dots[2].y < twos.dots[0].y  # 1600 highest, 1500 lowest
    assert threes.index == 1 and threes.points.count(",") == 2
    assert [t.label for t in chart.y_ticks] == ["1,400", "1,450", "1,500", "1,550", "1,600"]
    assert chart.x_ticks[0].label == "2026-11-01"
    assert "2v2 1,600 at 2026-11-02 00:00Z" in [d.title for d in twos.dots]


def test_one_point_sits_in_the_middle() -> None:
    chart = lines_over_time([Series("1v1", [(START, 900.0)])])
    assert chart is not None
    [dot] = chart.lines[0].dots
    assert dot.x == round((LEFT + chart.right) / 2, 1)
    assert TOP < dot.y < chart.bottom
    assert len(chart.x_ticks) == 1


@given(st.floats(min_value=1e-3, max_value=1e9), st.integers(min_value=1, max_value=10))
def test_a_step_is_round_and_near_the_share(span: float, ticks: int) -> None:
    step = nice_step(span, ticks)
    share = span / ticks
    assert share <= step <= 5 * share * (1 + 1e-9)
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-9


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.integers(-5000, 5000)),
        min_size=1,
        max_size=30,
    )
)
def test_every_point_is_inside_the_plot(raw: list[tuple[int, int]]) -> None:
    points = [(START + timedelta(minutes=m), float(v)) for m, v in raw]
    chart = lines_over_time([Series("x", points)])
    assert chart is not None
    for dot in chart.lines[0].dots:
        assert LEFT <= dot.x <= chart.right
        assert TOP <= dot.y <= chart.bottom
    assert chart.y_ticks[0].at >= chart.y_ticks[-1].at
