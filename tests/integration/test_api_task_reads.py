"""The HTTP API in-process (httpx over ASGI) on a real runtime, on SQLite and PostgreSQL.

Events go in through `POST /v1/events`, the runtime's own ingest consumer stores them, and the
tracker routes read them back; a 202 means stored, so reads right after it see the events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import pytest_asyncio
from runtime_support import api_client, bearer_headers, started
from sqlalchemy import func, select

from trackd.domain.access import Role
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.models import TimelineEvent
from trackd.testing import EventFactory

ACME, GLOBEX = "acme", "globex"
Headers = dict[str, str]


@pytest_asyncio.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    async with started(Settings(database_url=database_url, publish_timeout_s=15)) as runtime:
        yield runtime


@pytest_asyncio.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(runtime) as client:
        yield client


@pytest_asyncio.fixture
async def auth(runtime: Runtime) -> dict[str, Headers]:
    """Bearer headers by name: acme's service and reader, globex's service."""
    return await bearer_headers(
        runtime,
        {
            "acme": (ACME, None, Role.SERVICE),
            "reader": (ACME, "rita", Role.READER),
            "globex": (GLOBEX, None, Role.SERVICE),
        },
    )


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def error(response: httpx.Response, status: int, code: str) -> str:
    """Asserts the JSON error shape; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message
    return message


async def post(
    client: httpx.AsyncClient, headers: Headers, events: list[Any], status: int = 202
) -> dict[str, Any]:
    response = await client.post("/v1/events", json={"events": events}, headers=headers)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


# A research plan, ten minutes ago: task-1 completes (and then gets a refused late update),
# task-2 fails.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def research_plan() -> list[dict[str, Any]]:
    f = EventFactory(source="planner", now=START, trace_id="trace-1", plan_id="plan-1")
    ps = f.plan_started(current_state="searching", event_id="ps")
    f.advance(1)
    r1 = f.request(
        "task-1", "web.search.requested", parent=ps, event_id="r1", data={"query": "moths"}
    )
    f.advance(1)
    p1 = f.progress(
        "task-1", "running", 0.5, "half way", source="worker-a", parent=r1, event_id="p1"
    )
    f.advance(1)
    r2 = f.request("task-2", "analyze.text", parent=ps, event_id="r2")
    f.advance(1)
    c1 = f.result(
        "task-1",
        "web.search.completed",
        source="worker-a",
        parent=r1,
        event_id="c1",
        data={"hits": 3},
    )
    f.advance(1)
    late = f.progress("task-1", "running", 0.9, source="worker-a", parent=r1, event_id="late")
    f.advance(1)
    f2 = f.result(
        "task-2",
        "analyze.text.completed",
        success=False,
        error="boom",
        source="worker-b",
        parent=r2,
        event_id="f2",
    )
    return [ps, r1, p1, r2, c1, late, f2]


# --- the tracker routes -----------------------------------------------------------------------


async def test_post_events_stores_them_before_answering(
    client: httpx.AsyncClient, auth: dict[str, Headers], runtime: Runtime
) -> None:
    events = research_plan()
    body = await post(client, auth["acme"], events)

    assert body == {
        "accepted": 7,
        "rejected": 0,
        "results": [
            {"index": i, "id": e["id"], "status": "accepted", "status_code": 202, "error": None}
            for i, e in enumerate(events)
        ],
    }
    async with runtime.sessions() as s:
        stored = await s.scalar(
            select(func.count()).select_from(TimelineEvent).where(TimelineEvent.tenant_id == ACME)
        )
    assert stored == 7


async def test_plan_status(client: httpx.AsyncClient, auth: dict[str, Headers]) -> None:
    await post(client, auth["acme"], research_plan())

    response = await client.get("/v1/tracker/plans/plan-1", headers=auth["acme"])

    assert response.status_code == 200
    body = response.json()
    assert when(body.pop("as_of")) == at(6)  # f2, the newest event the counts include
    assert when(body.pop("started_at")) == at(0)
    assert body == {
        "plan_id": "plan-1",
        "status": "running",
        "completed_at": None,
        "task_count": 2,
        "completed_tasks": 1,
        "failed_tasks": 1,
        "current_state": "searching",
        "trace_id": "trace-1",
    }


