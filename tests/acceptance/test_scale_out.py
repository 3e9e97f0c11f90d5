"""Roles as processes on Redis and PostgreSQL: N `trackd ingest` give what one gives.

Three ingest processes share one Redis and one database while a realistic stream (the
benchmark's mix: interleaved tasks, 5 % out of order, 1 % duplicates) is published; the same
stream goes through a single `trackd ingest --burst` into a second database; the two
databases must hold the same records. Then `trackd serve --role api` and `trackd ingest`
end to end over HTTP.

Each test has Redis keys under a prefix of its own and databases of its own, all removed
afterwards.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from procs import (
    SERVED,
    WITHIN,
    Process,
    Spawn,
    StartApi,
    assert_stopped_cleanly,
    bus_url,
    create_token,
    eventually,
    ingest_args,
    recent_start,
    unfinished,
    wait_until_consumed,
)
from research_reads import check_research_plan
from sqlalchemy import text

from trackd.bus.redis.bus import RedisStreamsBus
from trackd.store.engine import create_engine
from trackd.testing import EventFactory, research_workflow

pytestmark = pytest.mark.postgres


def _load_workload() -> Any:
    """benchmarks/workload.py, the benchmark's event mix (benchmarks/ is not a package on
    the tests' path, and only this one stdlib-only module is needed)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "workload.py"
    spec = importlib.util.spec_from_file_location("trackd_bench_workload", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


workload = _load_workload()

TASKS = 2000
INGESTERS = 3
# Compared as the single process writes them, less what differs between any two runs.
TABLES = ("task_executions", "plans", "agent_metrics", "event_timeline")
IGNORED = {"id", "created_at", "updated_at", "received_at"}
# A plan's span (first and last event) is compared too: the tasks of one plan are folded by
# several processes at once, which hold the plan (plans.lock_many) while they rewrite it.
PLAN_SPAN = ("first_seen_at", "last_event_at")
# The transition history is not compared row for row, nor counted: it records the order in
# which a task's events were folded, and that order differs between any two runs. Each topic
# is its own stream, so a task's request, progress and result reach the consumer in an order
# set by reads and batch boundaries (within a batch they are sorted; across batches, an event
# older than one already folded leaves no transition). What arrival order cannot change is
# compared instead: no event makes two transitions, and every task's transition into its
# terminal state is there, once.
TRANSITION_COUNT = "state_transitions (count)"


# -- publishing -----------------------------------------------------------------------------


async def publish_stream(url: str, stream: Sequence[tuple[str, str, bytes]]) -> None:
    """Publish (topic, key, body) in order, a chunk at a time, as producers would."""
    bus = RedisStreamsBus.from_url(url)
    try:
        chunk = 1000
        for start in range(0, len(stream), chunk):
            by_topic: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
            for topic, key, body in stream[start : start + chunk]:
                by_topic[topic].append((key, body))
            await asyncio.gather(
                *(
                    bus.publish(topic, [b for _, b in items], [k for k, _ in items])
                    for topic, items in by_topic.items()
                )
            )
    finally:
        await bus.close()


# -- comparing databases --------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        # Sums (agent_metrics.duration_sum) are added up in batch order, which differs
        # between runs: 54.668 against 54.668000000000006.
        return round(value, 6)
    return value


async def snapshot(database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every compared table's rows without ids and write times, sorted."""
    engine = create_engine(database)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        async with engine.connect() as conn:
            for table in TABLES:
                result = await conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
                rows = [dict(r._mapping) for r in result]
                names = [c for c in result.keys() if c not in IGNORED]
                if table == "plans":
                    out["plans (span)"] = sorted(
                        tuple(r[c] for c in ("tenant_id", "plan_id", *PLAN_SPAN)) for r in rows
                    )
                    names = [c for c in names if c not in PLAN_SPAN]
                values = [tuple(_comparable(r[c]) for c in names) for r in rows]
                out[table] = sorted([(tuple(names),), *values], key=repr)
            for table in ("anomalies", "dead_letters"):
                count = await conn.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
                out[f"{table} (count)"] = [(count,)]
            # See TRANSITIONS: what arrival order cannot change.
            out["state_transitions (once per event)"] = [
                (
                    await conn.scalar(
                        text(
                            "SELECT count(*) FROM (SELECT 1 FROM state_transitions "
                            "GROUP BY tenant_id, task_id, event_id HAVING count(*) > 1) AS twice"
                        )
                    ),
                )
            ]
            result = await conn.execute(
                text(
                    "SELECT tenant_id, task_id, to_state, attempt FROM state_transitions "
                    "WHERE to_state IN ('completed', 'failed', 'cancelled')"
                )
            )
            out["state_transitions (into terminal states)"] = sorted(tuple(r) for r in result)
            out[TRANSITION_COUNT] = [
                (await conn.scalar(text("SELECT count(*) FROM state_transitions")),)
            ]
    finally:
        await engine.dispose()
    return out


def assert_same_records(
    scaled: dict[str, list[tuple[Any, ...]]], single: dict[str, list[tuple[Any, ...]]]
) -> None:
    assert scaled.keys() == single.keys()
    for table in single:
        if scaled[table] != single[table]:
            only_scaled = set(scaled[table]) - set(single[table])
            only_single = set(single[table]) - set(scaled[table])
            pytest.fail(
                f"{table} differs: {len(only_scaled)} rows only with {INGESTERS} processes, "
                f"{len(only_single)} only with one; e.g.\n"
                f"  {INGESTERS}: {sorted(only_scaled, key=repr)[:3]}\n"
                f"  1: {sorted(only_single, key=repr)[:3]}"
            )


# -- the tests ------------------------------------------------------------------------------


async def test_three_ingest_processes_write_what_one_writes(
    redis_url: str,
    databases: list[str],
    redis_prefixes: list[str],
    processes: list[Process],
    spawn: Spawn,
) -> None:
    stream = workload.build(TASKS)
    scaled_db, single_db = databases
    scaled_bus, single_bus = (bus_url(redis_url, p) for p in redis_prefixes)

    # Three processes, started before the events arrive, so that they share the partitions
    # out while consuming.
    for i in range(INGESTERS):
        name = f"ingest-{i}"
        spawn(name, ingest_args(scaled_db, scaled_bus, name))
    await publish_stream(scaled_bus, stream)
    await wait_until_consumed(redis_url, redis_prefixes[0], processes)
    for process in processes:  # all at once: each finishes its batch, then exits
        process.terminate()
    for process in processes:
        assert_stopped_cleanly(process)
    outputs = [p.output() for p in processes]
    # Every process took part.
    assert all("took partitions" in out for out in outputs), outputs

    # The same stream through one process, which stops once it has nothing more to do.
    await publish_stream(single_bus, stream)
    single = spawn("single", ingest_args(single_db, single_bus, "single", "--burst"))
    try:
        code = await asyncio.to_thread(single.popen.wait, WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"trackd ingest --burst did not stop:\n{single.output()}")
    assert code == 0, single.output()
    assert await unfinished(redis_url, redis_prefixes[1]) == 0

    scaled, one = await snapshot(scaled_db), await snapshot(single_db)
    assert len(one["task_executions"]) == TASKS + 1  # and the header row
    assert one["dead_letters (count)"] == [(0,)]
    assert one["state_transitions (once per event)"] == [(0,)]
    loose = (TRANSITION_COUNT,)
    assert_same_records(
        {k: v for k, v in scaled.items() if k not in loose},
        {k: v for k, v in one.items() if k not in loose},
    )
    print(  # for the record: see TRANSITIONS
        f"state_transitions: {scaled[TRANSITION_COUNT][0][0]} with {INGESTERS} processes, "
        f"{one[TRANSITION_COUNT][0][0]} with one"
    )


async def test_api_role_publishes_and_an_ingest_process_writes(
    redis_url: str,
    databases: list[str],
    redis_prefixes: list[str],
    redis_bus_url: str,
    spawn: Spawn,
    start_api: StartApi,
) -> None:
    database, bus = databases[0], redis_bus_url
    token = await asyncio.to_thread(create_token, "acme", database=database)
    api, url = await start_api(database, bus)

    t0 = recent_start()
    events = research_workflow(EventFactory(now=t0, id_prefix="roles"))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        response = await client.post("/v1/events", json={"events": events}, headers=headers)
        # 202 once Redis holds the events: nothing ingests them yet.
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == len(events)
        assert (await client.get("/v1/tracker/plans/plan-123", headers=headers)).status_code == 404

        ingest = spawn("ingest", ingest_args(database, bus, "ingest-0"))

        async def completed() -> bool:
            plan = await client.get("/v1/tracker/plans/plan-123", headers=headers)
            return plan.status_code == 200 and plan.json()["status"] == "completed"

        await eventually(completed, ingest)
        await wait_until_consumed(redis_url, redis_prefixes[0], [ingest])

    with httpx.Client(base_url=url, timeout=30.0) as sync_client:
        await asyncio.to_thread(
            check_research_plan,
            sync_client,
            headers,
            events,
            plan_id="plan-123",
            trace_id="trace-abc123",
            prefix="",
            t0=t0,
        )
    assert_stopped_cleanly(ingest)
    assert_stopped_cleanly(api, SERVED)
