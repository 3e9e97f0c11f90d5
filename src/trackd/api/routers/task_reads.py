"""The task reads under `/v1/tracker` (plans, tasks, timelines, metrics: the agent platform's
tracker API), served by `trackd.reads`. Not the SDK's `Tracker` (a producer's client) nor the
league trackers (`trackd.league`); the route keeps the name its clients call."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from trackd.access.deps import SessionDep
from trackd.access.params import PRINTABLE, PlanId, TaskId
from trackd.api.deps import CurrentPrincipal
from trackd.api.responses import FastJSONResponse
from trackd.api.schemas import (
    AnomalyOut,
    MetricsOut,
    PlanStatusOut,
    PlanTasksOut,
    TaskDetailOut,
    TaskHistoryOut,
    TimelineOut,
    TransitionOut,
)
from trackd.domain.tasks import TaskRecord
from trackd.domain.timeline import TimelineNode
from trackd.reads import service as reads
from trackd.store.repos.tasks import PlanTaskRow

router = APIRouter(prefix="/v1/tracker", tags=["tracker"])

# The list routes build plain dicts themselves: validating a thousand rows through the
# response models costs more than reading them. The models still document the shapes, and
# the tests check the bodies against them. Datetimes stay datetimes: FastJSONResponse
# writes them.


def _task(t: PlanTaskRow | TaskRecord) -> dict[str, Any]:
    return {
        "task_id": t.task_id,
        "event_type": t.event_type,
        "state": str(t.state),
        "started_at": t.started_at,
        "completed_at": t.completed_at,
        "duration_seconds": t.duration_seconds,
        "progress": t.progress,
        "attempts": t.attempt,
        "agent_id": t.agent_id,
    }


def _node(n: TimelineNode) -> dict[str, Any]:
    return {
        "event_id": n.event_id,
        "event_type": n.event_type,
        "timestamp": n.timestamp,
        "parent_event_id": n.parent_event_id,
        "children": [_node(c) for c in n.children],
    }


@router.get("/plans/{plan_id}", response_model=PlanStatusOut)
async def plan_status(
    plan_id: PlanId, session: SessionDep, principal: CurrentPrincipal
) -> PlanStatusOut:
    """A plan's status and task counts."""
    v = await reads.plan_status(session, principal.tenant_id, plan_id)
    return PlanStatusOut(
        plan_id=v.plan.plan_id,
        status=v.plan.status.value,
        started_at=v.started_at,
        completed_at=v.plan.completed_at,
        task_count=v.task_count,
        completed_tasks=v.completed_tasks,
        failed_tasks=v.failed_tasks,
        current_state=v.plan.current_state,
        trace_id=v.plan.trace_id,
        as_of=v.as_of,
    )


@router.get("/plans/{plan_id}/tasks", response_model=PlanTasksOut)
async def plan_tasks(
    plan_id: PlanId,
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=reads.MAX_TASKS)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> FastJSONResponse:
    """The tasks of a plan, in the order they were first seen."""
    v = await reads.plan_tasks(session, principal.tenant_id, plan_id, limit=limit, offset=offset)
    body = {"as_of": v.as_of, "plan_id": v.plan_id, "tasks": [_task(t) for t in v.tasks]}
    return FastJSONResponse(body)


@router.get("/plans/{plan_id}/timeline", response_model=TimelineOut)
async def plan_timeline(
    plan_id: PlanId, session: SessionDep, principal: CurrentPrincipal
) -> FastJSONResponse:
    """The plan's events in time order, and the same events nested as a trace tree."""
    v = await reads.plan_timeline(session, principal.tenant_id, plan_id)
    events = [
        {
            "event_id": e.event_id,
            "event_type": e.event_type,
            "timestamp": e.occurred_at,
            "parent_event_id": e.parent_event_id,
            "topic": e.topic,
            "source": e.source,
            "task_id": e.task_id,
        }
        for e in v.events
    ]
    body = {
        "as_of": v.as_of,
        "plan_id": v.plan_id,
        "trace_id": v.trace_id,
        "events": events,
        "tree": [_node(n) for n in v.tree],
    }
    return FastJSONResponse(body)


@router.get("/tasks/{task_id}", response_model=TaskHistoryOut)
async def task_history(
    task_id: TaskId, session: SessionDep, principal: CurrentPrincipal
) -> TaskHistoryOut:
    """One task: its record, every state transition, and the events it refused."""
    v = await reads.task_history(session, principal.tenant_id, task_id)
    t = v.task
    detail = TaskDetailOut(
        **_task(t),
        plan_id=t.plan_id,
        message=t.message,
        error=t.error,
        max_attempts=t.allowed_attempts(),
        trace_id=t.trace_id,
        parent_event_id=t.parent_event_id,
        requester=t.requester,
        first_seen_at=t.first_seen_at,
        last_event_at=t.last_event_at,
        data=t.data,
        result=t.result,
    )
    return TaskHistoryOut(
        task=detail,
        as_of=v.as_of,
        transitions=[
            TransitionOut(
                from_state=r.from_state,
                to_state=r.to_state,
                attempt=r.attempt,
                reason=r.reason,
                event_id=r.event_id,
                transitioned_at=r.transitioned_at,
            )
            for r in v.transitions
        ],
        anomalies=[
            AnomalyOut(
                kind=a.kind,
                message=a.message,
                event_id=a.event_id,
                from_state=a.from_state,
                to_state=a.to_state,
                occurred_at=a.occurred_at,
            )
            for a in v.anomalies
        ],
    )


@router.get("/metrics", response_model=MetricsOut)
async def agent_metrics(
    session: SessionDep,
    principal: CurrentPrincipal,
    agent_id: Annotated[str | None, Query(min_length=1, max_length=255, pattern=PRINTABLE)] = None,
    period: Literal["1h", "24h", "7d", "30d"] = "24h",
) -> MetricsOut:
    """Tasks that ended in the period, counted once per logical task (retries included)."""
    v = await reads.agent_metrics(session, principal.tenant_id, agent_id, period)
    m = v.metrics
    return MetricsOut(
        agent_id=agent_id,
        period=period,
        total_tasks=m.total_tasks,
        completed_tasks=m.completed_tasks,
        failed_tasks=m.failed_tasks,
        avg_duration_seconds=m.avg_duration_seconds,
        success_rate=m.success_rate,
        input_tokens=m.input_tokens,
        output_tokens=m.output_tokens,
        as_of=v.as_of,
    )
