from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from trackd.domain.schedules import (
    Decision,
    InvalidSchedule,
    RunStatus,
    ScheduleKind,
    ScheduleSpec,
    ScheduleStatus,
    decide,
    fire_time,
    first_run,
    latest_due,
    next_after,
    run_status,
    startup_delay,
)

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def cron(expression: str, tz: str = "UTC", **kwargs: float) -> ScheduleSpec:
    return ScheduleSpec(ScheduleKind.CRON, cron=expression, timezone=tz, **kwargs).validate()


def every(seconds: float, **kwargs: float) -> ScheduleSpec:
    return ScheduleSpec(ScheduleKind.INTERVAL, interval_seconds=seconds, **kwargs).validate()


def runs(spec: ScheduleSpec, start: datetime, count: int) -> list[datetime]:
    out = [first_run(spec, start)]
    while len(out) < count:
        following = next_after(spec, out[-1])
        assert following is not None
        out.append(following)
    return out


def test_interval_runs_from_its_anchor_without_drift() -> None:
    spec = every(90, jitter_seconds=0).validate()

    assert runs(spec, T0, 3) == [T0, T0 + timedelta(seconds=90), T0 + timedelta(seconds=180)]


def test_interval_with_a_start_time_begins_there() -> None:
    start = T0 + timedelta(hours=1)
    spec = ScheduleSpec(ScheduleKind.INTERVAL, interval_seconds=60, run_at=start).validate()

    assert first_run(spec, T0) == start


def test_daily_cron_at_two_utc() -> None:
    spec = cron("0 2 * * *")

    assert runs(spec, T0, 2) == [
        datetime(2026, 1, 11, 2, 0, tzinfo=UTC),
        datetime(2026, 1, 12, 2, 0, tzinfo=UTC),
    ]


def test_cron_keeps_its_wall_clock_hour_across_daylight_saving_time() -> None:
    spec = cron("0 9 * * *", "Europe/Berlin")
    start = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)

    local = [r.astimezone(BERLIN) for r in runs(spec, start, 3)]

    assert [(r.day, r.hour, r.minute) for r in local] == [(28, 9, 0), (29, 9, 0), (30, 9, 0)]
    # 08:00 UTC in winter time, 07:00 UTC once summer time began on the 29th.
    assert [r.astimezone(UTC).hour for r in local] == [8, 7, 7]


def test_a_wall_clock_time_skipped_by_spring_forward_runs_at_the_end_of_the_gap() -> None:
    # On 2026-03-29 Berlin's clocks jump from 02:00 to 03:00: 02:30 never happens.
    spec = cron("30 2 * * *", "Europe/Berlin")
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)

    local = [r.astimezone(BERLIN) for r in runs(spec, start, 2)]

    assert local[0] == datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    assert local[0].astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert local[1] == datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN)


def test_times_inside_the_gap_collapse_into_one_run() -> None:
    spec = cron("*/20 * * * *", "Europe/Berlin")
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 local, before the jump

    local = [r.astimezone(BERLIN).strftime("%H:%M") for r in runs(spec, start, 5)]

    # 02:00, 02:20 and 02:40 fall in the gap and become the one run at 03:00.
    assert local == ["01:40", "03:00", "03:20", "03:40", "04:00"]


def test_a_wall_clock_time_repeated_by_fall_back_runs_once() -> None:
    # On 2026-11-01 New York's clocks go back from 02:00 to 01:00: 01:30 happens twice.
    spec = cron("30 1 * * *", "America/New_York")
    start = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)

    got = runs(spec, start, 3)

    assert got[0] == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, the first one
    assert got[1] == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)  # 01:30 EST the day after
    assert got[0].astimezone(NEW_YORK).hour == 1


def test_hourly_cron_across_fall_back_never_runs_an_hour_twice() -> None:
    spec = cron("0 * * * *", "America/New_York")
    start = datetime(2026, 11, 1, 4, 30, tzinfo=UTC)  # 00:30 EDT

    got = runs(spec, start, 3)

    assert [r.astimezone(NEW_YORK).strftime("%H:%M %Z") for r in got] == [
        "01:00 EDT",
        "02:00 EST",
        "03:00 EST",
    ]
    assert len(set(got)) == 3


def test_next_after_from_inside_the_repeated_hour() -> None:
    spec = cron("*/30 * * * *", "America/New_York")
    second_0110 = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)  # 01:10 EST, the second pass

    following = next_after(spec, second_0110)

    assert following == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # 02:00 EST


def test_cron_aliases() -> None:
    spec = cron("@daily")

    assert first_run(spec, T0) == datetime(2026, 1, 11, tzinfo=UTC)


