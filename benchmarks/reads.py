"""Read latency on a large store: 1,000,000 tasks in 1,000 plans of 1,000, plus one plan whose
trace holds 1,000 events. Requests go through the whole API in-process (routing, auth,
queries, serialisation), without a network hop."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from trackd.app import create_app
from trackd.domain.access import Role
from trackd.ingest import intake
from trackd.runtime import Runtime, freeze_startup_heap
from trackd.settings import Settings
from trackd.store.repos import plan_counts, tokens
from trackd.testing import EventFactory

TENANT = "bench"
PLANS = 1000
TASKS_PER_PLAN = 1000

# Rows made by the database itself: generating a million rows in Python would take minutes.
_SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :total - 1)
INSERT INTO task_executions (id, tenant_id, task_id, plan_id, event_type, state, progress,
    data, attempt, head_key, message_key, parent_key, started_at, completed_at, first_seen_at,
    last_event_at, trace_id, agent_id, requester, created_at, updated_at)
SELECT lower(hex(randomblob(16))), :tenant, 'task-' || i, 'plan-' || (i / :per_plan),
    'work.requested', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END, 1.0, '{}', 1,
    '', '', '', :t0, :t1, :t0, :t1, 'trace-' || (i / :per_plan), 'agent-' || (i % 20), 'planner',
    :t0, :t1
FROM n
"""
_PG_FILL = """
INSERT INTO task_executions (id, tenant_id, task_id, plan_id, event_type, state, progress,
    data, attempt, head_key, message_key, parent_key, started_at, completed_at, first_seen_at,
    last_event_at, trace_id, agent_id, requester, created_at, updated_at)
SELECT gen_random_uuid(), :tenant, 'task-' || i, 'plan-' || (i / :per_plan),
    'work.requested', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END, 1.0, '{}', 1,
    '', '', '', :t0, :t1, :t0, :t1, 'trace-' || (i / :per_plan), 'agent-' || (i % 20), 'planner',
    :t0, :t1
FROM generate_series(0, :total - 1) AS i
"""
_PLANS_SQLITE = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :plans - 1)
INSERT INTO plans (id, tenant_id, plan_id, status, first_seen_at, last_event_at, state_key,
    status_key, trace_id)
SELECT lower(hex(randomblob(16))), :tenant, 'plan-' || i, 'running', :t0, :t1, '', '',
    'trace-' || i FROM n
"""
_PLANS_PG = """
INSERT INTO plans (id, tenant_id, plan_id, status, first_seen_at, last_event_at, state_key,
    status_key, trace_id)
SELECT gen_random_uuid(), :tenant, 'plan-' || i, 'running', :t0, :t1, '', '', 'trace-' || i
FROM generate_series(0, :plans - 1) AS i
"""


@dataclass
class Latency:
    backend: str
    route: str
    p50_ms: float
    p95_ms: float
    requests: int
    # The raw limit in the same run: the route's rows read by a bare SELECT on one connection
    # (no API, no session, no conversion), timed the same way.
    raw_p50_ms: float = 0.0
    raw_p95_ms: float = 0.0


# The rows each route reads, as bare SQL (the same on both backends).
RAW = {
    "plan status (1,000 tasks)": (
        "SELECT p.*, c.* FROM plans p LEFT JOIN plan_task_counts c "
        "ON c.tenant_id = p.tenant_id AND c.plan_id = p.plan_id "
        "WHERE p.tenant_id = :tenant AND p.plan_id = 'plan-500'"
    ),
    "plan tasks (1,000)": (
        "SELECT task_id, event_type, state, started_at, completed_at, progress, attempt, "
        "agent_id, last_event_at FROM task_executions "
        "WHERE tenant_id = :tenant AND plan_id = 'plan-500' "
        "ORDER BY first_seen_at, task_id LIMIT 1000"
    ),
    "timeline (1,000 events)": (
        "SELECT event_id, event_type, occurred_at, parent_event_id, topic, source, task_id, "
        "trace_id, plan_id FROM event_timeline WHERE tenant_id = :tenant "
        "AND (plan_id = 'plan-trace' OR trace_id = 'trace-big') "
        "ORDER BY occurred_at, event_id LIMIT 10000"
    ),
}


def _quantiles(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), statistics.quantiles(times, n=100)[94]


async def raw_limit(runtime: Runtime, name: str, requests: int) -> tuple[float, float]:
    """p50 and p95 of the bare SELECT of a route's rows (`RAW`), after the same warm-up."""
    times = []
    async with runtime.engine.connect() as conn:
        for i in range(requests + 5):
            t = time.perf_counter()
            (await conn.execute(text(RAW[name]), {"tenant": TENANT})).fetchall()
            if i >= 5:
                times.append((time.perf_counter() - t) * 1000)
    return _quantiles(times)


