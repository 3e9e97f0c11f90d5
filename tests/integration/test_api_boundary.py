"""The request boundary (trackd.api.boundary): every body is size-limited while it is read and
judged by the JSON policy, on every route; what is accepted can always be read back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from runtime_support import api_client, bearer_headers, started

from trackd.domain.access import Role
from trackd.settings import Settings
from trackd.testing import EventFactory

pytestmark = pytest.mark.timeout(90)

PROFILE = "https://rocketleague.tracker.network/rocket-league/profile/steam/{}/overview"
LIMIT = 64 * 1024


@dataclass
class Served:
    client: httpx.AsyncClient
    auth: dict[str, dict[str, str]]

    async def send(
        self, method: str, path: str, who: str, *, json_text: bytes | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(self.auth[who])
        if json_text is not None:
            headers["content-type"] = "application/json"
            kwargs["content"] = json_text
        return await self.client.request(method, path, headers=headers, **kwargs)


@pytest_asyncio.fixture
async def served(database_url: str) -> AsyncIterator[Served]:
    settings = Settings(
        database_url=database_url,
        max_request_bytes=LIMIT,
        scheduler_enabled=False,
        worker_enabled=False,
        notifier_enabled=False,
        publish_timeout_s=15,
    )
    async with started(settings) as runtime:
        auth = await bearer_headers(
            runtime, {"alice": ("acme", "alice", Role.USER), "bot": ("acme", None, Role.SERVICE)}
        )
        async with api_client(runtime) as client:
            yield Served(client, auth)


def refused(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    message: str = body["error"]["message"]
    return message


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


async def a_guild_with_a_tracker(served: Served, guild: str) -> None:
    response = await served.send(
        "POST",
        "/internal/trackers/register-multiple",
        "bot",
        json={"userId": "u1", "guildId": guild, "urls": [PROFILE.format("76561198000000101")]},
    )
    assert response.status_code == 201, response.text


async def lists_still_answer(served: Served, guild: str) -> None:
    for path, who in (
        (f"/internal/trackers/schedule/guild/{guild}", "bot"),
        ("/api/trackers", "bot"),
        ("/api/trackers/me", "alice"),
    ):
        response = await served.send("GET", path, who)
        assert response.status_code == 200, (path, response.text)


def future() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


async def test_nan_in_schedule_metadata_is_422_and_the_list_still_answers(
    served: Served,
) -> None:
    await a_guild_with_a_tracker(served, "g1")
    # httpx writes JSON strictly; the body is what a lax client sends.
    body = b'{"guildId": "g1", "scheduledAt": "%s", "metadata": {"weight": NaN}}' % (
        future().encode()
    )
    response = await served.send(
        "POST",
        "/internal/trackers/schedule",
        "bot",
        json_text=body,
    )
    message = refused(response, 422)
    assert "metadata.weight" in message and "finite" in message
    for constant in (b"Infinity", b"-Infinity", b"1e400"):
        response = await served.send(
            "POST",
            "/internal/trackers/schedule",
            "bot",
            json_text=body.replace(b"NaN", constant),
        )
        assert "finite" in refused(response, 422)
    await lists_still_answer(served, "g1")


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/api/trackers/add", {"url": PROFILE.format("deep"), "userData": {"x": nested(300)}}),
        ("/internal/trackers/schedule", {"guildId": "g1", "metadata": {"x": nested(300)}}),
        (
            "/api/trackers/add",
            {"url": PROFILE.format("wide"), "userData": {"n": 2**64}},
        ),
        (
            "/internal/trackers/schedule",
            {"guildId": "g1", "metadata": {"note": "half\x00way"}},
        ),
    ],
    ids=["deep-user-data", "deep-metadata", "wide-integer", "nul"],
)
async def test_values_the_store_cannot_hold_are_422_naming_where(
    served: Served, route: str, body: dict[str, Any]
) -> None:
    await a_guild_with_a_tracker(served, "g1")
    if "guildId" in body:
        body = {**body, "scheduledAt": future()}
    who = "alice" if route.startswith("/api/") else "bot"

    message = refused(await served.send("POST", route, who, json=body), 422)

    field = "userData" if "userData" in body else "metadata"
    assert message.startswith(field), message
    await lists_still_answer(served, "g1")


async def test_a_lone_surrogate_refuses_only_its_own_event(served: Served) -> None:
    f = EventFactory(now=datetime.now(UTC) - timedelta(minutes=1))
    good = f.request("task-1", "job.requested", event_id="ok-1")
    bad = f.progress("task-2", "running", 0.5, event_id="bad-1", message="x")
    also_good = f.progress("task-1", "running", 0.5, event_id="ok-2")
    text = httpx.Request("POST", "/", json={"events": [good, bad, also_good]}).content
    # A lone surrogate can only be written as an escape: Python will not encode one.
    text = text.replace(b'"message":"x"', b'"message":"\\ud800"')
    assert b"\\ud800" in text

    response = await served.send(
        "POST",
        "/v1/events",
        "bot",
        json_text=text,
    )

    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [
        ("ok-1", "accepted"),
        ("bad-1", "rejected"),
        ("ok-2", "accepted"),
    ]
    assert "data.message" in results[1]["error"]["message"]
    assert "surrogate" in results[1]["error"]["message"]
    task = await served.send("GET", "/v1/tracker/tasks/task-1", "bot")
    assert task.status_code == 200 and task.json()["task"]["progress"] == 0.5
    assert (await served.send("GET", "/v1/tracker/tasks/task-2", "bot")).status_code == 404


async def test_deep_or_non_finite_event_data_is_refused_before_the_202(served: Served) -> None:
    f = EventFactory(now=datetime.now(UTC) - timedelta(minutes=1))
    deep = f.request("task-1", "job.requested", event_id="deep")
    deep["data"] = nested(300)
    wide = f.request("task-2", "job.requested", event_id="wide")
    wide["data"] = {"attempt": 2**63}
    fine = f.request("task-3", "job.requested", event_id="fine")

    response = await served.send("POST", "/v1/events", "bot", json={"events": [deep, wide, fine]})

    assert response.status_code == 207, response.text
    results = {r["id"]: r for r in response.json()["results"]}
    assert "nested deeper than 32" in results["deep"]["error"]["message"]
    assert "64-bit" in results["wide"]["error"]["message"]
    assert results["fine"]["status"] == "accepted"
    solo = await served.send("POST", "/v1/events", "bot", json=deep)
    assert "nested deeper" in refused(solo, 422)


async def _chunks(total: int) -> AsyncIterator[bytes]:
    # A JSON body sent in pieces, as a streaming client does: no Content-Length header.
    yield b'{"events": [{"id": "e", "data": {"pad": "'
    sent = 0
    while sent < total:
        yield b"x" * 8192
        sent += 8192
    yield b'"}}]}'


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("POST", "/v1/events"),
        ("POST", "/api/trackers/register"),
        ("POST", "/internal/trackers/schedule"),
        ("PUT", "/internal/trackers/guilds/g1"),
    ],
)
async def test_a_chunked_body_over_the_limit_is_413_on_every_route(
    served: Served, method: str, route: str
) -> None:
    response = await served.send(method, route, "bot", content=_chunks(LIMIT * 4))

    assert "content-length" not in {k.lower() for k in response.request.headers}
    message = refused(response, 413)
    assert str(LIMIT) in message
    declared = await served.send(method, route, "bot", content=b"x" * (LIMIT + 1))
    assert str(LIMIT) in refused(declared, 413)