async def test_plan_status_after_the_plan_ends(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(source="planner", now=at(100), trace_id="trace-1", plan_id="plan-1")
    done = f.plan_completed(current_state="done", event_id="pc")
    await post(client, auth["acme"], [*research_plan(), done])

    body = (await client.get("/v1/tracker/plans/plan-1", headers=auth["acme"])).json()

    assert (body["status"], body["current_state"]) == ("completed", "done")
    assert when(body["completed_at"]) == at(100)
    assert when(body["as_of"]) == at(100)


async def test_plan_tasks(client: httpx.AsyncClient, auth: dict[str, Headers]) -> None:
    await post(client, auth["acme"], research_plan())

    response = await client.get("/v1/tracker/plans/plan-1/tasks", headers=auth["acme"])

    assert response.status_code == 200
    body = response.json()
    assert when(body["as_of"]) == at(6)
    assert body["plan_id"] == "plan-1"
    one, two = body["tasks"]
    assert when(one.pop("started_at")) == at(1)
    assert when(one.pop("completed_at")) == at(4)
    assert one == {
        "task_id": "task-1",
        "event_type": "web.search.requested",
        "state": "completed",
        "duration_seconds": 3.0,
        "progress": 1.0,
        "attempts": 1,
        "agent_id": "worker-a",
    }
    assert (two["task_id"], two["state"], two["event_type"]) == ("task-2", "failed", "analyze.text")
    assert (two["duration_seconds"], two["agent_id"], two["progress"]) == (3.0, "worker-b", None)

    paged = await client.get(
        "/v1/tracker/plans/plan-1/tasks?limit=1&offset=1", headers=auth["acme"]
    )
    assert [t["task_id"] for t in paged.json()["tasks"]] == ["task-2"]


async def test_plan_timeline(client: httpx.AsyncClient, auth: dict[str, Headers]) -> None:
    events = research_plan()
    await post(client, auth["acme"], events)

    response = await client.get("/v1/tracker/plans/plan-1/timeline", headers=auth["acme"])

    assert response.status_code == 200
    body = response.json()
    assert (body["plan_id"], body["trace_id"]) == ("plan-1", "trace-1")
    assert when(body["as_of"]) == at(6)
    assert [e["event_id"] for e in body["events"]] == ["ps", "r1", "p1", "r2", "c1", "late", "f2"]
    assert max(when(e["timestamp"]) for e in body["events"]) == when(body["as_of"])
    first = body["events"][2]
    assert when(first.pop("timestamp")) == at(2)
    assert first == {
        "event_id": "p1",
        "event_type": "task.progress",
        "parent_event_id": "r1",
        "topic": "system-events",
        "source": "worker-a",
        "task_id": "task-1",
    }
    assert body["events"][0]["task_id"] is None  # plan.started belongs to no task

    def shape(node: dict[str, Any]) -> Any:
        return node["event_id"], [shape(c) for c in node["children"]]

    assert [shape(n) for n in body["tree"]] == [
        ("ps", [("r1", [("p1", []), ("c1", []), ("late", [])]), ("r2", [("f2", [])])]),
    ]
    root = body["tree"][0]
    assert set(root) == {"event_id", "event_type", "timestamp", "parent_event_id", "children"}
    assert (root["event_type"], root["parent_event_id"]) == ("plan.started", None)


async def test_task_history(client: httpx.AsyncClient, auth: dict[str, Headers]) -> None:
    await post(client, auth["acme"], research_plan())

    response = await client.get("/v1/tracker/tasks/task-1", headers=auth["acme"])

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"task", "transitions", "anomalies", "as_of"}
    task = body["task"]
    for name, seconds in (
        ("started_at", 1),
        ("completed_at", 4),
        ("first_seen_at", 1),
        ("last_event_at", 4),
    ):
        assert when(task.pop(name)) == at(seconds), name
    assert task == {
        "task_id": "task-1",
        "event_type": "web.search.requested",
        "state": "completed",
        "duration_seconds": 3.0,
        "progress": 1.0,
        "attempts": 1,
        "agent_id": "worker-a",
        "plan_id": "plan-1",
        "message": "half way",
        "error": None,
        "max_attempts": 3,
        "trace_id": "trace-1",
        "parent_event_id": "ps",
        "requester": "planner",
        "data": {"query": "moths"},
        "result": {"success": True, "hits": 3},
    }
    transitions = body["transitions"]
    assert [when(t.pop("transitioned_at")) for t in transitions] == [at(1), at(4)]
    assert transitions == [
        {"from_state": None, "to_state": "running", "attempt": 1, "reason": None, "event_id": "r1"},
        {
            "from_state": "running",
            "to_state": "completed",
            "attempt": 1,
            "reason": None,
            "event_id": "c1",
        },
    ]
    (anomaly,) = body["anomalies"]
    assert when(anomaly.pop("occurred_at")) == at(5)
    assert anomaly.pop("message")
    assert anomaly == {
        "kind": "illegal_transition",
        "event_id": "late",
        "from_state": "completed",
        "to_state": "running",
    }
    # The refused update is shown, so it is part of what this answer knows.
    assert when(body["as_of"]) == at(5)