def _when(dialect: str, moment: datetime) -> object:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else moment


async def fill(runtime: Runtime) -> None:
    dialect = runtime.engine.dialect.name
    t1 = datetime.now(UTC)
    t0 = t1 - timedelta(minutes=5)
    params = {
        "tenant": TENANT,
        "per_plan": TASKS_PER_PLAN,
        "total": PLANS * TASKS_PER_PLAN,
        "plans": PLANS,
        "t0": _when(dialect, t0),
        "t1": _when(dialect, t1),
    }
    async with runtime.engine.begin() as conn:
        await conn.execute(text(_SQLITE_FILL if dialect == "sqlite" else _PG_FILL), params)
        await conn.execute(text(_PLANS_SQLITE if dialect == "sqlite" else _PLANS_PG), params)
    # Rows written around ingest: count the plans' tasks as the migration's backfill does.
    async with runtime.sessions() as s, s.begin():
        await plan_counts.rebuild(s)
    if dialect == "postgresql":
        async with runtime.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    # One plan whose trace has 1,000 events, written the normal way.
    f = EventFactory(tenant_id=TENANT, trace_id="trace-big", now=t0)
    events = []
    for n in range(250):
        task = f"timeline-task-{n}"
        request = f.request(task, "work.requested", plan_id="plan-trace")
        events += [
            request,
            f.state_changed(task, "pending", "running", parent=request),
            f.progress(task, "running", 0.5, parent=request),
            f.result(task, "work.completed", parent=request),
        ]
        f.advance(0.1)
    checked, refused = intake.check(events, TENANT)
    assert not refused, refused
    await intake.publish(runtime.bus, checked)


# The routes timed, and the plan each reads (plan-500: one of the 1,000-task plans).
ROUTES = {
    "plan status (1,000 tasks)": "/v1/tracker/plans/plan-500",
    "plan tasks (1,000)": "/v1/tracker/plans/plan-500/tasks?limit=1000",
    "timeline (1,000 events)": "/v1/tracker/plans/plan-trace/timeline",
}


async def trace_stored(runtime: Runtime) -> None:
    """Wait (up to 60 s) until ingest has stored the 1,000 events of the trace `fill` published."""
    query = text("SELECT count(*) FROM event_timeline WHERE tenant_id = :t AND trace_id = :p")
    stored = 0
    try:
        async with asyncio.timeout(60):
            while stored < 1000:
                async with runtime.engine.connect() as conn:
                    found = await conn.execute(query, {"t": TENANT, "p": "trace-big"})
                    stored = found.scalar_one()
                if stored < 1000:
                    await asyncio.sleep(0.2)
    except TimeoutError:
        raise TimeoutError(f"ingest stored {stored} of the trace's 1,000 events") from None


@asynccontextmanager
async def reader(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the whole API with a reader's token of the tenant."""
    async with runtime.sessions() as s, s.begin():
        token = await tokens.create(s, TENANT, user_id=None, role=Role.READER)
    app = create_app(runtime, manage=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://bench",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


async def measure(database_url: str, backend: str, requests: int = 100) -> list[Latency]:
    runtime = Runtime.build(Settings(database_url=database_url))
    await runtime.start()
    try:
        started = time.perf_counter()
        await fill(runtime)
        await trace_stored(runtime)
        print(f"  {backend}: store filled in {time.perf_counter() - started:.0f} s")
        freeze_startup_heap()  # as the server does once started
        out = []
        async with reader(runtime) as client:
            for name, path in ROUTES.items():
                times = []
                for i in range(requests + 5):
                    t = time.perf_counter()
                    response = await client.get(path)
                    elapsed = (time.perf_counter() - t) * 1000
                    response.raise_for_status()
                    if i >= 5:  # warm-up
                        times.append(elapsed)
                p50, p95 = _quantiles(times)
                raw50, raw95 = await raw_limit(runtime, name, requests)
                out.append(Latency(backend, name, p50, p95, requests, raw50, raw95))
        return out
    finally:
        await runtime.stop()
