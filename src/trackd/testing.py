"""Helpers for tests that produce or read trackd events: yours and trackd's own.

    factory = EventFactory(source="research-worker", now=datetime.now(UTC))
    req = factory.request("task-1", "web.search.requested", plan_id="plan-1")
    factory.advance(90)
    done = factory.result("task-1", "web.search.completed", parent=req)
    await publish_events(runtime.bus, [req, done])

Every method returns a plain dict in snake_case with a time-zone-aware ISO time, ready for
`POST /v1/events` or `trackd.domain.events.decode_envelope`. Ids come from a counter
(`event-1`, `event-2`, ...), so two factories writing to one tenant need different
`id_prefix`es: a repeated id is a duplicate, and trackd drops duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final, TypedDict, Unpack

from trackd.bus.base import Bus
from trackd.domain.events import (
    ACTION_REQUESTS,
    ACTION_RESULTS,
    PLAN_CANCELLED,
    PLAN_COMPLETED,
    PLAN_FAILED,
    PLAN_STARTED,
    SYSTEM_EVENTS,
    TASK_PROGRESS,
    TASK_STATE_CHANGED,
    InvalidEventError,
    decode_envelope,
)
from trackd.ingest import intake

__all__ = [
    "DEFAULT",
    "SEED_START",
    "Envelope",
    "EventFactory",
    "Overrides",
    "iso",
    "publish_events",
    "research_workflow",
]

Envelope = dict[str, Any]

# The start of the agent platform's example workflow (seed 003).
SEED_START: Final = datetime(2026, 1, 11, 10, 0, tzinfo=UTC)


class _Default(Enum):
    FACTORY = "factory default"


DEFAULT: Final = _Default.FACTORY
"""Marks an argument left to the factory's own value (`plan_id`, `trace_id`)."""


class Overrides(TypedDict, total=False):
    """Keyword arguments every factory method accepts."""

    attempt: int | None
    sequence: int | None
    source: str
    time: datetime | str  # a string is sent as is, e.g. a naive time to test rejection
    trace_id: str | None
    parent: Mapping[str, Any] | str | None  # the parent event, or its id
    event_id: str
    tenant_id: str | None
    data: Mapping[str, Any]  # extra payload fields, merged over the method's own


