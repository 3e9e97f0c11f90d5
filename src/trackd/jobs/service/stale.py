"""Stale tasks: running with no update for too long, so their worker is presumed gone."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

DEFAULT_STALE_AFTER = timedelta(minutes=30)


class StaleAction(StrEnum):
    """What a sweep does to a stale task."""

    FAIL = "failed"
    CANCEL = "cancelled"


def stale_reason(idle: timedelta, timeout: timedelta) -> str:
    """The error a swept task is left with."""
    return (
        f"stale: no update for {idle.total_seconds():.0f} s "
        f"(timeout {timeout.total_seconds():.0f} s)"
    )
