"""The durations chart draws a line only between neighbouring points; a lone point is a dot."""

from datetime import UTC, datetime, timedelta

from trackd.domain.metrics import DurationPoint
from trackd.web.chart import durations_over_time

START = datetime(2026, 12, 2, tzinfo=UTC)


def _points(values: list[float | None]) -> list[DurationPoint]:
    return [
        DurationPoint(START + timedelta(hours=n), 0 if v is None else 3, v, v)
        for n, v in enumerate(values)
    ]


def test_points_apart_are_dots_without_a_line() -> None:
    chart = durations_over_time(_points([1.0, None, None, 2.0]), "%H:%M")
    for line in chart.lines:
        assert line.segments == []
        assert len(line.dots) == 2
    assert not chart.empty


def test_neighbouring_points_are_joined_and_a_gap_breaks_the_line() -> None:
    chart = durations_over_time(_points([1.0, 2.0, None, 3.0, 4.0, 5.0, None, 6.0]), "%H:%M")
    p50 = chart.lines[0]
    assert [len(s.split()) for s in p50.segments] == [2, 3]
    assert len(p50.dots) == 6
