"""The interval chart's layout: one slot per estimate, whiskers at the interval's ends, the
marked one flagged, zero kept on the axis when asked, an empty slot for a missing estimate."""

from __future__ import annotations

from trackd.web.interval_chart import BOTTOM, HEIGHT, TOP, Estimate, intervals


def test_nothing_to_draw_is_no_chart() -> None:
    assert intervals([]) is None
    assert intervals([Estimate("lag 0", None)]) is None


def test_estimates_sit_in_their_slots_with_their_intervals() -> None:
    chart = intervals(
        [
            Estimate("lag 0", -3.0, -3.5, -2.5),
            Estimate("lag 1", None),
            Estimate("lag 2", 0.5, 0.0, 1.0, "lag 2 title"),
        ],
        marked=0,
        zero_line=True,
    )
    assert chart is not None
    assert [label.lines for label in chart.labels] == [["lag 0"], ["lag 1"], ["lag 2"]]
    first, last = chart.points  # the missing estimate keeps its slot but draws nothing
    assert first.x < chart.labels[1].x < last.x
    assert first.marked and not last.marked
    assert first.low is not None and first.high is not None
    assert first.high < first.y < first.low  # SVG's y grows downwards
    assert last.title == "lag 2 title" and first.title == "lag 0"
    assert chart.zero is not None and TOP <= chart.zero <= HEIGHT - BOTTOM
    # The zero line is where an estimate of 0 would be: lag 2's interval starts there.
    assert last.low == chart.zero


def test_an_estimate_without_an_interval_has_no_whisker_and_long_labels_wrap() -> None:
    many = [Estimate(f"waxing crescent {n}", float(n)) for n in range(12)]
    chart = intervals(many)
    assert chart is not None and chart.zero is None
    assert all(p.low is None and p.high is None for p in chart.points)
    slot = chart.labels[1].x - chart.labels[0].x
    assert all(len(line) * 7 <= slot + 7 for label in chart.labels for line in label.lines)
