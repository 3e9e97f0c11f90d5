"""`/v1/me/natal` on SQLite and PostgreSQL: a user stores, reads and deletes their own chart;
bad birth data is a 422 that says what to fix; tenants and users never see each other's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from trackd.app import create_app
from trackd.domain.access import Role
from trackd.domain.astronomy import natal_chart
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.repos import tokens

pytestmark = pytest.mark.timeout(60)

BIRTH = {
    "birth": "1990-05-01T12:00:00",
    "timezone": "Europe/Paris",
    "latitude": 48.85,
    "longitude": 2.35,
}


@dataclass
class Api:
    runtime: Runtime
    client: httpx.AsyncClient
    auth: dict[str, dict[str, str]]

    async def call(self, method: str, path: str, who: str, body: Any = None) -> httpx.Response:
        return await self.client.request(method, path, headers=self.auth[who], json=body)


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    runtime = Runtime.build(Settings(database_url=database_url), ingest=False)
    await runtime.start(migrate=False)
    try:
        async with runtime.sessions() as s, s.begin():
            issued = {
                "alice": await tokens.create(s, "acme", user_id="alice", role=Role.USER),
                "bob": await tokens.create(s, "acme", user_id="bob", role=Role.USER),
                "rita": await tokens.create(s, "acme", user_id="rita", role=Role.READER),
                "service": await tokens.create(s, "acme", user_id=None, role=Role.SERVICE),
                "globex": await tokens.create(s, "globex", user_id="alice", role=Role.USER),
            }
        auth = {name: {"Authorization": f"Bearer {token}"} for name, token in issued.items()}
        transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
            yield Api(runtime, client, auth)
    finally:
        await runtime.stop()


def message(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


async def test_a_user_stores_reads_and_deletes_their_chart(api: Api) -> None:
    stored = await api.call("PUT", "/v1/me/natal", "alice", BIRTH)
    assert stored.status_code == 200, stored.text
    chart = stored.json()
    # 12:00 in Paris on 1 May 1990 was 10:00 UTC (summer time).
    assert chart["birth"] == "1990-05-01T10:00:00+00:00"
    assert (chart["timezone"], chart["birth_local"]) == ("Europe/Paris", "1990-05-01T12:00:00")
    points = chart["points"]
    assert set(points) == {
        "sun",
        "moon",
        "mercury",
        "venus",
        "mars",
        "jupiter",
        "saturn",
        "uranus",
        "neptune",
        "pluto",
        "ascendant",
        "midheaven",
    }
    assert points["sun"]["sign"] == "taurus"
    expected = natal_chart(datetime.fromisoformat(chart["birth"]), 48.85, 2.35).points
    for name, point in points.items():
        assert point["longitude"] == pytest.approx(expected[name].longitude, abs=1e-9)
        assert point["retrograde"] is expected[name].retrograde
    assert {p["retrograde"] for p in points.values()} == {True, False}
    assert (await api.call("GET", "/v1/me/natal", "alice")).json() == chart

    # Another user of the tenant and the same user id in another tenant have none.
    for who in ("bob", "globex"):
        response = await api.call("GET", "/v1/me/natal", who)
        assert response.status_code == 404
        assert "PUT /v1/me/natal" in message(response)

    moved = await api.call(
        "PUT",
        "/v1/me/natal",
        "alice",
        {**BIRTH, "birth": "1990-05-01T10:00:00Z", "timezone": None, "latitude": -33.9},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["birth"] == chart["birth"]
    assert moved.json()["points"]["ascendant"] != points["ascendant"]

    assert (await api.call("DELETE", "/v1/me/natal", "bob")).status_code == 404
    assert (await api.call("DELETE", "/v1/me/natal", "alice")).status_code == 204
    assert (await api.call("GET", "/v1/me/natal", "alice")).status_code == 404


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"birth": "2021-10-31T02:30:00"}, "happened twice"),
        ({"birth": "2021-03-28T02:30:00"}, "never happened"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"timezone": None}, "has no offset"),
        ({"birth": "1850-01-01T00:00:00"}, "1899"),
        ({"birth": "0001-01-01T00:00:00", "timezone": "Asia/Tokyo"}, "out of range"),
        ({"latitude": 90}, "latitude"),
        ({"longitude": -181}, "longitude"),
        ({"latitude": "north"}, "latitude"),
    ],
)
async def test_bad_birth_data_is_422_saying_what_to_fix(
    api: Api, change: dict[str, Any], says: str
) -> None:
    response = await api.call("PUT", "/v1/me/natal", "alice", {**BIRTH, **change})
    assert response.status_code == 422, response.text
    assert says in response.text
    assert (await api.call("GET", "/v1/me/natal", "alice")).status_code == 404


async def test_readers_and_tokens_without_user_may_not_write(api: Api) -> None:
    assert (await api.call("PUT", "/v1/me/natal", "rita", BIRTH)).status_code == 403
    assert (await api.call("PUT", "/v1/me/natal", "service", BIRTH)).status_code == 403
    assert (await api.client.put("/v1/me/natal", json=BIRTH)).status_code == 401
