"""Task reads (the `/v1/tracker` plan, task, timeline and metrics reads, the dashboard's
and `trackd plans`): read models composed from the repos.

Each view carries `as_of`, the time of the newest event folded into what it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.metrics import (
    CHART_STEPS,
    PERIODS,
    UNKNOWN_AGENT,
    AgentMetrics,
    DurationPoint,
    duration_series,
    hour_of,
    summarize,
)
from trackd.domain.plans import PlanRecord, plan_started_at
from trackd.domain.states import TaskState
from trackd.domain.tasks import TaskRecord, duration_between
from trackd.domain.timeline import TimelineNode, build_tree
from trackd.errors import NotFound
from trackd.store.models import AnomalyRow, StateTransition
from trackd.store.repos import anomalies, metrics, plans, tasks, timeline
from trackd.store.repos.plan_counts import PlanCounts
from trackd.store.repos.tasks import PlanTaskRow, TaskFilter, TaskListRow, TaskSummary
from trackd.store.repos.timeline import TaskEventEntry, TimelineEntry

MAX_TASKS = 5000
MAX_TIMELINE = 10_000


def _newest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


@dataclass(frozen=True, slots=True)
class PlanStatusView:
    plan: PlanRecord
    started_at: datetime
    task_count: int
    completed_tasks: int
    failed_tasks: int
    as_of: datetime | None


async def _plan(session: AsyncSession, tenant_id: str, plan_id: str) -> PlanRecord:
    plan = await plans.get(session, tenant_id, plan_id)
    if plan is None:
        raise NotFound(f"plan {plan_id!r} not found")
    return plan


async def plan_status(session: AsyncSession, tenant_id: str, plan_id: str) -> PlanStatusView:
    found = await plans.get_with_counts(session, tenant_id, plan_id)
    if found is None:
        raise NotFound(f"plan {plan_id!r} not found")
    return _status_of(*found)


def _status_of(plan: PlanRecord, counts: PlanCounts) -> PlanStatusView:
    started = plan_started_at(plan)
    if plan.started_at is None and counts.first_seen_at is not None:
        started = min(started, counts.first_seen_at)
    return PlanStatusView(
        plan=plan,
        started_at=started,
        task_count=counts.task_count,
        completed_tasks=counts.completed_tasks,
        failed_tasks=counts.failed_tasks,
        as_of=_newest(plan.last_event_at, counts.last_event_at),
    )


@dataclass(frozen=True, slots=True)
class PlanTasksView:
    plan_id: str
    tasks: list[PlanTaskRow]
    as_of: datetime | None


async def plan_tasks(
    session: AsyncSession,
    tenant_id: str,
    plan_id: str,
    *,
    limit: int = MAX_TASKS,
    offset: int = 0,
) -> PlanTasksView:
    plan = await _plan(session, tenant_id, plan_id)
    found = await tasks.summaries_for_plan(session, tenant_id, plan_id, limit=limit, offset=offset)
    return PlanTasksView(
        plan_id, found, _newest(plan.last_event_at, *(t.last_event_at for t in found))
    )


@dataclass(frozen=True, slots=True)
class TimelineView:
    plan_id: str
    trace_id: str | None
    events: list[TimelineEntry]
    tree: list[TimelineNode]
    as_of: datetime | None


async def plan_timeline(
    session: AsyncSession, tenant_id: str, plan_id: str, *, limit: int = MAX_TIMELINE
) -> TimelineView:
    plan = await _plan(session, tenant_id, plan_id)
    rows = await timeline.for_plan(session, tenant_id, plan_id, plan.trace_id, limit=limit)
    nodes = [TimelineNode(r.event_id, r.event_type, r.occurred_at, r.parent_event_id) for r in rows]
    trace_id = plan.trace_id or next((r.trace_id for r in rows if r.trace_id), None)
    return TimelineView(
        plan_id, trace_id, rows, build_tree(nodes), _newest(*(r.occurred_at for r in rows))
    )


@dataclass(frozen=True, slots=True)
class TaskHistoryView:
    task: TaskRecord
    transitions: list[StateTransition]
    anomalies: list[AnomalyRow]
    as_of: datetime


async def task_history(session: AsyncSession, tenant_id: str, task_id: str) -> TaskHistoryView:
    record = await tasks.get(session, tenant_id, task_id)
    if record is None:
        raise NotFound(f"task {task_id!r} not found")
    refused = await anomalies.for_task(session, tenant_id, task_id)
    # A refused event is shown too (as an anomaly), so it counts towards as_of.
    return TaskHistoryView(
        record,
        await tasks.transitions_of(session, tenant_id, task_id),
        refused,
        max([record.last_event_at, *(a.occurred_at for a in refused)]),
    )


@dataclass(frozen=True, slots=True)
class MetricsView:
    metrics: AgentMetrics
    as_of: datetime | None


def period_start(period: str, now: datetime | None = None) -> datetime:
    """The first hour a period's metrics count (whole hours: the current hour counts in full)."""
    return hour_of((now or datetime.now(UTC)) - PERIODS[period])


