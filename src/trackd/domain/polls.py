"""A poll's life: its statuses and what follows a failure, a block or a lost lease.

A poll is one run of a source against one target, tracked like any task (DESIGN §9):

    pending ──claim──▶ running ──▶ completed
       ▲                  │  ├───▶ failed      (an error and no attempt left, or a bad target)
       │   backoff        │  └───▶ blocked ──(the host's backoff ends)──▶ running
       └──────────────────┘         (the remote side refused us: not a failure)

`attempt` counts the runs started. A failure with attempts left goes back to `pending`
until an exponential backoff has passed; a worker that dies mid-run used its attempt up, and
the poll is taken up again when its lease expires. A block does not use an attempt: the poll
waits for the host's backoff and runs again, up to `max_blocks` times in a row, after which
it fails (the host will not let it through).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from trackd.domain.retry import Backoff, may_retry

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_BLOCKS = 8
# From 5 s, doubling: 5, 10, 20 s ... for the retries of a poll that failed.
RETRY_BACKOFF = Backoff(base=5.0, factor=2.0, cap=3600.0, jitter=0.1)
# A host that refuses us is left alone for a minute, then two, four ... up to an hour.
HOST_BACKOFF = Backoff(base=60.0, factor=2.0, cap=3600.0, jitter=0.1)


class PollStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({PollStatus.COMPLETED, PollStatus.FAILED, PollStatus.CANCELLED})
UNFINISHED = frozenset({PollStatus.PENDING, PollStatus.RUNNING, PollStatus.BLOCKED})
# Not started yet and waiting for their time: a retry's backoff, or the host's.
WAITING = frozenset({PollStatus.PENDING, PollStatus.BLOCKED})
# Statuses a worker may take a poll from once its `not_before` has passed (for a running
# poll, `not_before` is when its lease expires).
CLAIMABLE = UNFINISHED


@dataclass(frozen=True, slots=True)
class Next:
    """Where a poll goes after a run that did not complete.

    Attributes:
        status: pending (retry later), blocked (wait for the host) or failed.
        not_before: when it may run again; None when it failed for good.
        reason: what happened, for the poll's error and its task's timeline.
    """

    status: PollStatus
    not_before: datetime | None
    reason: str


def after_failure(
    *,
    attempt: int,
    max_attempts: int,
    error: str,
    now: datetime,
    retryable: bool = True,
    backoff: Backoff = RETRY_BACKOFF,
    rng: random.Random | None = None,
) -> Next:
    """A run failed with `error`: retry after the backoff while attempts remain.

    `retryable=False` (a target that can never be fetched) fails at once.
    """
    if retryable and may_retry(attempt, max_attempts):
        delay = backoff.delay(attempt, rng)
        return Next(
            PollStatus.PENDING,
            now + timedelta(seconds=delay),
            f"attempt {attempt} of {max_attempts} failed, retrying in {delay:.1f} s: {error}",
        )
    if not retryable:
        return Next(PollStatus.FAILED, None, error)
    return Next(PollStatus.FAILED, None, f"attempt {attempt} of {max_attempts} failed: {error}")


def block_delay(
    strikes: int,
    retry_after: float | None,
    *,
    backoff: Backoff = HOST_BACKOFF,
    rng: random.Random | None = None,
) -> float:
    """How long a host that refused us `strikes` times in a row is left alone: its own
    Retry-After when it gave a longer one, else the backoff."""
    return max(retry_after or 0.0, backoff.delay(max(1, strikes), rng))


def after_block(*, blocks: int, max_blocks: int, host: str, until: datetime, message: str) -> Next:
    """A run was refused by `host`, which is left alone until `until`; `blocks` counts this
    poll's refusals in a row, this one included."""
    if blocks >= max_blocks:
        return Next(
            PollStatus.FAILED,
            None,
            f"blocked by {host} {blocks} times in a row, giving up: {message}",
        )
    return Next(
        PollStatus.BLOCKED,
        until,
        f"blocked by {host} ({blocks} of {max_blocks}), trying again at "
        f"{until.isoformat(timespec='seconds')}: {message}",
    )


def after_lost_lease(*, attempt: int, max_attempts: int, owner: str | None) -> Next | None:
    """A running poll whose lease expired (its worker died or hung): None when it may run
    again as a new attempt, else how it fails."""
    if may_retry(attempt, max_attempts):
        return None
    return Next(
        PollStatus.FAILED,
        None,
        f"attempt {attempt} of {max_attempts} was lost: worker {owner or '?'} stopped "
        "renewing its lease",
    )
