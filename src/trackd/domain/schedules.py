"""When schedules run: next runs, jitter, missed runs and the start-up spread (DESIGN §9).

Pure rules, no I/O: the scheduler (`trackd.scheduling.scheduler`) stores what these decide.

Three kinds of schedule:

- `interval`: every N seconds from an anchor (the first run), so runs never drift.
- `cron`: a five-field cron expression (or `@daily` and its kin) read on the wall clock of a
  time zone. A wall-clock time that a daylight-saving jump skips runs at the end of the gap;
  a wall-clock time that happens twice (clocks going back) runs once, the first time.
- `once`: a single run at a given time.

Every run has a *nominal* time (what the schedule says) and a *fire* time, the nominal time
plus a jitter drawn from the schedule's key, so that many schedules with the same nominal
time do not all fire in the same second, and every scheduler process agrees on the draw.

A run found late by more than the schedule's grace (the scheduler was down) is *missed*; of
several runs missed in a row only the latest may still run, once, and only within the grace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from trackd.errors import RuleBroken

MIN_INTERVAL_SECONDS = 1.0
MAX_JITTER_SECONDS = 86_400.0
MAX_GRACE_SECONDS = 7 * 86_400.0
DEFAULT_GRACE_SECONDS = 300.0
_CRON_ALIASES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"})
# Walking a cron schedule run by run through a long outage is bounded; past this many runs the
# walk jumps to the last day before now (the count of missed runs is then a lower bound).
_MAX_WALK = 1000


class ScheduleKind(StrEnum):
    INTERVAL = "interval"
    CRON = "cron"
    ONCE = "once"


class ScheduleStatus(StrEnum):
    """Where a schedule stands. Only `active` schedules fire."""

    ACTIVE = "active"
    DONE = "done"  # a one-shot that fired
    MISSED = "missed"  # a one-shot found late beyond its grace
    CANCELLED = "cancelled"


class InvalidSchedule(RuleBroken):
    """A schedule that cannot run as given; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """When a schedule runs.

    Attributes:
        kind: interval, cron or once.
        interval_seconds: for `interval`, the time between runs (at least 1 s).
        cron: for `cron`, five fields (minute hour day month weekday) or an @alias.
        run_at: for `once`, when it runs; for `interval`, the first run (default: at once).
        timezone: the IANA zone whose wall clock a cron expression reads (default UTC).
        jitter_seconds: each run fires up to this much after its nominal time.
        misfire_grace_seconds: how late a run may still start; later, it is missed.
    """

    kind: ScheduleKind
    interval_seconds: float | None = None
    cron: str | None = None
    run_at: datetime | None = None
    timezone: str = "UTC"
    jitter_seconds: float = 0.0
    misfire_grace_seconds: float = DEFAULT_GRACE_SECONDS

    def validate(self) -> ScheduleSpec:
        """Itself, if it can run.

        Raises:
            InvalidSchedule: with what to fix.
        """
        if self.kind is ScheduleKind.INTERVAL:
            if self.interval_seconds is None or not self.interval_seconds >= MIN_INTERVAL_SECONDS:
                raise InvalidSchedule(
                    f"an interval schedule needs interval_seconds of at least "
                    f"{MIN_INTERVAL_SECONDS:g}, got {self.interval_seconds!r}"
                )
        elif self.kind is ScheduleKind.CRON:
            check_cron(self.cron)
        elif self.run_at is None:
            raise InvalidSchedule("a one-shot schedule needs run_at")
        if self.run_at is not None and self.run_at.utcoffset() is None:
            raise InvalidSchedule("run_at must carry a time zone, e.g. 2026-01-11T02:00:00Z")
        zone(self.timezone)
        if not 0 <= self.jitter_seconds <= MAX_JITTER_SECONDS:
            raise InvalidSchedule(
                f"jitter_seconds is from 0 to {MAX_JITTER_SECONDS:g}, got {self.jitter_seconds!r}"
            )
        if not 0 <= self.misfire_grace_seconds <= MAX_GRACE_SECONDS:
            raise InvalidSchedule(
                f"misfire_grace_seconds is from 0 to {MAX_GRACE_SECONDS:g}, "
                f"got {self.misfire_grace_seconds!r}"
            )
        return self