async def agent_metrics(
    session: AsyncSession,
    tenant_id: str,
    agent_id: str | None,
    period: str,
    *,
    now: datetime | None = None,
) -> MetricsView:
    """Tasks that ended within the period (whole hours: the current hour counts in full)."""
    since = period_start(period, now)
    buckets = await metrics.buckets_since(session, tenant_id, since, agent_id)
    summary = summarize(agent_id or "*", period, buckets)
    return MetricsView(summary, await metrics.newest_update(session, tenant_id, since, agent_id))


@dataclass(frozen=True, slots=True)
class AgentsMetricsView:
    period: str
    agents: list[AgentMetrics]  # by agent id
    as_of: datetime | None


async def metrics_by_agent(
    session: AsyncSession, tenant_id: str, period: str, *, now: datetime | None = None
) -> AgentsMetricsView:
    """Every agent's metrics over the period, counted as `agent_metrics` counts one agent's."""
    since = period_start(period, now)
    found = await metrics.buckets_by_agent_since(session, tenant_id, since)
    summaries = (summarize(agent, period, buckets) for agent, buckets in sorted(found.items()))
    # An agent whose only task was retried under another agent has buckets that add up to 0.
    agents = [m for m in summaries if m.total_tasks]
    return AgentsMetricsView(
        period, agents, await metrics.newest_update(session, tenant_id, since, None)
    )


@dataclass(frozen=True, slots=True)
class RecentPlansView:
    plans: list[PlanStatusView]  # newest event first
    as_of: datetime | None
    anomalies: dict[str, int]  # per plan id, for plans whose tasks have any


async def recent_plans(session: AsyncSession, tenant_id: str, *, limit: int) -> RecentPlansView:
    """The plans with the newest events, each with its status and task counts."""
    found = [
        _status_of(plan, counts)
        for plan, counts in await plans.list_recent_with_counts(session, tenant_id, limit=limit)
    ]
    counted = await anomalies.counts_by_plan(session, tenant_id, [p.plan.plan_id for p in found])
    return RecentPlansView(found, _newest(*(p.as_of for p in found)), counted)


# --- the dashboard's reads ------------------------------------------------------------------

MAX_TASK_EVENTS = 2000
MAX_CHILDREN = 500
MAX_DURATIONS = 50_000  # tasks read for the duration percentiles of one period
MAX_AGENTS = 500


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a task: how it went, and its error when it failed."""

    number: int
    started_at: datetime | None
    ended_at: datetime | None
    state: str
    error: str | None


@dataclass(frozen=True, slots=True)
class TaskPageView:
    history: TaskHistoryView
    attempts: list[Attempt]
    events: list[TaskEventEntry]
    parent_task_id: str | None
    children: list[TaskSummary]
    ran_from: datetime | None

    @property
    def task(self) -> TaskRecord:
        return self.history.task

    @property
    def ran_seconds(self) -> float | None:
        return duration_between(self.ran_from, self.task.completed_at)


def attempts_of(transitions: list[StateTransition]) -> list[Attempt]:
    """Each attempt's first and last transition; a failed attempt's error is the reason its
    move to `failed` gave (a failed result's error)."""
    out: dict[int, Attempt] = {}
    for t in transitions:
        seen = out.get(t.attempt)
        ended = t.transitioned_at if t.to_state in TERMINAL else None
        error = t.reason if t.to_state == TaskState.FAILED.value else None
        if seen is None:
            started = t.transitioned_at if t.to_state != TaskState.PENDING.value else None
            out[t.attempt] = Attempt(t.attempt, started, ended, t.to_state, error)
        else:
            started = seen.started_at
            if started is None and t.to_state not in (TaskState.PENDING.value, *TERMINAL):
                started = t.transitioned_at
            out[t.attempt] = Attempt(
                t.attempt, started, ended or seen.ended_at, t.to_state, error or seen.error
            )
    return [out[n] for n in sorted(out)]


TERMINAL = tuple(s.value for s in TaskState if s.terminal)


async def task_page(session: AsyncSession, tenant_id: str, task_id: str) -> TaskPageView:
    """A task with its attempts, its events, the task it runs under and the tasks under it."""
    history = await task_history(session, tenant_id, task_id)
    record = history.task
    events = await timeline.for_task(session, tenant_id, task_id, limit=MAX_TASK_EVENTS)
    parent = None
    if record.parent_event_id:
        parent = await timeline.task_of_event(session, tenant_id, record.parent_event_id)
    children = await tasks.children_of(
        session, tenant_id, [e.event_id for e in events], limit=MAX_CHILDREN
    )
    return TaskPageView(
        history,
        attempts_of(history.transitions),
        events,
        parent if parent != task_id else None,
        [c for c in children if c.task_id != task_id],
        tasks.ran_from(record.state.value, record.started_at, record.completed_at),
    )


@dataclass(frozen=True, slots=True)
class TaskListView:
    rows: list[TaskListRow]
    next_cursor: tuple[datetime, UUID] | None  # where the next page starts; None on the last
    agents: list[str]  # every agent name, for the filter's choices
    as_of: datetime | None


async def task_list(
    session: AsyncSession,
    tenant_id: str,
    where: TaskFilter,
    *,
    limit: int,
    after: tuple[datetime, UUID] | None = None,
) -> TaskListView:
    """One page of the tenant's tasks across plans, newest event first."""
    found = await tasks.list_across_plans(session, tenant_id, where, limit=limit + 1, after=after)
    rows = found[:limit]
    last = rows[-1] if rows and len(found) > limit else None
    return TaskListView(
        rows,
        (last.last_event_at, last.row_id) if last and last.row_id else None,
        await tasks.agents(session, tenant_id, limit=MAX_AGENTS),
        _newest(*(r.last_event_at for r in rows)),
    )


@dataclass(frozen=True, slots=True)
class Outcomes:
    """One agent's tasks: ended in the period (by outcome) and open now (by state)."""

    agent_id: str
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    pending: int = 0
    running: int = 0
    delegated: int = 0
    waiting: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, state.value) for state in TaskState)


