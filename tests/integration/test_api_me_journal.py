"""A user's journal and settings over HTTP (`/v1/me/journal`, `/v1/me/settings`) on SQLite and
PostgreSQL: entries kept idempotently under their own id, each shown with its local day;
paged reads with a time filter; 422s naming the field; another user's or tenant's entries
never visible; the observer's configuration and contribution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from trackd.app import create_app
from trackd.domain.access import Role
from trackd.modules import journal, service
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.repos import tokens

pytestmark = pytest.mark.timeout(60)

ACME, GLOBEX = "acme", "globex"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclass
class Api:
    runtime: Runtime
    client: httpx.AsyncClient
    auth: dict[str, dict[str, str]]

    async def get(self, path: str, who: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.auth[who])

    async def post(self, path: str, who: str, body: Any) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.auth[who])

    async def put(self, path: str, who: str, body: Any) -> httpx.Response:
        return await self.client.put(path, json=body, headers=self.auth[who])

    async def delete(self, path: str, who: str) -> httpx.Response:
        return await self.client.delete(path, headers=self.auth[who])


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    runtime = Runtime.build(Settings(database_url=database_url), ingest=False)
    await runtime.start(migrate=False)
    try:
        async with runtime.sessions() as s, s.begin():
            issued = {
                "alice": await tokens.create(s, ACME, user_id="alice", role=Role.USER),
                "bob": await tokens.create(s, ACME, user_id="bob", role=Role.USER),
                "rita": await tokens.create(s, ACME, user_id="alice", role=Role.READER),
                "admin": await tokens.create(s, ACME, user_id="ada", role=Role.ADMIN),
                "bot": await tokens.create(s, ACME, user_id=None, role=Role.SERVICE),
                "globex": await tokens.create(s, GLOBEX, user_id="alice", role=Role.USER),
            }
        auth = {name: {"Authorization": f"Bearer {token}"} for name, token in issued.items()}
        transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
            yield Api(runtime, client, auth)
    finally:
        await runtime.stop()


def error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return str(body["error"]["message"])


def entry(**changes: Any) -> dict[str, Any]:
    return {
        "timestamp": "2026-11-30T23:30:00+00:00",
        "mood_score": 4,
        "energy_score": 7,
    } | changes


async def test_record_read_idempotent_update_and_delete(api: Api) -> None:
    body = entry(
        id="2026-11-30-evening",
        sleep_hours=6.5,
        symptoms=["Headache", "moon_ache"],
        text="long day",
        metrics={"steps": 8000, "coffee": 3},
    )
    created = await api.post("/v1/me/journal", "alice", body)
    assert created.status_code == 201, created.text
    shown = created.json()
    assert shown["saved"] == "new"
    assert (shown["id"], shown["timestamp"], shown["day"], shown["timezone"]) == (
        "2026-11-30-evening",
        "2026-11-30T23:30:00+00:00",
        "2026-11-30",
        "UTC",
    )
    assert (shown["symptoms"], shown["free_tags"]) == (["headache", "moon_ache"], ["moon_ache"])
    assert (shown["metrics"], shown["sleep_hours"], shown["text"]) == (
        {"steps": 8000, "coffee": 3},
        6.5,
        "long day",
    )

    again = await api.post("/v1/me/journal", "alice", body)
    assert (again.status_code, again.json()["saved"]) == (200, "unchanged")
    changed = await api.post("/v1/me/journal", "alice", body | {"mood_score": 6})
    assert (changed.status_code, changed.json()["saved"]) == (200, "updated")
    assert changed.json()["created_at"] == shown["created_at"]

    read = await api.get("/v1/me/journal/2026-11-30-evening", "alice")
    assert read.status_code == 200 and read.json()["mood_score"] == 6
    listed = (await api.get("/v1/me/journal", "alice")).json()
    assert [e["id"] for e in listed["entries"]] == ["2026-11-30-evening"]

    # Without an id, trackd gives the entry one.
    anonymous = await api.post("/v1/me/journal", "alice", entry())
    assert anonymous.status_code == 201 and anonymous.json()["id"]

    gone = await api.delete("/v1/me/journal/2026-11-30-evening", "alice")
    assert gone.status_code == 204
    assert (await api.get("/v1/me/journal/2026-11-30-evening", "alice")).status_code == 404
    assert (await api.delete("/v1/me/journal/2026-11-30-evening", "alice")).status_code == 404


async def test_the_same_id_sent_twice_at_once_is_one_entry(api: Api) -> None:
    body = entry(id="twice")
    answers = await asyncio.gather(*(api.post("/v1/me/journal", "alice", body) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert sorted(a.json()["saved"] for a in answers) == ["new"] + ["unchanged"] * 3
    listed = (await api.get("/v1/me/journal", "alice")).json()["entries"]
    assert [e["id"] for e in listed] == ["twice"]


async def test_the_users_timezone_decides_the_day(api: Api) -> None:
    assert (await api.get("/v1/me/settings", "alice")).json() == {"timezone": "UTC"}
    await api.post("/v1/me/journal", "alice", entry(id="late"))

    moved = await api.put("/v1/me/settings", "alice", {"timezone": "Pacific/Auckland"})
    assert moved.status_code == 200 and moved.json() == {"timezone": "Pacific/Auckland"}
    assert (await api.get("/v1/me/settings", "alice")).json() == {"timezone": "Pacific/Auckland"}
    shown = (await api.get("/v1/me/journal/late", "alice")).json()
    # 23:30 UTC on 30 November is 12:30 on 1 December in Auckland (UTC+13).
    assert (shown["day"], shown["timezone"]) == ("2026-12-01", "Pacific/Auckland")
    # Bob's settings are his own.
    assert (await api.get("/v1/me/settings", "bob")).json() == {"timezone": "UTC"}

    wrong = await api.put("/v1/me/settings", "alice", {"timezone": "Mars/Olympus"})
    assert wrong.status_code == 422 and error(wrong).startswith("timezone: ")
    extra = await api.put("/v1/me/settings", "alice", {"timezone": "UTC", "tz": "UTC"})
    assert extra.status_code == 422 and "tz" in error(extra)


async def test_daily_series_follows_the_timezone(api: Api) -> None:
    for at, mood, symptoms in [
        # New York springs forward on 8 March: 04:59 UTC is still 7 March there.
        ("2026-03-08T04:59:00+00:00", 2, ["headache"]),
        ("2026-03-08T05:00:00+00:00", 4, []),
        ("2026-03-09T03:59:00+00:00", 8, ["fatigue"]),
        ("2026-03-09T04:00:00+00:00", 9, []),
    ]:
        sent = await api.post(
            "/v1/me/journal", "alice", entry(timestamp=at, mood_score=mood, symptoms=symptoms)
        )
        assert sent.status_code == 201, sent.text
    await api.post("/v1/me/journal", "bob", entry(timestamp="2026-03-08T12:00:00+00:00"))
    await api.put("/v1/me/settings", "alice", {"timezone": "America/New_York"})

    async with api.runtime.sessions() as s:
        series = await journal.daily_series(s, ACME, "alice")
        middle = await journal.daily_series(
            s, ACME, "alice", since=date(2026, 3, 8), until=date(2026, 3, 8)
        )
    assert series.days == [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]
    assert series.columns["mood"] == [2.0, 6.0, 9.0]
    assert series.columns["symptom.headache"] == [1.0, 0.0, 0.0]
    assert series.columns["symptom.fatigue"] == [0.0, 1.0, 0.0]
    assert (middle.days, middle.entries) == ([date(2026, 3, 8)], [2])


async def test_pages_and_time_filter(api: Api) -> None:
    for day in range(1, 8):
        sent = await api.post(
            "/v1/me/journal", "alice", entry(id=f"d{day}", timestamp=f"2026-11-0{day}T09:00:00Z")
        )
        assert sent.status_code == 201, sent.text
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/v1/me/journal", "alice", **params)).json()
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"d{day}" for day in range(7, 0, -1)]

    window = await api.get(
        "/v1/me/journal", "alice", since="2026-11-03T09:00:00Z", until="2026-11-05T09:00:00Z"
    )
    assert [e["id"] for e in window.json()["entries"]] == ["d4", "d3"]

    naive = await api.get("/v1/me/journal", "alice", since="2026-11-03T09:00:00")
    assert naive.status_code == 422 and "since" in error(naive)
    damaged = await api.get("/v1/me/journal", "alice", cursor="not-a-cursor")
    assert damaged.status_code == 422 and error(damaged).startswith("cursor: ")
    too_many = await api.get("/v1/me/journal", "alice", limit=1000)
    assert too_many.status_code == 422 and "limit" in error(too_many)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"mood_score": 11}, "mood_score"),
        ({"energy_score": 0}, "energy_score"),
        ({"timestamp": "2026-11-30T23:30:00"}, "timestamp"),
        ({"sleep_hours": 30}, "sleep_hours"),
        ({"symptoms": ["not a tag"]}, "symptoms.0"),
        ({"metrics": {"steps": "many"}}, "metrics.steps"),
        ({"mood": 5}, "mood"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    response = await api.post("/v1/me/journal", "alice", entry(**changes))
    assert response.status_code == 422, response.text
    assert error(response).startswith(f"{field}: "), error(response)


async def test_text_length_and_vocabulary_come_from_the_observer_config(api: Api) -> None:
    written = await api.put(
        "/v1/modules/observer/config",
        "admin",
        {"config": {"text_max_length": 10, "symptom_vocabulary": ["moon_ache"]}, "version": 0},
    )
    assert written.status_code == 200, written.text
    long = await api.post("/v1/me/journal", "alice", entry(text="x" * 11))
    assert long.status_code == 422
    assert error(long) == "text: at most 10 characters, not 11"
    fits = await api.post("/v1/me/journal", "alice", entry(text="x" * 10, symptoms=["moon_ache"]))
    assert fits.status_code == 201 and fits.json()["free_tags"] == []
    bad = await api.put(
        "/v1/modules/observer/config", "admin", {"config": {"q": 1.5, "lags": [0, 0]}, "version": 1}
    )
    assert bad.status_code == 422
    assert "config.q" in error(bad) and "config.lags" in error(bad)
    # Another tenant keeps the defaults.
    other = await api.post("/v1/me/journal", "globex", entry(text="x" * 11))
    assert other.status_code == 201


async def test_another_users_or_tenants_entries_are_never_visible(api: Api) -> None:
    await api.post("/v1/me/journal", "alice", entry(id="private"))
    for who in ("bob", "globex"):
        assert (await api.get("/v1/me/journal/private", who)).status_code == 404
        assert (await api.delete("/v1/me/journal/private", who)).status_code == 404
        assert (await api.get("/v1/me/journal", who)).json()["entries"] == []
    # The same id is each user's own: bob's entry "private" is another entry.
    bobs = await api.post("/v1/me/journal", "bob", entry(id="private", mood_score=1))
    assert (bobs.status_code, bobs.json()["saved"]) == (201, "new")
    assert (await api.get("/v1/me/journal/private", "alice")).json()["mood_score"] == 4

    # A reader may read its user's journal, not change it; a token without a user has none.
    assert (await api.get("/v1/me/journal/private", "rita")).status_code == 200
    refused = await api.post("/v1/me/journal", "rita", entry())
    assert refused.status_code == 403 and "reader" in error(refused)
    assert (await api.delete("/v1/me/journal/private", "rita")).status_code == 403
    assert (await api.put("/v1/me/settings", "rita", {"timezone": "UTC"})).status_code == 403
    nobody = await api.get("/v1/me/journal", "bot")
    assert nobody.status_code == 403 and "names no user" in error(nobody)
    assert (await api.client.get("/v1/me/journal")).status_code == 401


async def test_observer_contributes_the_journal_counts(api: Api) -> None:
    await api.post("/v1/me/journal", "alice", entry(id="a", timestamp="2026-11-29T08:00:00Z"))
    await api.post("/v1/me/journal", "alice", entry(id="b", timestamp="2026-11-30T08:00:00Z"))
    await api.post("/v1/me/journal", "bob", entry(id="c"))
    async with api.runtime.sessions() as s:
        contributions = await service.synthesis(s, ACME, "alice", NOW)
        [everyone] = [
            c for c in await service.synthesis(s, ACME, None, NOW) if c.module == "observer"
        ]
    [observer] = [c for c in contributions if c.module == "observer"]
    assert observer.layer == "intelligence"
    assert observer.data == {
        "entries": 2,
        "first_entry_at": "2026-11-29T08:00:00+00:00",
        "last_entry_at": "2026-11-30T08:00:00+00:00",
        "timezone": "UTC",
    }
    assert observer.insights == [
        "2 journal entries; no analysis has run, so no pattern is reported"
    ]
    assert everyone.data == {"entries": None}


async def test_openapi_documents_the_routes(api: Api) -> None:
    schema = (await api.client.get("/openapi.json")).json()
    paths = schema["paths"]
    assert {"post", "get"} <= set(paths["/v1/me/journal"])
    assert {"get", "delete"} <= set(paths["/v1/me/journal/{entry_id}"])
    assert {"get", "put"} <= set(paths["/v1/me/settings"])
    post = paths["/v1/me/journal"]["post"]
    assert {"201", "200", "422"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/JournalEntryIn"}
    fields = schema["components"]["schemas"]["JournalEntryIn"]["properties"]
    assert {"id", "timestamp", "mood_score", "energy_score", "symptoms", "metrics"} <= set(fields)
