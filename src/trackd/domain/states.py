"""Task states, the vocabularies that map onto them, and which transitions are legal."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """The seven states of a task (the agent platform's vocabulary)."""

    PENDING = "pending"
    RUNNING = "running"
    DELEGATED = "delegated"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})
ACTIVE_STATES = frozenset({TaskState.RUNNING, TaskState.DELEGATED, TaskState.WAITING})

# Other vocabularies (job tables, Celery, legacy status columns) spoken by producers.
# RETRY is the one word that also moves the attempt on: see parse_state.
_ALIASES: dict[str, TaskState] = {
    "queued": TaskState.PENDING,
    "received": TaskState.PENDING,
    "sent": TaskState.PENDING,
    "processing": TaskState.RUNNING,
    "in_progress": TaskState.RUNNING,
    "in-progress": TaskState.RUNNING,
    "started": TaskState.RUNNING,
    "success": TaskState.COMPLETED,
    "succeeded": TaskState.COMPLETED,
    "done": TaskState.COMPLETED,
    "failure": TaskState.FAILED,
    "error": TaskState.FAILED,
    "revoked": TaskState.CANCELLED,
    "canceled": TaskState.CANCELLED,
    "retry": TaskState.PENDING,
}


class UnknownStateError(ValueError):
    """A state name that is neither a trackd state nor a known alias."""


def parse_state(value: str) -> tuple[TaskState, bool]:
    """Map a state name from any supported vocabulary onto a TaskState.

    Returns the state and whether the word means "retry" (a new attempt begins).

    Raises:
        UnknownStateError: the name is not a known state.
    """
    word = value.strip().lower()
    try:
        return TaskState(word), False
    except ValueError:
        pass
    if word in _ALIASES:
        return _ALIASES[word], word == "retry"
    known = ", ".join(s.value for s in TaskState)
    raise UnknownStateError(f"unknown task state {value!r}; use one of {known}")


def is_legal(current: TaskState, new: TaskState) -> bool:
    """Whether a task may move from `current` to `new` within one attempt.

    Terminal states are sticky and nothing goes back to pending within an attempt
    (a retry is a new attempt, checked by the fold, not here).
    """
    if current.terminal:
        return False
    return new is not TaskState.PENDING or current is TaskState.PENDING
