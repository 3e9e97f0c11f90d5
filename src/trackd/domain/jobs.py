"""The status flow of an application's job tracking rows (seed 004), as pure rules.

A job row speaks trackd's states; the task-monitoring vocabulary maps onto them
(PROCESSING → running, SUCCESS → completed, REVOKED → cancelled, RETRY → a retry):

    pending ──▶ running ──▶ completed
       │          │  ▲
       │          ▼  │ (waiting / delegated and back)
       ├────────▶ failed ──▶ pending  (a retry, while attempts < max_attempts)
       └────────▶ cancelled

`attempts` counts the attempts made: leaving pending uses one, whether the task starts or
fails or is cancelled before it started (e.g. because a prerequisite failed). So the number
of the attempt a row is in is `attempts + 1` while it is pending and `attempts` after, the
same numbering trackd's fold gives retries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from trackd.domain.retry import may_retry
from trackd.domain.states import TERMINAL_STATES, TaskState, UnknownStateError, parse_state

MAX_ATTEMPTS_LIMIT = 10_000
ERROR_MAX = 4000  # characters of an error message kept on the row
STALE_STATES = frozenset({TaskState.RUNNING})
# States a task is in while it has not ended; "active" in the seed's words (plus pending).
OPEN_STATES = frozenset(TaskState) - TERMINAL_STATES


class IllegalJobTransition(ValueError):
    """A status change the flow does not allow; the message says why and what is allowed."""


@dataclass(frozen=True, slots=True)
class JobFacts:
    """The part of a tracking row the status flow reads and writes."""

    status: TaskState
    attempts: int
    max_attempts: int
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def attempt(self) -> int:
        """The number of the attempt the task is in, counting from 1."""
        return attempt_number(self.status, self.attempts)

    @property
    def can_retry(self) -> bool:
        return self.status is TaskState.FAILED and may_retry(self.attempts, self.max_attempts)


@dataclass(frozen=True, slots=True)
class JobChange:
    """What one status change did: the row before and after, and why."""

    before: JobFacts
    after: JobFacts
    reason: str | None = None

    @property
    def changed(self) -> bool:
        """Whether the status moved (a repeated status only refreshes updated_at)."""
        return self.before.status is not self.after.status or self.retried

    @property
    def retried(self) -> bool:
        return self.after.attempt > self.before.attempt


def attempt_number(status: TaskState, attempts: int) -> int:
    """The attempt a row with `attempts` used is in (see the module docstring)."""
    return attempts + 1 if status is TaskState.PENDING else max(attempts, 1)


def parse_status(value: str | TaskState) -> tuple[TaskState, bool]:
    """A status from any supported vocabulary, and whether it asks for a retry.

    Raises:
        IllegalJobTransition: the word is not a status.
    """
    if isinstance(value, TaskState):
        return value, False
    try:
        return parse_state(value)
    except UnknownStateError as exc:
        raise IllegalJobTransition(str(exc)) from None


def check_max_attempts(value: int) -> int:
    """`value` if it is a usable max_attempts, else ValueError with the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"max_attempts is a whole number, not {value!r}")
    if not 1 <= value <= MAX_ATTEMPTS_LIMIT:
        raise ValueError(f"max_attempts is from 1 to {MAX_ATTEMPTS_LIMIT}, not {value}")
    return value


def clip_error(message: str | None) -> str | None:
    """An error message short enough to keep on the row (the start is what people read)."""
    if message is None:
        return None
    # PostgreSQL cannot store NUL in text; an exception's message may carry one.
    message = message.replace("\x00", "\\0")
    return message if len(message) <= ERROR_MAX else message[: ERROR_MAX - 1] + "…"


