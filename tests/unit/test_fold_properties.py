"""Property tests of the task and plan folds (DESIGN §4).

The central property: folding any permutation of a valid event stream, with any events
delivered more than once, gives exactly the same records as folding the stream in order.

Streams are generated as envelopes (the way producers publish them) and go through
`decode_envelope` and `interpret`, so the vocabularies, the attempt rules and the field
spellings are part of what is exercised.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trackd.domain.events import (
    ACTION_REQUESTS,
    ACTION_RESULTS,
    SYSTEM_EVENTS,
    decode_envelope,
)
from trackd.domain.interpret import interpret
from trackd.domain.metrics import UNKNOWN_AGENT, BucketDelta, bucket_deltas, contribution, hour_of
from trackd.domain.plans import PlanEvent, PlanRecord, PlanStatus, fold_plan, new_plan
from trackd.domain.states import TaskState
from trackd.domain.tasks import (
    DEFAULT_MAX_ATTEMPTS,
    Anomaly,
    AnomalyKind,
    EventKind,
    TaskEvent,
    TaskRecord,
    fold,
    new_record,
)

# Deadlines and the too_slow check are off for every property test (tests/conftest.py).
PROPS = settings(max_examples=200)
T0 = datetime(2026, 1, 11, 8, 0, tzinfo=UTC)
TENANT = "tenant-1"

P, R, DG, W = TaskState.PENDING, TaskState.RUNNING, TaskState.DELEGATED, TaskState.WAITING
C, F, X = TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED
ACTIVE = (R, DG, W)
SPELLINGS: dict[TaskState, tuple[str, ...]] = {
    P: ("pending", "PENDING", "queued", "received"),
    R: ("running", "PROCESSING", "IN_PROGRESS", "STARTED", "in-progress"),
    DG: ("delegated", "DELEGATED"),
    W: ("waiting", "Waiting"),
    C: ("completed", "SUCCESS", "done"),
    F: ("failed", "FAILURE", "error"),
    X: ("cancelled", "REVOKED", "canceled"),
}
WORKERS = ("worker-a", "worker-b", "worker-c")
MESSAGES = (None, None, "starting", "page 3 of 6", "almost", "ok", "")


def rng(seed: int) -> random.Random:
    """Reproducible details for a drawn seed (test data, not security)."""
    return random.Random(seed)


# --- the in-test driver --------------------------------------------------------------------


@dataclass
class Driven:
    records: dict[str, TaskRecord] = field(default_factory=dict)
    anomalies: list[Anomaly] = field(default_factory=list)
    changes: list[tuple[TaskRecord | None, TaskRecord]] = field(default_factory=list)


def drive(events: Iterable[TaskEvent]) -> Driven:
    """Fold events in arrival order; no deduplication: the fold must absorb duplicates."""
    out = Driven()
    for ev in events:
        before = out.records.get(ev.task_id)
        folded = new_record(TENANT, ev) if before is None else fold(before, ev)
        if folded.anomaly is not None:
            out.anomalies.append(folded.anomaly)
        out.records[ev.task_id] = folded.record
        out.changes.append((before, folded.record))
    return out


def drive_plans(events: Iterable[PlanEvent]) -> dict[str, PlanRecord]:
    plans: dict[str, PlanRecord] = {}
    for ev in events:
        rec = plans.get(ev.plan_id)
        plans[ev.plan_id] = new_plan(TENANT, ev) if rec is None else fold_plan(rec, ev)
    return plans


def _diff(got: dict[str, Any], want: dict[str, Any]) -> str:
    """Which fields of which records differ: a readable failure message."""
    lines = []
    for key in sorted(set(got) | set(want)):
        a, b = got.get(key), want.get(key)
        if a is None or b is None:
            lines.append(f"{key}: {a!r} != {b!r}")
            continue
        for name in dataclasses.fields(a):
            x, y = getattr(a, name.name), getattr(b, name.name)
            if x != y:
                lines.append(f"{key}.{name.name}: {x!r} != {y!r} (in order)")
    return "; ".join(lines)


# --- valid streams ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What a generated task must end as when its stream is folded in order."""

    task_id: str
    state: TaskState
    attempts: int
    agent: str
    requester: str | None
    event_type: str | None


