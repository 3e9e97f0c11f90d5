"""Result backend entries → trackd envelopes (reconciliation's rules)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trackd.domain.interpret import interpret
from trackd.domain.states import TaskState
from trackd.jobs.celery.results import done_at, exception_text, from_result


def meta(status: str, **extra: object) -> dict[str, object]:
    return {
        "task_id": "t1",
        "status": status,
        "result": None,
        "traceback": None,
        "date_done": "2026-01-01T10:00:00+00:00",
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("SUCCESS", TaskState.COMPLETED),
        ("FAILURE", TaskState.FAILED),
        ("REVOKED", TaskState.CANCELLED),
    ],
)
def test_ended_states(status: str, state: TaskState) -> None:
    env = from_result(meta(status))
    assert env is not None
    task = interpret(env).task
    assert task is not None
    assert task.state is state
    assert env.time == datetime(2026, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("status", ["PENDING", "STARTED", "RETRY", "RECEIVED"])
def test_unfinished_states_are_left_to_live_events(status: str) -> None:
    assert from_result(meta(status)) is None


def test_failure_carries_exception_and_traceback() -> None:
    env = from_result(
        meta(
            "FAILURE",
            result={"exc_type": "ValueError", "exc_message": ["boom 3"], "exc_module": "builtins"},
            traceback="Traceback (most recent call last): ...",
            retries=1,
            name="proj.boom",
        )
    )
    assert env is not None and env.data is not None
    assert env.attempt == 2
    assert env.source == "proj.boom"
    assert env.data["error"] == "ValueError('boom 3')"
    assert env.data["traceback"].startswith("Traceback")


def test_attempt_without_extended_results_comes_from_what_trackd_saw() -> None:
    env = from_result(meta("SUCCESS", result=5), known_attempt=3)
    assert env is not None and env.attempt == 3
    plain = from_result(meta("SUCCESS", result=5))
    assert plain is not None and plain.attempt == 1


def test_exception_text_and_done_at_forms() -> None:
    assert exception_text(KeyError("k")) == "KeyError('k')"
    assert exception_text("odd") == "odd"
    assert done_at("2026-01-01T10:00:00") == datetime(2026, 1, 1, 10, tzinfo=UTC)  # naive: UTC
    assert done_at(None).tzinfo is UTC
