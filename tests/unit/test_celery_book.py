"""The task book: bounded memory of tasks, and heartbeats for running tasks."""

from __future__ import annotations

from typing import Any

from trackd.domain.events import TASK_PROGRESS
from trackd.domain.interpret import interpret
from trackd.domain.states import TaskState
from trackd.jobs.celery.book import TaskBook

T0 = 1_767_225_600.0


def received(task_id: str, retries: int = 0, at: float = 0.0) -> dict[str, Any]:
    return {
        "type": "task-received",
        "uuid": task_id,
        "name": "proj.work",
        "retries": retries,
        "root_id": task_id,
        "timestamp": T0 + at,
        "hostname": "celery@w1",
    }


def started(task_id: str, at: float = 0.0, host: str = "celery@w1") -> dict[str, Any]:
    return {"type": "task-started", "uuid": task_id, "timestamp": T0 + at, "hostname": host}


def beat(at: float, host: str = "celery@w1") -> dict[str, Any]:
    return {"type": "worker-heartbeat", "hostname": host, "timestamp": T0 + at}


def test_memory_is_bounded_and_the_oldest_task_is_forgotten() -> None:
    book = TaskBook(max_tasks=3)
    for i in range(10):
        book.translate(received(f"t{i}", retries=1))
    assert len(book) == 3
    assert book.info("t0") is None
    info = book.info("t9")
    assert info is not None and info.attempt == 2


def test_later_events_take_name_and_attempt_from_the_first() -> None:
    book = TaskBook()
    book.translate(received("t1", retries=2))
    [env] = book.translate(started("t1", 1.0))
    assert (env.attempt, env.source, env.trace_id) == (3, "proj.work", "t1")


def test_heartbeats_vouch_for_running_tasks_at_most_every_interval() -> None:
    book = TaskBook(heartbeat_every=30)
    book.translate(received("a"))
    book.translate(started("a", 1.0))
    book.translate(received("b"))  # received, not running: no heartbeat
    first = book.translate(beat(2.0))
    assert [e.correlation_id for e in first] == ["a"]
    assert first[0].type == TASK_PROGRESS
    task = interpret(first[0]).task
    assert task is not None and task.state is TaskState.RUNNING
    assert book.translate(beat(20.0)) == []  # within the interval
    assert len(book.translate(beat(33.0))) == 1
    book.translate({"type": "task-succeeded", "uuid": "a", "timestamp": T0 + 40})
    assert book.translate(beat(70.0)) == []
    assert book.running_on("celery@w1") == frozenset()


def test_a_worker_that_goes_offline_vouches_for_nothing_more() -> None:
    book = TaskBook(heartbeat_every=1)
    book.translate(received("a"))
    book.translate(started("a", 1.0))
    book.translate({"type": "worker-offline", "hostname": "celery@w1", "timestamp": T0 + 2})
    assert book.translate(beat(5.0)) == []


def test_forgetting_a_running_task_forgets_it_on_its_worker_too() -> None:
    book = TaskBook(max_tasks=1, heartbeat_every=1)
    book.translate(received("a"))
    book.translate(started("a", 1.0))
    book.translate(received("b"))
    assert book.running_on("celery@w1") == frozenset()


def test_no_heartbeats_when_turned_off() -> None:
    book = TaskBook(heartbeat_every=0)
    book.translate(received("a"))
    book.translate(started("a", 1.0))
    assert book.translate(beat(100.0)) == []


def test_a_retry_ends_the_attempt_that_started_though_the_next_was_sent_first() -> None:
    book = TaskBook()
    book.translate(received("t1"))
    book.translate(started("t1", 1.0))
    # The retry's own message goes out (and is reported) before task-retried.
    book.translate({**received("t1", retries=1, at=1.5), "type": "task-sent"})
    [retried] = book.translate({"type": "task-retried", "uuid": "t1", "timestamp": T0 + 1.6})
    assert retried.attempt == 2
    book.translate(received("t1", retries=1, at=2.0))
    book.translate(started("t1", 2.1))
    [done] = book.translate({"type": "task-succeeded", "uuid": "t1", "timestamp": T0 + 3})
    assert done.attempt == 2


def test_a_retried_task_revoked_before_its_next_start_is_cancelled_in_the_next_attempt() -> None:
    book = TaskBook()
    book.translate(received("t1"))
    book.translate(started("t1", 1.0))
    book.translate({"type": "task-retried", "uuid": "t1", "timestamp": T0 + 1.6})
    book.translate(received("t1", retries=1, at=2.0))
    [revoked] = book.translate({"type": "task-revoked", "uuid": "t1", "timestamp": T0 + 3})
    assert revoked.attempt == 2


def test_attempts_follow_what_happened_not_the_order_events_arrive_in() -> None:
    book = TaskBook()
    retry_sent = {**received("t1", retries=1, at=1.5), "type": "task-sent"}
    other_worker = {**received("t1", retries=1, at=1.7), "hostname": "celery@w2"}
    envs = [
        book.translate(e)[0]
        for e in (
            received("t1"),
            retry_sent,  # published by the retrying task, reported before its own events
            other_worker,  # the retry, received elsewhere, before the first attempt ended
            started("t1", 1.0),
            started("t1", 1.8, host="celery@w2"),  # the retry starts before task-retried
            {"type": "task-retried", "uuid": "t1", "timestamp": T0 + 1.6},
            {"type": "task-succeeded", "uuid": "t1", "timestamp": T0 + 3},
        )
    ]
    assert [e.attempt for e in envs] == [1, 2, 2, 1, 2, 2, 2]


def test_a_retry_on_another_worker_whose_events_all_come_first_ends_in_its_own_attempt() -> None:
    book = TaskBook()
    w2 = "celery@w2"
    envs = [
        book.translate(e)[0]
        for e in (
            received("t1"),
            {**received("t1", retries=1, at=11.0), "hostname": w2},
            started("t1", 12.0, host=w2),
            {"type": "task-succeeded", "uuid": "t1", "timestamp": T0 + 13, "hostname": w2},
            # The first worker's events of attempt 1, sent in a batch, come last.
            started("t1", 2.0),
            {"type": "task-retried", "uuid": "t1", "timestamp": T0 + 3, "hostname": "celery@w1"},
        )
    ]
    assert [e.attempt for e in envs] == [1, 2, 2, 2, 1, 2]
    info = book.info("t1")
    assert info is not None and info.attempt == 2


def test_a_redelivered_event_keeps_the_attempt_it_was_given() -> None:
    book = TaskBook()
    first_start = started("t1", 1.0)
    book.translate(received("t1"))
    [once] = book.translate(first_start)
    book.translate({"type": "task-retried", "uuid": "t1", "timestamp": T0 + 2})
    book.translate(received("t1", retries=1, at=3.0))
    [again] = book.translate(first_start)  # delivered a second time
    assert (again.id, again.attempt) == (once.id, 1)
    [second_start] = book.translate(started("t1", 4.0))
    assert second_start.attempt == 2
