"""The task events of a poll's steps: what a claim starts and what a run that did not
complete leads to, as the task reads see them."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from trackd.domain.polls import Next, PollStatus
from trackd.domain.states import TaskState
from trackd.scheduling.events import PollEvent
from trackd.store.models import PollRow
from trackd.store.repos.polls import Claim


def claim_events(claim: Claim, now: datetime) -> list[PollEvent]:
    """The events of a claim: the poll runs (after a first pending, a lost attempt or a
    block), or failed on the spot because its lost lease used up its attempts."""
    poll, was = claim.poll, claim.was
    if claim.ended is not None:
        return [
            PollEvent(
                poll,
                poll.event_seq,
                now,
                TaskState.FAILED,
                poll.attempt,
                previous=TaskState.RUNNING,
                reason=claim.ended.reason,
            )
        ]
    running = PollEvent(
        poll, poll.event_seq, now, TaskState.RUNNING, poll.attempt, previous=TaskState.PENDING
    )
    if was is PollStatus.PENDING and poll.attempt == 1:
        pending = PollEvent(poll, poll.event_seq - 1, poll.created_at, TaskState.PENDING, 1)
        return [pending, running]
    if was is PollStatus.RUNNING:
        reason = f"retry: attempt {poll.attempt - 1} was lost when its worker stopped"
        pending = PollEvent(
            poll, poll.event_seq - 1, now, TaskState.PENDING, poll.attempt, reason=reason
        )
        return [pending, running]
    if was is PollStatus.BLOCKED:
        return [dataclasses.replace(running, previous=TaskState.WAITING)]
    return [running]


def outcome_event(poll: PollRow, seq: int, now: datetime, outcome: Next) -> PollEvent:
    """The event of a run that did not complete: a retry pending, a wait, or a failure."""
    if outcome.status is PollStatus.PENDING:
        # A retry: the next attempt is pending (the fold starts a new attempt from it).
        return PollEvent(poll, seq, now, TaskState.PENDING, poll.attempt + 1, reason=outcome.reason)
    state = TaskState.WAITING if outcome.status is PollStatus.BLOCKED else TaskState.FAILED
    return PollEvent(
        poll, seq, now, state, poll.attempt, previous=TaskState.RUNNING, reason=outcome.reason
    )
