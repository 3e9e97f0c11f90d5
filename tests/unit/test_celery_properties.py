"""Property tests of `trackd celery`'s attempt bookkeeping: any arrival order, any redelivery.

Celery's task-started, task-retried, task-succeeded and task-failed do not say which attempt
they belong to (only task-sent and task-received carry `retries`), and a retried task's events
come from several senders: the client's task-sent, each worker's own events, and the task-sent
of each retry, published by the retrying task on a connection of its own. Each sender's
messages arrive in the order it sent them, but the senders interleave in any way, and within
one worker the events of consecutive attempts race (the next attempt can be received before
the worker reports the previous one started, and can start, or even end, before the worker
reports the previous one retried). The last attempt succeeds, fails, or is revoked before it
starts.

The property: whatever the interleaving, with any events delivered again, the task's final
record (folded as ingest folds it: duplicates by id dropped) is the one in-order delivery
gives, ended in the task's last attempt with Celery's limit as max_attempts, and every event
keeps the id it has in order (so none is taken for another and dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from trackd.domain.events import EventEnvelope
from trackd.domain.interpret import interpret
from trackd.domain.states import TaskState
from trackd.domain.tasks import DEFAULT_MAX_ATTEMPTS, TaskRecord, fold, new_record
from trackd.jobs.celery.book import TaskBook

T0 = 1_767_225_600.0
TASK = "3d1e5b7a-0000-4000-8000-000000000009"
NAME = "proj.flaky"
HOSTS = ("celery@w1", "celery@w2")


@dataclass(frozen=True, slots=True)
class Sent:
    """One Celery event and the sender whose messages keep their order."""

    sender: str
    event: dict[str, Any]
    after: tuple[int, ...]  # indexes of events the same sender sends before this one


@dataclass(frozen=True, slots=True)
class Scenario:
    attempts: int
    ending: str
    limit: int | None  # the task's max_retries + 1, when trackd knows it
    events: tuple[Sent, ...]  # in the order they happened


def _scenario(attempts: int, ending: str, with_sent: bool, hosts: list[str]) -> Scenario:
    events: list[Sent] = []
    last: dict[str, int] = {}  # per worker: index of its last received, started and end

    def add(sender: str, event: dict[str, Any], after: tuple[int, ...] = ()) -> int:
        events.append(Sent(sender, event, tuple(a for a in after if a >= 0)))
        return len(events) - 1

    for k in range(attempts):
        at = T0 + 10.0 * k
        host = hosts[k]
        base = {"uuid": TASK, "hostname": host}
        if with_sent:
            named = {"name": NAME, "retries": k, "root_id": TASK}
            # The first is sent by the client; each retry by the task, on its own connection.
            sender = "client" if k == 0 else f"retry-{k}"
            add(sender, {"type": "task-sent", "uuid": TASK, "timestamp": at, **named})
        # A worker's events of consecutive attempts race; only these orders are certain:
        # received < started < end within an attempt, and received, started and end each
        # in attempt order.
        received = add(
            host,
            {
                "type": "task-received",
                "timestamp": at + 1,
                "name": NAME,
                "retries": k,
                "root_id": TASK,
                **base,
            },
            (last.get(f"{host}:r", -1),),
        )
        kind = "task-retried" if k < attempts - 1 else ending
        if kind == "task-revoked":  # revoked before it started: the worker refuses it
            end = {"type": kind, "timestamp": at + 3, **base}
            ended = add(host, end, (received, last.get(f"{host}:e", -1)))
            last.update({f"{host}:r": received, f"{host}:e": ended})
            continue
        started = add(
            host,
            {"type": "task-started", "timestamp": at + 2, **base},
            (received, last.get(f"{host}:s", -1)),
        )
        end = {"type": kind, "timestamp": at + 3, **base}
        if kind != "task-succeeded":
            end["exception"] = "FlakyError('x')"
        else:
            end.update(result="7", runtime=0.5)
        ended = add(host, end, (started, last.get(f"{host}:e", -1)))
        last.update({f"{host}:r": received, f"{host}:s": started, f"{host}:e": ended})
    return Scenario(attempts, ending, None, tuple(events))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    attempts = draw(st.integers(1, 4))
    ending = draw(st.sampled_from(["task-succeeded", "task-failed", "task-revoked"]))
    hosts = draw(st.lists(st.sampled_from(HOSTS), min_size=attempts, max_size=attempts))
    scenario = _scenario(attempts, ending, draw(st.booleans()), hosts)
    limit = draw(st.none() | st.integers(attempts, attempts + 2))
    return Scenario(scenario.attempts, scenario.ending, limit, scenario.events)


@st.composite
def arrivals(draw: st.DrawFn, scenario: Scenario) -> list[dict[str, Any]]:
    """An arrival order: senders interleaved at random, some events delivered again."""
    n = len(scenario.events)
    priority = draw(st.permutations(range(n)))
    done: set[int] = set()
    order: list[int] = []
    while len(order) < n:
        ready = [
            i
            for i, sent in enumerate(scenario.events)
            if i not in done and all(a in done for a in sent.after)
        ]
        pick = min(ready, key=lambda i: priority[i])
        done.add(pick)
        order.append(pick)
    out = [scenario.events[i].event for i in order]
    for index, position in draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n)), max_size=3)
    ):
        first = out.index(scenario.events[index].event)
        out.insert(max(first + 1, position), scenario.events[index].event)
    return out


def _book(scenario: Scenario) -> TaskBook:
    def limits(name: str) -> int | None:
        return scenario.limit if name == NAME else None

    return TaskBook(task_limits=limits)


def ingest(envelopes: list[EventEnvelope]) -> TaskRecord:
    """Fold as ingest does: an id already stored is dropped."""
    rec: TaskRecord | None = None
    seen: set[str] = set()
    for env in envelopes:
        if env.id in seen:
            continue
        seen.add(env.id)
        task = interpret(env).task
        if task is None:
            continue
        rec = (new_record("default", task) if rec is None else fold(rec, task)).record
    assert rec is not None
    return rec


def translate(book: TaskBook, events: list[dict[str, Any]]) -> list[EventEnvelope]:
    return [env for event in events for env in book.translate(event)]


@given(scenarios().flatmap(lambda s: st.tuples(st.just(s), arrivals(s))))
def test_any_interleaving_and_redelivery_ends_the_task_in_its_last_attempt(
    case: tuple[Scenario, list[dict[str, Any]]],
) -> None:
    scenario, arrived = case
    in_order = translate(_book(scenario), [s.event for s in scenario.events])
    got = translate(_book(scenario), arrived)
    expected = ingest(in_order)
    rec = ingest(got)

    want_state = {
        "task-succeeded": TaskState.COMPLETED,
        "task-failed": TaskState.FAILED,
        "task-revoked": TaskState.CANCELLED,
    }[scenario.ending]
    limit = scenario.limit or (
        scenario.attempts if scenario.attempts > DEFAULT_MAX_ATTEMPTS else None
    )
    assert (expected.state, expected.attempt, expected.max_attempts) == (
        want_state,
        scenario.attempts,
        limit,
    )
    assert (rec.state, rec.attempt, rec.max_attempts, rec.error, rec.result) == (
        expected.state,
        expected.attempt,
        expected.max_attempts,
        expected.error,
        expected.result,
    )
    assert {e.id for e in got} == {e.id for e in in_order}
    by_id = {e.id: e.attempt for e in in_order}
    assert all(by_id[e.id] == e.attempt for e in got)
