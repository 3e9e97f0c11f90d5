from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from trackd.domain.polls import (
    FINISHED,
    UNFINISHED,
    PollStatus,
    after_block,
    after_failure,
    after_lost_lease,
    block_delay,
)
from trackd.domain.retry import Backoff

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
EXACT = Backoff(base=5, factor=2, cap=3600, jitter=0)


def test_failures_retry_from_five_seconds_doubling_until_attempts_run_out() -> None:
    first = after_failure(attempt=1, max_attempts=3, error="boom", now=NOW, backoff=EXACT)
    second = after_failure(attempt=2, max_attempts=3, error="boom", now=NOW, backoff=EXACT)
    third = after_failure(attempt=3, max_attempts=3, error="boom", now=NOW, backoff=EXACT)

    assert (first.status, first.not_before) == (PollStatus.PENDING, NOW + timedelta(seconds=5))
    assert (second.status, second.not_before) == (
        PollStatus.PENDING,
        NOW + timedelta(seconds=10),
    )
    assert (third.status, third.not_before) == (PollStatus.FAILED, None)
    assert "attempt 3 of 3 failed: boom" in third.reason


def test_default_retry_backoff_is_jittered_below_its_ceiling() -> None:
    rng = random.Random(1)
    delays = [
        after_failure(attempt=1, max_attempts=3, error="x", now=NOW, rng=rng).not_before
        for _ in range(50)
    ]

    assert all(d is not None and 4.5 <= (d - NOW).total_seconds() <= 5 for d in delays)


def test_a_target_that_can_never_work_fails_at_once() -> None:
    outcome = after_failure(
        attempt=1, max_attempts=3, error="no such player", now=NOW, retryable=False
    )

    assert outcome.status is PollStatus.FAILED
    assert outcome.reason == "no such player"


def test_blocks_wait_for_the_host_and_give_up_after_max_blocks() -> None:
    until = NOW + timedelta(minutes=1)

    waiting = after_block(blocks=1, max_blocks=3, host="h.example", until=until, message="403")
    given_up = after_block(blocks=3, max_blocks=3, host="h.example", until=until, message="403")

    assert (waiting.status, waiting.not_before) == (PollStatus.BLOCKED, until)
    assert "h.example" in waiting.reason
    assert (given_up.status, given_up.not_before) == (PollStatus.FAILED, None)
    assert "3 times in a row" in given_up.reason


def test_block_delay_honours_a_longer_retry_after() -> None:
    exact = Backoff(base=60, factor=2, cap=3600, jitter=0)

    assert block_delay(1, None, backoff=exact) == 60
    assert block_delay(3, None, backoff=exact) == 240
    assert block_delay(1, 900, backoff=exact) == 900
    assert block_delay(3, 10, backoff=exact) == 240


def test_a_lost_lease_runs_again_while_attempts_remain() -> None:
    assert after_lost_lease(attempt=1, max_attempts=3, owner="w1") is None
    lost = after_lost_lease(attempt=3, max_attempts=3, owner="w1")

    assert lost is not None
    assert lost.status is PollStatus.FAILED
    assert "w1" in lost.reason


def test_statuses_are_either_finished_or_not() -> None:
    assert FINISHED | UNFINISHED == set(PollStatus)
    assert not FINISHED & UNFINISHED
    assert PollStatus.BLOCKED.finished is False
