"""How a worker runs polls, and what it counts."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from trackd.domain.polls import DEFAULT_MAX_BLOCKS, HOST_BACKOFF, RETRY_BACKOFF
from trackd.domain.retry import Backoff


@dataclass(frozen=True, slots=True)
class PollerOptions:
    """How a worker runs polls.

    Attributes:
        consumer: this worker's name: its lease owner and its name in the consumer group.
        concurrency: polls run at once.
        lease_seconds: how long a claim holds without a heartbeat; a dead worker's polls run
            again this long after its last one.
        timeout_seconds: the longest a fetch may take, for polls that set none.
        sweep_interval: seconds between looks at the database for due polls.
        max_blocks: refusals in a row after which a blocked poll fails.
        publish_timeout: seconds to wait for the bus to take a poll's events.
    """

    consumer: str
    concurrency: int = 4
    lease_seconds: float = 30.0
    timeout_seconds: float = 60.0
    sweep_interval: float = 1.0
    max_blocks: int = DEFAULT_MAX_BLOCKS
    publish_timeout: float = 10.0
    retry_backoff: Backoff = RETRY_BACKOFF
    host_backoff: Backoff = HOST_BACKOFF


@dataclass(slots=True)
class PollerStats:
    claimed: int = 0
    completed: int = 0
    retried: int = 0
    failed: int = 0
    blocked: int = 0
    lost: int = 0
    snapshots: int = 0


def stats_line(stats: PollerStats) -> Mapping[str, int]:
    """The counters as key=value pairs for a log line."""
    return {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)}
