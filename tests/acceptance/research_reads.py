"""What a served trackd must answer for the research workflow of seed 003
(`trackd.testing.research_workflow`): every documented field of the four tracker reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx

from trackd.testing import iso


def at(t0: datetime, seconds: float) -> str:
    return iso(t0 + timedelta(seconds=seconds))


def check_research_plan(
    client: httpx.Client,
    headers: dict[str, str],
    events: list[dict[str, Any]],
    *,
    plan_id: str,
    trace_id: str,
    prefix: str,
    t0: datetime,
) -> None:
    """Every documented field of the four tracker reads, for `research_workflow`'s events."""
    goal, search, analysis = f"{prefix}goal-1", f"{prefix}task-1", f"{prefix}task-2"
    ids = [e["id"] for e in events]

    plan = client.get(f"/v1/tracker/plans/{plan_id}", headers=headers)
    assert plan.status_code == 200, plan.text
    assert plan.json() == {
        "plan_id": plan_id,
        "status": "completed",
        "started_at": at(t0, 2),
        "completed_at": at(t0, 260),
        "task_count": 3,
        "completed_tasks": 3,
        "failed_tasks": 0,
        "current_state": "report ready",
        "trace_id": trace_id,
        "as_of": at(t0, 260),
    }

    tasks = client.get(f"/v1/tracker/plans/{plan_id}/tasks", headers=headers)
    assert tasks.status_code == 200, tasks.text
    assert tasks.json() == {
        "plan_id": plan_id,
        "as_of": at(t0, 260),
        "tasks": [
            {
                "task_id": goal,
                "event_type": "research.goal",
                "state": "completed",
                "started_at": at(t0, 0),
                "completed_at": at(t0, 255),
                "duration_seconds": 255.0,
                "progress": 1.0,
                "attempts": 1,
                "agent_id": "research-planner",
            },
            {
                "task_id": search,
                "event_type": "web.search.requested",
                "state": "completed",
                "started_at": at(t0, 60),
                "completed_at": at(t0, 150),
                "duration_seconds": 90.0,
                "progress": 1.0,
                "attempts": 1,
                "agent_id": "web-search-worker",
            },
            {
                "task_id": analysis,
                "event_type": "analyze.text",
                "state": "completed",
                "started_at": at(t0, 155),
                "completed_at": at(t0, 250),
                "duration_seconds": 95.0,
                "progress": 1.0,
                "attempts": 1,
                "agent_id": "analysis-worker",
            },
        ],
    }

    timeline = client.get(f"/v1/tracker/plans/{plan_id}/timeline", headers=headers)
    assert timeline.status_code == 200, timeline.text
    body = timeline.json()
    assert body["plan_id"] == plan_id
    assert body["trace_id"] == trace_id
    assert body["as_of"] == at(t0, 260)
    task_of = {e["id"]: e.get("correlation_id") or e["data"].get("task_id") for e in events}
    assert body["events"] == [
        {
            "event_id": e["id"],
            "event_type": e["type"],
            "timestamp": e["time"],
            "parent_event_id": e.get("parent_event_id"),
            "topic": e["topic"],
            "source": e["source"],
            "task_id": task_of[e["id"]],
        }
        for e in events
    ]
    # The trace tree: goal -> (plan.started, web.search.requested -> web.search.completed
    # -> analyze.text -> (progress, progress, analyze.text.completed -> goal completed
    # -> plan.completed)).
    e1, e2, e3, e4, e5, e6, e7, e8, e9, e10 = ids
    expected_tree: list[tuple[str, list[Any]]] = [
        (e1, [(e2, []), (e3, [(e4, [(e5, [(e6, []), (e7, []), (e8, [(e9, [(e10, [])])])])])])]),
    ]
    assert [shape(node) for node in body["tree"]] == expected_tree
    by_id = {e["id"]: e for e in events}
    for node in walk(body["tree"]):
        source = by_id[node["event_id"]]
        assert node["event_type"] == source["type"]
        assert node["timestamp"] == source["time"]
        assert node["parent_event_id"] == source.get("parent_event_id")

    detail = client.get(f"/v1/tracker/tasks/{analysis}", headers=headers)
    assert detail.status_code == 200, detail.text
    assert detail.json() == {
        "as_of": at(t0, 250),
        "task": {
            "task_id": analysis,
            "event_type": "analyze.text",
            "state": "completed",
            "started_at": at(t0, 155),
            "completed_at": at(t0, 250),
            "duration_seconds": 95.0,
            "progress": 1.0,
            "attempts": 1,
            "agent_id": "analysis-worker",
            "plan_id": plan_id,
            "message": "Summarizing findings",
            "error": None,
            "max_attempts": 3,
            "trace_id": trace_id,
            "parent_event_id": e4,
            "requester": "research-planner",
            "first_seen_at": at(t0, 155),
            "last_event_at": at(t0, 250),
            "data": {"sources": 8},
            "result": {"success": True, "summary": "Hydrometallurgy leads"},
        },
        "transitions": [
            {
                "from_state": None,
                "to_state": "running",
                "attempt": 1,
                "reason": None,
                "event_id": e5,
                "transitioned_at": at(t0, 155),
            },
            {
                "from_state": "running",
                "to_state": "completed",
                "attempt": 1,
                "reason": None,
                "event_id": e8,
                "transitioned_at": at(t0, 250),
            },
        ],
        "anomalies": [],
    }


def shape(node: dict[str, Any]) -> tuple[str, list[Any]]:
    return node["event_id"], [shape(child) for child in node["children"]]


def walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from walk(node["children"])
