"""`trackd serve` end to end: a real process, real HTTP, the agent platform's research workflow.

One server (SQLite, memory bus) is started for the module with three tokens: a service and a
reader token for tenant acme, and a service token for tenant globex. Every test publishes under
its own plan and task ids so that the tests do not depend on each other's order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from procs import (
    Server,
    assert_server_stopped_cleanly,
    create_token,
    recent_start,
    start_server,
    trackd_env,
)
from research_reads import at, check_research_plan, shape
from soorma_common.events import EventEnvelope as SoormaEnvelope
from soorma_common.events import EventTopic
from soorma_common.tracking import TaskProgressEvent, TaskState, TaskStateChanged

from trackd.testing import EventFactory, research_workflow

# `server`, the module's served trackd with tokens "acme", "acme-reader" and "globex", is a
# fixture of conftest.py.


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as c:
        yield c


def auth(server: Server, name: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {server.tokens[name]}"}


def publish(client: httpx.Client, headers: dict[str, str], body: Any) -> httpx.Response:
    return client.post("/v1/events", json=body, headers=headers)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def test_research_workflow_published_as_one_batch(server: Server, client: httpx.Client) -> None:
    t0 = recent_start()
    events = research_workflow(EventFactory(now=t0, id_prefix="batch"))

    response = publish(client, auth(server), {"events": events})

    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": len(events),
        "rejected": 0,
        "results": [
            {"index": n, "id": e["id"], "status": "accepted", "status_code": 202, "error": None}
            for n, e in enumerate(events)
        ],
    }
    check_research_plan(
        client,
        auth(server),
        events,
        plan_id="plan-123",
        trace_id="trace-abc123",
        prefix="",
        t0=t0,
    )


def test_research_workflow_published_one_envelope_at_a_time(
    server: Server, client: httpx.Client
) -> None:
    t0 = recent_start()
    factory = EventFactory(now=t0, id_prefix="single")
    events = research_workflow(factory, "plan-456", "trace-def456", task_prefix="s-")

    def check() -> None:
        check_research_plan(
            client,
            auth(server),
            events,
            plan_id="plan-456",
            trace_id="trace-def456",
            prefix="s-",
            t0=t0,
        )

    for event in events:
        response = publish(client, auth(server), event)
        assert response.status_code == 202, response.text
        assert response.json()["results"] == [
            {"index": 0, "id": event["id"], "status": "accepted", "status_code": 202, "error": None}
        ]
    check()

    # Sending events again changes nothing: ids are idempotent.
    for event in reversed(events):
        assert publish(client, auth(server), event).status_code == 202
    check()

    # A progress report after the search completed is refused and kept as an anomaly.
    straggler = factory.progress(
        "s-task-1",
        "running",
        0.5,
        "still searching",
        plan_id="plan-456",
        trace_id="trace-def456",
        source="web-search-worker",
        time=t0 + timedelta(seconds=400),
    )
    assert publish(client, auth(server), straggler).status_code == 202
    history = client.get("/v1/tracker/tasks/s-task-1", headers=auth(server)).json()
    assert history["task"]["state"] == "completed"
    assert history["task"]["progress"] == 1.0
    assert history["task"]["message"] is None
    assert [
        (a["kind"], a["event_id"], a["from_state"], a["to_state"], a["occurred_at"])
        for a in history["anomalies"]
    ] == [("illegal_transition", straggler["id"], "completed", "running", at(t0, 400))]
    assert "completed -> running" in history["anomalies"][0]["message"]
    assert [(t["from_state"], t["to_state"]) for t in history["transitions"]] == [
        (None, "running"),
        ("running", "completed"),
    ]


def test_agent_metrics_count_each_task_once(server: Server, client: httpx.Client) -> None:
    """In tenant globex alone: the workflow, a failed search and a search retried once."""
    t0 = recent_start()
    f = EventFactory(now=t0, id_prefix="metrics", trace_id="trace-g", plan_id="plan-123")
    events = research_workflow(f, "plan-123", "trace-g", task_prefix="g-")
    searcher = "web-search-worker"
    events += [
        f.request("g-task-3", "web.search.requested", time=t0 + timedelta(seconds=300)),
        f.result(
            "g-task-3",
            "web.search.failed",
            success=False,
            error="HTTP 503",
            source=searcher,
            time=t0 + timedelta(seconds=330),
        ),
        f.request("g-task-4", "web.search.requested", time=t0 + timedelta(seconds=400)),
        f.result(
            "g-task-4",
            "web.search.failed",
            success=False,
            error="timeout",
            source=searcher,
            time=t0 + timedelta(seconds=420),
        ),
        f.request("g-task-4", "web.search.requested", attempt=2, time=t0 + timedelta(seconds=430)),
        f.result(
            "g-task-4",
            "web.search.completed",
            attempt=2,
            source=searcher,
            time=t0 + timedelta(seconds=470),
        ),
    ]
    assert publish(client, auth(server, "globex"), {"events": events}).status_code == 202

    def metrics(**params: str) -> dict[str, Any]:
        response = client.get("/v1/tracker/metrics", params=params, headers=auth(server, "globex"))
        assert response.status_code == 200, response.text
        return dict(response.json())

    # Durations: 90 s, 30 s (failed) and 70 s (from the first attempt's start to the end).
    for period in ("24h", "1h"):
        assert metrics(agent_id=searcher, period=period) == {
            "agent_id": searcher,
            "period": period,
            "total_tasks": 3,
            "completed_tasks": 2,
            "failed_tasks": 1,
            "avg_duration_seconds": 63.333,
            "success_rate": 0.6667,
            "input_tokens": 0,  # no task reported GenAI usage
            "output_tokens": 0,
            "as_of": at(t0, 470),
        }
    assert metrics(agent_id="analysis-worker", period="24h") == {
        "agent_id": "analysis-worker",
        "period": "24h",
        "total_tasks": 1,
        "completed_tasks": 1,
        "failed_tasks": 0,
        "avg_duration_seconds": 95.0,
        "success_rate": 1.0,
        "input_tokens": 0,  # no task reported GenAI usage
        "output_tokens": 0,
        "as_of": at(t0, 250),
    }
    # Every agent of the tenant: the goal (255 s) and the four searches and analyses.
    assert metrics(period="24h") == {
        "agent_id": None,
        "period": "24h",
        "total_tasks": 5,
        "completed_tasks": 4,
        "failed_tasks": 1,
        "avg_duration_seconds": 108.0,
        "success_rate": 0.8,
        "input_tokens": 0,  # no task reported GenAI usage
        "output_tokens": 0,
        "as_of": at(t0, 470),
    }
    assert metrics(agent_id="nobody", period="7d") == {
        "agent_id": "nobody",
        "period": "7d",
        "total_tasks": 0,
        "completed_tasks": 0,
        "failed_tasks": 0,
        "avg_duration_seconds": 0.0,
        "success_rate": 0.0,
        "input_tokens": 0,  # no task reported GenAI usage
        "output_tokens": 0,
        "as_of": None,
    }
    # globex's plan-123 is its own, whatever acme holds under the same id.
    tasks = client.get("/v1/tracker/plans/plan-123/tasks", headers=auth(server, "globex"))
    assert [t["task_id"] for t in tasks.json()["tasks"]] == [
        "g-goal-1",
        "g-task-1",
        "g-task-2",
        "g-task-3",
        "g-task-4",
    ]


def test_soorma_common_events_are_accepted_and_folded(server: Server, client: httpx.Client) -> None:
    t0 = recent_start()
    common: dict[str, Any] = {
        "trace_id": "trace-soorma",
        "plan_id": "plan-soorma",
        "tenant_id": "someone-else",
    }
    request = SoormaEnvelope(
        source="research-planner",
        type="web.search.requested",
        topic=EventTopic.ACTION_REQUESTS,
        correlation_id="sm-task-1",
        time=t0,
        data={"query": "lithium"},
        **common,
    )
    progress = SoormaEnvelope(
        source="soorma-worker",
        type="task.progress",
        topic=EventTopic.SYSTEM_EVENTS,
        time=t0 + timedelta(seconds=10),
        parent_event_id=request.id,
        data=TaskProgressEvent(
            task_id="sm-task-1",
            plan_id="plan-soorma",
            state=TaskState.RUNNING,
            progress=0.5,
            message="Half done",
        ).model_dump(mode="json"),
        **common,
    )
    changed = SoormaEnvelope(
        source="soorma-worker",
        type="task.state_changed",
        topic=EventTopic.SYSTEM_EVENTS,
        time=t0 + timedelta(seconds=20),
        parent_event_id=progress.id,
        data=TaskStateChanged(
            task_id="sm-task-1",
            plan_id="plan-soorma",
            previous_state=TaskState.RUNNING,
            new_state=TaskState.COMPLETED,
            reason="all sources read",
        ).model_dump(mode="json"),
        **common,
    )
    envelopes = [e.model_dump(by_alias=True, mode="json") for e in (request, progress, changed)]
    assert "correlationId" in envelopes[0]  # the platform's camelCase spelling
    assert "parentEventId" in envelopes[1]

    response = publish(client, auth(server), {"events": envelopes})

    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3
    history = client.get("/v1/tracker/tasks/sm-task-1", headers=auth(server)).json()
    task = history["task"]
    assert (task["state"], task["progress"], task["message"]) == ("completed", 1.0, "Half done")
    assert (task["plan_id"], task["trace_id"], task["agent_id"], task["requester"]) == (
        "plan-soorma",
        "trace-soorma",
        "soorma-worker",
        "research-planner",
    )
    assert (task["started_at"], task["completed_at"], task["duration_seconds"]) == (
        at(t0, 0),
        at(t0, 20),
        20.0,
    )
    assert [(t["from_state"], t["to_state"], t["reason"]) for t in history["transitions"]] == [
        (None, "running", None),
        ("running", "completed", "all sources read"),
    ]
    timeline = client.get("/v1/tracker/plans/plan-soorma/timeline", headers=auth(server)).json()
    assert timeline["trace_id"] == "trace-soorma"
    assert [shape(n) for n in timeline["tree"]] == [
        (request.id, [(progress.id, [(changed.id, [])])])
    ]
    # The tenant is the token's, whatever the envelope says.
    other = client.get("/v1/tracker/tasks/sm-task-1", headers=auth(server, "globex"))
    assert_error(other, 404, "not_found")


def test_tokens_decide_tenant_and_rights(server: Server, client: httpx.Client) -> None:
    t0 = recent_start()
    f = EventFactory(now=t0, id_prefix="private", plan_id="plan-private", tenant_id="globex")
    event = f.request("private-task", "web.search.requested")
    assert publish(client, auth(server), event).status_code == 202

    plan = "/v1/tracker/plans/plan-private"
    for path in (plan, f"{plan}/tasks", f"{plan}/timeline", "/v1/tracker/tasks/private-task"):
        assert client.get(path, headers=auth(server)).status_code == 200
        assert client.get(path, headers=auth(server, "acme-reader")).status_code == 200
        assert_error(client.get(path, headers=auth(server, "globex")), 404, "not_found")
        missing = assert_error(client.get(path), 401, "unauthorized")
        assert "Bearer" in missing["message"]
        bogus = client.get(path, headers={"Authorization": "Bearer trk_not-a-token"})
        assert_error(bogus, 401, "unauthorized")
        assert bogus.headers["www-authenticate"] == "Bearer"

    reader = publish(client, auth(server, "acme-reader"), f.request("r-task", "x.requested"))
    assert "reader" in assert_error(reader, 403, "forbidden")["message"]
    assert_error(publish(client, {}, event), 401, "unauthorized")
    assert_error(client.get("/v1/tracker/tasks/r-task", headers=auth(server)), 404)


def test_a_batch_with_one_bad_event_is_a_207(server: Server, client: httpx.Client) -> None:
    t0 = recent_start()
    f = EventFactory(now=t0, id_prefix="partial", plan_id="plan-partial")
    good = f.request("partial-1", "web.search.requested")
    bad = f.progress("partial-2", "running", 1.5)
    f.advance(30)
    also_good = f.result("partial-1", "web.search.completed", source="web-search-worker")

    response = publish(client, auth(server), {"events": [good, bad, also_good]})

    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert [(r["index"], r["id"], r["status"]) for r in body["results"]] == [
        (0, good["id"], "accepted"),
        (1, bad["id"], "rejected"),
        (2, also_good["id"], "accepted"),
    ]
    assert body["results"][0]["error"] is None
    assert body["results"][1]["error"]["code"] == "invalid_event"
    assert "progress" in body["results"][1]["error"]["message"]
    stored = client.get("/v1/tracker/tasks/partial-1", headers=auth(server)).json()["task"]
    assert (stored["state"], stored["duration_seconds"]) == ("completed", 30.0)
    assert_error(client.get("/v1/tracker/tasks/partial-2", headers=auth(server)), 404)


def _good_event(event_id: str = "g-1") -> dict[str, Any]:
    return EventFactory(now=recent_start(), id_prefix="garbage").progress(
        "garbage-task", "running", 0.5, event_id=event_id
    )


def _raw(body: bytes) -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": "application/json"}}


GARBAGE: dict[str, tuple[dict[str, Any], int, str]] = {
    "not JSON": (_raw(b"{not json"), 422, "invalid"),
    "empty body": (_raw(b""), 422, "invalid"),
    "invalid UTF-8": (_raw(b'{"id": "\xff\xfe"}'), 422, "invalid"),
    "deeply nested": (
        _raw(b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        422,
        "invalid",
    ),
    "a list": ({"json": [_good_event()]}, 422, "invalid"),
    "a string": ({"json": "task.progress"}, 422, "invalid"),
    "events not a list": ({"json": {"events": "all of them"}}, 422, "invalid"),
    "no events": ({"json": {"events": []}}, 422, "invalid"),
    "events not objects": ({"json": {"events": [1, "two", None]}}, 422, "invalid_event"),
    "501 events": (
        {"json": {"events": [_good_event(f"e-{n}") for n in range(501)]}},
        400,
        "too_many_events",
    ),
    "naive time": (
        {"json": {**_good_event(), "time": "2026-01-11T10:00:00"}},
        422,
        "invalid_event",
    ),
    "time out of range": (
        {"json": {**_good_event(), "time": "9999-12-31T23:59:59-23:59"}},
        422,
        "invalid_event",
    ),
    "time in year 9999": (
        {"json": {**_good_event(), "time": "9999-12-31T23:30:00Z"}},
        422,
        "invalid_event",
    ),
    "progress 1.5": (
        {"json": {**_good_event(), "data": {"task_id": "t", "state": "running", "progress": 1.5}}},
        422,
        "invalid_event",
    ),
    "progress NaN": (
        _raw(
            json.dumps(
                {
                    **_good_event(),
                    "data": {"task_id": "t", "state": "running", "progress": float("nan")},
                }
            ).encode()
        ),
        422,
        "invalid_event",
    ),
    "unknown state": (
        {"json": {**_good_event(), "data": {"task_id": "t", "state": "asleep"}}},
        422,
        "invalid_event",
    ),
    # The platform's other topics (billing-events, …) go to the timeline; others are refused.
    "topic outside the platform's list": (
        {"json": {**_good_event(), "topic": "gossip"}},
        422,
        "invalid_event",
    ),
    "id too long": ({"json": {**_good_event(), "id": "x" * 101}}, 422, "invalid_event"),
    "10 MB string field": (
        {
            "json": {
                **_good_event(),
                "data": {"task_id": "t", "state": "running", "message": "x" * 10_000_000},
            }
        },
        413,
        "payload_too_large",
    ),
}


def send(client: httpx.Client, server: Server, request: dict[str, Any]) -> httpx.Response:
    headers = {**auth(server), **request.get("headers", {})}
    body = {k: v for k, v in request.items() if k != "headers"}
    return client.post("/v1/events", headers=headers, **body)


@pytest.mark.parametrize("case", list(GARBAGE))
def test_garbage_gets_a_json_4xx(server: Server, client: httpx.Client, case: str) -> None:
    request, status, code = GARBAGE[case]
    assert_error(send(client, server, request), status, code)


def test_the_server_keeps_ingesting_after_garbage(server: Server, client: httpx.Client) -> None:
    for request, _, _ in GARBAGE.values():
        assert 400 <= send(client, server, request).status_code < 500
    t0 = recent_start()
    events = research_workflow(
        EventFactory(now=t0, id_prefix="after"), "plan-after", "trace-after", task_prefix="after-"
    )
    assert publish(client, auth(server), {"events": events}).status_code == 202
    check_research_plan(
        client,
        auth(server),
        events,
        plan_id="plan-after",
        trace_id="trace-after",
        prefix="after-",
        t0=t0,
    )
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["ingest"]["failures"] == 0
    assert "Traceback" not in server.output()


def test_sigterm_stops_the_server_cleanly_and_data_survives(tmp_path: Path) -> None:
    env = trackd_env(tmp_path / "trackd.db")
    tokens = {"acme": create_token("acme", env=env)}
    first = start_server(env, tmp_path, tokens, name="first")
    t0 = recent_start()
    events = research_workflow(EventFactory(now=t0))
    try:
        with httpx.Client(base_url=first.url, timeout=30.0) as c:
            assert publish(c, auth(first), {"events": events}).status_code == 202
    finally:
        assert_server_stopped_cleanly(first)

    second = start_server(env, tmp_path, tokens, name="second")
    try:
        with httpx.Client(base_url=second.url, timeout=30.0) as c:
            check_research_plan(
                c,
                auth(second),
                events,
                plan_id="plan-123",
                trace_id="trace-abc123",
                prefix="",
                t0=t0,
            )
    finally:
        assert_server_stopped_cleanly(second)