@dataclass(frozen=True, slots=True)
class OutcomesView:
    period: str
    agents: list[Outcomes]  # by agent id
    totals: Outcomes
    durations: list[DurationPoint]
    as_of: datetime | None


async def outcomes(
    session: AsyncSession, tenant_id: str, period: str, *, now: datetime | None = None
) -> OutcomesView:
    """Every task of the period counted once under one outcome or state, so totals add up:
    tasks that ended in the period (the hourly buckets, as the API counts them) and tasks that
    have not ended, as they stand now; and duration percentiles over time."""
    now = now or datetime.now(UTC)
    since = period_start(period, now)
    counts: dict[str, dict[str, int]] = {}
    found = await metrics.buckets_by_agent_since(session, tenant_id, since)
    for agent, buckets in found.items():
        by_outcome = counts.setdefault(agent, {})
        for b in buckets:
            for name, n in (
                ("completed", b.completed_tasks),
                ("failed", b.failed_tasks),
                ("cancelled", b.cancelled_tasks),
            ):
                by_outcome[name] = by_outcome.get(name, 0) + n
    for (agent, state), n in (
        await tasks.open_counts_by_agent(session, tenant_id, UNKNOWN_AGENT)
    ).items():
        mine = counts.setdefault(agent, {})
        mine[state] = mine.get(state, 0) + n
    agents = [Outcomes(agent, **c) for agent, c in sorted(counts.items())]
    agents = [a for a in agents if a.total]  # a retried task's take-back can leave zeros
    totals = Outcomes(
        "all", **{s.value: sum(getattr(a, s.value) for a in agents) for s in TaskState}
    )
    durations = await tasks.ended_durations_since(session, tenant_id, since, limit=MAX_DURATIONS)
    step = CHART_STEPS[period]
    series = duration_series(durations, since, now + step / 1000, step)
    return OutcomesView(
        period,
        agents,
        totals,
        series,
        await metrics.newest_update(session, tenant_id, since, None),
    )


@dataclass(frozen=True, slots=True)
class PlanPageView:
    status: PlanStatusView
    tasks: list[TaskListRow]
    timeline: TimelineView
    anomalies: list[AnomalyRow]


async def plan_page(session: AsyncSession, tenant_id: str, plan_id: str) -> PlanPageView:
    """A plan with its tasks (errors included), its timeline and its tasks' anomalies."""
    status = await plan_status(session, tenant_id, plan_id)
    rows = await tasks.rows_for_plan(session, tenant_id, plan_id, limit=MAX_TASKS)
    return PlanPageView(
        status,
        rows,
        await plan_timeline(session, tenant_id, plan_id),
        await anomalies.for_tasks(session, tenant_id, [r.task_id for r in rows]),
    )