def change_status(
    job: JobFacts,
    requested: str | TaskState,
    now: datetime,
    *,
    error: str | None = None,
    retry_delay: float = 0.0,
) -> JobChange:
    """Move a job to `requested`, setting the timestamps, error and attempts that go with it.

    A failed job asked for `pending` (or `RETRY`) is retried: the next attempt begins, due
    `retry_delay` seconds from `now`. Asking for the status a running job already has is a
    heartbeat: only `updated_at` moves.

    Raises:
        IllegalJobTransition: the flow does not allow the change; the message says why.
    """
    new, retry_word = parse_status(requested)
    current = job.status
    if retry_word or (new is TaskState.PENDING and current is TaskState.FAILED):
        return _retry(job, now, retry_delay, error)
    if new is current and not current.terminal:
        after = replace(job, updated_at=now, error_message=clip_error(error) or job.error_message)
        return JobChange(job, after)
    if current.terminal:
        if new is current:
            return JobChange(job, job)  # the same end reported again changes nothing
        hint = " (a failed task can be retried)" if current is TaskState.FAILED else ""
        raise IllegalJobTransition(
            f"the task is {current}; completed, failed and cancelled are final{hint}, "
            f"so it cannot become {new}"
        )
    if new is TaskState.PENDING:
        raise IllegalJobTransition(
            f"the task is {current}; it goes back to pending only when a failed task is retried"
        )
    if current is TaskState.PENDING and new not in (
        TaskState.RUNNING,
        TaskState.FAILED,
        TaskState.CANCELLED,
    ):
        raise IllegalJobTransition(
            f"the task is pending; it must start (running) before it can become {new}"
        )
    message = clip_error(error)
    if new is TaskState.COMPLETED:
        message = None
    elif new is TaskState.FAILED:
        message = message or "failed without an error message"
    elif new is TaskState.CANCELLED:
        message = message or "cancelled"
    elif current is not TaskState.PENDING:
        message = message or job.error_message  # e.g. running → waiting keeps what it had
    # Leaving pending uses an attempt; a new run also starts clean (a retry's or a blocked
    # reason no longer applies, so `message` is only what this change says).
    after = JobFacts(
        status=new,
        attempts=job.attempts + 1 if current is TaskState.PENDING else job.attempts,
        max_attempts=job.max_attempts,
        updated_at=now,
        started_at=now
        if current is TaskState.PENDING and new is TaskState.RUNNING
        else job.started_at,
        completed_at=now if new.terminal else None,
        error_message=message,
        next_attempt_at=None,
    )
    return JobChange(job, after, error)


def _retry(job: JobFacts, now: datetime, delay: float, reason: str | None) -> JobChange:
    if job.status is not TaskState.FAILED:
        raise IllegalJobTransition(f"the task is {job.status}; only a failed task can be retried")
    if not may_retry(job.attempts, job.max_attempts):
        raise IllegalJobTransition(
            f"the task used {job.attempts} of its {job.max_attempts} attempts; "
            "raise max_attempts to retry it again"
        )
    if delay < 0:
        raise ValueError(f"a retry delay is not negative, got {delay}")
    after = JobFacts(
        status=TaskState.PENDING,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        updated_at=now,
        # The failure stays readable while the retry waits; starting clears it.
        error_message=job.error_message,
        next_attempt_at=now + timedelta(seconds=delay),
    )
    next_attempt = attempt_number(TaskState.PENDING, job.attempts)
    return JobChange(job, after, reason or f"retry: attempt {next_attempt}")


def is_stale(job: JobFacts, now: datetime, timeout: timedelta) -> bool:
    """Whether a running job went without an update for longer than `timeout`."""
    return job.status in STALE_STATES and now - job.updated_at > timeout


def is_due(job: JobFacts, now: datetime) -> bool:
    """Whether a pending job may start now (its retry delay, if any, has passed)."""
    return job.status is TaskState.PENDING and (
        job.next_attempt_at is None or job.next_attempt_at <= now
    )


# -- dependencies ------------------------------------------------------------------------------


class Readiness(StrEnum):
    READY = "ready"  # every prerequisite completed
    WAITING = "waiting"  # some are still on their way
    BROKEN = "broken"  # one failed, was cancelled or is gone: the task cannot run as things are


@dataclass(frozen=True, slots=True)
class Prerequisite:
    """A task another one waits for; `status` None means the row no longer exists."""

    task_id: int
    status: TaskState | None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    readiness: Readiness
    waiting_on: tuple[int, ...] = ()  # the prerequisites that hold the task back
    reason: str | None = None


def prerequisites_verdict(prerequisites: Iterable[Prerequisite]) -> Verdict:
    """Whether a task whose prerequisites are these may start, and if not, why.

    A failed prerequisite breaks its dependents even if it may still be retried: it failed,
    and that is the reason the dependents report until it is retried and completes.
    """
    waiting: list[int] = []
    for p in sorted(prerequisites, key=lambda p: p.task_id):
        if p.status is None:
            return Verdict(
                Readiness.BROKEN, (p.task_id,), f"prerequisite {p.task_id} no longer exists"
            )
        if p.status is TaskState.FAILED:
            detail = f": {p.error_message}" if p.error_message else ""
            return Verdict(
                Readiness.BROKEN, (p.task_id,), f"prerequisite {p.task_id} failed{detail}"
            )
        if p.status is TaskState.CANCELLED:
            detail = f": {p.error_message}" if p.error_message else ""
            return Verdict(
                Readiness.BROKEN, (p.task_id,), f"prerequisite {p.task_id} was cancelled{detail}"
            )
        if p.status is not TaskState.COMPLETED:
            waiting.append(p.task_id)
    if waiting:
        names = ", ".join(str(w) for w in waiting)
        return Verdict(
            Readiness.WAITING, tuple(waiting), f"waiting for prerequisites to complete: {names}"
        )
    return Verdict(Readiness.READY)


def blocked_reason(reason: str) -> str:
    """The error message a pending task carries while a broken prerequisite blocks it."""
    return clip_error(f"blocked: {reason}") or ""