@dataclass(frozen=True)
class Stream:
    envelopes: tuple[dict[str, Any], ...]
    expected: tuple[Expected, ...]

    def task_events(self) -> list[TaskEvent]:
        return [t for t, _ in self.meanings() if t is not None]

    def plan_events(self) -> list[PlanEvent]:
        return [p for _, p in self.meanings() if p is not None]

    def meanings(self) -> list[tuple[TaskEvent | None, PlanEvent | None]]:
        out = []
        for raw in self.envelopes:
            meaning = interpret(decode_envelope(raw))
            out.append((meaning.task, meaning.plan))
        return out


class _Task:
    """Builds the envelopes of one task, keeping its order keys strictly increasing.

    The shape of the task (attempts, states, outcome) is drawn by Hypothesis; the details of
    each envelope (spellings, messages, clock steps) come from a seeded Random to keep the
    number of draws, and so the run time, small.
    """

    def __init__(self, rnd: random.Random, index: int, mode: str, plan_id: str | None) -> None:
        self.rnd = rnd
        self.task_id = f"task-{index}"
        self.mode = mode
        self.clock = T0 + timedelta(seconds=rnd.randint(0, 6 * 3600))
        self.seq = rnd.randint(0, 5)
        self.count = 0
        # one trace per workflow: a task in a plan shares the plan's trace
        trace = f"trace-{plan_id}" if plan_id is not None else f"trace-{index}"
        self.trace_id = rnd.choice([None, trace])
        self.envelopes: list[dict[str, Any]] = []

    def _tick(self) -> datetime:
        if self.mode == "seq":  # the producer's counter orders; its clock may even go back
            step = self.rnd.randint(-5_000, 90_000)
        elif self.rnd.random() < 0.1:  # a coarse clock: the event id breaks the tie
            step = 0
        else:
            step = self.rnd.randint(1, 90_000)
        self.clock += timedelta(milliseconds=step)
        return self.clock

    def _sequence(self) -> int | None:
        if self.mode == "time":
            return None
        self.seq += self.rnd.randint(1, 3)
        return self.seq

    def add(
        self,
        *,
        source: str,
        etype: str,
        topic: str,
        data: dict[str, Any],
        sequence: bool = True,
        **fields: Any,
    ) -> str:
        self.count += 1
        event_id = f"{self.task_id}-e{self.count:02d}"
        env: dict[str, Any] = {
            "id": event_id,
            "source": source,
            "type": etype,
            "topic": topic,
            "time": self._tick().isoformat(),
            "data": data,
        }
        if sequence:
            env["sequence"] = self._sequence()
        if self.trace_id is not None and self.rnd.random() < 0.7:
            env[self.rnd.choice(["traceid", "trace_id", "traceId"])] = self.trace_id
        env.update({k: v for k, v in fields.items() if v is not None})
        self.envelopes.append(env)
        return event_id


# Strategies are built once: building them inside the generators costs more than drawing.
SEEDS = st.integers(0, 2**32 - 1)
MODES = st.sampled_from(["seq", "time", "both"])
MAX_ATTEMPTS = st.one_of(st.none(), st.integers(1, 5))
ATTEMPTS = {n: st.integers(1, n) for n in range(1, 6)}
FINALS = st.sampled_from([C, F, X])
BOOLS = st.booleans()
PENDINGS = st.integers(0, 2)
ACTIVES = st.lists(st.sampled_from(ACTIVE), max_size=4)
PLAN_IDS = st.sampled_from([None, "plan-0", "plan-1"])
PLAN_TYPES = st.lists(
    st.sampled_from(
        ["plan.started", "plan.completed", "plan.failed", "plan.cancelled", "plan.noted"]
    ),
    max_size=6,
)


