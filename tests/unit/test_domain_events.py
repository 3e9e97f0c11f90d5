"""The event envelope (DESIGN §3) and what `interpret` makes of it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError
from soorma_common.events import EventEnvelope as SoormaEnvelope
from soorma_common.events import EventTopic
from soorma_common.tracking import TaskProgressEvent as SoormaProgress
from soorma_common.tracking import TaskState as SoormaState
from soorma_common.tracking import TaskStateChanged as SoormaStateChanged

from trackd.domain.events import (
    ACTION_REQUESTS,
    ACTION_RESULTS,
    SYSTEM_EVENTS,
    EventEnvelope,
    InvalidEventError,
    decode_envelope,
)
from trackd.domain.interpret import Meaning, interpret
from trackd.domain.plans import PlanStatus
from trackd.domain.states import TaskState, UnknownStateError, is_legal, parse_state
from trackd.domain.tasks import EventKind, Folded, TaskEvent, TaskRecord, fold, new_record

T0 = datetime(2026, 1, 11, 10, 0, tzinfo=UTC)


def raw(**fields: Any) -> dict[str, Any]:
    """A minimal valid task.progress envelope, with `fields` added or replaced."""
    base: dict[str, Any] = {
        "id": "ev-1",
        "source": "worker-a",
        "type": "task.progress",
        "topic": SYSTEM_EVENTS,
        "time": "2026-01-11T10:00:00Z",
        "data": {"task_id": "task-1", "state": "running"},
    }
    base.update(fields)
    return base


def task_of(env: EventEnvelope) -> TaskEvent:
    meaning = interpret(env)
    assert meaning.task is not None
    return meaning.task


def task_from(envelope: dict[str, Any]) -> TaskEvent:
    return task_of(decode_envelope(envelope))


def fold_all(events: list[TaskEvent], tenant: str = "t") -> TaskRecord:
    rec: TaskRecord | None = None
    for ev in events:
        out: Folded = new_record(tenant, ev) if rec is None else fold(rec, ev)
        assert out.anomaly is None, out.anomaly
        rec = out.record
    assert rec is not None
    return rec


# --- field spellings ----------------------------------------------------------------------

EXTENSIONS = {
    "correlation_id": "corr-1",
    "trace_id": "trace-1",
    "parent_event_id": "parent-1",
    "tenant_id": "tenant-1",
    "platform_tenant_id": "ptenant-1",
    "user_id": "user-1",
    "plan_id": "plan-1",
    "session_id": "session-1",
    "goal_id": "goal-1",
}
CAMEL = {
    "correlation_id": "correlationId",
    "trace_id": "traceId",
    "parent_event_id": "parentEventId",
    "tenant_id": "tenantId",
    "platform_tenant_id": "platformTenantId",
    "user_id": "userId",
    "plan_id": "planId",
    "session_id": "sessionId",
    "goal_id": "goalId",
}
LOWER = {
    "correlation_id": "correlationid",
    "trace_id": "traceid",
    "parent_event_id": "parenteventid",
    "tenant_id": "tenantid",
    "platform_tenant_id": "platformtenantid",
    "user_id": "userid",
    "plan_id": "planid",
    "session_id": "sessionid",
    "goal_id": "goalid",
}


def _assert_extensions(env: EventEnvelope) -> None:
    for name, value in EXTENSIONS.items():
        assert getattr(env, name) == value, name


def test_snake_case_fields_are_accepted() -> None:
    _assert_extensions(decode_envelope(raw(**EXTENSIONS)))


def test_camel_case_fields_are_accepted() -> None:
    spelled = {CAMEL[name]: value for name, value in EXTENSIONS.items()}
    _assert_extensions(decode_envelope(raw(**spelled)))


def test_cloudevents_lowercase_extension_names_are_accepted() -> None:
    spelled = {LOWER[name]: value for name, value in EXTENSIONS.items()}
    _assert_extensions(decode_envelope(raw(**spelled)))


@pytest.mark.parametrize("spelling", ["snake", "camel", "lower"])
@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_each_extension_field_alone_in_each_spelling(name: str, spelling: str) -> None:
    key = {"snake": name, "camel": CAMEL[name], "lower": LOWER[name]}[spelling]
    env = decode_envelope(raw(**{key: "value-x"}))
    assert getattr(env, name) == "value-x"
    for other in EXTENSIONS:
        if other != name:
            assert getattr(env, other) is None, other


@pytest.mark.parametrize("spelling", ["correlation_id", "correlationId", "correlationid"])
def test_action_task_id_comes_from_the_correlation_id_in_any_spelling(spelling: str) -> None:
    for topic, kind in ((ACTION_REQUESTS, EventKind.REQUEST), (ACTION_RESULTS, EventKind.RESULT)):
        ev = task_from(raw(type="web.search", topic=topic, data={}, **{spelling: "task-42"}))
        assert ev.task_id == "task-42"
        assert ev.kind is kind


def test_sequence_and_attempt_are_read() -> None:
    env = decode_envelope(raw(sequence=7, attempt=2))
    assert (env.sequence, env.attempt) == (7, 2)
    ev = task_of(env)
    assert (ev.sequence, ev.attempt) == (7, 2)


@pytest.mark.parametrize(
    ("field", "value"),
    [("sequence", -1), ("attempt", 0), ("attempt", 10_001), ("sequence", 2**53 + 1)],
)
def test_sequence_and_attempt_out_of_range_are_rejected(field: str, value: int) -> None:
    with pytest.raises(InvalidEventError, match=field):
        decode_envelope(raw(**{field: value}))


def test_platform_tenant_wins_over_the_sdk_tenant() -> None:
    env = decode_envelope(raw(tenantId="sdk-tenant", platformTenantId="platform-tenant"))
    assert env.resolved_tenant("default") == "platform-tenant"
    assert decode_envelope(raw(tenantid="sdk-tenant")).resolved_tenant("d") == "sdk-tenant"
    assert decode_envelope(raw()).resolved_tenant("d") == "d"


def test_with_tenant_overrides_whatever_the_producer_wrote() -> None:
    env = decode_envelope(raw(tenant_id="forged", platform_tenant_id="forged-too"))
    owned = env.with_tenant("from-token")
    assert owned.resolved_tenant("default") == "from-token"
    assert owned.platform_tenant_id is None
    assert env.tenant_id == "forged"  # the original is not modified


# --- time ---------------------------------------------------------------------------------


@pytest.mark.parametrize("naive", ["2026-01-11T10:00:00", "2026-01-11 10:00:00.123456"])
def test_naive_time_is_rejected_with_a_clear_message(naive: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_envelope(raw(time=naive))
    message = str(info.value)
    assert message.startswith("time:")
    assert "time zone" in message


def test_naive_datetime_object_is_rejected() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        EventEnvelope(id="e", source="s", type="x", time=datetime(2026, 1, 11, 10, 0))


def test_naive_time_in_json_bytes_is_rejected() -> None:
    payload = json.dumps(raw(time="2026-01-11T10:00:00")).encode()
    with pytest.raises(InvalidEventError, match="time zone"):
        decode_envelope(payload)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-01-11T10:00:00Z",
        "2026-01-11T10:00:00+00:00",
        "2026-01-11T12:00:00+02:00",
        "2026-01-11T05:00:00-05:00",
    ],
)
def test_aware_time_is_stored_in_utc(stamp: str) -> None:
    env = decode_envelope(raw(time=stamp))
    assert env.time == T0
    assert env.time.utcoffset() == timedelta(0)
    assert env.time.tzinfo is UTC


def test_aware_datetime_object_is_converted_to_utc() -> None:
    tz = timezone(timedelta(hours=-3))
    env = EventEnvelope(id="e", source="s", type="x", time=datetime(2026, 1, 11, 7, 0, tzinfo=tz))
    assert env.time == T0
    assert env.time.tzinfo is UTC


def test_missing_time_defaults_to_now_in_utc() -> None:
    fields = raw()
    del fields["time"]
    before = datetime.now(UTC)
    env = decode_envelope(fields)
    assert before <= env.time <= datetime.now(UTC)
    assert env.time.tzinfo is not None


# --- shape --------------------------------------------------------------------------------


def test_extra_fields_are_ignored() -> None:
    env = decode_envelope(
        raw(
            responseEvent="x.done",
            payloadSchemaName="s",
            somethingElse=[1, 2],
            datacontenttype="application/json",
        )
    )
    assert env.id == "ev-1"
    dumped = env.model_dump()
    for name in ("responseEvent", "payloadSchemaName", "somethingElse"):
        assert name not in dumped
        assert not hasattr(env, name)
    # A CloudEvents attribute, kept: it says what `data_base64` holds (binary mode).
    assert env.datacontenttype == "application/json"


@pytest.mark.parametrize("missing", ["id", "source", "type"])
def test_required_fields_are_named_when_missing(missing: str) -> None:
    fields = raw()
    del fields[missing]
    with pytest.raises(InvalidEventError, match=rf"^{missing}: "):
        decode_envelope(fields)


def test_ids_longer_than_100_characters_are_rejected() -> None:
    with pytest.raises(InvalidEventError, match=r"correlationId|correlation_id|correlationid"):
        decode_envelope(raw(correlationId="x" * 101))
    with pytest.raises(InvalidEventError, match=r"^id: "):
        decode_envelope(raw(id="x" * 101))


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(InvalidEventError) as info:
        decode_envelope({"id": "", "type": "x", "time": "2026-01-11T10:00:00"})
    message = str(info.value)
    assert "id:" in message
    assert "source:" in message
    assert "time:" in message
    assert message.count(";") >= 2


def test_invalid_json_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEventError):
        decode_envelope(b"{not json")


def test_json_str_and_bytes_decode_like_a_dict() -> None:
    fields = raw(correlationId="c", sequence=3)
    from_dict = decode_envelope(fields)
    assert decode_envelope(json.dumps(fields)) == from_dict
    assert decode_envelope(json.dumps(fields).encode()) == from_dict


def test_envelope_is_frozen() -> None:
    env = decode_envelope(raw())
    with pytest.raises(ValidationError):
        env.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("etype", "topic"),
    [
        ("task.progress", SYSTEM_EVENTS),
        ("plan.started", SYSTEM_EVENTS),
        ("web.search.requested", None),
    ],
)
def test_topic_is_inferred_for_task_and_plan_types_only(etype: str, topic: str | None) -> None:
    fields = raw(type=etype)
    del fields["topic"]
    assert decode_envelope(fields).effective_topic == topic
    assert decode_envelope(raw(type=etype, topic="other")).effective_topic == "other"


# --- soorma_common interoperability ---------------------------------------------------------


def _soorma(topic: EventTopic, etype: str, data: dict[str, Any], **extra: Any) -> SoormaEnvelope:
    return SoormaEnvelope(
        source=extra.pop("source", "research-worker"), type=etype, topic=topic, data=data, **extra
    )


def _both_dumps(env: SoormaEnvelope) -> list[dict[str, Any]]:
    return [env.model_dump(by_alias=True, mode="json"), env.to_cloudevents_dict()]


def test_soorma_envelope_fields_survive_both_dumps() -> None:
    env = _soorma(
        EventTopic.SYSTEM_EVENTS,
        "task.progress",
        SoormaProgress(task_id="task-1", state=SoormaState.RUNNING).model_dump(mode="json"),
        correlation_id="corr-9",
        trace_id="trace-9",
        parent_event_id="parent-9",
        tenant_id="tenant-9",
        user_id="user-9",
        session_id="session-9",
        time=datetime(2026, 1, 11, 12, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    for dumped in _both_dumps(env):
        ours = decode_envelope(dumped)
        assert ours.id == env.id
        assert ours.source == "research-worker"
        assert ours.type == "task.progress"
        assert ours.topic == SYSTEM_EVENTS
        assert ours.time == T0
        assert ours.correlation_id == "corr-9"
        assert ours.trace_id == "trace-9"
        assert ours.parent_event_id == "parent-9"
        assert ours.tenant_id == "tenant-9"
        assert ours.user_id == "user-9"
        assert ours.session_id == "session-9"
        assert ours.resolved_tenant("default") == "tenant-9"


def test_soorma_camel_dump_carries_plan_and_platform_tenant() -> None:
    env = _soorma(
        EventTopic.ACTION_REQUESTS,
        "web.search.requested",
        {"query": "q"},
        plan_id="plan-7",
        platform_tenant_id="platform-7",
        goal_id="goal-7",
    )
    ours = decode_envelope(env.model_dump(by_alias=True, mode="json"))
    assert ours.plan_id == "plan-7"
    assert ours.goal_id == "goal-7"
    assert ours.platform_tenant_id == "platform-7"
    assert ours.resolved_tenant("default") == "platform-7"


@pytest.mark.parametrize("state", list(SoormaState))
@pytest.mark.parametrize("json_payload", [True, False])
def test_soorma_progress_payload_folds_to_the_same_state(
    state: SoormaState, json_payload: bool
) -> None:
    payload = SoormaProgress(
        task_id="task-1", plan_id="plan-1", state=state, progress=0.25, message="a quarter"
    )
    data = payload.model_dump(mode="json") if json_payload else payload.model_dump()
    env = _soorma(EventTopic.SYSTEM_EVENTS, "task.progress", data)
    for dumped in _both_dumps(env):
        ev = task_from(dumped)
        assert ev.kind is EventKind.PROGRESS
        assert ev.state is TaskState(state.value)
        assert ev.task_id == "task-1"
        assert ev.plan_id == "plan-1"
        assert ev.attempt == 1
        rec = new_record("t", ev).record
        assert rec.state is TaskState(state.value)
        assert rec.progress == (1.0 if state is SoormaState.COMPLETED else 0.25)
        assert rec.message == "a quarter"
        assert rec.agent_id == "research-worker"


@pytest.mark.parametrize("new_state", list(SoormaState))
def test_soorma_state_changed_payload_folds_to_the_new_state(new_state: SoormaState) -> None:
    payload = SoormaStateChanged(
        task_id="task-1", previous_state=SoormaState.PENDING, new_state=new_state, reason="because"
    )
    env = _soorma(EventTopic.SYSTEM_EVENTS, "task.state_changed", payload.model_dump())
    for dumped in _both_dumps(env):
        ev = task_from(dumped)
        assert ev.kind is EventKind.STATE
        assert ev.state is TaskState(new_state.value)
        assert ev.reason == "because"
        pending = TaskEvent(
            "ev-0",
            "task-1",
            EventKind.PROGRESS,
            TaskState.PENDING,
            ev.time - timedelta(seconds=1),
            "research-worker",
            "task.progress",
        )
        out = fold(new_record("t", pending).record, ev)
        assert out.anomaly is None
        assert out.record.state is TaskState(new_state.value)
        if new_state is not SoormaState.PENDING:
            assert out.transition is not None
            assert out.transition.from_state is TaskState.PENDING
            assert out.transition.to_state is TaskState(new_state.value)
            assert out.transition.reason == "because"


def test_a_soorma_workflow_folds_end_to_end() -> None:
    """Request on action-requests, progress and state changes, result on action-results."""
    start = datetime(2026, 1, 11, 10, 0, tzinfo=UTC)
    request = _soorma(
        EventTopic.ACTION_REQUESTS,
        "web.search.requested",
        {"query": "cats"},
        source="planner",
        correlation_id="task-1",
        trace_id="trace-1",
        plan_id="plan-1",
        time=start,
    )
    progress = _soorma(
        EventTopic.SYSTEM_EVENTS,
        "task.progress",
        SoormaProgress(
            task_id="task-1",
            plan_id="plan-1",
            state=SoormaState.RUNNING,
            progress=0.5,
            message="halfway",
        ).model_dump(mode="json"),
        trace_id="trace-1",
        parent_event_id=request.id,
        time=start + timedelta(seconds=30),
    )
    changed = _soorma(
        EventTopic.SYSTEM_EVENTS,
        "task.state_changed",
        SoormaStateChanged(
            task_id="task-1",
            plan_id="plan-1",
            previous_state=SoormaState.RUNNING,
            new_state=SoormaState.WAITING,
        ).model_dump(mode="json"),
        trace_id="trace-1",
        time=start + timedelta(seconds=40),
    )
    result = _soorma(
        EventTopic.ACTION_RESULTS,
        "web.search.completed",
        {"success": True, "hits": 3},
        correlation_id="task-1",
        trace_id="trace-1",
        time=start + timedelta(seconds=90),
    )
    for dump in (0, 1):
        events = [task_from(_both_dumps(e)[dump]) for e in (request, progress, changed, result)]
        rec = fold_all(events)
        assert rec.state is TaskState.COMPLETED
        assert rec.event_type == "web.search.requested"
        assert rec.requester == "planner"
        assert rec.agent_id == "research-worker"
        assert rec.plan_id == "plan-1"
        assert rec.trace_id == "trace-1"
        assert rec.progress == 1.0
        assert rec.message == "halfway"
        assert rec.data == {"query": "cats"}
        assert rec.result == {"success": True, "hits": 3}
        assert rec.started_at == start
        assert rec.completed_at == start + timedelta(seconds=90)
        assert rec.duration_seconds == 90.0


# --- payload validation ---------------------------------------------------------------------


@pytest.mark.parametrize("progress", [-0.01, 1.01, 2, -1, 100])
def test_progress_outside_zero_to_one_is_rejected(progress: float) -> None:
    env = decode_envelope(raw(data={"task_id": "t", "state": "running", "progress": progress}))
    with pytest.raises(InvalidEventError, match=r"^task\.progress data: progress: "):
        interpret(env)


@pytest.mark.parametrize("progress", [0, 0.0, 0.5, 1, 1.0])
def test_progress_bounds_are_accepted(progress: float) -> None:
    ev = task_from(raw(data={"task_id": "t", "state": "running", "progress": progress}))
    assert ev.progress == float(progress)


def test_progress_is_optional() -> None:
    assert task_from(raw()).progress is None


@pytest.mark.parametrize("word", ["exploded", "", "runing", "complete", "PAUSED"])
def test_unknown_progress_state_is_rejected(word: str) -> None:
    env = decode_envelope(raw(data={"task_id": "t", "state": word}))
    with pytest.raises(InvalidEventError, match="unknown task state"):
        interpret(env)


def test_unknown_new_state_is_rejected() -> None:
    env = decode_envelope(
        raw(type="task.state_changed", data={"task_id": "t", "new_state": "bogus"})
    )
    with pytest.raises(InvalidEventError, match=r"task\.state_changed data: unknown task state"):
        interpret(env)


def test_unknown_previous_state_is_rejected() -> None:
    env = decode_envelope(
        raw(
            type="task.state_changed",
            data={"task_id": "t", "previous_state": "runnning", "new_state": "completed"},
        )
    )
    with pytest.raises(InvalidEventError, match="'runnning'"):
        interpret(env)


def test_parse_state_error_lists_the_known_states() -> None:
    with pytest.raises(UnknownStateError) as info:
        parse_state("nope")
    for state in TaskState:
        assert state.value in str(info.value)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"state": "running"}, "task_id"),
        ({"task_id": "t"}, "state"),
        ({"task_id": "", "state": "running"}, "task_id"),
        ({"task_id": "t", "state": "running", "progress": "lots"}, "progress"),
    ],
)
def test_malformed_progress_payloads_are_rejected(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEventError, match=field):
        interpret(decode_envelope(raw(data=data)))


def test_state_changed_needs_a_new_state() -> None:
    env = decode_envelope(raw(type="task.state_changed", data={"task_id": "t"}))
    with pytest.raises(InvalidEventError, match="new_state"):
        interpret(env)


def test_action_events_need_a_correlation_id() -> None:
    for topic in (ACTION_REQUESTS, ACTION_RESULTS):
        with pytest.raises(InvalidEventError, match="correlation_id"):
            interpret(decode_envelope(raw(type="x.y", topic=topic, data={})))


# --- vocabularies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("PROCESSING", TaskState.RUNNING),
        ("IN_PROGRESS", TaskState.RUNNING),
        ("in-progress", TaskState.RUNNING),
        ("STARTED", TaskState.RUNNING),
        ("SUCCESS", TaskState.COMPLETED),
        ("succeeded", TaskState.COMPLETED),
        ("REVOKED", TaskState.CANCELLED),
        ("canceled", TaskState.CANCELLED),
        ("FAILURE", TaskState.FAILED),
        ("PENDING", TaskState.PENDING),
        ("Running", TaskState.RUNNING),
        ("  completed ", TaskState.COMPLETED),
    ],
)
def test_vocabulary_aliases(word: str, state: TaskState) -> None:
    assert parse_state(word) == (state, False)
    ev = task_from(raw(data={"task_id": "t", "state": word}))
    assert ev.state is state
    assert ev.attempt == 1
    ev = task_from(raw(type="task.state_changed", data={"task_id": "t", "new_state": word}))
    assert ev.state is state


@pytest.mark.parametrize("state", list(TaskState))
def test_canonical_names_parse_to_themselves(state: TaskState) -> None:
    assert parse_state(state.value) == (state, False)
    assert parse_state(state.value.upper()) == (state, False)


@pytest.mark.parametrize("word", ["RETRY", "retry", " Retry "])
def test_retry_means_pending_with_the_next_attempt(word: str) -> None:
    assert parse_state(word) == (TaskState.PENDING, True)
    ev = task_from(raw(data={"task_id": "t", "state": word}))
    assert (ev.state, ev.attempt) == (TaskState.PENDING, 2)
    ev = task_from(
        raw(
            type="task.state_changed",
            data={"task_id": "t", "previous_state": "failed", "new_state": word},
        )
    )
    assert (ev.state, ev.attempt) == (TaskState.PENDING, 2)


def test_retry_with_an_explicit_attempt_keeps_that_attempt() -> None:
    ev = task_from(raw(attempt=3, data={"task_id": "t", "state": "RETRY"}))
    assert (ev.state, ev.attempt) == (TaskState.PENDING, 3)
    ev = task_from(raw(data={"task_id": "t", "state": "RETRY", "attempt": 4}))
    assert (ev.state, ev.attempt) == (TaskState.PENDING, 4)


def test_retry_reopens_a_failed_task() -> None:
    running = task_from(raw(id="a", time="2026-01-11T10:00:00Z"))
    failed = task_from(
        raw(id="b", time="2026-01-11T10:01:00Z", data={"task_id": "task-1", "state": "FAILURE"})
    )
    retry = task_from(
        raw(id="c", time="2026-01-11T10:02:00Z", data={"task_id": "task-1", "state": "RETRY"})
    )
    rec = fold_all([running, failed])
    assert rec.state is TaskState.FAILED
    out = fold(rec, retry)
    assert out.anomaly is None
    assert (out.record.state, out.record.attempt) == (TaskState.PENDING, 2)


def test_attempt_in_data_is_read_when_the_envelope_has_none() -> None:
    ev = task_from(raw(data={"task_id": "t", "state": "running", "attempt": 2, "max_attempts": 5}))
    assert (ev.attempt, ev.max_attempts) == (2, 5)
    ev = task_from(raw(data={"task_id": "t", "state": "retry"}))
    assert ev.attempt == 2  # a retry that does not say which attempt is the second


@pytest.mark.parametrize("field", ["attempt", "max_attempts"])
@pytest.mark.parametrize("bad", [0, -1, True, "2", 1.5, 10_001, 2**31, 2**63, 2**64])
def test_attempt_counts_the_store_cannot_hold_are_refused_up_front(field: str, bad: object) -> None:
    # Past 64 bits the JSON policy every event meets refuses it before the count rule does.
    expected = "64-bit" if isinstance(bad, int) and bad >= 2**63 else f"data.{field} must be"
    with pytest.raises(InvalidEventError, match=expected):
        task_from(raw(data={"task_id": "t", "state": "running", field: bad}))


def test_is_legal_rules() -> None:
    for current in TaskState:
        for new in TaskState:
            expected = not current.terminal and (
                new is not TaskState.PENDING or current is TaskState.PENDING
            )
            assert is_legal(current, new) is expected, (current, new)


# --- interpret: the other topics ------------------------------------------------------------


def test_action_result_success_defaults_to_true() -> None:
    ev = task_from(raw(type="x.done", topic=ACTION_RESULTS, correlation_id="t", data={}))
    assert (ev.kind, ev.state, ev.reason) == (EventKind.RESULT, TaskState.COMPLETED, None)


def test_action_result_failure_carries_the_error() -> None:
    ev = task_from(
        raw(
            type="x.done",
            topic=ACTION_RESULTS,
            correlation_id="t",
            data={"success": False, "error": "boom"},
        )
    )
    assert (ev.state, ev.reason) == (TaskState.FAILED, "boom")
    ev = task_from(
        raw(
            type="x.done",
            topic=ACTION_RESULTS,
            correlation_id="t",
            data={"success": False, "message": "also boom"},
        )
    )
    assert ev.reason == "also boom"


def test_action_request_records_type_source_and_plan() -> None:
    ev = task_from(
        raw(
            type="web.search.requested",
            topic=ACTION_REQUESTS,
            source="planner",
            correlationId="t",
            data={"plan_id": "p-data"},
        )
    )
    assert (ev.kind, ev.state, ev.event_type, ev.source) == (
        EventKind.REQUEST,
        TaskState.RUNNING,
        "web.search.requested",
        "planner",
    )
    assert ev.plan_id == "p-data"
    ev = task_from(
        raw(
            type="web.search.requested",
            topic=ACTION_REQUESTS,
            correlationId="t",
            planId="p-env",
            data={},
        )
    )
    assert ev.plan_id == "p-env"


def test_progress_task_id_comes_from_data_not_the_correlation_id() -> None:
    ev = task_from(raw(correlation_id="other", data={"task_id": "mine", "state": "running"}))
    assert ev.task_id == "mine"


def test_task_events_in_a_plan_also_touch_the_plan() -> None:
    meaning = interpret(
        decode_envelope(raw(data={"task_id": "t", "state": "running", "plan_id": "p"}))
    )
    assert meaning.task is not None
    assert meaning.plan is not None
    assert meaning.plan.status is None
    assert meaning.plan_id == "p"


@pytest.mark.parametrize(
    ("etype", "status"),
    [
        ("plan.started", PlanStatus.RUNNING),
        ("plan.completed", PlanStatus.COMPLETED),
        ("plan.failed", PlanStatus.FAILED),
        ("plan.cancelled", PlanStatus.CANCELLED),
    ],
)
def test_plan_lifecycle_events(etype: str, status: PlanStatus) -> None:
    meaning = interpret(decode_envelope(raw(type=etype, data={"plan_id": "p", "goal": "g"})))
    assert meaning.task is None
    assert meaning.plan is not None
    assert (meaning.plan.plan_id, meaning.plan.status, meaning.plan.goal) == ("p", status, "g")
    from_env = interpret(decode_envelope(raw(type=etype, planId="p2", data=None)))
    assert from_env.plan is not None
    assert from_env.plan.plan_id == "p2"


def test_plan_event_without_a_plan_id_is_rejected() -> None:
    with pytest.raises(InvalidEventError, match="plan_id"):
        interpret(decode_envelope(raw(type="plan.started", data={})))


def test_unknown_types_go_to_the_timeline_only() -> None:
    assert interpret(decode_envelope(raw(type="task.exploded"))) == Meaning()
    assert interpret(decode_envelope(raw(type="something", topic="business-facts"))) == Meaning()
    with_plan = interpret(decode_envelope(raw(type="task.exploded", plan_id="p")))
    assert with_plan.task is None
    assert with_plan.plan is not None
    assert (with_plan.plan.plan_id, with_plan.plan.status) == ("p", None)
