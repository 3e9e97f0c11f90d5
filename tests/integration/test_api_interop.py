"""What the agent platform's own client and a hostile client send, through `POST /v1/events`
and back out of the read routes, on SQLite and PostgreSQL (issue 9: interop, time, ids,
64-bit counts, deep chains, task ownership)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from runtime_support import api_client, bearer_headers, started
from soorma_common.events import ActionResultEvent, BusinessFactEvent

from trackd.domain.access import Role
from trackd.domain.timeline import MAX_TREE_DEPTH
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.repos import dead_letters
from trackd.testing import EventFactory

TENANT = "acme"
Headers = dict[str, str]
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


@pytest_asyncio.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    settings = Settings(
        database_url=database_url, publish_timeout_s=15, max_event_future_seconds=3600
    )
    async with started(settings) as runtime:
        yield runtime


@pytest_asyncio.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(runtime) as client:
        yield client


@pytest_asyncio.fixture
async def auth(runtime: Runtime) -> dict[str, Headers]:
    """Bearer headers: a service, an admin, and two users (ann, bob) of one tenant."""
    return await bearer_headers(
        runtime,
        {
            "service": (TENANT, None, Role.SERVICE),
            "admin": (TENANT, "root", Role.ADMIN),
            "ann": (TENANT, "ann", Role.USER),
            "bob": (TENANT, "bob", Role.USER),
        },
    )


async def post(
    client: httpx.AsyncClient, headers: Headers, body: Any, status: int = 202
) -> dict[str, Any]:
    response = await client.post("/v1/events", json=body, headers=headers)
    assert response.status_code == status, response.text
    out: dict[str, Any] = response.json()
    return out


def error_message(body: dict[str, Any], code: str) -> str:
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


# --- interop: the platform's ActionResultEvent and its other topics ----------------------------


async def test_a_failed_action_result_from_the_platform_client_folds_to_failed(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(source="planner", now=NOW, trace_id="trace-a", plan_id=None)
    request = f.request("task-a", "web.search.requested", event_id="req-a")
    await post(client, auth["service"], request)
    failed = ActionResultEvent(
        id="res-a",
        source="worker-1",
        type="web.search.failed",
        time=NOW + timedelta(seconds=5),
        correlation_id="task-a",
        trace_id="trace-a",
        parent_event_id="req-a",
        action_event_id="req-a",
        success=False,
        error="quota exceeded",
    )
    sent = failed.model_dump(mode="json", by_alias=True)
    assert sent["data"] is None and sent["success"] is False  # the outcome is on the envelope
    await post(client, auth["service"], sent)

    task = (await client.get("/v1/tracker/tasks/task-a", headers=auth["service"])).json()["task"]
    assert (task["state"], task["error"]) == ("failed", "quota exceeded")


async def test_the_envelope_outcome_wins_over_data_and_its_result_is_kept(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    done = ActionResultEvent(
        id="res-b",
        source="worker-1",
        type="x.done",
        time=NOW,
        correlation_id="task-b",
        action_event_id="req-b",
        success=True,
        result={"hits": 3},
        data={"success": False, "error": "stale"},
    )
    await post(client, auth["service"], done.model_dump(mode="json", by_alias=True))

    task = (await client.get("/v1/tracker/tasks/task-b", headers=auth["service"])).json()["task"]
    assert (task["state"], task["error"], task["result"]) == ("completed", None, {"hits": 3})


async def test_a_goal_on_business_facts_roots_the_plans_timeline(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    goal = BusinessFactEvent(
        id="goal-1",
        source="user-agent",
        type="research.goal",
        time=NOW,
        trace_id="trace-g",
        data={"goal": "find moths"},
    )
    f = EventFactory(source="planner", now=NOW + timedelta(seconds=1), trace_id="trace-g")
    started = f.plan_started("plan-g", event_id="ps-g", parent="goal-1")
    request = f.request("task-g", "search", plan_id="plan-g", parent=started, event_id="r-g")
    body = {"events": [goal.model_dump(mode="json", by_alias=True), started, request]}
    await post(client, auth["service"], body)

    timeline = (
        await client.get("/v1/tracker/plans/plan-g/timeline", headers=auth["service"])
    ).json()
    assert [e["event_id"] for e in timeline["events"]] == ["goal-1", "ps-g", "r-g"]
    [root] = timeline["tree"]
    assert root["event_id"] == "goal-1"
    assert root["children"][0]["event_id"] == "ps-g"
    # Only the tracked topics fold: the goal made no task.
    missing = await client.get("/v1/tracker/tasks/goal-1", headers=auth["service"])
    assert missing.status_code == 404


async def test_a_topic_outside_the_platforms_list_is_still_refused(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    event = EventFactory(now=NOW).event("x.y", topic="gossip", event_id="g1")
    body = await post(client, auth["service"], event, status=422)
    assert "not one of the platform's topics" in error_message(body, "invalid_event")


# --- time: overflow and the future bound --------------------------------------------------------


async def test_a_time_that_overflows_in_utc_is_a_422(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    event = EventFactory(now=NOW).request("t-time", "x", time="9999-12-31T23:59:59-14:00")
    body = await post(client, auth["service"], event, status=422)
    assert "out of range once converted to UTC" in error_message(body, "invalid_event")


async def test_an_event_too_far_in_the_future_is_refused_with_the_bound(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(now=datetime.now(UTC))
    far = f.request("t-far", "x", event_id="far", time=datetime(9998, 1, 1, tzinfo=UTC))
    near = f.request("t-near", "x", event_id="near", time=datetime.now(UTC) + timedelta(minutes=5))
    body = await post(client, auth["service"], {"events": [far, near]}, status=207)

    [refused] = [r for r in body["results"] if r["status"] == "rejected"]
    assert refused["id"] == "far"
    assert "at most 1 hour in the future" in refused["error"]["message"]  # the setting's bound
    assert (await client.get("/v1/tracker/tasks/t-far", headers=auth["service"])).status_code == 404
    assert (
        await client.get("/v1/tracker/tasks/t-near", headers=auth["service"])
    ).status_code == 200


# --- ids: what is accepted can be read back, what cannot is refused ----------------------------

READABLE_IDS = [
    "plain",
    "with space",
    "%2e%2e",
    "...",
    "a?b#c",
    "100%",
    'quote"s',
    "back\\slash",
    "\u00e9t\u00e9-\u4e2d-\U0001f600",
    "x" * 100,
]


async def test_every_accepted_id_reads_back_through_the_read_routes(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(source="planner", now=NOW, trace_id="trace-ids")
    events = []
    for n, odd in enumerate(READABLE_IDS):
        events.append(f.plan_started(odd, event_id=f"ps-{n}"))
        events.append(f.request(odd, "x", plan_id=odd, event_id=f"r-{n}"))
    await post(client, auth["service"], {"events": events})

    for odd in READABLE_IDS:
        path = quote(odd, safe="")
        task = await client.get(f"/v1/tracker/tasks/{path}", headers=auth["service"])
        assert task.status_code == 200, (odd, task.text)
        assert task.json()["task"]["task_id"] == odd
        for route in ("", "/tasks", "/timeline"):
            plan = await client.get(f"/v1/tracker/plans/{path}{route}", headers=auth["service"])
            assert plan.status_code == 200, (odd, route, plan.text)
            assert plan.json()["plan_id"] == odd


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        ("correlation_id", "tab\there"),
        ("correlation_id", "del\x7f"),
        ("correlation_id", "zero\u200bwidth"),
        ("correlation_id", "a/b"),
        ("correlation_id", ".."),
        ("correlation_id", "x" * 101),
        ("plan_id", "line\nbreak"),
        ("trace_id", "esc\x1b[31m"),
        ("parent_event_id", "c1\x85"),
        ("id", "evt\r"),
    ],
)
async def test_ids_that_could_not_be_read_back_are_refused_with_a_reason(
    client: httpx.AsyncClient, auth: dict[str, Headers], where: str, bad: str
) -> None:
    event = EventFactory(now=NOW).request("t-ok", "x", event_id="e-ok")
    event[where] = bad
    body = await post(client, auth["service"], event, status=422)
    message = error_message(body, "invalid_event")
    assert message.startswith(f"{where}: ")
    assert "an id must" in message or "at most 100 characters" in message


async def test_a_task_id_in_data_follows_the_same_rule(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    event = EventFactory(now=NOW).progress("ctl\x07", "running")
    body = await post(client, auth["service"], event, status=422)
    message = error_message(body, "invalid_event")
    assert "task_id" in message and "control characters" in message


# --- 64-bit counts ------------------------------------------------------------------------------


async def test_an_attempt_the_store_cannot_hold_is_refused_per_item_not_dead_lettered(
    client: httpx.AsyncClient, auth: dict[str, Headers], runtime: Runtime
) -> None:
    f = EventFactory(now=NOW)
    huge = f.progress("t-huge", "running", data={"attempt": 2**40}, event_id="huge")
    # Past 64 bits the JSON policy, which every event meets first, refuses it.
    wide = f.progress("t-wide", "running", data={"attempt": 2**63}, event_id="wide")
    fine = f.progress("t-fine", "running", data={"attempt": 2}, event_id="fine")
    body = await post(client, auth["service"], {"events": [huge, wide, fine]}, status=207)

    by_id = {r["id"]: r for r in body["results"]}
    assert by_id["fine"]["status"] == "accepted"
    assert by_id["huge"]["status_code"] == 422
    assert "data.attempt must be from 1 to 10000" in by_id["huge"]["error"]["message"]
    assert by_id["wide"]["status_code"] == 422
    assert "64-bit" in by_id["wide"]["error"]["message"]
    async with runtime.sessions() as s:
        assert await dead_letters.recent(s, TENANT) == []


# --- chains: a deep parent chain still answers its timeline -----------------------------------


@pytest.mark.parametrize("length", [130, 5000])
async def test_a_long_parent_chain_answers_its_timeline(
    client: httpx.AsyncClient, auth: dict[str, Headers], length: int
) -> None:
    f = EventFactory(source="agent", now=NOW, trace_id="trace-chain", plan_id="plan-chain")
    events = [f.plan_started(event_id="c-0")]
    for n in range(1, length):
        events.append(f.request(f"t-{n}", "step", parent=f"c-{n - 1}", event_id=f"c-{n}"))
    for start in range(0, length, 500):
        await post(client, auth["service"], {"events": events[start : start + 500]})

    response = await client.get("/v1/tracker/plans/plan-chain/timeline", headers=auth["service"])
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert len(body["events"]) == length
    seen, deepest, stack = [], 0, [(node, 1) for node in body["tree"]]
    while stack:
        node, depth = stack.pop()
        seen.append(node["event_id"])
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node["children"])
    assert sorted(seen) == sorted(e["id"] for e in events)  # every event once
    assert deepest == min(length, MAX_TREE_DEPTH)


# --- ownership: a user token publishes only about its own tasks -------------------------------


async def test_a_user_token_cannot_fail_another_users_task(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(source="ann-laptop", now=NOW)
    await post(client, auth["ann"], f.request("ann-task", "x", event_id="ann-1"))

    f.advance(1)
    attack = f.result("ann-task", "x.done", success=False, error="sabotage", event_id="bob-1")
    body = await post(client, auth["bob"], attack, status=403)
    assert "belongs to another principal" in error_message(body, "forbidden")

    mine = f.request("bob-task", "x", event_id="bob-2")
    f.advance(1)
    again = f.progress("ann-task", "running", 0.5, event_id="bob-3")
    body = await post(client, auth["bob"], {"events": [mine, again]}, status=207)
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id["bob-2"]["status_code"] == 202
    assert (by_id["bob-3"]["status_code"], by_id["bob-3"]["error"]["code"]) == (403, "forbidden")

    task = (await client.get("/v1/tracker/tasks/ann-task", headers=auth["ann"])).json()["task"]
    assert (task["state"], task["progress"]) == ("running", None)


async def test_the_owner_service_and_admin_tokens_may_publish_about_a_users_task(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(source="ann-laptop", now=NOW)
    await post(client, auth["ann"], f.request("ann-job", "x", event_id="o-1"))
    f.advance(1)
    await post(client, auth["ann"], f.progress("ann-job", "running", 0.2, event_id="o-2"))
    f.advance(1)
    await post(client, auth["admin"], f.progress("ann-job", "running", 0.4, event_id="o-3"))
    f.advance(1)
    await post(client, auth["service"], f.result("ann-job", "x.done", event_id="o-4"))

    task = (await client.get("/v1/tracker/tasks/ann-job", headers=auth["ann"])).json()["task"]
    assert task["state"] == "completed"


async def test_a_user_token_cannot_take_over_a_producers_task(
    client: httpx.AsyncClient, auth: dict[str, Headers]
) -> None:
    f = EventFactory(source="worker", now=NOW)
    await post(client, auth["service"], f.request("svc-task", "x", event_id="s-1"))
    f.advance(1)
    body = await post(client, auth["ann"], f.result("svc-task", "x.done", event_id="s-2"), 403)
    error_message(body, "forbidden")