def draw_task(
    draw: st.DrawFn, index: int, plan_id: str | None
) -> tuple[list[dict[str, Any]], Expected]:
    """One task's events, in the order they happened."""
    rnd = rng(draw(SEEDS))
    task = _Task(rnd, index, draw(MODES), plan_id)
    max_attempts = draw(MAX_ATTEMPTS)
    attempts = draw(ATTEMPTS[max_attempts or DEFAULT_MAX_ATTEMPTS])
    final = draw(FINALS)
    has_request = draw(BOOLS)
    # max_attempts travels with the request, or with each event of the task
    max_on_all = max_attempts is not None and (not has_request or rnd.random() < 0.5)
    request_type = f"job{index}.requested"
    parent: str | None = rnd.choice([f"upstream-{index}", None])
    requester: str | None = None
    if has_request:
        requester = rnd.choice(["planner", "api", "scheduler"])
        data: dict[str, Any] = {"query": f"q{index}"}
        if max_attempts is not None:
            data["max_attempts"] = max_attempts
        if plan_id is not None:
            data["plan_id"] = plan_id
        corr: dict[str, Any] = {
            rnd.choice(["correlation_id", "correlationId", "correlationid"]): task.task_id
        }
        parent = task.add(
            source=requester,
            etype=request_type,
            topic=ACTION_REQUESTS,
            data=data,
            sequence=rnd.random() < 0.3,
            parent_event_id=f"goal-{index}",
            **corr,
        )

    agent = WORKERS[0]
    for attempt in range(1, attempts + 1):
        agent = rnd.choice(WORKERS)  # one worker per attempt
        states: list[TaskState] = []
        if not (attempt == 1 and has_request):  # a request already made the task start
            states += [P] * draw(PENDINGS)
        states += draw(ACTIVES)
        states.append(final if attempt == attempts else F)
        progress = 0.0
        previous: TaskState | None = None
        for position, state in enumerate(states):
            data = {}
            spelled = rnd.choice(SPELLINGS[state])
            extra: dict[str, Any] = {"parent_event_id": parent}  # envelope fields
            if attempt == 2 and position == 0 and state is P and rnd.random() < 0.5:
                spelled = rnd.choice(["RETRY", "retry"])  # attempt + 1, implicit
            elif attempt > 1 or rnd.random() < 0.5:
                if rnd.random() < 0.5:
                    extra["attempt"] = attempt
                else:
                    data["attempt"] = attempt
            if max_attempts is not None and (max_on_all or attempt > DEFAULT_MAX_ATTEMPTS):
                # An attempt beyond the default limit must say so itself: the fold cannot
                # wait for a request that declares the limit (see test_domain_fold).
                data["max_attempts"] = max_attempts
            kind = rnd.choice(
                ["progress", "state", "result"] if state in (C, F) else ["progress", "state"]
            )
            message = rnd.choice(MESSAGES)
            if plan_id is not None:
                if rnd.random() < 0.5:
                    data["plan_id"] = plan_id
                else:
                    extra[rnd.choice(["plan_id", "planId", "planid"])] = plan_id
            if kind == "result":
                data["success"] = state is C
                if state is F and message is not None:
                    data["error"] = message
                extra[rnd.choice(["correlation_id", "correlationId"])] = task.task_id
                task.add(
                    source=agent, etype=f"job{index}.done", topic=ACTION_RESULTS, data=data, **extra
                )
            elif kind == "progress":
                data.update(task_id=task.task_id, state=spelled)
                if rnd.random() < 0.6:  # progress only ever goes up within an attempt
                    progress = rnd.choice([progress, rnd.uniform(progress, 1.0), 1.0])
                    data["progress"] = progress
                if message is not None:
                    data["message"] = message
                task.add(
                    source=agent, etype="task.progress", topic=SYSTEM_EVENTS, data=data, **extra
                )
            else:
                data.update(task_id=task.task_id, new_state=spelled)
                if previous is not None and rnd.random() < 0.5:
                    data["previous_state"] = rnd.choice(SPELLINGS[previous])
                if message is not None:
                    data["reason"] = message
                task.add(
                    source=agent,
                    etype="task.state_changed",
                    topic=SYSTEM_EVENTS,
                    data=data,
                    **extra,
                )
            previous = state
    expected = Expected(
        task.task_id, final, attempts, agent, requester, request_type if has_request else None
    )
    return task.envelopes, expected