def test_one_shot_runs_once() -> None:
    at = T0 + timedelta(minutes=5)
    spec = ScheduleSpec(ScheduleKind.ONCE, run_at=at).validate()

    assert first_run(spec, T0) == at
    assert next_after(spec, at) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ScheduleSpec(ScheduleKind.INTERVAL), "interval_seconds"),
        (ScheduleSpec(ScheduleKind.INTERVAL, interval_seconds=0.5), "at least 1"),
        (ScheduleSpec(ScheduleKind.CRON, cron="61 * * * *"), "five fields"),
        (ScheduleSpec(ScheduleKind.CRON, cron="* * * * * *"), "five fields"),
        (ScheduleSpec(ScheduleKind.CRON), "five fields"),
        (ScheduleSpec(ScheduleKind.CRON, cron="0 2 * * *", timezone="Mars/Olympus"), "zone"),
        (ScheduleSpec(ScheduleKind.ONCE), "run_at"),
        (ScheduleSpec(ScheduleKind.ONCE, run_at=datetime(2026, 1, 1)), "time zone"),
        (ScheduleSpec(ScheduleKind.ONCE, run_at=T0, jitter_seconds=-1), "jitter"),
        (ScheduleSpec(ScheduleKind.ONCE, run_at=T0, misfire_grace_seconds=-1), "grace"),
    ],
)
def test_invalid_schedules_say_what_to_fix(spec: ScheduleSpec, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        spec.validate()


def test_jitter_delays_within_its_bound_and_is_the_same_everywhere() -> None:
    spec = every(60, jitter_seconds=30)

    fires = [fire_time(spec, f"schedule-{n}", T0) for n in range(200)]

    assert all(T0 <= f < T0 + timedelta(seconds=30) for f in fires)
    assert len({f for f in fires}) > 150  # spread, not one value
    assert fire_time(spec, "schedule-1", T0) == fires[1]  # a pure draw: agreed on by all
    assert fire_time(every(60), "schedule-1", T0) == T0


def test_startup_delay_spreads_schedules_over_the_window() -> None:
    delays = [startup_delay(f"s{n}", 60) for n in range(1000)]

    assert all(0 <= d < 60 for d in delays)
    # Roughly uniform: each ten-second slice gets about a sixth.
    for low in range(0, 60, 10):
        share = sum(low <= d < low + 10 for d in delays) / len(delays)
        assert 0.1 < share < 0.24
    assert startup_delay("s1", 0) == 0


def test_a_run_found_on_time_fires() -> None:
    spec = every(60)

    decision = decide(spec, T0, T0, T0 + timedelta(seconds=1))

    assert decision == Decision(T0, 0, T0 + timedelta(seconds=60))


def test_after_an_outage_only_the_latest_run_fires_and_the_others_are_missed() -> None:
    spec = every(60, misfire_grace_seconds=120)
    now = T0 + timedelta(minutes=10, seconds=5)

    decision = decide(spec, T0, T0, now)

    assert decision.fire == T0 + timedelta(minutes=10)
    assert decision.missed == 10
    assert decision.next_nominal == T0 + timedelta(minutes=11)


def test_a_run_later_than_its_grace_is_missed() -> None:
    spec = cron("0 2 * * *", misfire_grace_seconds=3600)
    nominal = datetime(2026, 1, 11, 2, 0, tzinfo=UTC)

    decision = decide(spec, nominal, nominal, datetime(2026, 1, 11, 9, 0, tzinfo=UTC))

    assert decision == Decision(None, 1, datetime(2026, 1, 12, 2, 0, tzinfo=UTC))


def test_a_run_within_its_grace_after_an_outage_runs_once() -> None:
    spec = cron("0 2 * * *", misfire_grace_seconds=12 * 3600)
    nominal = datetime(2026, 1, 9, 2, 0, tzinfo=UTC)

    decision = decide(spec, nominal, nominal, datetime(2026, 1, 11, 9, 0, tzinfo=UTC))

    # The runs of the 9th and 10th are missed; the 11th's, 7 h late, is within the grace.
    assert decision == Decision(
        datetime(2026, 1, 11, 2, 0, tzinfo=UTC), 2, datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
    )


def test_a_late_one_shot_is_missed_and_over() -> None:
    spec = ScheduleSpec(ScheduleKind.ONCE, run_at=T0, misfire_grace_seconds=60).validate()

    assert decide(spec, T0, T0, T0 + timedelta(seconds=61)) == Decision(None, 1, None)
    assert decide(spec, T0, T0, T0 + timedelta(seconds=59)) == Decision(T0, 0, None)


def test_lateness_counts_from_the_fire_time_so_jitter_and_spread_never_cause_a_miss() -> None:
    spec = ScheduleSpec(ScheduleKind.ONCE, run_at=T0, misfire_grace_seconds=10).validate()
    delayed = T0 + timedelta(seconds=45)  # a start-up spread put it here

    assert decide(spec, T0, delayed, delayed + timedelta(seconds=2)).fire == T0


def test_latest_due_walks_a_frequent_cron_through_a_long_outage_quickly() -> None:
    spec = cron("* * * * *")
    now = T0 + timedelta(days=30, seconds=30)

    latest, superseded = latest_due(spec, T0, now)

    assert latest == T0 + timedelta(days=30)
    assert superseded >= 1000  # a lower bound past the walk's limit


@pytest.mark.parametrize(
    ("status", "fired", "unfinished", "failed", "expected"),
    [
        (ScheduleStatus.ACTIVE, False, 0, 0, RunStatus.PENDING),
        (ScheduleStatus.CANCELLED, False, 0, 0, RunStatus.CANCELLED),
        (ScheduleStatus.MISSED, False, 0, 0, RunStatus.MISSED),
        (ScheduleStatus.DONE, True, 2, 0, RunStatus.RUNNING),
        (ScheduleStatus.DONE, True, 0, 0, RunStatus.COMPLETED),
        (ScheduleStatus.DONE, True, 0, 1, RunStatus.FAILED),
        (ScheduleStatus.CANCELLED, True, 1, 0, RunStatus.RUNNING),
    ],
)
def test_run_status(
    status: ScheduleStatus, fired: bool, unfinished: int, failed: int, expected: RunStatus
) -> None:
    assert run_status(status=status, fired=fired, unfinished=unfinished, failed=failed) is expected
