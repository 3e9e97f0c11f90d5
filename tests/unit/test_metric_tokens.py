"""GenAI token usage in agent metrics: read from a task's attributes, counted once per task."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from trackd.domain.metrics import bucket_deltas, contribution, summarize, token_usage
from trackd.domain.states import TaskState
from trackd.domain.tasks import TaskRecord

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
USAGE = {"gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30}


def ended(state: TaskState, attributes: dict[str, object]) -> TaskRecord:
    return TaskRecord(
        tenant_id="acme",
        task_id="span-1",
        state=state,
        event_type="chat gpt-4o",
        attempt=1,
        head_key="k",
        first_seen_at=AT,
        last_event_at=AT + timedelta(seconds=2),
        started_at=AT,
        completed_at=AT + timedelta(seconds=2),
        agent_id="llm-agent",
        data={"attributes": attributes},
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"attributes": USAGE}, (120, 30)),
        ({"attributes": {"gen_ai.usage.input_tokens": 7}}, (7, 0)),
        (None, (0, 0)),
        ({"attributes": "none"}, (0, 0)),
        # Top-level keys are a producer's own data, not span attributes.
        (USAGE, (0, 0)),
        # Not a count of tokens: ignored rather than summed.
        ({"attributes": {"gen_ai.usage.input_tokens": True}}, (0, 0)),
        ({"attributes": {"gen_ai.usage.input_tokens": -5}}, (0, 0)),
        ({"attributes": {"gen_ai.usage.input_tokens": "120"}}, (0, 0)),
        ({"attributes": {"gen_ai.usage.input_tokens": 2**62}}, (0, 0)),
    ],
)
def test_token_usage_reads_genai_attributes(
    data: dict[str, object] | None, expected: tuple[int, int]
) -> None:
    assert token_usage(data) == expected


def test_tokens_count_once_when_the_task_ends_and_are_taken_back_on_retry() -> None:
    running = replace(ended(TaskState.RUNNING, USAGE), completed_at=None)
    assert contribution(running) is None
    failed = ended(TaskState.FAILED, USAGE)
    counted = bucket_deltas([(running, failed)])
    assert [(d.input_tokens, d.output_tokens) for d in counted] == [(120, 30)]
    # A retry reopens the task: what it added is taken back until it ends again.
    retried = replace(failed, state=TaskState.RUNNING, attempt=2, completed_at=None)
    taken_back = bucket_deltas([(failed, retried)])
    assert summarize("llm-agent", "24h", [*counted, *taken_back]).input_tokens == 0
    done = replace(retried, state=TaskState.COMPLETED, completed_at=AT + timedelta(seconds=9))
    total = summarize(
        "llm-agent", "24h", [*counted, *taken_back, *bucket_deltas([(retried, done)])]
    )
    assert (total.total_tasks, total.input_tokens, total.output_tokens) == (1, 120, 30)
