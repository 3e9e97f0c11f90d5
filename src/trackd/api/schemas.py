"""Response shapes of the tracker API (field names follow the agent platform's tracker)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class _Read(BaseModel):
    as_of: datetime | None = Field(description="Time of the newest event folded into this answer.")


class PlanStatusOut(_Read):
    plan_id: str
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    task_count: int
    completed_tasks: int
    failed_tasks: int
    current_state: str | None
    trace_id: str | None


class TaskOut(BaseModel):
    task_id: str
    event_type: str
    state: str
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    progress: float | None
    attempts: int
    agent_id: str | None


class PlanTasksOut(_Read):
    plan_id: str
    tasks: list[TaskOut]


class TimelineEventOut(BaseModel):
    event_id: str
    event_type: str
    timestamp: datetime
    parent_event_id: str | None
    topic: str | None = None
    source: str | None = None
    task_id: str | None = None


class TimelineNodeOut(BaseModel):
    event_id: str
    event_type: str
    timestamp: datetime
    parent_event_id: str | None
    children: list[TimelineNodeOut]


class TimelineOut(_Read):
    plan_id: str
    trace_id: str | None
    events: list[TimelineEventOut]
    tree: list[TimelineNodeOut]


class TaskDetailOut(TaskOut):
    plan_id: str | None
    message: str | None
    error: str | None
    max_attempts: int
    trace_id: str | None
    parent_event_id: str | None
    requester: str | None
    first_seen_at: datetime
    last_event_at: datetime
    data: dict[str, Any]
    result: dict[str, Any] | None


class TransitionOut(BaseModel):
    from_state: str | None
    to_state: str
    attempt: int
    reason: str | None
    event_id: str
    transitioned_at: datetime


class AnomalyOut(BaseModel):
    kind: str
    message: str
    event_id: str
    from_state: str
    to_state: str
    occurred_at: datetime


class TaskHistoryOut(_Read):
    task: TaskDetailOut
    transitions: list[TransitionOut]
    anomalies: list[AnomalyOut]


class MetricsOut(_Read):
    agent_id: str | None
    period: Literal["1h", "24h", "7d", "30d"]
    total_tasks: int
    completed_tasks: int
    failed_tasks: int
    avg_duration_seconds: float
    success_rate: float
    # GenAI token usage (OpenTelemetry gen_ai.usage.*) of the tasks counted.
    input_tokens: int = 0
    output_tokens: int = 0


class ItemResult(BaseModel):
    index: int
    id: str | None
    status: Literal["accepted", "rejected"]
    # 202 accepted, 422 invalid, 403 about a task another principal owns.
    status_code: int | None = None
    error: dict[str, str] | None = None


class PublishOut(BaseModel):
    accepted: int
    rejected: int
    results: list[ItemResult]
