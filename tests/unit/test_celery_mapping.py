"""Celery events → trackd envelopes: the mapping rules, checked through trackd's own fold."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from trackd.domain.events import ACTION_RESULTS, SYSTEM_EVENTS, EventEnvelope
from trackd.domain.interpret import interpret
from trackd.domain.states import TaskState
from trackd.domain.tasks import TaskRecord, fold, new_record
from trackd.errors import ConfigError
from trackd.jobs.celery import require_celery
from trackd.jobs.celery.book import TaskBook
from trackd.jobs.celery.mapping import TaskInfo, event_id, to_envelope
from trackd.jobs.celery.results import from_result

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TASK = "9f1c2a34-0000-4000-8000-000000000001"
ROOT = "9f1c2a34-0000-4000-8000-0000000000aa"


def ev(kind: str, at: float = 0.0, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "uuid": TASK,
        "timestamp": T0 + at,
        "hostname": "celery@w1",
        "clock": 7,
        **fields,
    }


def sent(retries: int = 0, at: float = 0.0) -> dict[str, Any]:
    return ev(
        "task-sent",
        at,
        name="proj.add",
        args="(1, 2)",
        kwargs="{}",
        retries=retries,
        root_id=ROOT,
        parent_id=ROOT,
        queue="celery",
    )


def received(retries: int = 0, at: float = 0.1) -> dict[str, Any]:
    return ev("task-received", at, name="proj.add", retries=retries, root_id=ROOT, parent_id=ROOT)


def fold_all(envelopes: list[EventEnvelope]) -> TaskRecord:
    rec: TaskRecord | None = None
    for env in envelopes:
        task = interpret(env).task
        assert task is not None, env
        out = new_record("default", task) if rec is None else fold(rec, task)
        assert out.anomaly is None, out.anomaly
        rec = out.record
    assert rec is not None
    return rec


def translate(*events: dict[str, Any]) -> list[EventEnvelope]:
    book = TaskBook()
    return [env for e in events for env in book.translate(e)]


def test_a_successful_task_is_pending_then_running_then_completed() -> None:
    envs = translate(
        sent(),
        received(),
        ev("task-started", 0.2),
        ev("task-succeeded", 1.2, result="3", runtime=1.0),
    )
    assert [interpret(e).task.state for e in envs] == [  # type: ignore[union-attr]
        TaskState.PENDING,
        TaskState.PENDING,
        TaskState.RUNNING,
        TaskState.COMPLETED,
    ]
    rec = fold_all(envs)
    assert rec.state is TaskState.COMPLETED
    assert rec.attempt == 1
    assert rec.event_type == "proj.add"  # the task name is the record's type ...
    assert rec.agent_id == "proj.add"  # ... and its agent, by which metrics group
    assert rec.trace_id == ROOT
    assert rec.parent_event_id == ROOT
    assert rec.result is not None
    assert rec.result["result"] == "3"
    assert rec.result["runtime"] == 1.0
    assert rec.started_at == datetime.fromtimestamp(T0 + 0.2, UTC)
    assert rec.duration_seconds == pytest.approx(1.0)


def test_a_failure_keeps_exception_and_traceback() -> None:
    envs = translate(
        received(),
        ev("task-started", 0.2),
        ev("task-failed", 0.5, exception="ValueError('boom')", traceback="Traceback ...\n"),
    )
    assert envs[-1].topic == ACTION_RESULTS
    rec = fold_all(envs)
    assert rec.state is TaskState.FAILED
    assert rec.error == "ValueError('boom')"
    assert rec.result is not None
    assert rec.result["traceback"] == "Traceback ...\n"


def test_retries_are_attempts_beyond_trackds_default_limit() -> None:
    events: list[dict[str, Any]] = []
    for retries in range(4):  # Celery's default max_retries=3: four attempts
        at = retries * 10.0
        events += [received(retries, at), ev("task-started", at + 1)]
        if retries < 3:
            events.append(ev("task-retried", at + 2, exception="KeyError('k')"))
    events.append(ev("task-failed", 42.0, exception="KeyError('k')"))
    envs = translate(*events)
    retried = [e for e in envs if e.data and e.data.get("celery_event") == "task-retried"]
    assert [e.attempt for e in retried] == [2, 3, 4]
    assert all(interpret(e).task.state is TaskState.PENDING for e in retried)  # type: ignore[union-attr]
    rec = fold_all(envs)
    assert (rec.state, rec.attempt) == (TaskState.FAILED, 4)


def test_revoked_is_cancelled_and_says_why() -> None:
    envs = translate(received(), ev("task-revoked", 1.0, expired=True, terminated=False))
    assert envs[-1].topic == SYSTEM_EVENTS
    rec = fold_all(envs)
    assert rec.state is TaskState.CANCELLED
    assert rec.error == "revoked: expired"


def test_rejected_without_requeue_is_failed_with_requeue_changes_nothing() -> None:
    rejected = translate(received(), ev("task-rejected", 1.0, requeue=False))
    assert fold_all(rejected).state is TaskState.FAILED
    requeued = translate(
        received(), ev("task-started", 0.5), ev("task-rejected", 1.0, requeue=True)
    )
    assert interpret(requeued[-1]).task is None  # on the timeline only
    assert requeued[-1].correlation_id == TASK
    assert fold_all(requeued[:-1]).state is TaskState.RUNNING


def test_any_order_and_duplicates_give_the_same_record() -> None:
    envs = translate(
        sent(),
        received(),
        ev("task-started", 0.2),
        ev("task-retried", 0.3, exception="KeyError()"),
        received(1, 0.4),
        ev("task-started", 0.5),
        ev("task-succeeded", 0.9, result="3", runtime=0.4),
    )
    forward = fold_all(envs)
    # The sent event's clock is skewed: sequence, not time, orders a task's events.
    backwards = list(reversed(envs)) + envs[:2]
    rec: TaskRecord | None = None
    seen: set[str] = set()
    for env in backwards:
        if env.id in seen:  # ingest's idempotency key
            continue
        seen.add(env.id)
        task = interpret(env).task
        assert task is not None
        rec = (new_record("default", task) if rec is None else fold(rec, task)).record
    assert rec is not None
    assert (rec.state, rec.attempt, rec.result) == (forward.state, forward.attempt, forward.result)
    assert (forward.state, forward.attempt) == (TaskState.COMPLETED, 2)


def test_ids_are_the_same_for_every_delivery_of_an_event() -> None:
    first = translate(sent(), received(), ev("task-succeeded", 1.0, result="3"))
    again = translate(sent(), received(), ev("task-succeeded", 1.0, result="3"))
    assert [e.id for e in first] == [e.id for e in again]
    assert len({e.id for e in first}) == 3
    assert first[0].id == TASK  # the task's first event: children name it as their parent
    assert first[-1].id == event_id(TASK, 1, "end")


def test_the_result_backend_state_has_the_live_end_events_id() -> None:
    live = translate(received(2), ev("task-succeeded", 1.0, result="3"))[-1]
    meta = {
        "task_id": TASK,
        "status": "SUCCESS",
        "result": 3,
        "date_done": "2026-01-01T00:00:01.000000+00:00",
        "retries": 2,
        "name": "proj.add",
    }
    backend = from_result(meta)
    assert backend is not None
    assert (backend.id, backend.attempt) == (live.id, 3)
    assert interpret(backend).task.state is TaskState.COMPLETED  # type: ignore[union-attr]


def test_an_event_of_a_task_never_seen_still_maps_with_what_it_says() -> None:
    env = to_envelope(ev("task-succeeded", 1.0, result="1"), TaskInfo())
    assert env is not None
    assert (env.attempt, env.source, env.trace_id) == (1, "celery", None)
    task = interpret(env).task
    assert task is not None
    assert task.state is TaskState.COMPLETED


def test_events_trackd_does_not_keep() -> None:
    assert to_envelope({"type": "task-sent"}, TaskInfo()) is None  # no uuid
    assert to_envelope(ev("task-progress"), TaskInfo()) is None  # a custom event
    assert TaskBook().translate({"type": "worker-online", "hostname": "w"}) == []


def test_huge_and_nul_text_is_clipped() -> None:
    env = to_envelope(ev("task-succeeded", result="x\x00" * 10_000), TaskInfo())
    assert env is not None and env.data is not None
    assert len(env.data["result"]) == 2000
    assert "\x00" not in env.data["result"]


def test_missing_celery_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)
    with pytest.raises(ConfigError, match=r"pip install 'trackd\[celery\]'"):
        require_celery()
