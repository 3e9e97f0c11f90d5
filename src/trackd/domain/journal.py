"""A user's journal: what an entry may hold, the day it belongs to, and the daily series of
outcomes the observer reads.

An entry is taken at a moment with a time zone (stored in UTC); the day it belongs to is the
calendar day at that moment in the user's time zone, so an entry at 23:30 in Auckland counts
for that Auckland day whatever the server's zone, and a day that DST makes 23 or 25 hours long
is still one day.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo, available_timezones

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_TEXT = 20_000  # the ceiling of the observer's `text_max_length`
MAX_SYMPTOMS = 32
MAX_METRICS = 32
MAX_ENTRY_ID = 100
TAG_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN)]
MetricName = Annotated[str, StringConstraints(pattern=METRIC_PATTERN)]
Score = Annotated[int, Field(ge=1, le=10)]

# Names of the outcome columns of a daily series; metrics and symptoms are prefixed.
MOOD = "mood"
ENERGY = "energy"
SLEEP = "sleep_hours"
METRIC_PREFIX = "metric."
SYMPTOM_PREFIX = "symptom."


class InvalidEntry(ValueError):
    """A value of an entry is wrong; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class JournalEntryIn(BaseModel):
    """One journal entry as a client sends it.

    `id` is the client's own id for the entry (sending it again changes nothing, or updates
    the entry); without one, trackd gives the entry one. Tags are lower-cased; repeats go.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_ENTRY_ID,
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$",
            description="The entry's own id: sending the same id again is idempotent.",
        ),
    ] = None
    timestamp: AwareDatetime = Field(description="When, with a UTC offset (ISO 8601).")
    mood_score: Score
    energy_score: Score
    sleep_hours: Annotated[float | None, Field(ge=0, le=24, allow_inf_nan=False)] = None
    symptoms: Annotated[list[Tag], Field(max_length=MAX_SYMPTOMS)] = []
    text: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    metrics: Annotated[
        dict[MetricName, Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]],
        Field(max_length=MAX_METRICS, description="Custom numeric metrics, {name: value}."),
    ] = {}

    @field_validator("symptoms", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if isinstance(value, list):
            seen: dict[str, None] = {}
            for tag in value:
                seen[tag.strip().lower() if isinstance(tag, str) else tag] = None
            return list(seen)
        return value


def check_text(text: str, limit: int) -> None:
    """Raises InvalidEntry when `text` is longer than the tenant's configured `limit`."""
    if len(text) > limit:
        raise InvalidEntry("text", f"at most {limit} characters, not {len(text)}")


def free_tags(symptoms: Sequence[str], vocabulary: Iterable[str]) -> list[str]:
    """The tags of `symptoms` outside the configured vocabulary, kept but flagged as free."""
    known = set(vocabulary)
    return [tag for tag in symptoms if tag not in known]


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name`.

    Raises:
        InvalidEntry: no such zone (field `timezone`).
    """
    if name not in _zones():
        raise InvalidEntry("timezone", f"{name!r} is not an IANA time zone such as Europe/Paris")
    return ZoneInfo(name)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The calendar day `moment` (aware) falls on in `tz`."""
    if moment.tzinfo is None:
        raise ValueError("local_day needs an aware datetime")
    return moment.astimezone(tz).date()


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The first instant of `day` in `tz` and the first of the next day, both aware.

    Midnight that a DST change skips (it happens in a few zones) starts the day at the first
    instant that exists; `fold=0` picks the first of a repeated midnight.
    """
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    following = date.fromordinal(day.toordinal() + 1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz)
    return _existing(start), _existing(end)


def _existing(moment: datetime) -> datetime:
    # A wall time in a DST gap does not survive a round trip through UTC; it maps to the
    # instant after the gap, where the day really starts.
    back = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return moment if back.replace(tzinfo=None) == moment.replace(tzinfo=None) else back


class EntryLike(Protocol):
    @property
    def timestamp(self) -> datetime: ...
    @property
    def mood_score(self) -> int: ...
    @property
    def energy_score(self) -> int: ...
    @property
    def sleep_hours(self) -> float | None: ...
    @property
    def symptoms(self) -> Sequence[str]: ...
    @property
    def metrics(self) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class DailySeries:
    """A user's outcomes per local day, for the days with at least one entry, in order.

    `columns[name][i]` is the value on `days[i]`; None where nothing was recorded that day
    (a metric or sleep not given). Columns: `mood` and `energy` (mean of the day's scores),
    `sleep_hours` (mean), `metric.<name>` (mean), `symptom.<tag>` (1 when any entry of the day
    names the tag, else 0: a day with entries but without the tag is a day without it).
    """

    timezone: str
    days: list[date] = field(default_factory=list)
    columns: dict[str, list[float | None]] = field(default_factory=dict)
    entries: list[int] = field(default_factory=list)  # entries per day


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def daily_outcomes(entries: Iterable[EntryLike], tz: ZoneInfo) -> DailySeries:
    """The daily outcome series of `entries`, days taken in `tz`."""
    by_day: dict[date, list[EntryLike]] = defaultdict(list)
    for entry in entries:
        by_day[local_day(entry.timestamp, tz)].append(entry)
    days = sorted(by_day)
    metrics = sorted({name for group in by_day.values() for e in group for name in e.metrics})
    tags = sorted({tag for group in by_day.values() for e in group for tag in e.symptoms})
    columns: dict[str, list[float | None]] = {MOOD: [], ENERGY: [], SLEEP: []}
    columns.update({METRIC_PREFIX + name: [] for name in metrics})
    columns.update({SYMPTOM_PREFIX + tag: [] for tag in tags})
    for day in days:
        group = by_day[day]
        columns[MOOD].append(_mean([float(e.mood_score) for e in group]))
        columns[ENERGY].append(_mean([float(e.energy_score) for e in group]))
        columns[SLEEP].append(_mean([e.sleep_hours for e in group if e.sleep_hours is not None]))
        for name in metrics:
            values = [e.metrics[name] for e in group if name in e.metrics]
            columns[METRIC_PREFIX + name].append(_mean(values))
        for tag in tags:
            present = any(tag in e.symptoms for e in group)
            columns[SYMPTOM_PREFIX + tag].append(1.0 if present else 0.0)
    return DailySeries(str(tz.key), days, columns, [len(by_day[d]) for d in days])