def draw_plan(draw: st.DrawFn, plan_id: str) -> list[dict[str, Any]]:
    """Lifecycle events of one plan, possibly with several (conflicting) ends."""
    rnd = rng(draw(SEEDS))
    envs: list[dict[str, Any]] = []
    trace = rnd.choice([None, f"trace-{plan_id}"])
    session = rnd.choice([None, f"session-{plan_id}"])
    types = draw(PLAN_TYPES)
    for n, etype in enumerate(types):
        data: dict[str, Any] = {"plan_id": plan_id}
        if etype == "plan.started" and rnd.random() < 0.5:
            data["goal"] = f"goal of {plan_id}"
        if rnd.random() < 0.5:
            data["current_state"] = rnd.choice(["planning", "searching", "writing"])
        if etype in ("plan.failed", "plan.cancelled") and rnd.random() < 0.5:
            data["reason"] = rnd.choice(["timeout", "user", "budget"])
        env: dict[str, Any] = {
            "id": f"{plan_id}-p{n}",
            "source": "planner",
            "type": etype,
            # whole minutes: equal times happen, and the event id breaks the tie
            "time": (T0 + timedelta(minutes=rnd.randint(0, 240))).isoformat(),
            "data": data,
            rnd.choice(["planId", "plan_id", "planid"]): plan_id,
        }
        if etype == "plan.noted":
            env["topic"] = SYSTEM_EVENTS  # unknown type: only says the plan exists
        if trace is not None and rnd.random() < 0.7:
            env["trace_id"] = trace
        if session is not None and rnd.random() < 0.7:
            env["sessionId"] = session
        envs.append(env)
    return envs


@st.composite
def streams(draw: st.DrawFn, max_tasks: int = 4) -> Stream:
    """Valid event streams for several tasks (and the plans some of them belong to)."""
    n_tasks = draw(st.integers(1, max_tasks))
    envelopes: list[dict[str, Any]] = []
    expected: list[Expected] = []
    for index in range(n_tasks):
        envs, exp = draw_task(draw, index, draw(PLAN_IDS))
        envelopes += envs
        expected.append(exp)
    for plan_id in ("plan-0", "plan-1"):
        envelopes += draw_plan(draw, plan_id)
    return Stream(tuple(envelopes), tuple(expected))


def shuffled_with_duplicates(data: st.DataObject, items: Sequence[Any]) -> list[Any]:
    """A permutation of `items` with some of them delivered more than once."""
    rnd = rng(data.draw(SEEDS, label="shuffle seed"))
    out = [*items, *(rnd.choice(items) for _ in range(rnd.randint(0, len(items))) if items)]
    rnd.shuffle(out)
    return out


# --- the generator itself is right -----------------------------------------------------------


@PROPS
@given(streams())
def test_valid_streams_fold_in_order_without_anomalies(stream: Stream) -> None:
    driven = drive(stream.task_events())
    assert driven.anomalies == []
    assert set(driven.records) == {e.task_id for e in stream.expected}
    for exp in stream.expected:
        rec = driven.records[exp.task_id]
        assert rec.state is exp.state
        assert rec.attempt == exp.attempts
        assert rec.agent_id == exp.agent
        assert rec.requester == exp.requester
        assert rec.event_type == (exp.event_type or "task")
        assert rec.tenant_id == TENANT
        assert rec.completed_at is not None
        assert rec.duration_seconds is not None and rec.duration_seconds >= 0
        if exp.state is TaskState.COMPLETED:
            assert rec.progress == 1.0
            assert rec.error is None


# --- (1) order and duplicates do not matter ----------------------------------------------------


@PROPS
@given(streams(), st.data())
def test_any_permutation_with_duplicates_gives_the_same_records(
    stream: Stream, data: st.DataObject
) -> None:
    events = stream.task_events()
    in_order = drive(events).records
    arrived = drive(shuffled_with_duplicates(data, events))
    assert arrived.records == in_order, _diff(arrived.records, in_order)  # full dataclasses
    _assert_progress_monotone(arrived.changes)  # (4), on the way there


@PROPS
@given(streams(max_tasks=2), st.data())
def test_refolding_everything_again_changes_nothing(stream: Stream, data: st.DataObject) -> None:
    events = stream.task_events()
    first = drive(events)
    again = drive([*events, *shuffled_with_duplicates(data, events)])
    assert again.records == first.records
    assert again.anomalies == []


