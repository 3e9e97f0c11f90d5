"""The repos against a real database: every test runs on SQLite and on PostgreSQL (DESIGN §5)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.access import Principal, Role
from trackd.domain.metrics import BucketDelta
from trackd.domain.plans import PlanRecord, PlanStatus
from trackd.domain.states import TaskState
from trackd.domain.tasks import Anomaly, AnomalyKind, TaskRecord, Transition
from trackd.store.models import ApiToken, StateTransition, TimelineEvent
from trackd.store.repos import anomalies, dead_letters, metrics, plans, tasks, timeline, tokens
from trackd.store.repos.dead_letters import MAX_PAYLOAD, Rejected

Sessions = async_sessionmaker[AsyncSession]

T0 = datetime(2026, 1, 11, 10, 0, 0, 123456, tzinfo=UTC)
# A producer in another time zone: stored as the same instant, read back in UTC.
CET = timezone(timedelta(hours=1))
A, B = "tenant-a", "tenant-b"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def task(task_id: str, tenant: str = A, **changes: Any) -> TaskRecord:
    values: dict[str, Any] = {
        "tenant_id": tenant,
        "task_id": task_id,
        "state": TaskState.RUNNING,
        "event_type": "web.search.requested",
        "attempt": 1,
        "head_key": f"000001|00000000000000000|{at(0).isoformat()}|e-{task_id}",
        "first_seen_at": at(0),
        "last_event_at": at(5),
        "plan_id": "plan-1",
        "progress": 0.25,
        "message": "page 1 of 4",
        "message_key": "k",
        "started_at": at(0),
        "trace_id": "trace-1",
        "parent_event_id": "goal-1",
        "agent_id": "worker-a",
        "requester": "planner",
        "max_attempts": 5,
        "data": {"query": "moths", "n": [1, 2]},
    }
    values.update(changes)
    return TaskRecord(**values)


def plan(plan_id: str, tenant: str = A, **changes: Any) -> PlanRecord:
    values: dict[str, Any] = {
        "tenant_id": tenant,
        "plan_id": plan_id,
        "status": PlanStatus.RUNNING,
        "first_seen_at": at(0),
        "last_event_at": at(9),
        "started_at": at(0),
        "current_state": "searching",
        "state_key": "s",
        "trace_id": "trace-1",
        "session_id": "session-1",
        "goal": "find moths",
    }
    values.update(changes)
    return PlanRecord(**values)


def timeline_row(event_id: str, tenant: str = A, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "tenant_id": tenant,
        "event_id": event_id,
        "event_type": "task.progress",
        "topic": "system-events",
        "source": "worker-a",
        "trace_id": "trace-1",
        "parent_event_id": None,
        "correlation_id": None,
        "plan_id": "plan-1",
        "task_id": "task-1",
        "data": {"task_id": "task-1", "state": "running"},
        "attributes": {"sequence": 1},
        "occurred_at": at(0),
    }
    row.update(changes)
    return row


def delta(agent: str, hour: int, **counts: Any) -> BucketDelta:
    return BucketDelta(
        agent, T0.replace(minute=0, second=0, microsecond=0) + timedelta(hours=hour), **counts
    )


def assert_utc(*values: datetime | None) -> None:
    for value in values:
        assert value is not None
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0), value


def utc_fields(obj: Any) -> list[datetime]:
    """Every datetime attribute of a dataclass or ORM row."""
    if dataclasses.is_dataclass(obj):
        names: Iterable[str] = (f.name for f in dataclasses.fields(obj))
    else:
        names = obj.__table__.columns.keys()
    return [v for v in (getattr(obj, n) for n in names) if isinstance(v, datetime)]


# --- tasks ------------------------------------------------------------------------------------


async def test_tasks_save_then_load_round_trips_every_field(sessions: Sessions) -> None:
    one = task("task-1", result={"success": True, "hits": 3})
    two = task(
        "task-2",
        state=TaskState.COMPLETED,
        progress=1.0,
        completed_at=at(7),
        data={},
        result=None,
        plan_id=None,
        message=None,
    )
    async with sessions() as s, s.begin():
        await tasks.save_many(s, [two, one])

    async with sessions() as s:
        found = await tasks.load_many(s, [(A, "task-1"), (A, "task-2"), (A, "missing")])
        got = await tasks.get(s, A, "task-2")
        missing = await tasks.get(s, A, "missing")

    assert found == {(A, "task-1"): one, (A, "task-2"): two}
    assert got == two
    assert missing is None


async def test_tasks_save_overwrites_the_stored_record(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        await tasks.save_many(s, [task("task-1")])
    done = task(
        "task-1",
        state=TaskState.COMPLETED,
        progress=1.0,
        completed_at=at(8),
        last_event_at=at(8),
        message="done",
        result={"success": True},
    )
    async with sessions() as s, s.begin():
        await tasks.save_many(s, [done])

    async with sessions() as s:
        assert await tasks.get(s, A, "task-1") == done
        assert await s.scalar(select(func.count()).select_from(tasks._T)) == 1


async def test_tasks_load_many_spans_tenants_and_large_key_sets(sessions: Sessions) -> None:
    # More keys than one chunk of bound parameters holds.
    many = [task(f"task-{i:04d}") for i in range(1203)]
    async with sessions() as s, s.begin():
        await tasks.save_many(s, [*many, task("task-0001", tenant=B, agent_id="worker-b")])

    async with sessions() as s:
        found = await tasks.load_many(
            s, [(A, r.task_id) for r in many] + [(B, "task-0001"), (B, "task-0002")]
        )

    assert len(found) == 1204
    assert found[(A, "task-0001")].agent_id == "worker-a"
    assert found[(B, "task-0001")].agent_id == "worker-b"
    assert (B, "task-0002") not in found


async def test_tasks_list_for_plan_orders_by_first_seen_and_pages(sessions: Sessions) -> None:
    records = [
        task("t-c", first_seen_at=at(1)),
        task("t-a", first_seen_at=at(3)),
        task("t-b", first_seen_at=at(1)),  # same time as t-c: task id breaks the tie
        task("t-other-plan", plan_id="plan-2", first_seen_at=at(0)),
    ]
    async with sessions() as s, s.begin():
        await tasks.save_many(s, records)

    async with sessions() as s:
        everything = await tasks.list_for_plan(s, A, "plan-1", limit=10)
        page = await tasks.list_for_plan(s, A, "plan-1", limit=1, offset=1)
        past_the_end = await tasks.list_for_plan(s, A, "plan-1", limit=10, offset=3)

    assert [t.task_id for t in everything] == ["t-b", "t-c", "t-a"]
    assert [t.task_id for t in page] == ["t-c"]
    assert past_the_end == []


async def test_tasks_plan_counts(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        await tasks.save_many(
            s,
            [
                task("t-1", state=TaskState.COMPLETED, completed_at=at(4), first_seen_at=at(2)),
                task("t-2", state=TaskState.COMPLETED, completed_at=at(4), last_event_at=at(30)),
                task("t-3", state=TaskState.FAILED, completed_at=at(6), first_seen_at=at(-5)),
                task("t-4", state=TaskState.WAITING),
                task("t-5", plan_id="plan-2", last_event_at=at(99), first_seen_at=at(-99)),
            ],
        )

    async with sessions() as s:
        counts = await tasks.plan_counts(s, A, "plan-1")
        empty = await tasks.plan_counts(s, A, "no-such-plan")

    assert counts == {
        "task_count": 4,
        "completed_tasks": 2,
        "failed_tasks": 1,
        "last_event_at": at(30),
        "first_seen_at": at(-5),
    }
    assert_utc(counts["last_event_at"], counts["first_seen_at"])
    assert empty == {
        "task_count": 0,
        "completed_tasks": 0,
        "failed_tasks": 0,
        "last_event_at": None,
        "first_seen_at": None,
    }


async def test_tasks_add_transitions_and_read_them_in_time_order(sessions: Sessions) -> None:
    transitions = [
        Transition("task-1", "e-3", TaskState.RUNNING, TaskState.FAILED, 1, at(3), "timeout"),
        Transition("task-1", "e-1", None, TaskState.RUNNING, 1, at(1)),
        Transition(
            "task-1", "e-4", TaskState.FAILED, TaskState.RUNNING, 2, at(4), "retry: attempt 2"
        ),
        Transition("task-2", "e-9", None, TaskState.PENDING, 1, at(2)),
    ]
    async with sessions() as s, s.begin():
        await tasks.add_transitions(s, A, {"task-1": "plan-1"}, transitions)
        await tasks.add_transitions(s, A, {}, [])  # nothing to write is fine

    async with sessions() as s:
        one = await tasks.transitions_of(s, A, "task-1")
        two = await tasks.transitions_of(s, A, "task-2")

    assert [
        (r.event_id, r.from_state, r.to_state, r.attempt, r.reason, r.transitioned_at) for r in one
    ] == [
        ("e-1", None, "running", 1, None, at(1)),
        ("e-3", "running", "failed", 1, "timeout", at(3)),
        ("e-4", "failed", "running", 2, "retry: attempt 2", at(4)),
    ]
    assert {r.plan_id for r in one} == {"plan-1"}
    assert [(r.event_id, r.plan_id) for r in two] == [("e-9", None)]
    assert all(r.tenant_id == A for r in one + two)


# --- plans ------------------------------------------------------------------------------------


async def test_plans_save_load_get_and_overwrite(sessions: Sessions) -> None:
    running = plan("plan-1")
    other = plan(
        "plan-2",
        trace_id=None,
        session_id=None,
        goal=None,
        current_state=None,
        last_event_at=at(20),
    )
    async with sessions() as s, s.begin():
        await plans.save_many(s, [other, running])

    async with sessions() as s:
        found = await plans.load_many(s, [(A, "plan-1"), (A, "plan-2"), (A, "plan-3")])
        assert found == {(A, "plan-1"): running, (A, "plan-2"): other}
        assert await plans.get(s, A, "plan-1") == running
        assert await plans.get(s, A, "plan-3") is None

    done = dataclasses.replace(
        running,
        status=PlanStatus.FAILED,
        completed_at=at(10),
        status_key="z",
        reason="out of budget",
        last_event_at=at(10),
    )
    async with sessions() as s, s.begin():
        await plans.save_many(s, [done])

    async with sessions() as s:
        assert await plans.get(s, A, "plan-1") == done
        recent = await plans.list_recent(s, A, limit=10)
        assert [p.plan_id for p in recent] == ["plan-2", "plan-1"]
        assert [p.plan_id for p in await plans.list_recent(s, A, limit=1)] == ["plan-2"]


# --- timeline ---------------------------------------------------------------------------------


async def test_timeline_known_ids_and_a_second_append_is_skipped(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        await timeline.append(
            s, [timeline_row("e-2", occurred_at=at(2)), timeline_row("e-1", occurred_at=at(1))]
        )
    async with sessions() as s, s.begin():
        # The same event id again, with other content: the first one stays.
        await timeline.append(
            s,
            [
                timeline_row("e-1", event_type="changed", occurred_at=at(9)),
                timeline_row("e-3", occurred_at=at(3)),
            ],
        )
        await timeline.append(s, [])

    async with sessions() as s:
        known = await timeline.known_ids(s, A, ["e-1", "e-3", "e-4", "e-1"])
        assert known == {"e-1", "e-3"}
        assert await timeline.known_ids(s, A, []) == set()
        rows = list(await s.scalars(select(TimelineEvent).order_by(TimelineEvent.event_id)))

    assert [(r.event_id, r.event_type, r.occurred_at) for r in rows] == [
        ("e-1", "task.progress", at(1)),
        ("e-2", "task.progress", at(2)),
        ("e-3", "task.progress", at(3)),
    ]
    first = rows[0]
    assert first.data == {"task_id": "task-1", "state": "running"}
    assert first.attributes == {"sequence": 1}
    assert_utc(first.occurred_at, first.received_at)


async def test_timeline_known_ids_beyond_one_chunk(sessions: Sessions) -> None:
    ids = [f"e-{i:04d}" for i in range(1100)]
    async with sessions() as s, s.begin():
        await timeline.append(s, [timeline_row(i) for i in ids[::2]])

    async with sessions() as s:
        assert await timeline.known_ids(s, A, ids) == set(ids[::2])


async def test_timeline_for_plan_includes_the_whole_trace(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        await timeline.append(
            s,
            [
                timeline_row("e-plan", plan_id="plan-1", trace_id=None, occurred_at=at(1)),
                timeline_row("e-trace", plan_id=None, trace_id="trace-1", occurred_at=at(0)),
                timeline_row("e-b", plan_id="plan-1", trace_id="trace-1", occurred_at=at(2)),
                timeline_row("e-a", plan_id="plan-1", trace_id="trace-1", occurred_at=at(2)),
                timeline_row(
                    "e-elsewhere", plan_id="plan-2", trace_id="trace-2", occurred_at=at(1)
                ),
            ],
        )

    async with sessions() as s:
        with_trace = await timeline.for_plan(s, A, "plan-1", "trace-1", limit=100)
        without = await timeline.for_plan(s, A, "plan-1", None, limit=100)
        limited = await timeline.for_plan(s, A, "plan-1", "trace-1", limit=2)

    assert [r.event_id for r in with_trace] == ["e-trace", "e-plan", "e-a", "e-b"]
    assert [r.event_id for r in without] == ["e-plan", "e-a", "e-b"]
    assert [r.event_id for r in limited] == ["e-trace", "e-plan"]


# --- metrics ----------------------------------------------------------------------------------


async def test_metrics_add_accumulates_and_take_backs_subtract(sessions: Sessions) -> None:
    failed = delta(
        "worker-a",
        0,
        total_tasks=1,
        failed_tasks=1,
        duration_sum=4.0,
        duration_count=1,
        last_event_at=at(100),
    )
    completed = delta(
        "worker-a",
        0,
        total_tasks=1,
        completed_tasks=1,
        duration_sum=2.5,
        duration_count=1,
        last_event_at=at(50),
    )
    async with sessions() as s, s.begin():
        await metrics.add(s, A, [failed])
    async with sessions() as s, s.begin():
        await metrics.add(s, A, [completed])
        await metrics.add(s, A, [])

    async with sessions() as s:
        (bucket,) = await metrics.buckets_since(s, A, at(-3600), "worker-a")
    assert (
        bucket.total_tasks,
        bucket.completed_tasks,
        bucket.failed_tasks,
        bucket.duration_sum,
        bucket.duration_count,
    ) == (2, 1, 1, 6.5, 2)

    # The failed attempt was retried: its contribution is taken back (a take-back carries no
    # time), which must not move last_event_at back either.
    async with sessions() as s, s.begin():
        await metrics.add(s, A, [failed.negated()])

    async with sessions() as s:
        (bucket,) = await metrics.buckets_since(s, A, at(-3600), "worker-a")
        newest = await metrics.newest_update(s, A, at(-3600), "worker-a")
        rows = (await s.execute(select(metrics._T))).mappings().all()
    assert (
        bucket.total_tasks,
        bucket.completed_tasks,
        bucket.failed_tasks,
        bucket.duration_sum,
        bucket.duration_count,
    ) == (1, 1, 0, 2.5, 1)
    assert newest == at(100)
    assert_utc(newest)
    (row,) = rows
    assert row["last_event_at"] == at(100)
    assert row["period_start"] == delta("x", 0).period_start
    assert row["period_end"] == delta("x", 1).period_start


async def test_metrics_last_event_at_keeps_the_newest(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        await metrics.add(s, A, [delta("w", 0, total_tasks=1, last_event_at=at(30))])
    async with sessions() as s, s.begin():
        await metrics.add(s, A, [delta("w", 0, total_tasks=1, last_event_at=at(10))])
    async with sessions() as s:
        assert await metrics.newest_update(s, A, at(-3600), None) == at(30)
    async with sessions() as s, s.begin():
        await metrics.add(s, A, [delta("w", 0, total_tasks=1, last_event_at=at(40))])
    async with sessions() as s:
        assert await metrics.newest_update(s, A, at(-3600), None) == at(40)
        assert await metrics.newest_update(s, A, at(3600), None) is None


async def test_metrics_buckets_since_sums_agents_per_hour(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        await metrics.add(
            s,
            A,
            [
                delta("worker-a", -2, total_tasks=5, completed_tasks=5, last_event_at=at(-7000)),
                delta(
                    "worker-a",
                    0,
                    total_tasks=2,
                    completed_tasks=1,
                    failed_tasks=1,
                    duration_sum=3.0,
                    duration_count=2,
                    last_event_at=at(60),
                ),
                delta("worker-b", 0, total_tasks=1, cancelled_tasks=1, last_event_at=at(70)),
                delta(
                    "worker-b",
                    1,
                    total_tasks=1,
                    completed_tasks=1,
                    duration_sum=1.0,
                    duration_count=1,
                    last_event_at=at(3700),
                ),
            ],
        )

    hour0, hour1 = delta("*", 0).period_start, delta("*", 1).period_start
    async with sessions() as s:
        summed = await metrics.buckets_since(s, A, hour0, None)
        only_b = await metrics.buckets_since(s, A, hour0, "worker-b")
        everything = await metrics.buckets_since(s, A, hour0 - timedelta(days=1), None)
        nothing = await metrics.buckets_since(s, A, hour0, "worker-z")

    assert summed == [
        BucketDelta("*", hour0, 3, 1, 1, 1, 3.0, 2),
        BucketDelta("*", hour1, 1, 1, 0, 0, 1.0, 1),
    ]
    assert only_b == [
        BucketDelta("worker-b", hour0, 1, 0, 0, 1, 0.0, 0),
        BucketDelta("worker-b", hour1, 1, 1, 0, 0, 1.0, 1),
    ]
    assert [b.total_tasks for b in everything] == [5, 3, 1]
    assert nothing == []
    for bucket in everything:
        assert_utc(bucket.period_start)


# --- anomalies and dead letters --------------------------------------------------------------


async def test_anomalies_add_and_for_task(sessions: Sessions) -> None:
    late = Anomaly(
        "task-1",
        "e-9",
        AnomalyKind.ILLEGAL_TRANSITION,
        "illegal transition completed -> running within attempt 1",
        TaskState.COMPLETED,
        TaskState.RUNNING,
        at(9),
    )
    early = Anomaly(
        "task-1",
        "e-5",
        AnomalyKind.CONFLICTING_TERMINAL,
        "two ends",
        TaskState.COMPLETED,
        TaskState.FAILED,
        at(5),
    )
    async with sessions() as s, s.begin():
        await anomalies.add(s, A, [late, early])
        await anomalies.add(s, A, [dataclasses.replace(early, task_id="task-2")])
        await anomalies.add(s, A, [])

    async with sessions() as s:
        rows = await anomalies.for_task(s, A, "task-1")

    assert [
        (r.event_id, r.kind, r.message, r.from_state, r.to_state, r.occurred_at) for r in rows
    ] == [
        ("e-5", "conflicting_terminal", "two ends", "completed", "failed", at(5)),
        ("e-9", "illegal_transition", late.message, "completed", "running", at(9)),
    ]
    for row in rows:
        assert_utc(row.occurred_at, row.detected_at)


async def test_dead_letters_keep_the_reason_newest_first(sessions: Sessions) -> None:
    huge = "x" * (MAX_PAYLOAD + 10)
    async with sessions() as s, s.begin():
        await dead_letters.add(s, [Rejected(A, "system-events", "1", "e-1", "first", "{}")])
    async with sessions() as s, s.begin():
        await dead_letters.add(
            s,
            [
                Rejected(A, None, "2", None, "not JSON", huge),
                Rejected(A, "action-results", "3", "i" * 300, "id too long", "{}"),
            ],
        )
        await dead_letters.add(s, [])

    async with sessions() as s:
        rows = await dead_letters.recent(s, A)
        newest = await dead_letters.recent(s, A, limit=1)

    assert len(rows) == 3
    assert rows[-1].reason == "first"
    assert (rows[-1].topic, rows[-1].message_id, rows[-1].event_id) == ("system-events", "1", "e-1")
    by_reason = {r.reason: r for r in rows}
    assert by_reason["not JSON"].payload == huge[:MAX_PAYLOAD]
    assert by_reason["not JSON"].event_id is None
    cut = by_reason["id too long"].event_id  # cut to fit its column, not refused
    assert cut and len(cut) < 300 and set(cut) == {"i"}
    assert len(newest) == 1 and newest[0].reason != "first"
    for row in rows:
        assert_utc(row.received_at)


# --- tokens -----------------------------------------------------------------------------------


async def test_tokens_store_only_the_digest(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        token = await tokens.create(s, A, user_id="ann", role=Role.READER)

    async with sessions() as s:
        principal = await tokens.resolve(s, token)
        unknown = await tokens.resolve(s, token + "x")
        rows = (await s.execute(select(ApiToken.__table__))).mappings().all()

    assert principal == Principal(A, "ann", Role.READER)
    assert unknown is None
    (row,) = rows
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    for column, value in row.items():
        assert token not in str(value), f"the raw token is stored in api_tokens.{column}"
    assert token.startswith(tokens.PREFIX)
    assert len(token) > len(row["prefix"])
    assert_utc(row["created_at"])


async def test_a_revoked_token_resolves_to_nobody(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        kept = await tokens.create(s, A, user_id=None, role=Role.SERVICE)
        revoked = await tokens.create(s, B, user_id=None, role=Role.ADMIN)
    async with sessions() as s, s.begin():
        await s.execute(update(ApiToken).where(ApiToken.tenant_id == B).values(revoked_at=at(0)))

    async with sessions() as s:
        assert await tokens.resolve(s, kept) == Principal(A, None, Role.SERVICE)
        assert await tokens.resolve(s, revoked) is None
        assert await tokens.resolve(s, "") is None


# --- tenants and time zones -------------------------------------------------------------------


async def _fill_tenant_a(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        await tasks.save_many(
            s, [task("task-1"), task("task-2", state=TaskState.FAILED, completed_at=at(3))]
        )
        await tasks.add_transitions(
            s,
            A,
            {"task-1": "plan-1"},
            [Transition("task-1", "e-1", None, TaskState.RUNNING, 1, at(0))],
        )
        await plans.save_many(s, [plan("plan-1")])
        await timeline.append(s, [timeline_row("e-1"), timeline_row("e-2", plan_id=None)])
        await metrics.add(
            s, A, [delta("worker-a", 0, total_tasks=1, failed_tasks=1, last_event_at=at(3))]
        )
        await anomalies.add(
            s,
            A,
            [
                Anomaly(
                    "task-1",
                    "e-3",
                    AnomalyKind.ILLEGAL_TRANSITION,
                    "no",
                    TaskState.FAILED,
                    TaskState.RUNNING,
                    at(4),
                )
            ],
        )
        await dead_letters.add(s, [Rejected(A, "system-events", "1", "e-x", "bad", "{}")])


async def test_tenant_b_sees_nothing_of_tenant_a(sessions: Sessions) -> None:
    await _fill_tenant_a(sessions)
    since = at(-86400)

    async with sessions() as s:
        assert await tasks.get(s, B, "task-1") is None
        assert await tasks.load_many(s, [(B, "task-1"), (B, "task-2")]) == {}
        assert await tasks.list_for_plan(s, B, "plan-1", limit=100) == []
        assert (await tasks.plan_counts(s, B, "plan-1"))["task_count"] == 0
        assert await tasks.transitions_of(s, B, "task-1") == []
        assert await plans.get(s, B, "plan-1") is None
        assert await plans.load_many(s, [(B, "plan-1")]) == {}
        assert await plans.list_recent(s, B, limit=100) == []
        assert await timeline.known_ids(s, B, ["e-1", "e-2"]) == set()
        assert await timeline.for_plan(s, B, "plan-1", "trace-1", limit=100) == []
        assert await metrics.buckets_since(s, B, since, None) == []
        assert await metrics.buckets_since(s, B, since, "worker-a") == []
        assert await metrics.newest_update(s, B, since, None) is None
        assert await anomalies.for_task(s, B, "task-1") == []
        assert await dead_letters.recent(s, B) == []

        # ...while tenant A sees all of it, so the reads above were not vacuous.
        assert await tasks.get(s, A, "task-1") is not None
        assert len(await tasks.list_for_plan(s, A, "plan-1", limit=100)) == 2
        assert len(await tasks.transitions_of(s, A, "task-1")) == 1
        assert await plans.get(s, A, "plan-1") is not None
        assert await timeline.known_ids(s, A, ["e-1", "e-2"]) == {"e-1", "e-2"}
        assert len(await timeline.for_plan(s, A, "plan-1", "trace-1", limit=100)) == 2
        assert len(await metrics.buckets_since(s, A, since, None)) == 1
        assert len(await anomalies.for_task(s, A, "task-1")) == 1
        assert len(await dead_letters.recent(s, A)) == 1


async def test_the_same_ids_in_two_tenants_are_separate_rows(sessions: Sessions) -> None:
    await _fill_tenant_a(sessions)
    async with sessions() as s, s.begin():
        await tasks.save_many(s, [task("task-1", tenant=B, state=TaskState.WAITING)])
        await plans.save_many(s, [plan("plan-1", tenant=B, goal="B's goal")])
        await timeline.append(s, [timeline_row("e-1", tenant=B, event_type="b.only")])
        await metrics.add(s, B, [delta("worker-a", 0, total_tasks=7, last_event_at=at(1))])

    async with sessions() as s:
        task_a, task_b = await tasks.get(s, A, "task-1"), await tasks.get(s, B, "task-1")
        plan_a, plan_b = await plans.get(s, A, "plan-1"), await plans.get(s, B, "plan-1")
        assert task_a is not None and task_a.state is TaskState.RUNNING
        assert task_b is not None and task_b.state is TaskState.WAITING
        assert plan_a is not None and plan_a.goal == "find moths"
        assert plan_b is not None and plan_b.goal == "B's goal"
        (event_b,) = await timeline.for_plan(s, B, "plan-1", None, limit=10)
        assert event_b.event_type == "b.only"
        assert [b.total_tasks for b in await metrics.buckets_since(s, A, at(-3600), None)] == [1]
        assert [b.total_tasks for b in await metrics.buckets_since(s, B, at(-3600), None)] == [7]


async def test_timestamps_come_back_aware_utc(sessions: Sessions) -> None:
    local = T0.astimezone(CET)  # the same instant, written with a +01:00 offset
    record = task(
        "task-1",
        first_seen_at=local,
        last_event_at=local,
        started_at=local,
        completed_at=local,
        state=TaskState.COMPLETED,
    )
    async with sessions() as s, s.begin():
        await tasks.save_many(s, [record])
        await tasks.add_transitions(
            s, A, {}, [Transition("task-1", "e-1", None, TaskState.RUNNING, 1, local)]
        )
        await plans.save_many(
            s,
            [
                plan(
                    "plan-1",
                    first_seen_at=local,
                    last_event_at=local,
                    started_at=local,
                    completed_at=local,
                )
            ],
        )
        await timeline.append(s, [timeline_row("e-1", occurred_at=local)])
        await anomalies.add(
            s,
            A,
            [
                Anomaly(
                    "task-1",
                    "e-2",
                    AnomalyKind.ILLEGAL_TRANSITION,
                    "no",
                    TaskState.COMPLETED,
                    TaskState.RUNNING,
                    local,
                )
            ],
        )
        await dead_letters.add(s, [Rejected(A, None, None, None, "bad", "")])
        await tokens.create(s, A, user_id=None, role=Role.READER)

    async with sessions() as s:
        stored_task = await tasks.get(s, A, "task-1")
        stored_plan = await plans.get(s, A, "plan-1")
        (transition,) = await tasks.transitions_of(s, A, "task-1")
        # The whole row: the timeline view leaves out received_at.
        event = await s.scalar(select(TimelineEvent).where(TimelineEvent.tenant_id == A))
        (anomaly,) = await anomalies.for_task(s, A, "task-1")
        (letter,) = await dead_letters.recent(s, A)
        token_row = await s.scalar(select(ApiToken))

    assert stored_task is not None and stored_plan is not None and token_row is not None
    moments = [
        *utc_fields(stored_task),
        *utc_fields(stored_plan),
        *utc_fields(transition),
        *utc_fields(event),
        *utc_fields(anomaly),
        *utc_fields(letter),
        *utc_fields(token_row),
    ]
    assert len(moments) == 15  # every timestamp column that holds a value here
    assert_utc(*moments)
    assert stored_task.started_at == T0 and stored_task.started_at.tzinfo is UTC
    assert stored_plan.completed_at == T0
    assert event.occurred_at == T0
    assert transition.transitioned_at == T0


async def test_a_naive_time_is_refused_by_the_store(sessions: Sessions) -> None:
    naive = T0.replace(tzinfo=None)
    async with sessions() as s:
        with pytest.raises(StatementError, match="naive datetime"):
            await tasks.add_transitions(
                s, A, {}, [Transition("task-1", "e-1", None, TaskState.RUNNING, 1, naive)]
            )
        await s.rollback()
        assert await s.scalar(select(func.count()).select_from(StateTransition)) == 0


async def test_timeline_assign_plan_fills_only_missing_plans(sessions: Sessions) -> None:
    async with sessions() as s, s.begin():
        await timeline.append(
            s,
            [
                timeline_row("e-1", plan_id=None, task_id="task-1"),
                timeline_row("e-2", plan_id="plan-9", task_id="task-1"),
                timeline_row("e-3", plan_id=None, task_id="task-2"),
                timeline_row("e-1", tenant=B, plan_id=None, task_id="task-1"),
            ],
        )
    async with sessions() as s, s.begin():
        await timeline.assign_plan(s, A, {"task-1": "plan-1"})

    async with sessions() as s:
        rows = (
            await s.execute(
                select(
                    TimelineEvent.tenant_id, TimelineEvent.event_id, TimelineEvent.plan_id
                ).order_by(TimelineEvent.tenant_id, TimelineEvent.event_id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (A, "e-1", "plan-1"),
        (A, "e-2", "plan-9"),
        (A, "e-3", None),
        (B, "e-1", None),
    ]
