"""Agent metrics: hourly buckets counted per logical task, and the periods they are read over.

A task counts once, in the hour it ended, under the agent of its last attempt. When a retry
reopens a failed task its earlier contribution is taken back, so a task that failed once and
then succeeded counts as one completed task.

Token usage follows the OpenTelemetry GenAI semantic conventions: a task whose
`data.attributes` holds `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens` (an OTLP
span's attributes, or any producer's that uses those names) adds them to its agent's bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from trackd.domain.states import TaskState
from trackd.domain.tasks import TaskRecord

PERIODS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
UNKNOWN_AGENT = "unknown"
# The step of a period's duration chart: about 12 to 30 points whatever the period.
CHART_STEPS: dict[str, timedelta] = {
    "1h": timedelta(minutes=5),
    "24h": timedelta(hours=1),
    "7d": timedelta(hours=6),
    "30d": timedelta(days=1),
}
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
_MAX_TOKENS = 2**40  # far beyond any one call; keeps a wild value from overflowing the sums


@dataclass(frozen=True, slots=True)
class BucketDelta:
    """A change to one (agent, hour) bucket."""

    agent_id: str
    period_start: datetime
    total_tasks: int = 0
    completed_tasks: int = 0
    failed_tasks: int = 0
    cancelled_tasks: int = 0
    duration_sum: float = 0.0
    duration_count: int = 0
    last_event_at: datetime | None = None  # newest task end counted; None in a take-back
    input_tokens: int = 0
    output_tokens: int = 0

    def negated(self) -> BucketDelta:
        return BucketDelta(
            self.agent_id,
            self.period_start,
            -self.total_tasks,
            -self.completed_tasks,
            -self.failed_tasks,
            -self.cancelled_tasks,
            -self.duration_sum,
            -self.duration_count,
            input_tokens=-self.input_tokens,
            output_tokens=-self.output_tokens,
        )

    def plus(self, other: BucketDelta) -> BucketDelta:
        return BucketDelta(
            self.agent_id,
            self.period_start,
            self.total_tasks + other.total_tasks,
            self.completed_tasks + other.completed_tasks,
            self.failed_tasks + other.failed_tasks,
            self.cancelled_tasks + other.cancelled_tasks,
            self.duration_sum + other.duration_sum,
            self.duration_count + other.duration_count,
            _newest(self.last_event_at, other.last_event_at),
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )

    @property
    def is_zero(self) -> bool:
        return (
            self.total_tasks,
            self.completed_tasks,
            self.failed_tasks,
            self.cancelled_tasks,
            self.duration_count,
            self.input_tokens,
            self.output_tokens,
        ) == (0, 0, 0, 0, 0, 0, 0)


def _newest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def contribution(rec: TaskRecord | None) -> BucketDelta | None:
    """What a task adds to the metrics as it stands: nothing until it has ended."""
    if rec is None or not rec.terminal or rec.completed_at is None:
        return None
    duration = rec.duration_seconds
    input_tokens, output_tokens = token_usage(rec.data)
    return BucketDelta(
        agent_id=rec.agent_id or rec.requester or UNKNOWN_AGENT,
        period_start=hour_of(rec.completed_at),
        total_tasks=1,
        completed_tasks=int(rec.state is TaskState.COMPLETED),
        failed_tasks=int(rec.state is TaskState.FAILED),
        cancelled_tasks=int(rec.state is TaskState.CANCELLED),
        duration_sum=duration or 0.0,
        duration_count=int(duration is not None),
        last_event_at=rec.completed_at,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def token_usage(data: dict[str, Any] | None) -> tuple[int, int]:
    """Input and output tokens a task's data reports (GenAI conventions); 0 for what it lacks."""
    attributes = (data or {}).get("attributes")
    if not isinstance(attributes, dict):
        return 0, 0
    return _tokens(attributes.get(INPUT_TOKENS)), _tokens(attributes.get(OUTPUT_TOKENS))


def _tokens(value: object) -> int:
    # A bool is an int to Python, but `true` tokens is a producer's mistake, not 1 token.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_TOKENS:
        return value
    return 0


def bucket_deltas(changes: Iterable[tuple[TaskRecord | None, TaskRecord]]) -> list[BucketDelta]:
    """The bucket changes that take records from their `before` to their `after` form."""
    merged: dict[tuple[str, datetime], BucketDelta] = {}
    for before, after in changes:
        old, new = contribution(before), contribution(after)
        if old == new:
            continue
        for delta in (old.negated() if old else None, new):
            if delta is None:
                continue
            key = (delta.agent_id, delta.period_start)
            merged[key] = merged[key].plus(delta) if key in merged else delta
    # A change of duration alone (a late event moved the start back) must still be written.
    return sorted(
        (d for d in merged.values() if not d.is_zero or d.duration_sum),
        key=lambda d: (d.agent_id, d.period_start),
    )


@dataclass(frozen=True, slots=True)
class AgentMetrics:
    agent_id: str
    period: str
    total_tasks: int
    completed_tasks: int
    failed_tasks: int
    avg_duration_seconds: float
    success_rate: float
    input_tokens: int = 0
    output_tokens: int = 0


def summarize(agent_id: str, period: str, buckets: Iterable[BucketDelta]) -> AgentMetrics:
    """Add up an agent's buckets over a period."""
    total = completed = failed = count = input_tokens = output_tokens = 0
    duration = 0.0
    for b in buckets:
        total += b.total_tasks
        completed += b.completed_tasks
        failed += b.failed_tasks
        duration += b.duration_sum
        count += b.duration_count
        input_tokens += b.input_tokens
        output_tokens += b.output_tokens
    return AgentMetrics(
        agent_id=agent_id,
        period=period,
        total_tasks=total,
        completed_tasks=completed,
        failed_tasks=failed,
        avg_duration_seconds=round(duration / count, 3) if count else 0.0,
        success_rate=round(completed / total, 4) if total else 0.0,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0 < q <= 1) of values sorted ascending (not empty)."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class DurationPoint:
    """The durations of the tasks that ended in one step of time."""

    start: datetime
    count: int
    p50: float | None
    p95: float | None


def duration_series(
    ended: Iterable[tuple[datetime, float]], since: datetime, until: datetime, step: timedelta
) -> list[DurationPoint]:
    """p50 and p95 of task durations per step from `since` to `until`, by when tasks ended;
    a step where no task ended has no percentiles (a gap, not a zero)."""
    steps = max(1, math.ceil((until - since) / step))
    found: list[list[float]] = [[] for _ in range(steps)]
    for end, seconds in ended:
        n = math.floor((end - since) / step)  # floor: a task just before `since` is out
        if 0 <= n < steps:
            found[n].append(seconds)
    out = []
    for n, values in enumerate(found):
        values.sort()
        p50 = percentile(values, 0.5) if values else None
        p95 = percentile(values, 0.95) if values else None
        out.append(DurationPoint(since + step * n, len(values), p50, p95))
    return out