@PROPS
@given(streams(), st.data())
def test_plans_fold_the_same_under_permutation_and_duplication(
    stream: Stream, data: st.DataObject
) -> None:
    events = stream.plan_events()
    in_order = drive_plans(events)
    assert drive_plans(shuffled_with_duplicates(data, events)) == in_order
    for rec in in_order.values():
        ends = [
            e
            for e in events
            if e.plan_id == rec.plan_id and e.status is not None and e.status.terminal
        ]
        if ends:
            first_end = min(ends, key=lambda e: e.key)
            assert (rec.status, rec.completed_at, rec.reason) == (
                first_end.status,
                first_end.time,
                first_end.reason,
            )
        else:
            assert rec.status is PlanStatus.RUNNING
            assert rec.completed_at is None
        starts = [
            e.time for e in events if e.plan_id == rec.plan_id and e.status is PlanStatus.RUNNING
        ]
        assert rec.started_at == (min(starts) if starts else None)
        mine = [e for e in events if e.plan_id == rec.plan_id]
        assert rec.first_seen_at == min(e.time for e in mine)
        assert rec.last_event_at == max(e.time for e in mine)


# --- (2) completed and cancelled are sticky ----------------------------------------------------


def head_event(events: Sequence[TaskEvent], rec: TaskRecord) -> TaskEvent:
    """The event that decided the record's state."""
    return next(e for e in events if e.task_id == rec.task_id and e.key == rec.head_key)


def later_event(rnd: random.Random, head: TaskEvent, n: int) -> TaskEvent:
    """Any event that comes after `head`: later in the same attempt, or of a higher attempt."""
    return TaskEvent(
        event_id=f"later-{n}",
        task_id=head.task_id,
        kind=rnd.choice(list(EventKind)),
        state=rnd.choice(list(TaskState)),
        time=head.time + timedelta(seconds=rnd.randint(1, 3600)),
        source=rnd.choice(WORKERS),
        event_type="task.progress",
        attempt=head.attempt + rnd.choice([0, 0, 1, 2, 3]),
        sequence=None if head.sequence is None else head.sequence + rnd.randint(1, 5),
        progress=rnd.choice([None, rnd.random(), 1.0]),
        message=rnd.choice(MESSAGES),
        max_attempts=rnd.choice([None, rnd.randint(1, 10)]),
    )


@PROPS
@given(streams(max_tasks=3), SEEDS)
def test_completed_and_cancelled_are_sticky(stream: Stream, seed: int) -> None:
    rnd = rng(seed)
    events = stream.task_events()
    records = drive(events).records
    for rec in records.values():
        if rec.state not in (TaskState.COMPLETED, TaskState.CANCELLED):
            continue
        head = head_event(events, rec)
        current = rec
        for n in range(rnd.randint(1, 8)):
            later = later_event(rnd, head, n)
            out = fold(current, later)
            assert out.record == rec  # nothing changes, not even the history fields
            assert out.transition is None
            assert out.anomaly is not None  # and every refusal is recorded
            assert (out.anomaly.event_id, out.anomaly.from_state, out.anomaly.to_state) == (
                later.event_id,
                rec.state,
                later.state,
            )
            if later.attempt > rec.attempt:
                assert out.anomaly.kind is AnomalyKind.RETRY_AFTER_TERMINAL
            elif later.state.terminal:
                assert out.anomaly.kind is AnomalyKind.CONFLICTING_TERMINAL
            else:
                assert out.anomaly.kind is AnomalyKind.ILLEGAL_TRANSITION
            current = out.record
            # the same event delivered again is refused again, in the same way
            assert fold(current, later) == out


# --- (3) failed reopens only with a higher attempt, within max_attempts ------------------------


@PROPS
@given(streams(max_tasks=3), SEEDS)
def test_failed_reopens_only_with_a_higher_attempt_within_the_limit(
    stream: Stream, seed: int
) -> None:
    rnd = rng(seed)
    events = stream.task_events()
    records = drive(events).records
    for rec in records.values():
        if rec.state is not TaskState.FAILED:
            continue
        head = head_event(events, rec)
        attempt = rec.attempt + rnd.randint(0, 4)
        carried = rnd.choice([None, rnd.randint(1, 8)])
        retry = TaskEvent(
            event_id="retry",
            task_id=rec.task_id,
            kind=rnd.choice([EventKind.PROGRESS, EventKind.STATE]),
            state=rnd.choice([TaskState.PENDING, TaskState.RUNNING]),
            time=head.time + timedelta(seconds=rnd.randint(1, 600)),
            source="worker-z",
            event_type="task.state_changed",
            attempt=attempt,
            sequence=None if head.sequence is None else head.sequence + 1,
            max_attempts=carried,
        )
        limit = max(rec.max_attempts or DEFAULT_MAX_ATTEMPTS, carried or 0)
        out = fold(rec, retry)
        if attempt == rec.attempt:
            assert out.anomaly is not None
            assert out.anomaly.kind is AnomalyKind.ILLEGAL_TRANSITION
            assert out.record == rec
        elif attempt <= limit:
            assert rec.attempt < limit  # attempts < max_attempts
            assert out.anomaly is None
            assert (out.record.state, out.record.attempt) == (retry.state, attempt)
            assert out.transition is not None
            assert (out.transition.from_state, out.transition.to_state) == (
                TaskState.FAILED,
                retry.state,
            )
            assert (out.record.completed_at, out.record.error, out.record.progress) == (
                None,
                None,
                None,
            )
        else:
            assert out.anomaly is not None
            assert out.anomaly.kind is AnomalyKind.ATTEMPTS_EXCEEDED
            assert out.anomaly.message == f"attempt {attempt} exceeds max_attempts {limit}"
            assert out.record == rec
            assert out.transition is None


