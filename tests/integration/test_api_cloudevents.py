"""`POST /v1/events` in every mode of the CloudEvents HTTP binding, with the CloudEvents Python
SDK as the client, on SQLite and PostgreSQL (issue 15): structured, binary and batched requests
take the same path as trackd's own JSON forms, with the same answers."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from cloudevents.core.bindings.http import HTTPMessage
from cloudevents.core.v1.event import CloudEvent
from runtime_support import api_client
from sqlalchemy import select
from test_api_interop import runtime

from ce_client import MODES, batched, binary, cloud_event, structured
from trackd.domain.access import Role
from trackd.runtime import Runtime
from trackd.store.models import TimelineEvent
from trackd.store.repos import tokens
from trackd.testing import EventFactory, research_workflow

TENANT = "acme"
__all__ = ["runtime"]  # the fixture, shared with the interop tests
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


@pytest_asyncio.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with runtime.sessions() as s, s.begin():
        acme = await tokens.create(s, TENANT, user_id=None, role=Role.SERVICE)
        ann = await tokens.create(s, TENANT, user_id="ann", role=Role.USER)
        bob = await tokens.create(s, TENANT, user_id="bob", role=Role.USER)
        globex = await tokens.create(s, "globex", user_id=None, role=Role.SERVICE)
    async with api_client(runtime, headers={"Authorization": f"Bearer {acme}"}) as client:
        client.tokens = {"ann": ann, "bob": bob, "globex": globex}  # type: ignore[attr-defined]
        yield client


def as_user(client: httpx.AsyncClient, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.tokens[who]}"}  # type: ignore[attr-defined]


async def send(
    client: httpx.AsyncClient, message: HTTPMessage, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        "/v1/events", content=message.body, headers={**message.headers, **(headers or {})}
    )


def workflow(prefix: str = "") -> list[dict[str, Any]]:
    return research_workflow(EventFactory(now=NOW, id_prefix=f"ce{prefix}"))


async def assert_research_plan(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    plan = await client.get("/v1/tracker/plans/plan-123")
    assert plan.status_code == 200, plan.text
    assert (plan.json()["status"], plan.json()["task_count"]) == ("completed", 3)
    assert plan.json()["trace_id"] == "trace-abc123"
    tasks = (await client.get("/v1/tracker/plans/plan-123/tasks")).json()["tasks"]
    assert [(t["task_id"], t["state"]) for t in tasks] == [
        ("goal-1", "completed"),
        ("task-1", "completed"),
        ("task-2", "completed"),
    ]
    timeline = (await client.get("/v1/tracker/plans/plan-123/timeline")).json()
    assert [e["event_id"] for e in timeline["events"]] == [e["id"] for e in events]
    assert [e["parent_event_id"] for e in timeline["events"]] == [
        e.get("parent_event_id") for e in events
    ]
    detail = (await client.get("/v1/tracker/tasks/task-2")).json()["task"]
    assert (detail["progress"], detail["message"]) == (1.0, "Summarizing findings")


@pytest.mark.parametrize("mode", list(MODES))
async def test_one_event_at_a_time_lands_on_the_plan_and_timeline(
    client: httpx.AsyncClient, mode: str
) -> None:
    events = workflow()
    for event in events:
        response = await send(client, MODES[mode](cloud_event(event)))
        assert response.status_code == 202, response.text
        assert response.json()["results"] == [
            {"index": 0, "id": event["id"], "status": "accepted", "status_code": 202, "error": None}
        ]
    await assert_research_plan(client, events)


async def test_a_batch_lands_on_the_plan_and_timeline(client: httpx.AsyncClient) -> None:
    events = workflow()
    response = await send(client, batched([cloud_event(e) for e in events]))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events)
    await assert_research_plan(client, events)


def bad_progress() -> dict[str, Any]:
    f = EventFactory(now=NOW, id_prefix="bad")
    return f.progress("task-bad", "running", 1.5)


async def test_a_bad_event_gets_the_same_422_in_every_mode(client: httpx.AsyncClient) -> None:
    bad = bad_progress()
    plain = await client.post("/v1/events", json=bad)
    assert plain.status_code == 422, plain.text
    expected = plain.json()["error"]
    assert expected["code"] == "invalid_event" and "progress" in expected["message"]
    for mode, write in MODES.items():
        response = await send(client, write(cloud_event(bad)))
        assert response.status_code == 422, (mode, response.text)
        assert response.json()["error"] == expected, mode


async def test_a_batch_with_one_bad_item_is_a_207(client: httpx.AsyncClient) -> None:
    f = EventFactory(now=NOW, id_prefix="partial")
    good = f.request("partial-1", "web.search.requested")
    bad = bad_progress()
    response = await send(client, batched([cloud_event(good), cloud_event(bad)]))
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    message = (await client.post("/v1/events", json=bad)).json()["error"]["message"]
    assert body["results"][1]["error"] == {"code": "invalid_event", "message": message}
    task = (await client.get("/v1/tracker/tasks/partial-1")).json()["task"]
    assert task["state"] == "running"


async def test_a_batch_item_the_json_policy_refuses_is_refused_alone(
    client: httpx.AsyncClient,
) -> None:
    f = EventFactory(now=NOW, id_prefix="policy")
    good = f.request("policy-1", "web.search.requested")
    bad = {**f.progress("policy-2", "running", 0.5), "data": {"task_id": "policy-2", "x": "\0"}}
    body = json.dumps([good, bad]).encode()
    response = await client.post(
        "/v1/events", content=body, headers={"content-type": "application/cloudevents-batch+json"}
    )
    assert response.status_code == 207, response.text
    assert (
        response.json()["results"][1]["error"]["message"]
        == "data.x: contains a NUL character (\\u0000); remove it"
    )


async def test_binary_headers_are_percent_decoded(client: httpx.AsyncClient) -> None:
    f = EventFactory(now=NOW, id_prefix="pct")
    event = f.request("pct-1", "web.search.requested", source="worker ü 100%/1")
    message = binary(cloud_event(event))
    assert message.headers["ce-source"] == "worker%20%C3%BC%20100%25/1"
    assert (await send(client, message)).status_code == 202
    task = (await client.get("/v1/tracker/tasks/pct-1")).json()["task"]
    assert task["requester"] == "worker ü 100%/1"


async def test_binary_integer_and_boolean_extensions(client: httpx.AsyncClient) -> None:
    f = EventFactory(now=NOW, id_prefix="typed")
    request = f.request("typed-1", "web.search.requested")
    f.advance(10)
    result = {**f.result("typed-1", "web.search.failed"), "success": False, "attempt": 1}
    result["data"] = None
    for event in (request, result):
        assert (await send(client, binary(cloud_event(event)))).status_code == 202
    task = (await client.get("/v1/tracker/tasks/typed-1")).json()["task"]
    assert task["state"] == "failed"


async def test_data_that_is_not_json_is_kept_base64(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    payload = b"query=battery recycling\n\xff"
    attributes = {
        "id": "text-1",
        "source": "planner",
        "type": "web.search.requested",
        "topic": "action-requests",
        "correlationid": "text-task",
        "time": NOW,
        "datacontenttype": "text/plain; charset=latin-1",
    }
    on_wire = binary(CloudEvent(attributes=attributes, data=payload))
    assert on_wire.body == payload
    assert (await send(client, on_wire)).status_code == 202
    # The SDK's structured mode puts bytes in data_base64: the same event, the same record.
    again = structured(CloudEvent(attributes={**attributes, "id": "text-2"}, data=payload))
    assert b'"data_base64"' in again.body
    assert (await send(client, again)).status_code == 202

    task = (await client.get("/v1/tracker/tasks/text-task")).json()["task"]
    assert (task["state"], task["requester"]) == ("running", "planner")
    async with runtime.sessions() as s:
        rows = (
            await s.execute(
                select(TimelineEvent.event_id, TimelineEvent.attributes).order_by(
                    TimelineEvent.event_id
                )
            )
        ).all()
    for event_id, stored in rows:
        assert base64.b64decode(stored["data_base64"]) == payload, event_id
        assert stored["datacontenttype"] == "text/plain; charset=latin-1"


async def test_bad_base64_and_both_kinds_of_data_are_refused(client: httpx.AsyncClient) -> None:
    f = EventFactory(now=NOW, id_prefix="b64")
    event = f.request("b64-1", "web.search.requested")
    headers = {"content-type": "application/cloudevents+json"}
    for extra, problem in (
        ({"data_base64": "not base64!"}, "data_base64: Value error, not valid base64"),
        (
            {"data": {"a": 1}, "data_base64": "AAAA"},
            "Value error, data and data_base64 are exclusive",
        ),
    ):
        response = await client.post(
            "/v1/events", content=json.dumps({**event, **extra}), headers=headers
        )
        assert response.status_code == 422, response.text
        assert problem in response.json()["error"]["message"]


async def test_the_tenant_is_the_tokens_whatever_the_headers_say(
    client: httpx.AsyncClient,
) -> None:
    f = EventFactory(now=NOW, id_prefix="tenant")
    event = {**f.request("tenant-1", "web.search.requested"), "tenant_id": "globex"}
    message = binary(cloud_event(event))
    assert message.headers["ce-tenantid"] == "globex"
    assert (await send(client, message)).status_code == 202
    assert (await client.get("/v1/tracker/tasks/tenant-1")).status_code == 200
    theirs = await client.get("/v1/tracker/tasks/tenant-1", headers=as_user(client, "globex"))
    assert theirs.status_code == 404


async def test_ownership_holds_in_binary_mode(client: httpx.AsyncClient) -> None:
    f = EventFactory(now=NOW, id_prefix="own")
    first = f.request("own-1", "web.search.requested")
    assert (
        await send(client, binary(cloud_event(first)), as_user(client, "ann"))
    ).status_code == 202
    f.advance(5)
    other = f.progress("own-1", "running", 0.5)
    response = await send(client, binary(cloud_event(other)), as_user(client, "bob"))
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"


BATCH = "application/cloudevents-batch+json"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [
        (BATCH, b"[]", 422, "the batch is empty"),
        (BATCH, b'{"events": []}', 422, "must be a JSON array"),
        (BATCH, b"[1, 2", 422, "not valid JSON"),
        ("application/cloudevents+json", b"", 422, "the body is empty"),
        ("application/cloudevents+json", b"[{}]", 422, "a structured event must be a JSON object"),
        ("application/json", b'"task.progress"', 422, "an event must be a JSON object"),
        ("application/cloudevents+xml", b"<event/>", 415, "not a CloudEvents format"),
        ("text/plain", b"hello", 415, "text/plain is not JSON"),
        ("application/json", b"[]", 422, "a JSON array of events is a batch"),
    ],
)
async def test_requests_in_no_mode_get_a_clear_4xx(
    client: httpx.AsyncClient, content_type: str, body: bytes, status: int, words: str
) -> None:
    response = await client.post("/v1/events", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


async def test_a_batch_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    f = EventFactory(now=NOW, id_prefix="many")
    events = [cloud_event(f.request(f"many-{n}", "x.requested")) for n in range(501)]
    response = await send(client, batched(events))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "too_many_events"