def check_cron(expression: str | None) -> str:
    """The expression, if it is five cron fields or an @alias.

    Raises:
        InvalidSchedule: otherwise, with an example of the form.
    """
    text = (expression or "").strip()
    fields = text.split()
    is_alias = len(fields) == 1 and text.lower() in _CRON_ALIASES
    if not is_alias and (len(fields) != 5 or not croniter.is_valid(text)):
        raise InvalidSchedule(
            f"cron must be five fields (minute hour day month weekday, e.g. '0 2 * * *') "
            f"or one of {', '.join(sorted(_CRON_ALIASES))}; got {expression!r}"
        )
    return text


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`.

    Raises:
        InvalidSchedule: the zone is unknown.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None


def first_run(spec: ScheduleSpec, now: datetime) -> datetime:
    """The nominal time of a new schedule's first run.

    A one-shot's is its `run_at`, even when that is already past: the scheduler then starts it
    within the grace, or records it as missed.
    """
    if spec.kind is ScheduleKind.ONCE:
        if spec.run_at is None:  # pragma: no cover - validate() refuses it
            raise InvalidSchedule("a one-shot schedule needs run_at")
        return _utc(spec.run_at)
    if spec.kind is ScheduleKind.INTERVAL:
        return _utc(spec.run_at) if spec.run_at is not None else _utc(now)
    return _next_cron(spec, _utc(now) - timedelta(microseconds=1))


def next_after(spec: ScheduleSpec, nominal: datetime) -> datetime | None:
    """The nominal time of the run after the one at `nominal`; None for a one-shot."""
    if spec.kind is ScheduleKind.ONCE:
        return None
    if spec.kind is ScheduleKind.INTERVAL:
        return _utc(nominal) + timedelta(seconds=_interval(spec))
    return _next_cron(spec, _utc(nominal))


def _interval(spec: ScheduleSpec) -> float:
    if spec.interval_seconds is None:  # pragma: no cover - validate() refuses it
        raise InvalidSchedule("an interval schedule needs interval_seconds")
    return spec.interval_seconds


def _next_cron(spec: ScheduleSpec, after: datetime) -> datetime:
    """The first cron run strictly after the instant `after`."""
    return next(_cron_runs(spec, after))


def _cron_runs(spec: ScheduleSpec, after: datetime) -> Iterator[datetime]:
    """The cron runs strictly after the instant `after`, in order, without end.

    croniter walks naive wall-clock times; each is then placed on the time line of the zone.
    Going through naive times is what gives the rules in the module docstring: a wall-clock
    time is produced once (so a repeated hour runs once), and a time inside a gap is moved to
    the gap's end (where several such times become one run).
    """
    tz = zone(spec.timezone)
    local = after.astimezone(tz).replace(tzinfo=None)
    # Start an hour early: `after` may sit in a repeated hour whose wall-clock times croniter
    # would otherwise skip; instants not after the last one given are dropped below.
    walker = croniter(check_cron(spec.cron), local - timedelta(hours=1))
    last = after
    while True:
        instant = _place(walker.get_next(datetime), tz)
        if instant > last:
            last = instant
            yield instant


def _place(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in `tz`: the first one when it happens
    twice, the end of the gap when it never happens."""
    first = wall.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    # In a gap: fold=0 read the time with the offset from before the jump and fold=1 with
    # the one after, so the jump lies between the two instants; bisect down to the second.
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = min(before, instant), max(before, instant)
    offset = low.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def _utc(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise InvalidSchedule("times must carry a time zone")
    return value.astimezone(UTC)


def fraction(key: str, salt: str) -> float:
    """A number in [0, 1) drawn from `key` and `salt`: the same in every process."""
    digest = hashlib.blake2b(f"{key}|{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fire_time(spec: ScheduleSpec, key: str, nominal: datetime) -> datetime:
    """When the run at `nominal` fires: its nominal time plus the schedule's jitter."""
    if spec.jitter_seconds <= 0:
        return nominal
    offset = spec.jitter_seconds * fraction(key, nominal.isoformat())
    return nominal + timedelta(seconds=offset)


def startup_delay(key: str, window_seconds: float) -> float:
    """Seconds after a scheduler's start at which a schedule that was already due fires.

    Runs that fell due while every scheduler was down are spread over the window instead of
    all firing in the first tick; the draw depends on the schedule only, so schedulers
    starting together agree.
    """
    if window_seconds <= 0:
        return 0.0
    return window_seconds * fraction(key, "startup")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a due schedule.

    Attributes:
        fire: the nominal time of the run to start now, or None when it was missed.
        missed: runs that will never start (late beyond the grace, or superseded by a later
            run during an outage).
        next_nominal: the nominal time of the next run, or None when the schedule is over.
    """

    fire: datetime | None
    missed: int
    next_nominal: datetime | None


def decide(spec: ScheduleSpec, nominal: datetime, due_at: datetime, now: datetime) -> Decision:
    """Decide a due run: start it, or record it as missed.

    Args:
        spec: the schedule.
        nominal: the nominal time of the run that fell due.
        due_at: when it was set to fire (nominal plus jitter, or a start-up delay).
        now: the current time; at or after `due_at`.

    Of the runs whose nominal time has passed, only the latest may start, and only when it is
    no later than the schedule's grace; the others count as missed.
    """
    latest, superseded = latest_due(spec, nominal, now)
    lateness = (now - max(due_at, latest)).total_seconds()
    following = next_after(spec, latest)
    if lateness <= spec.misfire_grace_seconds:
        return Decision(latest, superseded, following)
    return Decision(None, superseded + 1, following)


def latest_due(spec: ScheduleSpec, nominal: datetime, now: datetime) -> tuple[datetime, int]:
    """The latest nominal run time at or before `now`, starting from `nominal` (itself due),
    and how many runs between the two it supersedes."""
    if spec.kind is ScheduleKind.ONCE or now <= nominal:
        return nominal, 0
    if spec.kind is ScheduleKind.INTERVAL:
        step = _interval(spec)
        skipped = int((now - nominal).total_seconds() // step)
        return nominal + timedelta(seconds=step * skipped), skipped
    latest, count = nominal, 0
    for candidate in _cron_runs(spec, nominal):
        if candidate > now:
            return latest, count
        latest, count = candidate, count + 1
        if count == _MAX_WALK:
            break
    # A long outage of a frequent cron: jump to the last day before now rather than walk
    # every run of it (the count of superseded runs is then a lower bound).
    for candidate in _cron_runs(spec, max(latest, now - timedelta(days=1))):
        if candidate > now:
            return latest, count
        latest, count = candidate, count + 1
    raise AssertionError("unreachable: cron runs never end")  # pragma: no cover


class RunStatus(StrEnum):
    """How one run of a schedule went, as a feature shows it (a batch's status)."""

    PENDING = "pending"  # not fired yet
    RUNNING = "running"  # fired; some of its polls are not finished
    COMPLETED = "completed"  # fired; every poll finished, none failed
    FAILED = "failed"  # fired; every poll finished, at least one failed
    CANCELLED = "cancelled"  # cancelled before it fired
    MISSED = "missed"  # found late beyond its grace; never fired


def run_status(*, status: ScheduleStatus, fired: bool, unfinished: int, failed: int) -> RunStatus:
    """The status of a schedule's run from the schedule's status and its polls' outcomes.

    Args:
        status: the schedule's status.
        fired: whether the run created its polls.
        unfinished: polls of the run still pending, running or blocked.
        failed: polls of the run that failed.
    """
    if not fired:
        if status is ScheduleStatus.CANCELLED:
            return RunStatus.CANCELLED
        if status is ScheduleStatus.MISSED:
            return RunStatus.MISSED
        return RunStatus.PENDING
    if unfinished:
        return RunStatus.RUNNING
    return RunStatus.FAILED if failed else RunStatus.COMPLETED