# --- (4) progress never goes backwards within an attempt ---------------------------------------


@st.composite
def any_task_events(draw: st.DrawFn) -> list[TaskEvent]:
    """Events of one task with no validity promised: any state, order, attempt or progress."""
    n = draw(st.integers(1, 30))
    rnd = rng(draw(SEEDS))
    return [
        TaskEvent(
            event_id=f"e{rnd.randint(0, 30)}",
            task_id="task-x",
            kind=rnd.choice(list(EventKind)),
            state=rnd.choice(list(TaskState)),
            time=T0 + timedelta(seconds=rnd.randint(0, 100)),
            source=rnd.choice(WORKERS),
            event_type="t",
            attempt=rnd.randint(1, 4),
            sequence=rnd.choice([None, rnd.randint(0, 20)]),
            progress=rnd.choice([None, rnd.random(), 0.0, 1.0]),
            max_attempts=rnd.choice([None, rnd.randint(1, 5)]),
        )
        for _ in range(n)
    ]


def _assert_progress_monotone(changes: Iterable[tuple[TaskRecord | None, TaskRecord]]) -> None:
    for before, after in changes:
        if before is None or before.attempt != after.attempt or before.progress is None:
            continue
        assert after.progress is not None
        assert after.progress >= before.progress


@PROPS
@given(any_task_events())
def test_progress_never_goes_backwards_within_an_attempt(events: list[TaskEvent]) -> None:
    _assert_progress_monotone(drive(events).changes)


@PROPS
@given(any_task_events())
def test_the_ways_out_of_a_terminal_state_in_any_stream(events: list[TaskEvent]) -> None:
    """Properties (2) and (3) over arbitrary, even invalid, streams in arrival order."""
    rec: TaskRecord | None = None
    for ev in events:
        out = new_record(TENANT, ev) if rec is None else fold(rec, ev)
        if rec is None:
            rec = out.record
            continue
        after = out.record
        assert after.attempt >= rec.attempt
        if out.anomaly is not None and out.anomaly.kind is not AnomalyKind.CONFLICTING_TERMINAL:
            assert after == rec  # a refused event changes nothing
            assert out.transition is None
        if rec.terminal and after.state is not rec.state:
            if after.attempt == rec.attempt:
                # only an earlier end of the same attempt may replace an end, and it is flagged
                assert after.terminal
                assert out.anomaly is not None
                assert out.anomaly.kind is AnomalyKind.CONFLICTING_TERMINAL
                assert ev.key < rec.head_key
            else:
                # a retry: only out of failed, with a higher attempt, within the limit
                assert rec.state is TaskState.FAILED
                assert after.attempt <= max(rec.allowed_attempts(), ev.max_attempts or 0)
        rec = after


# --- (5) metrics count each logical task once --------------------------------------------------


def _add(totals: dict[tuple[str, datetime], BucketDelta], deltas: Iterable[BucketDelta]) -> None:
    for d in deltas:
        key = (d.agent_id, d.period_start)
        totals[key] = totals[key].plus(d) if key in totals else d