def iso(moment: datetime) -> str:
    """An aware datetime as producers write it: ISO 8601 in UTC with a `Z`."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the time must carry a time zone, e.g. datetime.now(UTC)")
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


@dataclass
class EventFactory:
    """Builds envelopes with shared defaults, a clock you move by hand, and counted ids.

    The clock stands still until `advance` moves it; each event takes its time from it unless
    given `time=`.
    """

    source: str = "test-agent"
    tenant_id: str | None = None
    trace_id: str | None = "trace-test"
    plan_id: str | None = None
    now: datetime = SEED_START
    id_prefix: str = "event"
    count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("EventFactory.now must carry a time zone, e.g. datetime.now(UTC)")

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0) -> datetime:
        """Move the clock forward and return the new time."""
        step = timedelta(seconds=seconds, minutes=minutes)
        if step < timedelta(0):
            raise ValueError("the clock only moves forward; pass time= for an older event")
        self.now += step
        return self.now

    def next_id(self) -> str:
        self.count += 1
        return f"{self.id_prefix}-{self.count}"

    def event(
        self,
        event_type: str,
        *,
        topic: str,
        payload: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
        plan_id: str | _Default | None = DEFAULT,
        **overrides: Unpack[Overrides],
    ) -> Envelope:
        """Any envelope; the methods below build the ones the tracker folds."""
        plan = self.plan_id if plan_id is DEFAULT else plan_id
        trace = overrides.get("trace_id", self.trace_id)
        moment = overrides.get("time", self.now)
        parent = overrides.get("parent")
        body: dict[str, Any] = dict(payload or {})
        body.update(overrides.get("data", {}))
        fields: dict[str, Any] = {
            "id": overrides.get("event_id") or self.next_id(),
            "source": overrides.get("source", self.source),
            "specversion": "1.0",
            "type": event_type,
            "topic": topic,
            "time": iso(moment) if isinstance(moment, datetime) else moment,
            "data": body,
            "correlation_id": correlation_id,
            "trace_id": trace,
            "parent_event_id": parent.get("id") if isinstance(parent, Mapping) else parent,
            "tenant_id": overrides.get("tenant_id", self.tenant_id),
            "plan_id": plan,
            "sequence": overrides.get("sequence"),
            "attempt": overrides.get("attempt"),
        }
        return {k: v for k, v in fields.items() if v is not None}

    def request(
        self,
        task_id: str,
        event_type: str,
        *,
        plan_id: str | _Default | None = DEFAULT,
        **overrides: Unpack[Overrides],
    ) -> Envelope:
        """`action-requests`: the task `task_id` (the correlation id) is asked for and starts."""
        return self.event(
            event_type, topic=ACTION_REQUESTS, correlation_id=task_id, plan_id=plan_id, **overrides
        )

    def progress(
        self,
        task_id: str,
        state: str,
        progress: float | None = None,
        message: str | None = None,
        *,
        plan_id: str | _Default | None = DEFAULT,
        **overrides: Unpack[Overrides],
    ) -> Envelope:
        """`task.progress`: the task's state and, optionally, how far it got (0..1)."""
        plan = self.plan_id if plan_id is DEFAULT else plan_id
        payload = _present(
            task_id=task_id, plan_id=plan, state=state, progress=progress, message=message
        )
        return self.event(
            TASK_PROGRESS, topic=SYSTEM_EVENTS, payload=payload, plan_id=plan, **overrides
        )

    def state_changed(
        self,
        task_id: str,
        previous: str | None,
        new: str,
        reason: str | None = None,
        *,
        plan_id: str | _Default | None = DEFAULT,
        **overrides: Unpack[Overrides],
    ) -> Envelope:
        """`task.state_changed`: the task moved from `previous` to `new`."""
        plan = self.plan_id if plan_id is DEFAULT else plan_id
        payload = _present(
            task_id=task_id, plan_id=plan, previous_state=previous, new_state=new, reason=reason
        )
        return self.event(
            TASK_STATE_CHANGED, topic=SYSTEM_EVENTS, payload=payload, plan_id=plan, **overrides
        )

    def result(
        self,
        task_id: str,
        event_type: str,
        *,
        success: bool = True,
        error: str | None = None,
        plan_id: str | _Default | None = DEFAULT,
        **overrides: Unpack[Overrides],
    ) -> Envelope:
        """`action-results`: the task ended, completed when `success` else failed."""
        payload = _present(success=success, error=error)
        return self.event(
            event_type,
            topic=ACTION_RESULTS,
            payload=payload,
            correlation_id=task_id,
            plan_id=plan_id,
            **overrides,
        )

    def plan_started(
        self,
        plan_id: str | None = None,
        current_state: str | None = None,
        **overrides: Unpack[Overrides],
    ) -> Envelope:
        return self._plan(PLAN_STARTED, plan_id, current_state, None, overrides)

    def plan_completed(
        self,
        plan_id: str | None = None,
        current_state: str | None = None,
        **overrides: Unpack[Overrides],
    ) -> Envelope:
        return self._plan(PLAN_COMPLETED, plan_id, current_state, None, overrides)

    def plan_failed(
        self,
        plan_id: str | None = None,
        current_state: str | None = None,
        reason: str | None = None,
        **overrides: Unpack[Overrides],
    ) -> Envelope:
        return self._plan(PLAN_FAILED, plan_id, current_state, reason, overrides)

    def plan_cancelled(
        self,
        plan_id: str | None = None,
        current_state: str | None = None,
        reason: str | None = None,
        **overrides: Unpack[Overrides],
    ) -> Envelope:
        return self._plan(PLAN_CANCELLED, plan_id, current_state, reason, overrides)

    def _plan(
        self,
        event_type: str,
        plan_id: str | None,
        current_state: str | None,
        reason: str | None,
        overrides: Overrides,
    ) -> Envelope:
        plan = plan_id or self.plan_id
        if plan is None:
            raise ValueError(f"{event_type} needs a plan id: pass one or set EventFactory.plan_id")
        payload = _present(plan_id=plan, current_state=current_state, reason=reason)
        return self.event(
            event_type, topic=SYSTEM_EVENTS, payload=payload, plan_id=plan, **overrides
        )


