"""Prometheus counters and histograms that ingest feeds once a batch has committed.

They are per process: each ingest process counts what it committed since it started, so a
deployment of several ingest processes sums them in PromQL (`sum by (tenant, ...)`) and a
restart resets them as Prometheus counters expect. State that must survive a restart (tasks
running, dead letters, outbox) is read from the store at scrape time instead
(`trackd.store.repos.gauges`).
"""

from __future__ import annotations

from collections import Counter as CountOf
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

OTHER = "other"
"""The label every type past a tenant's first `top_types` is counted under."""

# Lags run from milliseconds (a live producer) to hours (a replayed or buffered backlog).
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, float("inf"))
# Tasks run from milliseconds to hours, like trackd.jobs' DURATION_BUCKETS.
RUNTIME_BUCKETS = (0.05, 0.25, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21600, float("inf"))


@dataclass(frozen=True, slots=True)
class EventSeen:
    """One event of a committed batch and what became of it."""

    tenant: str
    event_type: str
    outcome: str  # accepted, refused (an anomaly), duplicate or dead_lettered
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskChange:
    """A task a committed batch finished or retried."""

    tenant: str
    task_type: str
    finished_as: str | None = None  # the terminal state it reached, if it did
    runtime_seconds: float | None = None
    retried: bool = False


class TypeCap:
    """Keeps a tenant's label values to the first `limit` types seen; the rest are `other`.

    Producers name event and task types freely: without a cap one careless producer would
    make a series per id. First seen rather than most frequent, so a series never changes
    name while the process runs.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._kept: dict[str, set[str]] = defaultdict(set)

    def __call__(self, tenant: str, value: str) -> str:
        kept = self._kept[tenant]
        if value in kept:
            return value
        if len(kept) < self._limit:
            kept.add(value)
            return value
        return OTHER


class IngestMetrics:
    """The ingest-time metrics of one process, in a registry of their own."""

    def __init__(self, top_types: int = 20) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._event_type = TypeCap(top_types)
        self._task_type = TypeCap(top_types)
        self.events = Counter(
            "trackd_events",
            "Events ingest committed, by tenant, type and outcome (accepted, refused by the "
            "fold as an anomaly, duplicate, dead_lettered). Per ingest process.",
            ["tenant", "type", "outcome"],
            registry=self.registry,
        )
        self.lag = Histogram(
            "trackd_ingest_lag_seconds",
            "Seconds from an accepted event's time to the commit of its batch. Per process.",
            ["tenant"],
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.runtime = Histogram(
            "trackd_task_runtime_seconds",
            "Runtime (start to end) of tasks that reached a terminal state, by tenant and "
            "type. Per ingest process.",
            ["tenant", "type"],
            buckets=RUNTIME_BUCKETS,
            registry=self.registry,
        )
        self.finished = Counter(
            "trackd_tasks_finished",
            "Tasks that reached a terminal state, by tenant, type and state. Per process.",
            ["tenant", "type", "state"],
            registry=self.registry,
        )
        self.retries = Counter(
            "trackd_task_retries",
            "Tasks that started a new attempt, by tenant and type. Per ingest process.",
            ["tenant", "type"],
            registry=self.registry,
        )
        self.anomalies = Counter(
            "trackd_anomalies",
            "Events the fold refused and stored as anomalies, by tenant. Per ingest process.",
            ["tenant"],
            registry=self.registry,
        )

    def observe(
        self, events: list[EventSeen], changes: list[TaskChange], committed_at: datetime
    ) -> None:
        """Count what one committed batch did; lags run to `committed_at`.

        Grouped by labels first: a labelled child's lookup costs more than what it counts.
        """
        counted: CountOf[tuple[str, str, str]] = CountOf()
        lags: dict[str, list[float]] = defaultdict(list)
        for ev in events:
            counted[(ev.tenant, ev.event_type, ev.outcome)] += 1
            if ev.occurred_at is not None and ev.outcome in ("accepted", "refused"):
                # An event dated ahead of this clock (drift) has no lag, not a negative one.
                lags[ev.tenant].append(max(0.0, (committed_at - ev.occurred_at).total_seconds()))
        for (tenant, event_type, outcome), n in counted.items():
            self.events.labels(tenant, self._event_type(tenant, event_type), outcome).inc(n)
            if outcome == "refused":
                self.anomalies.labels(tenant).inc(n)
        for tenant, seconds in lags.items():
            child = self.lag.labels(tenant)
            for value in seconds:
                child.observe(value)
        for ch in changes:
            task_type = self._task_type(ch.tenant, ch.task_type)
            if ch.retried:
                self.retries.labels(ch.tenant, task_type).inc()
            if ch.finished_as is not None:
                self.finished.labels(ch.tenant, task_type, ch.finished_as).inc()
                if ch.runtime_seconds is not None:
                    self.runtime.labels(ch.tenant, task_type).observe(max(0.0, ch.runtime_seconds))