def _assert_buckets_equal(
    got: dict[tuple[str, datetime], BucketDelta], want: dict[tuple[str, datetime], BucketDelta]
) -> None:
    got = {k: v for k, v in got.items() if not v.is_zero or abs(v.duration_sum) > 1e-6}
    assert set(got) == set(want)
    for key, bucket in want.items():
        counts = (
            bucket.total_tasks,
            bucket.completed_tasks,
            bucket.failed_tasks,
            bucket.cancelled_tasks,
            bucket.duration_count,
        )
        assert (
            got[key].total_tasks,
            got[key].completed_tasks,
            got[key].failed_tasks,
            got[key].cancelled_tasks,
            got[key].duration_count,
        ) == counts
        assert math.isclose(got[key].duration_sum, bucket.duration_sum, abs_tol=1e-6)


@PROPS
@given(streams(), st.data())
def test_metrics_count_each_logical_task_once(stream: Stream, data: st.DataObject) -> None:
    events = shuffled_with_duplicates(data, stream.task_events())
    driven = drive(events)

    # one bucket change per folded event, as a consumer writing event by event would
    per_event: dict[tuple[str, datetime], BucketDelta] = {}
    for change in driven.changes:
        _add(per_event, bucket_deltas([change]))
    # ... and in batches, as the batched ingest does
    batched: dict[tuple[str, datetime], BucketDelta] = {}
    size = data.draw(st.integers(1, 10))
    for start in range(0, len(driven.changes), size):
        _add(batched, bucket_deltas(driven.changes[start : start + size]))

    final: dict[tuple[str, datetime], BucketDelta] = {}
    _add(final, (c for c in map(contribution, driven.records.values()) if c is not None))
    _assert_buckets_equal(per_event, final)
    _assert_buckets_equal(batched, final)

    counts = Counter(e.state for e in stream.expected)
    total = BucketDelta("all", T0)
    for bucket in per_event.values():
        total = total.plus(BucketDelta("all", T0, *_counts(bucket)))
    assert total.total_tasks == len(stream.expected)  # every task ended, each counts once
    assert total.completed_tasks == counts[TaskState.COMPLETED]
    assert total.failed_tasks == counts[TaskState.FAILED]
    assert total.cancelled_tasks == counts[TaskState.CANCELLED]
    assert total.duration_count == len(stream.expected)
    for exp in stream.expected:  # counted in the hour it ended, under its last worker
        rec = driven.records[exp.task_id]
        assert rec.completed_at is not None
        key = (exp.agent, hour_of(rec.completed_at))
        assert key in per_event
        assert exp.agent != UNKNOWN_AGENT


def _counts(b: BucketDelta) -> tuple[int, int, int, int, float, int]:
    return (
        b.total_tasks,
        b.completed_tasks,
        b.failed_tasks,
        b.cancelled_tasks,
        b.duration_sum,
        b.duration_count,
    )


def test_failed_then_retried_to_success_counts_once_as_completed() -> None:
    base = {"source": "worker-a", "topic": SYSTEM_EVENTS, "type": "task.progress"}
    raws: list[dict[str, Any]] = [
        {
            **base,
            "id": "a",
            "time": "2026-01-11T08:10:00Z",
            "data": {"task_id": "t", "state": "running"},
        },
        {
            **base,
            "id": "b",
            "time": "2026-01-11T08:20:00Z",
            "data": {"task_id": "t", "state": "FAILURE"},
        },
        {
            **base,
            "id": "c",
            "time": "2026-01-11T09:05:00Z",
            "source": "worker-b",
            "data": {"task_id": "t", "state": "RETRY"},
        },
        {
            **base,
            "id": "d",
            "time": "2026-01-11T09:10:00Z",
            "source": "worker-b",
            "attempt": 2,
            "data": {"task_id": "t", "state": "SUCCESS"},
        },
    ]
    events = [t for t in (interpret(decode_envelope(r)).task for r in raws) if t is not None]
    driven = drive(events)
    assert driven.anomalies == []
    totals: dict[tuple[str, datetime], BucketDelta] = {}
    for change in driven.changes:
        _add(totals, bucket_deltas([change]))
    live = {k: v for k, v in totals.items() if not v.is_zero}
    hour = datetime(2026, 1, 11, 9, tzinfo=UTC)
    assert list(live) == [("worker-b", hour)]
    assert _counts(live[("worker-b", hour)]) == (1, 1, 0, 0, 3600.0, 1)
    # the failure was counted at 08:00 under worker-a and taken back when the retry began
    assert totals[("worker-a", datetime(2026, 1, 11, 8, tzinfo=UTC))].is_zero
