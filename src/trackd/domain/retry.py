"""Retry timing: exponential backoff with jitter, shared by jobs, polls and notifications."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry number `attempt` (1 = the first retry): base * factor^(attempt-1),
    capped, with "full jitter" within `jitter` of it so that many failures at once do not
    retry in lockstep.

    Attributes:
        base: seconds before the first retry.
        factor: growth per retry.
        cap: the longest delay, in seconds.
        jitter: share of the delay that is random, 0 (none) to 1 (anywhere from 0 to the delay).
    """

    base: float = 5.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0:
            raise ValueError("backoff base and cap must not be negative")
        if self.factor < 1:
            raise ValueError("backoff factor must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be between 0 and 1")

    def ceiling(self, attempt: int) -> float:
        """The delay before retry `attempt` without jitter."""
        if attempt < 1:
            raise ValueError(f"retry attempts count from 1, got {attempt}")
        # Exponent bounded so that a large attempt number cannot overflow a float.
        return float(min(self.cap, self.base * self.factor ** min(attempt - 1, 64)))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before retry `attempt`, jittered downwards by up to `jitter` of it."""
        ceiling = self.ceiling(attempt)
        if self.jitter == 0 or ceiling == 0:
            return ceiling
        draw = (rng or _rng).random()
        return ceiling * (1 - self.jitter * draw)


# Jitter only spreads retries; it needs no cryptographic randomness.
_rng = random.Random()  # noqa: S311


def may_retry(attempts: int, max_attempts: int) -> bool:
    """Whether a task that has run `attempts` times may run again within `max_attempts`."""
    return attempts < max_attempts
