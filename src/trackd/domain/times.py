"""The one rule for times trackd is given: aware, stored in UTC, and within bounds.

A time must carry a time zone (a naive time means nothing across producers' machines); it
must still be a time once converted to UTC (`9999-12-31T23:59:59-14:00` is not); and it must
leave room for the arithmetic stores do (metric buckets add hours). How far ahead of the
receiver's clock a time may be is a setting, checked by `ahead_problem`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from pydantic import AfterValidator

LAST_YEAR: Final = 9999


def to_utc(value: datetime) -> datetime:
    """`value` in UTC; ValueError (with a message for the producer) when it cannot be one."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must carry a time zone, e.g. 2026-01-11T10:00:00Z")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        raise ValueError("time is out of range once converted to UTC") from None
    if value.year >= LAST_YEAR:
        raise ValueError(f"time must be before {LAST_YEAR}-01-01T00:00:00Z")
    return value


UtcTime = Annotated[datetime, AfterValidator(to_utc)]
"""A datetime field that follows the time rule (for pydantic models)."""


def ahead_problem(value: datetime, now: datetime, bound: timedelta) -> str | None:
    """Why `value` is too far ahead of `now` (more than `bound`), or None when it is not."""
    if value - now <= bound:
        return None
    return (
        f"{value.isoformat()} is more than {_span(bound)} ahead of trackd's clock "
        f"({now.isoformat(timespec='seconds')}); times may be at most {_span(bound)} "
        "in the future"
    )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"
