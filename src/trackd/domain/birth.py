"""A birth instant as a person gives it: a UTC instant, or a wall-clock time in an IANA zone.

A local time that happens twice (the hour repeated when clocks go back) or never (the hour
skipped when they go forward) is refused: guessing would move every house of the chart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class InvalidBirth(ValueError):
    """The birth instant cannot be placed on the time line; the message says what to fix."""


def birth_instant(value: datetime, zone: str | None) -> datetime:
    """The UTC instant of a birth (see `_instant`); an instant off the calendar's ends
    (year 1 or 9999 shifted past them) is refused like the others."""
    try:
        return _instant(value, zone)
    except OverflowError:
        raise InvalidBirth(
            f"{value.isoformat()} is out of range: give a birth since 1900"
        ) from None


def _instant(value: datetime, zone: str | None) -> datetime:
    """The UTC instant of a birth.

    Args:
        value: an aware datetime (its offset is used; `zone` must then be None or agree), or
            a naive wall-clock time read in `zone`.
        zone: an IANA time zone name such as "Europe/Paris", for a naive `value`.

    Raises:
        InvalidBirth: no zone for a naive time, an unknown zone, or a local time that is
            ambiguous or does not exist in the zone.
    """
    if zone is None:
        if value.utcoffset() is None:
            raise InvalidBirth(
                "the birth time has no offset: give it in UTC (ending in 'Z') or name its "
                "time zone in 'timezone' (an IANA name such as 'Europe/Paris')"
            )
        return value.astimezone(UTC)
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidBirth(
            f"unknown time zone {zone!r}; use an IANA name such as 'Europe/Paris'"
        ) from None
    if value.utcoffset() is not None:
        raise InvalidBirth(
            "give either a local time without offset and its 'timezone', or an instant with "
            "an offset and no 'timezone'"
        )
    early = value.replace(tzinfo=tz, fold=0)
    late = value.replace(tzinfo=tz, fold=1)
    if early.utcoffset() != late.utcoffset():
        first, second = sorted((early.astimezone(UTC), late.astimezone(UTC)))
        back = first.astimezone(tz).replace(tzinfo=None) == value
        if back and second.astimezone(tz).replace(tzinfo=None) == value:
            raise InvalidBirth(
                f"{value.isoformat()} happened twice in {zone} (clocks went back): give the "
                f"birth in UTC, {first.isoformat()} or {second.isoformat()}"
            )
        raise InvalidBirth(
            f"{value.isoformat()} never happened in {zone} (clocks went forward): check the "
            "time, or give the birth in UTC"
        )
    return early.astimezone(UTC)
