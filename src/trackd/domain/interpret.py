"""What an envelope means to the tracker: a task event, a plan event, both, or neither."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from trackd.domain.events import (
    ACTION_REQUESTS,
    ACTION_RESULTS,
    MAX_ATTEMPT,
    PLAN_CANCELLED,
    PLAN_COMPLETED,
    PLAN_FAILED,
    PLAN_STARTED,
    SYSTEM_EVENTS,
    TASK_PROGRESS,
    TASK_STATE_CHANGED,
    ActionResultData,
    EventEnvelope,
    InvalidEventError,
    PlanEventData,
    TaskProgressEvent,
    TaskStateChanged,
    check_count,
    check_id,
    describe_validation_error,
)
from trackd.domain.plans import PlanEvent, PlanStatus
from trackd.domain.states import TaskState, UnknownStateError, parse_state
from trackd.domain.tasks import EventKind, TaskEvent

_PLAN_STATUS = {
    PLAN_STARTED: PlanStatus.RUNNING,
    PLAN_COMPLETED: PlanStatus.COMPLETED,
    PLAN_FAILED: PlanStatus.FAILED,
    PLAN_CANCELLED: PlanStatus.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Meaning:
    """The task and plan parts of one event; an event with neither goes to the timeline only."""

    task: TaskEvent | None = None
    plan: PlanEvent | None = None

    @property
    def plan_id(self) -> str | None:
        if self.plan is not None:
            return self.plan.plan_id
        return self.task.plan_id if self.task is not None else None


def interpret(env: EventEnvelope) -> Meaning:
    """Reduce a validated envelope to what the fold needs.

    Raises:
        InvalidEventError: the payload does not fit its event type.
    """
    topic = env.effective_topic
    try:
        if topic == SYSTEM_EVENTS:
            if env.type == TASK_PROGRESS:
                return _with_plan(env, _progress(env))
            if env.type == TASK_STATE_CHANGED:
                return _with_plan(env, _state_changed(env))
            if env.type in _PLAN_STATUS:
                return Meaning(plan=_plan_event(env))
        elif topic == ACTION_REQUESTS:
            return _with_plan(env, _request(env))
        elif topic == ACTION_RESULTS:
            return _with_plan(env, _result(env))
    except ValidationError as exc:
        raise InvalidEventError(f"{env.type} data: {describe_validation_error(exc)}") from None
    except UnknownStateError as exc:
        raise InvalidEventError(f"{env.type} data: {exc}") from None
    if env.plan_id:
        return Meaning(
            plan=PlanEvent(
                env.plan_id, env.id, env.time, trace_id=env.trace_id, session_id=env.session_id
            )
        )
    return Meaning()


def _with_plan(env: EventEnvelope, task: TaskEvent) -> Meaning:
    if task.plan_id is None:
        return Meaning(task=task)
    plan = PlanEvent(
        task.plan_id, env.id, env.time, trace_id=env.trace_id, session_id=env.session_id
    )
    return Meaning(task=task, plan=plan)


def _data(env: EventEnvelope) -> dict[str, object]:
    return dict(env.data or {})


def _attempt(env: EventEnvelope, data: dict[str, object], *, retry: bool = False) -> int:
    given = check_count(data.get("attempt"), "data.attempt", 1, MAX_ATTEMPT)
    attempt = env.attempt if env.attempt is not None else given
    if attempt is None:
        # A RETRY state with no attempt number is the attempt after the first.
        return 2 if retry and "attempt" not in data else 1
    return attempt


def _max_attempts(data: dict[str, object]) -> int | None:
    return check_count(data.get("max_attempts"), "data.max_attempts", 1, MAX_ATTEMPT)


def _task_id(env: EventEnvelope) -> str:
    if env.correlation_id is None:
        raise InvalidEventError(f"{env.type}: the task id (correlation_id) is missing")
    return env.correlation_id


def _plan_id(env: EventEnvelope, data: dict[str, object]) -> str | None:
    raw = data.get("plan_id")
    return check_id(raw, "data.plan_id") if raw is not None else env.plan_id


def _base(env: EventEnvelope, data: dict[str, object]) -> dict[str, object]:
    return {
        "event_id": env.id,
        "time": env.time,
        "source": env.source,
        "event_type": env.type,
        "sequence": env.sequence,
        "trace_id": env.trace_id,
        "parent_event_id": env.parent_event_id,
        "max_attempts": _max_attempts(data),
        "data": data or None,
    }


def _progress(env: EventEnvelope) -> TaskEvent:
    data = _data(env)
    payload = TaskProgressEvent.model_validate(data)
    state, retry = parse_state(payload.state)
    return TaskEvent(
        task_id=payload.task_id,
        kind=EventKind.PROGRESS,
        state=state,
        attempt=_attempt(env, data, retry=retry),
        progress=payload.progress,
        message=payload.message,
        plan_id=payload.plan_id or env.plan_id,
        **_base(env, data),  # type: ignore[arg-type]
    )


def _state_changed(env: EventEnvelope) -> TaskEvent:
    data = _data(env)
    payload = TaskStateChanged.model_validate(data)
    state, retry = parse_state(payload.new_state)
    if payload.previous_state is not None:
        parse_state(payload.previous_state)  # reject a misspelled previous state too
    return TaskEvent(
        task_id=payload.task_id,
        kind=EventKind.STATE,
        state=state,
        attempt=_attempt(env, data, retry=retry),
        reason=payload.reason,
        plan_id=payload.plan_id or env.plan_id,
        **_base(env, data),  # type: ignore[arg-type]
    )


def _request(env: EventEnvelope) -> TaskEvent:
    data = _data(env)
    return TaskEvent(
        task_id=_task_id(env),
        kind=EventKind.REQUEST,
        state=TaskState.RUNNING,
        attempt=_attempt(env, data),
        plan_id=_plan_id(env, data),
        **_base(env, data),  # type: ignore[arg-type]
    )


def _result(env: EventEnvelope) -> TaskEvent:
    data = _data(env)
    payload = ActionResultData.model_validate(data)
    # The platform's ActionResultEvent carries its outcome on the envelope (`data` null);
    # other producers put it in `data`. The envelope's field wins when both are set.
    success = env.success if env.success is not None else payload.success
    error: object = env.error if env.error is not None else payload.error
    if error is None:
        error = data.get("message")
    base = _base(env, data)
    if env.result is not None:
        base["data"] = env.result
    return TaskEvent(
        task_id=_task_id(env),
        kind=EventKind.RESULT,
        state=TaskState.COMPLETED if success else TaskState.FAILED,
        attempt=_attempt(env, data),
        plan_id=_plan_id(env, data),
        reason=None if success else (str(error) if error is not None else None),
        **base,  # type: ignore[arg-type]
    )


def _plan_event(env: EventEnvelope) -> PlanEvent:
    data = _data(env)
    payload = PlanEventData.model_validate(data)
    plan_id = payload.plan_id or env.plan_id
    if not plan_id:
        raise InvalidEventError(f"{env.type}: plan_id is missing (in data or on the envelope)")
    return PlanEvent(
        plan_id=plan_id,
        event_id=env.id,
        time=env.time,
        status=_PLAN_STATUS[env.type],
        current_state=payload.current_state,
        trace_id=env.trace_id,
        session_id=env.session_id,
        goal=payload.goal,
        reason=payload.reason,
    )