def _present(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def research_workflow(
    factory: EventFactory,
    plan_id: str = "plan-123",
    trace_id: str = "trace-abc123",
    *,
    task_prefix: str = "",
) -> list[Envelope]:
    """The agent platform's example research workflow (seed 003), starting at `factory.now`.

    A client asks the planner for research (`research.goal`, task `goal-1`); the planner
    starts the plan, requests a web search (`task-1`, 90 s) and then a text analysis
    (`task-2`, 95 s, with two progress updates), completes the goal and the plan. Each event's
    parent is the event that caused it, so the trace tree reads
    goal → web.search.requested → web.search.completed → analyze.text → ... as in the seed.
    Offsets from the start (s): goal 0, plan.started 2, search 60-150, analysis 155-250,
    goal completed 255, plan.completed 260. The factory's clock ends at +260 s.

    `task_prefix` is put before the task ids so one tenant can hold several copies.
    """
    f = factory
    goal_id, search_id, analysis_id = (
        f"{task_prefix}{name}" for name in ("goal-1", "task-1", "task-2")
    )
    planner, searcher, analyst = "research-planner", "web-search-worker", "analysis-worker"
    t0 = f.now

    def at(seconds: float) -> None:
        f.now = t0 + timedelta(seconds=seconds)

    events: list[Envelope] = []
    goal = f.request(
        goal_id,
        "research.goal",
        plan_id=plan_id,
        source="research-app",
        data={"goal": "Summarize recent work on battery recycling"},
        trace_id=trace_id,
    )
    events.append(goal)
    at(2)
    events.append(
        f.plan_started(
            plan_id, current_state="searching", source=planner, parent=goal, trace_id=trace_id
        )
    )
    at(60)
    search = f.request(
        search_id,
        "web.search.requested",
        plan_id=plan_id,
        source=planner,
        parent=goal,
        data={"query": "battery recycling 2025"},
        trace_id=trace_id,
    )
    events.append(search)
    at(150)
    found = f.result(
        search_id,
        "web.search.completed",
        plan_id=plan_id,
        source=searcher,
        parent=search,
        data={"results": 8},
        trace_id=trace_id,
    )
    events.append(found)
    at(155)
    analysis = f.request(
        analysis_id,
        "analyze.text",
        plan_id=plan_id,
        source=planner,
        parent=found,
        data={"sources": 8},
        trace_id=trace_id,
    )
    events.append(analysis)
    at(180)
    events.append(
        f.progress(
            analysis_id,
            "running",
            0.3,
            "Reading 8 sources",
            plan_id=plan_id,
            source=analyst,
            parent=analysis,
            trace_id=trace_id,
        )
    )
    at(210)
    events.append(
        f.progress(
            analysis_id,
            "running",
            0.6,
            "Summarizing findings",
            plan_id=plan_id,
            source=analyst,
            parent=analysis,
            trace_id=trace_id,
        )
    )
    at(250)
    analysed = f.result(
        analysis_id,
        "analyze.text.completed",
        plan_id=plan_id,
        source=analyst,
        parent=analysis,
        data={"summary": "Hydrometallurgy leads"},
        trace_id=trace_id,
    )
    events.append(analysed)
    at(255)
    done = f.result(
        goal_id,
        "research.goal.completed",
        plan_id=plan_id,
        source=planner,
        parent=analysed,
        trace_id=trace_id,
    )
    events.append(done)
    at(260)
    events.append(
        f.plan_completed(
            plan_id, current_state="report ready", source=planner, parent=done, trace_id=trace_id
        )
    )
    return events


async def publish_events(
    bus: Bus, events: Sequence[Mapping[str, Any]], *, default_tenant: str = "default"
) -> int:
    """Publish envelopes as producers do, each under its own tenant (else `default_tenant`).

    Returns how many were published. On the in-memory bus they are also stored by then.

    Raises:
        InvalidEventError: some event would be refused; nothing was published.
    """
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for raw in events:
        by_tenant.setdefault(_tenant_of(raw, default_tenant), []).append(dict(raw))
    ready: list[intake.Checked] = []
    problems: list[str] = []
    for tenant, items in by_tenant.items():
        ok, refused = intake.check(items, tenant)
        ready.extend(ok)
        problems.extend(f"event {r.event_id or f'#{r.index}'}: {r.reason}" for r in refused)
    if problems:
        raise InvalidEventError("; ".join(problems))
    await intake.publish(bus, ready)
    return len(ready)


def _tenant_of(raw: Mapping[str, Any], default: str) -> str:
    try:
        return decode_envelope(dict(raw)).resolved_tenant(default)
    except InvalidEventError:
        return default  # intake.check refuses it and says why
