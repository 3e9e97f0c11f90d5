"""Read models of the tracker, composed from the repos; shared by the API and the CLI.

Each view carries `as_of`, the time of the newest event folded into what it shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.metrics import PERIODS, AgentMetrics, hour_of, summarize
from trackd.domain.plans import PlanRecord, plan_started_at
from trackd.domain.tasks import TaskRecord
from trackd.domain.timeline import TimelineNode, build_tree
from trackd.errors import NotFoundError
from trackd.store.models import AnomalyRow, StateTransition
from trackd.store.repos import anomalies, metrics, plans, tasks, timeline
from trackd.store.repos.tasks import TaskSummary
from trackd.store.repos.timeline import TimelineEntry

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
        raise NotFoundError(f"plan {plan_id!r} not found")
    return plan


async def plan_status(session: AsyncSession, tenant_id: str, plan_id: str) -> PlanStatusView:
    return await _status_of(session, tenant_id, await _plan(session, tenant_id, plan_id))


async def _status_of(session: AsyncSession, tenant_id: str, plan: PlanRecord) -> PlanStatusView:
    plan_id = plan.plan_id
    counts = await tasks.plan_counts(session, tenant_id, plan_id)
    started = plan_started_at(plan)
    if plan.started_at is None and counts["first_seen_at"] is not None:
        started = min(started, counts["first_seen_at"])
    return PlanStatusView(
        plan=plan,
        started_at=started,
        task_count=counts["task_count"],
        completed_tasks=counts["completed_tasks"],
        failed_tasks=counts["failed_tasks"],
        as_of=_newest(plan.last_event_at, counts["last_event_at"]),
    )


@dataclass(frozen=True, slots=True)
class PlanTasksView:
    plan_id: str
    tasks: list[TaskSummary]
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
        raise NotFoundError(f"task {task_id!r} not found")
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


async def recent_plans(session: AsyncSession, tenant_id: str, *, limit: int) -> RecentPlansView:
    """The plans with the newest events, each with its status and task counts."""
    found = [
        await _status_of(session, tenant_id, plan)
        for plan in await plans.list_recent(session, tenant_id, limit=limit)
    ]
    return RecentPlansView(found, _newest(*(p.as_of for p in found)))
