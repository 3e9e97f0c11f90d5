"""The journal's pure rules: what an entry may hold, the local day an entry is on across time
zones and DST changes, the daily outcome series, and the CSV rows of an import."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from trackd.domain.journal import (
    InvalidEntry,
    JournalEntryIn,
    check_text,
    daily_outcomes,
    day_bounds,
    free_tags,
    local_day,
    zone,
)
from trackd.domain.journal_csv import BadHeader, read


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@dataclass(frozen=True)
class Entry:
    timestamp: datetime
    mood_score: int = 5
    energy_score: int = 5
    sleep_hours: float | None = None
    symptoms: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)


@pytest.mark.parametrize(
    ("moment", "name", "day"),
    [
        # 23:30 UTC is already the next morning in Auckland (UTC+13 in March) ...
        (utc(2026, 3, 1, 23, 30), "Pacific/Auckland", date(2026, 3, 2)),
        # ... still the afternoon before in Los Angeles, and that same day in UTC.
        (utc(2026, 3, 1, 23, 30), "America/Los_Angeles", date(2026, 3, 1)),
        (utc(2026, 3, 1, 23, 30), "UTC", date(2026, 3, 1)),
        # India is UTC+5:30: a half-hour offset moves the boundary to 18:30 UTC.
        (utc(2026, 3, 1, 18, 29), "Asia/Kolkata", date(2026, 3, 1)),
        (utc(2026, 3, 1, 18, 30), "Asia/Kolkata", date(2026, 3, 2)),
        # New York springs forward on 2026-03-08: EST (-5) before, EDT (-4) after.
        (utc(2026, 3, 8, 4, 59), "America/New_York", date(2026, 3, 7)),
        (utc(2026, 3, 8, 5, 0), "America/New_York", date(2026, 3, 8)),
        (utc(2026, 3, 9, 3, 59), "America/New_York", date(2026, 3, 8)),
        (utc(2026, 3, 9, 4, 0), "America/New_York", date(2026, 3, 9)),
        # ... and falls back on 2026-11-01: the day runs from 04:00 to 05:00 UTC next day.
        (utc(2026, 11, 1, 3, 59), "America/New_York", date(2026, 10, 31)),
        (utc(2026, 11, 2, 4, 59), "America/New_York", date(2026, 11, 1)),
        (utc(2026, 11, 2, 5, 0), "America/New_York", date(2026, 11, 2)),
    ],
)
def test_the_day_of_an_entry_is_the_users_local_day(moment: datetime, name: str, day: date) -> None:
    assert local_day(moment, zone(name)) == day


@pytest.mark.parametrize(
    ("name", "day", "start", "hours"),
    [
        ("America/New_York", date(2026, 3, 8), utc(2026, 3, 8, 5), 23),
        ("America/New_York", date(2026, 11, 1), utc(2026, 11, 1, 4), 25),
        ("Europe/Paris", date(2026, 3, 29), utc(2026, 3, 28, 23), 23),
        ("Europe/Paris", date(2026, 10, 25), utc(2026, 10, 24, 22), 25),
        ("Pacific/Auckland", date(2026, 4, 5), utc(2026, 4, 4, 11), 25),
        # Chile moves its clocks at midnight: 2026-09-06 00:00 never happens there, the day
        # starts at 01:00 local (04:00 UTC), right where the day before ended.
        ("America/Santiago", date(2026, 9, 6), utc(2026, 9, 6, 4), 23),
        ("UTC", date(2026, 9, 6), utc(2026, 9, 6), 24),
    ],
)
def test_day_bounds_follow_dst(name: str, day: date, start: datetime, hours: int) -> None:
    tz = zone(name)
    # In UTC: arithmetic on aware datetimes of one zone is wall-clock arithmetic.
    first, end = (bound.astimezone(UTC) for bound in day_bounds(day, tz))
    assert first == start
    assert end - first == timedelta(hours=hours)
    # Consecutive days meet: no instant belongs to two days or to none.
    assert day_bounds(day - timedelta(days=1), tz)[1].astimezone(UTC) == start
    assert local_day(first, tz) == day
    assert local_day(end - timedelta(microseconds=1), tz) == day
    assert local_day(first - timedelta(microseconds=1), tz) == day - timedelta(days=1)


def test_an_unknown_zone_names_the_field() -> None:
    with pytest.raises(InvalidEntry, match=r"^timezone: 'Mars/Olympus' is not an IANA"):
        zone("Mars/Olympus")
    with pytest.raises(InvalidEntry, match="timezone"):
        zone("../../etc/passwd")


def test_daily_outcomes_average_each_day_and_mark_symptom_presence() -> None:
    paris = zone("Europe/Paris")
    entries = [
        # 2026-03-01 in Paris: two entries.
        Entry(utc(2026, 3, 1, 7), 4, 6, 7.5, ("headache",), {"steps": 1000}),
        Entry(utc(2026, 3, 1, 20), 8, 2, None, ("headache", "nausea"), {}),
        # 23:30 UTC on 2026-03-01 is 00:30 on 2026-03-02 in Paris.
        Entry(utc(2026, 3, 1, 23, 30), 6, 7, 6.0, (), {"steps": 3000, "coffee": 2}),
        Entry(utc(2026, 3, 4, 12), 10, 10),
    ]

    series = daily_outcomes(reversed(entries), paris)

    assert series.timezone == "Europe/Paris"
    assert series.days == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 4)]
    assert series.entries == [2, 1, 1]
    assert series.columns == {
        "mood": [6.0, 6.0, 10.0],
        "energy": [4.0, 7.0, 10.0],
        "sleep_hours": [7.5, 6.0, None],
        "metric.coffee": [None, 2.0, None],
        "metric.steps": [1000.0, 3000.0, None],
        "symptom.headache": [1.0, 0.0, 0.0],
        "symptom.nausea": [1.0, 0.0, 0.0],
    }
    # The same entries in UTC: the third entry is on the first day.
    assert daily_outcomes(entries, zone("UTC")).columns["mood"] == [6.0, 10.0]


def test_daily_outcomes_of_nothing_is_empty() -> None:
    series = daily_outcomes([], zone("UTC"))
    assert (series.days, series.entries) == ([], [])
    assert series.columns == {"mood": [], "energy": [], "sleep_hours": []}


def good(**changes: object) -> dict[str, object]:
    return {"timestamp": "2026-03-01T08:30:00+01:00", "mood_score": 5, "energy_score": 6} | changes


def fields_of(error: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in error.errors()}


def test_entry_in_accepts_and_normalises() -> None:
    entry = JournalEntryIn.model_validate(
        good(symptoms=["Headache ", "headache", "brain-fog"], metrics={"steps": 4200})
    )
    assert entry.timestamp == utc(2026, 3, 1, 7, 30)
    assert entry.symptoms == ["headache", "brain-fog"]
    assert (entry.id, entry.sleep_hours, entry.text) == (None, None, "")


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"timestamp": "2026-03-01T08:30:00"}, "timestamp"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"mood_score": 0}, "mood_score"),
        ({"energy_score": 11}, "energy_score"),
        ({"mood_score": 5.5}, "mood_score"),
        ({"sleep_hours": 25}, "sleep_hours"),
        ({"sleep_hours": -1}, "sleep_hours"),
        ({"symptoms": ["head ache"]}, "symptoms.0"),
        ({"symptoms": [f"t{i}" for i in range(33)]}, "symptoms"),
        ({"metrics": {"steps": float("nan")}}, "metrics.steps"),
        ({"metrics": {"steps": float("inf")}}, "metrics.steps"),
        ({"metrics": {"Steps!": 1}}, "metrics.Steps!.[key]"),
        ({"metrics": {f"m{i}": i for i in range(33)}}, "metrics"),
        ({"id": "has space"}, "id"),
        ({"colour": "blue"}, "colour"),
        ({"text": "x" * 20_001}, "text"),
    ],
)
def test_entry_in_names_the_wrong_field(changes: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        JournalEntryIn.model_validate(good(**changes))
    assert fields_of(caught.value) == {where}


def test_text_limit_and_free_tags() -> None:
    check_text("x" * 10, 10)
    with pytest.raises(InvalidEntry, match=r"^text: at most 10 characters, not 11$"):
        check_text("x" * 11, 10)
    assert free_tags(["headache", "moon_ache", "fatigue"], ["headache", "fatigue"]) == ["moon_ache"]


def test_csv_rows_are_checked_with_their_line_numbers() -> None:
    lines = [
        "timestamp,mood_score,energy_score,sleep_hours,symptoms,text,metric:steps,id\n",
        "2026-03-01T08:00:00+01:00,5,6,7.5,headache;Nausea,fine,4200,a-1\n",
        '2026-03-02T08:00:00+01:00,7,7,,,"two\n',
        'lines",,\n',
        "\n",
        "2026-03-03T08:00:00,11,6,,,,lots,\n",
        "2026-03-04T08:00:00+01:00,5,5,,,way too long,,\n",
        "2026-03-05T08:00:00+01:00,5,5,,,,,,extra\n",
    ]

    rows = list(read(lines, text_max_length=10))

    assert [row.line for row in rows] == [2, 3, 6, 7, 8]
    first, second, bad, long, extra = rows
    assert first.entry is not None and first.problems == ()
    assert (first.entry.id, first.entry.symptoms, first.entry.metrics) == (
        "a-1",
        ["headache", "nausea"],
        {"steps": 4200.0},
    )
    assert first.entry.sleep_hours == 7.5
    assert second.entry is not None and second.entry.text == "two\nlines"
    assert second.entry.sleep_hours is None and second.entry.metrics == {}
    assert bad.entry is None
    assert [p.split(":")[0] for p in bad.problems] == ["timestamp", "mood_score", "metric"]
    assert bad.problems[2].startswith("metric:steps: ")
    assert long.problems == ("text: at most 10 characters, not 12",)
    assert extra.problems == ("9 cells but 8 columns",)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "the file is empty"),
        ("timestamp,mood_score,energy,energy_score", "unknown columns 'energy'"),
        ("timestamp,mood_score", "missing columns: energy_score"),
        ("timestamp,mood_score,energy_score,text,text", "repeated columns: text"),
    ],
)
def test_csv_header_errors(header: str, message: str) -> None:
    with pytest.raises(BadHeader, match=message):
        list(read([header + "\n"] if header else [], text_max_length=100))