async def test_task_history_of_a_failed_task(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    await post(client, auth["acme"], research_plan())

    body = (await client.get("/v1/tracker/tasks/task-2", headers=auth["acme"])).json()

    assert (body["task"]["state"], body["task"]["error"]) == ("failed", "boom")
    assert body["task"]["result"] == {"success": False, "error": "boom"}
    assert [(t["from_state"], t["to_state"], t["reason"]) for t in body["transitions"]] == [
        (None, "running", None),
        ("running", "failed", "boom"),
    ]
    assert body["anomalies"] == []
    assert when(body["as_of"]) == at(6)


async def test_health(client: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == runtime.engine.dialect.name
    assert body["bus"] == "memory"
    assert set(body["ingest"]) == {"batches", "folded", "rejected", "failures"}


# --- metrics ----------------------------------------------------------------------------------


async def _post_metrics_history(client: httpx.AsyncClient, headers: Headers) -> datetime:
    """Three logical tasks that ended 3 days, 2 hours and 30 minutes before the time returned."""
    now = datetime.now(UTC)
    f = EventFactory(source="planner", trace_id=None, now=now - timedelta(days=3, minutes=10))
    old = [f.request("old", "job.requested", event_id="old-r")]
    f.advance(minutes=10)
    old.append(f.result("old", "job.done", source="worker-a", event_id="old-c"))

    f.now = now - timedelta(hours=2, minutes=5)
    failed = [f.request("failed", "job.requested", event_id="failed-r")]
    f.advance(minutes=5)
    failed.append(
        f.result("failed", "job.done", success=False, source="worker-b", event_id="failed-f")
    )

    # Attempt 1 fails 35 minutes ago and is reported at once; the retry comes later.
    f.now = now - timedelta(minutes=40)
    attempt_1 = [f.request("retried", "job.requested", event_id="retried-r")]
    f.advance(minutes=5)
    attempt_1.append(
        f.result("retried", "job.done", success=False, source="worker-a", event_id="retried-f1")
    )
    f.advance(minutes=2)
    attempt_2 = [
        f.state_changed(
            "retried", "failed", "running", source="worker-b", attempt=2, event_id="retried-s2"
        )
    ]
    f.advance(minutes=3)
    attempt_2.append(
        f.result("retried", "job.done", source="worker-b", attempt=2, event_id="retried-c2")
    )

    await post(client, headers, [*old, *failed, *attempt_1])
    failed_once = await client.get("/v1/tracker/metrics?period=1h", headers=headers)
    assert failed_once.json()["failed_tasks"] == 1  # counted while it stood failed
    await post(client, headers, attempt_2)
    return now


def metric(body: dict[str, Any]) -> tuple[Any, ...]:
    return (
        body["total_tasks"],
        body["completed_tasks"],
        body["failed_tasks"],
        body["avg_duration_seconds"],
        body["success_rate"],
    )


async def test_metrics_count_logical_tasks_over_each_period(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    now = await _post_metrics_history(client, auth["acme"])
    newest = now - timedelta(minutes=30)  # the retried task's completion

    bodies = {}
    for period in ("1h", "24h", "7d", "30d"):
        response = await client.get(f"/v1/tracker/metrics?period={period}", headers=auth["acme"])
        assert response.status_code == 200, response.text
        bodies[period] = response.json()

    assert set(bodies["1h"]) == {
        "agent_id",
        "period",
        "total_tasks",
        "completed_tasks",
        "failed_tasks",
        "avg_duration_seconds",
        "success_rate",
        "input_tokens",
        "output_tokens",
        "as_of",
    }
    assert (bodies["1h"]["agent_id"], bodies["1h"]["period"]) == (None, "1h")
    # These tasks report no GenAI usage.
    assert (bodies["30d"]["input_tokens"], bodies["30d"]["output_tokens"]) == (0, 0)
    # The retried task counts once, as completed, with its whole duration (10 minutes).
    assert metric(bodies["1h"]) == (1, 1, 0, 600.0, 1.0)
    assert metric(bodies["24h"]) == (2, 1, 1, 450.0, 0.5)
    # The task that ended 3 days ago is in 7d, not in 24h.
    assert metric(bodies["7d"]) == (3, 2, 1, 500.0, 0.6667)
    assert metric(bodies["30d"]) == metric(bodies["7d"])
    for body in bodies.values():
        assert when(body["as_of"]) == newest

    default = (await client.get("/v1/tracker/metrics", headers=auth["acme"])).json()
    assert default["period"] == "24h"
    assert metric(default) == metric(bodies["24h"])


async def test_metrics_per_agent(client: httpx.AsyncClient, auth: dict[str, Headers]) -> None:
    now = await _post_metrics_history(client, auth["acme"])

    async def get(agent: str, period: str) -> dict[str, Any]:
        response = await client.get(
            "/v1/tracker/metrics",
            params={"agent_id": agent, "period": period},
            headers=auth["acme"],
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["agent_id"] == agent
        return body

    # A task counts under the agent of its last attempt: the retry moved it to worker-b.
    b_day = await get("worker-b", "24h")
    assert metric(b_day) == (2, 1, 1, 450.0, 0.5)
    assert when(b_day["as_of"]) == now - timedelta(minutes=30)

    a_week = await get("worker-a", "7d")
    assert metric(a_week) == (1, 1, 0, 600.0, 1.0)
    assert when(a_week["as_of"]) == now - timedelta(days=3)

    # worker-a's failed attempt was taken back: nothing of it is left to count, or to date.
    a_day = await get("worker-a", "24h")
    assert metric(a_day) == (0, 0, 0, 0.0, 0.0)
    assert a_day["as_of"] is None

    nobody = await get("worker-z", "30d")
    assert metric(nobody) == (0, 0, 0, 0.0, 0.0)
    assert nobody["as_of"] is None


# --- tenants and auth -------------------------------------------------------------------------

TRACKER_PATHS = (
    "/v1/tracker/plans/plan-1",
    "/v1/tracker/plans/plan-1/tasks",
    "/v1/tracker/plans/plan-1/timeline",
    "/v1/tracker/tasks/task-1",
)


async def test_another_tenants_objects_are_not_found(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    missing = {p: await client.get(p, headers=auth["globex"]) for p in TRACKER_PATHS}
    await post(client, auth["acme"], research_plan())

    for path in TRACKER_PATHS:
        hidden = await client.get(path, headers=auth["globex"])
        error(hidden, 404, "not_found")
        # Exactly what a plan or task that does not exist at all answers.
        assert hidden.json() == missing[path].json(), path
        assert (await client.get(path, headers=auth["acme"])).status_code == 200

    metrics = (await client.get("/v1/tracker/metrics?period=30d", headers=auth["globex"])).json()
    assert metric(metrics) == (0, 0, 0, 0.0, 0.0)
    assert metrics["as_of"] is None


async def test_the_tenant_comes_from_the_token_not_the_event(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(now=START, plan_id="plan-x", tenant_id=GLOBEX)  # claims to be globex
    await post(client, auth["acme"], [f.request("task-x", "job.requested")])

    assert (await client.get("/v1/tracker/tasks/task-x", headers=auth["acme"])).status_code == 200
    error(await client.get("/v1/tracker/tasks/task-x", headers=auth["globex"]), 404, "not_found")
    error(await client.get("/v1/tracker/plans/plan-x", headers=auth["globex"]), 404, "not_found")


@pytest.mark.parametrize("path", [*TRACKER_PATHS, "/v1/tracker/metrics"])
async def test_reads_need_a_valid_token(
    client: httpx.AsyncClient, auth: dict[str, Headers], path: str
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer trk_not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ):
        response = await client.get(path, headers=headers)
        error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


async def test_posting_needs_a_valid_token(client: httpx.AsyncClient) -> None:
    events = {"events": research_plan()}
    error(await client.post("/v1/events", json=events), 401, "unauthorized")
    bad = {"Authorization": "Bearer trk_not-a-token"}
    error(await client.post("/v1/events", json=events, headers=bad), 401, "unauthorized")


async def test_a_reader_reads_but_may_not_post(
    client: httpx.AsyncClient, auth: dict[str, Headers], runtime: Runtime
) -> None:
    await post(client, auth["acme"], research_plan()[:2])

    refused = await client.post(
        "/v1/events", json={"events": research_plan()[2:]}, headers=auth["reader"]
    )

    assert "reader" in error(refused, 403, "forbidden")
    async with runtime.sessions() as s:
        stored = await s.scalar(select(func.count()).select_from(TimelineEvent))
    assert stored == 2
    assert (await client.get("/v1/tracker/tasks/task-1", headers=auth["reader"])).status_code == 200


# --- bad requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/v1/tracker/metrics?period=2h", "period"),
        ("/v1/tracker/metrics?period=", "period"),
        ("/v1/tracker/metrics?agent_id=", "agent_id"),
        ("/v1/tracker/plans/plan-1/tasks?limit=0", "limit"),
        ("/v1/tracker/plans/plan-1/tasks?limit=5001", "limit"),
        ("/v1/tracker/plans/plan-1/tasks?limit=ten", "limit"),
        ("/v1/tracker/plans/plan-1/tasks?offset=-1", "offset"),
        (f"/v1/tracker/plans/{'p' * 101}", "plan_id"),
    ],
)
async def test_bad_query_parameters_are_422(
    client: httpx.AsyncClient, auth: dict[str, Headers], query: str, field: str
) -> None:
    await post(client, auth["acme"], research_plan())

    message = error(await client.get(query, headers=auth["acme"]), 422, "invalid")

    assert field in message


async def test_bad_bodies_are_422(client: httpx.AsyncClient, auth: dict[str, Headers]) -> None:
    headers = {**auth["acme"], "content-type": "application/json"}

    async def send(content: bytes) -> httpx.Response:
        return await client.post("/v1/events", content=content, headers=headers)

    assert "not valid JSON" in error(await send(b"{not json"), 422, "invalid")
    error(await send(b"[1, 2]"), 422, "invalid")
    error(await send(b'"an event"'), 422, "invalid")
    assert "list" in error(await send(b'{"events": "e-1"}'), 422, "invalid")
    assert "empty" in error(await send(b'{"events": []}'), 422, "invalid")

    f = EventFactory(now=START)
    naive = f.progress("task-1", "running", time="2026-01-11T10:00:00")
    response = await client.post("/v1/events", json=naive, headers=auth["acme"])
    assert "time zone" in error(response, 422, "invalid_event")

    too_far = f.progress("task-1", "running", 1.5)
    response = await client.post("/v1/events", json={"events": [too_far]}, headers=auth["acme"])
    error(response, 422, "invalid_event")

    unknown = f.state_changed("task-1", None, "exploded")
    untracked = f.event("thing.happened", topic="elsewhere")
    response = await client.post(
        "/v1/events", json={"events": [unknown, untracked]}, headers=auth["acme"]
    )
    assert error(response, 422, "invalid_event") == "no event was accepted"
    details = response.json()["error"]["details"]
    assert [(d["index"], d["id"], d["status"]) for d in details] == [
        (0, unknown["id"], "rejected"),
        (1, untracked["id"], "rejected"),
    ]
    assert "unknown task state" in details[0]["error"]["message"]
    assert "not one of the platform's topics" in details[1]["error"]["message"]


async def test_too_many_events_is_400(client: httpx.AsyncClient, auth: dict[str, Headers]) -> None:
    f = EventFactory(now=START)
    events = [f.request(f"task-{i}", "job.requested") for i in range(501)]

    response = await client.post("/v1/events", json={"events": events}, headers=auth["acme"])

    assert "500" in error(response, 400, "too_many_events")


async def test_a_partly_bad_batch_is_207_with_a_result_per_event(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(now=START, plan_id="plan-1")
    good = f.request("task-1", "web.search.requested", event_id="ok-1")
    naive = f.progress("task-1", "running", time="2026-01-11T10:00:00", event_id="bad-time")
    not_an_object = "just a string"
    also_good = f.progress("task-1", "running", 0.5, event_id="ok-2", source="worker-a")

    body = await post(client, auth["acme"], [good, naive, not_an_object, also_good], 207)

    assert (body["accepted"], body["rejected"]) == (2, 2)
    results = body["results"]
    assert [(r["index"], r["id"], r["status"]) for r in results] == [
        (0, "ok-1", "accepted"),
        (1, "bad-time", "rejected"),
        (2, None, "rejected"),
        (3, "ok-2", "accepted"),
    ]
    assert results[0]["error"] is None and results[3]["error"] is None
    assert results[1]["error"]["code"] == "invalid_event"
    assert "time zone" in results[1]["error"]["message"]
    assert "JSON object" in results[2]["error"]["message"]

    # The accepted events were stored before the 207 was sent.
    task = (await client.get("/v1/tracker/tasks/task-1", headers=auth["acme"])).json()
    assert (task["task"]["state"], task["task"]["progress"]) == ("running", 0.5)
    assert when(task["as_of"]) == START


async def test_one_envelope_without_a_list_is_accepted(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(now=START, trace_id=None)
    event = f.request("task-1", "job.requested", event_id="solo")
    event["correlationId"] = event.pop("correlation_id")  # camelCase is accepted too
    event["time"] = START.astimezone(timezone(timedelta(hours=-5))).isoformat()

    response = await client.post("/v1/events", json=event, headers=auth["acme"])

    assert response.status_code == 202, response.text
    assert response.json()["results"] == [
        {"index": 0, "id": "solo", "status": "accepted", "status_code": 202, "error": None}
    ]
    task = (await client.get("/v1/tracker/tasks/task-1", headers=auth["acme"])).json()
    assert task["task"]["state"] == "running"
    # Sending it again is harmless.
    again = await client.post("/v1/events", json=event, headers=auth["acme"])
    assert again.status_code == 202
    history = (await client.get("/v1/tracker/tasks/task-1", headers=auth["acme"])).json()
    assert len(history["transitions"]) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/v1/tracker/tasks/%00",
        "/v1/tracker/plans/plan%00x",
        "/v1/tracker/plans/plan%01/tasks",
        "/v1/tracker/metrics?agent_id=a%00b",
    ],
)
async def test_control_characters_in_ids_are_422_not_a_server_error(
    client: httpx.AsyncClient, auth: dict[str, Headers], path: str
) -> None:
    # PostgreSQL cannot compare text holding a NUL: the request must stop at validation.
    assert "pattern" in error(await client.get(path, headers=auth["acme"]), 422, "invalid")


async def test_a_nul_inside_an_event_is_refused(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(now=START)
    event = f.progress("task-1", "running", 0.5, message="half\x00way")
    response = await client.post("/v1/events", json=event, headers=auth["acme"])
    assert "NUL" in error(response, 422, "invalid_event")
