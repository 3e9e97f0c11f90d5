"""The job status flow: legal and illegal changes, timestamps, attempts, retries, readiness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trackd.domain.jobs import (
    ERROR_MAX,
    IllegalJobTransition,
    JobFacts,
    Prerequisite,
    Readiness,
    attempt_number,
    change_status,
    check_max_attempts,
    is_due,
    is_stale,
    prerequisites_verdict,
)
from trackd.domain.states import TaskState

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
S = TaskState


def job(status: TaskState = S.PENDING, attempts: int = 0, max_attempts: int = 3) -> JobFacts:
    return JobFacts(status=status, attempts=attempts, max_attempts=max_attempts, updated_at=T0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_run_sets_started_then_completed_and_uses_one_attempt() -> None:
    running = change_status(job(), "PROCESSING", at(1)).after
    done = change_status(running, "SUCCESS", at(5)).after

    assert (running.status, running.attempts, running.started_at) == (S.RUNNING, 1, at(1))
    assert running.completed_at is None
    assert (done.status, done.started_at, done.completed_at) == (S.COMPLETED, at(1), at(5))
    assert done.updated_at == at(5)
    assert done.attempt == 1


def test_a_failure_records_its_error_and_a_retry_starts_the_next_attempt_later() -> None:
    failed = change_status(
        change_status(job(), "running", at(1)).after, "failed", at(2), error="boom"
    )
    retried = change_status(failed.after, "RETRY", at(3), retry_delay=30)

    assert (failed.after.status, failed.after.error_message) == (S.FAILED, "boom")
    assert failed.after.completed_at == at(2)
    after = retried.after
    assert (after.status, after.attempts, after.attempt) == (S.PENDING, 1, 2)
    assert retried.retried and retried.changed
    assert after.next_attempt_at == at(33)
    assert (after.started_at, after.completed_at) == (None, None)
    assert after.error_message == "boom"  # readable while the retry waits
    assert retried.reason == "retry: attempt 2"
    restarted = change_status(after, "running", at(40)).after
    assert (restarted.attempts, restarted.started_at, restarted.error_message) == (2, at(40), None)


def test_pending_asked_of_a_failed_task_is_a_retry_too() -> None:
    failed = job(S.FAILED, attempts=1)

    assert change_status(failed, "pending", at(1)).after.attempt == 2


def test_retries_stop_at_max_attempts() -> None:
    with pytest.raises(IllegalJobTransition, match="used 3 of its 3 attempts"):
        change_status(job(S.FAILED, attempts=3), "retry", at(1))


@pytest.mark.parametrize("status", [S.PENDING, S.RUNNING, S.COMPLETED, S.CANCELLED])
def test_only_failed_tasks_are_retried(status: TaskState) -> None:
    with pytest.raises(IllegalJobTransition, match="only a failed task can be retried"):
        change_status(job(status, attempts=1), "retry", at(1))


@pytest.mark.parametrize(
    ("status", "new", "message"),
    [
        (S.COMPLETED, "running", "final"),
        (S.CANCELLED, "completed", "final"),
        (S.FAILED, "running", "can be retried"),
        (S.PENDING, "completed", "must start"),
        (S.PENDING, "waiting", "must start"),
        (S.RUNNING, "pending", "only when a failed task is retried"),
    ],
)
def test_illegal_changes_say_why(status: TaskState, new: str, message: str) -> None:
    with pytest.raises(IllegalJobTransition, match=message):
        change_status(job(status, attempts=1), new, at(1))


def test_an_unknown_status_is_refused_with_the_known_ones() -> None:
    with pytest.raises(IllegalJobTransition, match="unknown task state 'DONE-ISH'"):
        change_status(job(), "DONE-ISH", at(1))


def test_leaving_pending_without_running_uses_an_attempt() -> None:
    failed = change_status(job(), "failed", at(1), error="prerequisite 4 failed").after
    cancelled = change_status(job(), "REVOKED", at(1)).after

    assert (failed.attempts, failed.attempt, failed.started_at) == (1, 1, None)
    assert (cancelled.status, cancelled.attempts, cancelled.completed_at) == (S.CANCELLED, 1, at(1))
    assert cancelled.error_message == "cancelled"
    # Its retry is a new attempt, which trackd's fold needs to accept the events.
    assert change_status(failed, "retry", at(2)).after.attempt == 2


def test_the_same_status_again_is_a_heartbeat_or_nothing() -> None:
    running = change_status(job(), "running", at(1)).after
    beat = change_status(running, "running", at(9))
    again = change_status(change_status(running, "completed", at(10)).after, "completed", at(11))

    assert not beat.changed and beat.after.updated_at == at(9)
    assert beat.after.attempts == 1
    assert not again.changed and again.after.completed_at == at(10)


def test_waiting_and_back_keep_the_run() -> None:
    running = change_status(job(), "running", at(1)).after
    waiting = change_status(running, "waiting", at(2), error="rate limited").after
    back = change_status(waiting, "running", at(3)).after

    assert (waiting.attempts, waiting.started_at, waiting.error_message) == (
        1,
        at(1),
        "rate limited",
    )
    assert (back.attempts, back.started_at, back.error_message) == (1, at(1), "rate limited")


def test_nul_characters_in_errors_are_escaped() -> None:
    failed = change_status(job(S.RUNNING, 1), "failed", at(1), error="bad\x00byte").after

    assert failed.error_message == "bad\\0byte"


def test_long_errors_are_clipped() -> None:
    failed = change_status(job(S.RUNNING, 1), "failed", at(1), error="x" * 10_000).after

    assert failed.error_message is not None and len(failed.error_message) == ERROR_MAX


def test_attempt_numbers_follow_the_fold() -> None:
    assert [attempt_number(S.PENDING, n) for n in (0, 1, 2)] == [1, 2, 3]
    assert [attempt_number(S.FAILED, n) for n in (0, 1, 2)] == [1, 1, 2]


@pytest.mark.parametrize("bad", [0, -1, 10_001, True, 2.5])
def test_max_attempts_has_a_range(bad: object) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        check_max_attempts(bad)  # type: ignore[arg-type]


def test_stale_means_running_without_an_update_for_longer_than_the_timeout() -> None:
    running = change_status(job(), "running", at(0)).after
    limit = timedelta(minutes=10)

    assert not is_stale(running, at(600), limit)
    assert is_stale(running, at(601), limit)
    assert not is_stale(job(), at(10_000), limit)


def test_a_retry_is_due_once_its_delay_passed() -> None:
    retried = change_status(job(S.FAILED, 1), "retry", at(0), retry_delay=60).after

    assert not is_due(retried, at(59))
    assert is_due(retried, at(60))
    assert is_due(job(), at(0))
    assert not is_due(job(S.RUNNING, 1), at(0))


def test_prerequisites_decide_whether_a_task_may_start() -> None:
    done = Prerequisite(1, S.COMPLETED)

    assert prerequisites_verdict([]).readiness is Readiness.READY
    assert prerequisites_verdict([done]).readiness is Readiness.READY
    waiting = prerequisites_verdict([done, Prerequisite(3, S.RUNNING), Prerequisite(2, S.PENDING)])
    assert (waiting.readiness, waiting.waiting_on) == (Readiness.WAITING, (2, 3))
    assert waiting.reason == "waiting for prerequisites to complete: 2, 3"
    failed = prerequisites_verdict([Prerequisite(3, S.RUNNING), Prerequisite(5, S.FAILED, "boom")])
    assert (failed.readiness, failed.reason) == (Readiness.BROKEN, "prerequisite 5 failed: boom")
    gone = prerequisites_verdict([Prerequisite(7, None)])
    assert (gone.readiness, gone.reason) == (Readiness.BROKEN, "prerequisite 7 no longer exists")
    cancelled = prerequisites_verdict([Prerequisite(8, S.CANCELLED)])
    assert cancelled.reason == "prerequisite 8 was cancelled"
