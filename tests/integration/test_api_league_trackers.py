"""League trackers over HTTP (`/api/trackers`), on SQLite and PostgreSQL, with polls run
by a real poller against a local fake of the stats site."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from league_support import RECORDED_URL, League, league, site, url
from sqlalchemy import select

from trackd.store.models import PollRow, ScheduleRow, SnapshotRow, TrackerRow

__all__ = ["league", "site"]  # fixtures

pytestmark = pytest.mark.timeout(60)


def message(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return str(body["error"]["message"])


async def register(league: League, who: str, *urls: str) -> list[dict[str, Any]]:
    response = await league.post("/api/trackers/register", who, {"urls": list(urls)})
    assert response.status_code == 201, response.text
    trackers: list[dict[str, Any]] = response.json()["trackers"]
    return trackers


async def test_register_poll_and_read_seasons(league: League) -> None:
    second = league.profile("76561198000000002")
    [recorded, other] = await register(league, "alice", RECORDED_URL, second)
    assert recorded["userId"] == "alice"
    assert (recorded["platform"], recorded["username"]) == ("psn", "nssbali_")
    assert recorded["url"] == RECORDED_URL
    assert recorded["scrapingStatus"] == "PENDING"
    assert recorded["scrapingAttempts"] == 0 and recorded["lastScrapedAt"] is None

    # Each tracker has its daily refresh and a first poll waiting, which fetches 3 more seasons.
    async with league.runtime.sessions() as s:
        schedules = (await s.scalars(select(ScheduleRow))).all()
        polls = (await s.scalars(select(PollRow))).all()
    assert sorted(x.name for x in schedules) == sorted(
        f"tracker:{t['id']}:daily" for t in (recorded, other)
    )
    assert {x.cron for x in schedules} == {"0 2 * * *"}
    assert {p.target["first_scrape"] for p in polls} == {True}

    assert await league.work() == 2
    status = (await league.get(f"/api/trackers/{other['id']}/status", "alice")).json()
    assert status["scrapingStatus"] == "COMPLETED"
    assert status["scrapingAttempts"] == 1
    assert status["lastScrapingError"] is None and status["lastScrapedAt"] is not None
    assert league.site.seasons_asked("steam", "76561198000000002") == [None, "33", "32", "31"]

    seasons = (await league.get(f"/api/trackers/{other['id']}/seasons", "alice")).json()["seasons"]
    assert [s["season"] for s in seasons] == [34, 33, 32, 31]
    assert seasons[0]["playlists"]["2v2"]["rating"] == 1500
    assert seasons[1]["playlists"]["2v2"]["rating"] == 1490

    detail = (await league.get(f"/api/trackers/{recorded['id']}/detail", "alice")).json()
    # The recorded profile has no seasons 31-33 on the fake site: those polls found no
    # player, so the first poll failed as a whole and nothing half-done was stored.
    assert detail["scrapingStatus"] == "FAILED"
    assert "no such Rocket League profile" in detail["lastScrapingError"]
    assert detail["seasons"] == [] and detail["mmr"] is None

    league.site.add_profile(
        "psn", "nssbali_", {"data": {"metadata": {"currentSeason": 34}, "segments": []}}, season=33
    )
    for season in (32, 31):
        league.site.add_profile("psn", "nssbali_", {"data": {"segments": []}}, season=season)
    refreshed = await league.post(f"/api/trackers/{recorded['id']}/refresh", "alice")
    assert refreshed.status_code == 202 and refreshed.json()["queued"] is True
    await league.work()
    detail = (await league.get(f"/api/trackers/{recorded['id']}/detail", "alice")).json()
    assert detail["scrapingStatus"] == "COMPLETED"
    assert [s["season"] for s in detail["seasons"]] == [34, 33, 32, 31]
    current = detail["seasons"][0]
    assert current["playlists"]["2v2"]["rank"] == "Supersonic Legend"
    assert current["allTimePeaks"]["2v2"]["rating"] == 2772
    # MMR under the default rules: 2v2 and 3v3 averaged.
    assert detail["mmr"]["value"] == 2082  # (2629 + 1534) / 2, rounded half up


async def test_register_rules(league: League) -> None:
    urls = [url("steam", f"p{i}") for i in range(5)]
    cases = [
        ({"urls": []}, "between 1 and 4 tracker URLs; the list is empty"),
        ({"urls": urls}, "between 1 and 4 tracker URLs; 5 were given"),
        ({"urls": [urls[0], urls[0].upper()]}, "URL 2 is the same tracker as URL 1"),
        ({"urls": ["https://example.com/x"]}, "URL 1: not a Rocket League tracker profile URL"),
        ({"urls": [url("xbox", "a")]}, "unsupported platform 'xbox'"),
    ]
    for body, expected in cases:
        response = await league.post("/api/trackers/register", "alice", body)
        assert response.status_code == 400, body
        assert expected in message(response)
    malformed = await league.post("/api/trackers/register", "alice", {"urls": "x"})
    assert malformed.status_code == 422

    await register(league, "alice", urls[0])
    again = await league.post("/api/trackers/register", "alice", {"urls": [urls[1]]})
    assert again.status_code == 400
    assert "use POST /api/trackers/add" in message(again)
    taken = await league.post("/api/trackers/register", "bob", {"urls": [urls[1], urls[0]]})
    assert taken.status_code == 400
    assert "already registered by another user" in message(taken)
    # Nothing of a refused request was kept.
    assert (await league.get("/api/trackers/me", "bob")).json()["total"] == 0


async def test_add_up_to_four(league: League) -> None:
    await register(league, "alice", url("epic", "one"))
    for name in ("two", "three", "four"):
        added = await league.post("/api/trackers/add", "alice", {"url": url("epic", name)})
        assert added.status_code == 201, added.text
        assert added.json()["username"] == name
    fifth = await league.post("/api/trackers/add", "alice", {"url": url("epic", "five")})
    assert fifth.status_code == 400
    assert "at most 4 trackers; you have 4" in message(fifth)
    mine = await league.get("/api/trackers/me", "alice")
    assert [t["username"] for t in mine.json()["trackers"]] == ["four", "three", "two", "one"]
    own = await league.post("/api/trackers/add", "bob", {"url": url("epic", "ONE")})
    assert own.status_code == 400 and "already registered by another user" in message(own)


async def test_owner_only_changes_and_tenant_isolation(league: League) -> None:
    [tracker] = await register(league, "alice", url("xbl", "Some%20One"))
    assert tracker["username"] == "Some One"
    path = f"/api/trackers/{tracker['id']}"
    # Reads are open to the tenant; changes are the owner's (or an admin's).
    assert (await league.get(path, "bob")).status_code == 200
    assert (await league.get(path, "reader")).status_code == 200
    for method, suffix, body in (
        ("PUT", "", {"displayName": "x"}),
        ("DELETE", "", None),
        ("POST", "/refresh", None),
        ("POST", "/snapshots", {"season": 34, "playlists": {"2v2": {"rating": 1}}}),
    ):
        for who in ("bob", "reader"):
            response = await league.client.request(
                method, path + suffix, json=body, headers=league.auth[who]
            )
            assert response.status_code == 403, (method, suffix, who)
            assert "another user" in message(response) or "reader" in message(response)
    # Another tenant does not see it at all, even with the same user id.
    assert (await league.get(path, "globex")).status_code == 404
    assert (await league.get("/api/trackers", "globex")).json()["total"] == 0
    missing = await league.get("/api/trackers/018f0000-0000-7000-8000-000000000000", "alice")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    # An id that is not well-formed names no tracker either: 404 on every tracker route.
    for method, suffix, body in (
        ("GET", "", None),
        ("GET", "/detail", None),
        ("GET", "/status", None),
        ("GET", "/seasons", None),
        ("GET", "/snapshots", None),
        ("PUT", "", {"displayName": "x"}),
        ("DELETE", "", None),
        ("POST", "/refresh", None),
        ("POST", "/snapshots", {"season": 34, "playlists": {"2v2": {"rating": 1}}}),
    ):
        for bad_id in ("not-a-uuid", "1", "%2e%2e"):
            response = await league.client.request(
                method, f"/api/trackers/{bad_id}{suffix}", json=body, headers=league.auth["alice"]
            )
            assert response.status_code == 404, (method, suffix, bad_id, response.text)
            assert response.json()["error"]["code"] == "not_found"
            assert "no such tracker" in message(response)
    renamed = await league.client.put(
        path, json={"displayName": "Mine"}, headers=league.auth["admin"]
    )
    assert renamed.status_code == 200 and renamed.json()["displayName"] == "Mine"
    assert (await league.get("/api/trackers/me", "bot")).status_code == 403


async def test_delete_is_soft_and_frees_the_url(league: League) -> None:
    player = league.profile("76561198000000009")
    [first] = await register(league, "alice", player)
    await league.work()
    deleted = await league.client.delete(
        f"/api/trackers/{first['id']}", headers=league.auth["alice"]
    )
    assert deleted.status_code == 204
    assert (await league.get(f"/api/trackers/{first['id']}", "alice")).status_code == 404
    # Deleting stopped its daily refresh.
    async with league.runtime.sessions() as s:
        daily = await s.scalar(
            select(ScheduleRow).where(ScheduleRow.name == f"tracker:{first['id']}:daily")
        )
        row = await s.get(TrackerRow, uuid.UUID(first["id"]))
        kept = (
            await s.scalars(select(SnapshotRow).where(SnapshotRow.subject == first["id"]))
        ).all()
    assert daily is not None and daily.status == "cancelled"
    assert row is not None and row.deleted_at is not None
    assert len(kept) == 4  # history is kept
    # The URL can be registered again, by anyone; it is a new tracker.
    [again] = await register(league, "bob", player)
    assert again["id"] != first["id"]


async def test_update_pause_resume_and_refresh(league: League) -> None:
    [tracker] = await register(league, "alice", league.profile("76561198000000003"))
    path = f"/api/trackers/{tracker['id']}"
    first = await league.post(path + "/refresh", "alice")
    assert first.status_code == 202
    assert first.json()["queued"] is False  # the registration's poll is still waiting
    await league.work()

    paused = await league.client.put(path, json={"isActive": False}, headers=league.auth["alice"])
    assert paused.status_code == 200 and paused.json()["isActive"] is False
    refused = await league.post(path + "/refresh", "alice")
    assert refused.status_code == 400 and "paused" in message(refused)
    async with league.runtime.sessions() as s:
        statuses = set((await s.scalars(select(ScheduleRow.status))).all())
    assert statuses == {"cancelled"}

    resumed = await league.client.put(
        path, json={"isActive": True, "displayName": "Main"}, headers=league.auth["alice"]
    )
    assert resumed.json()["isActive"] is True and resumed.json()["displayName"] == "Main"
    assert resumed.json()["scrapingStatus"] == "PENDING"
    await league.work()
    again = await league.post(path + "/refresh", "alice")
    assert again.json()["queued"] is True
    cleared = await league.client.put(
        path, json={"displayName": None}, headers=league.auth["alice"]
    )
    assert cleared.json()["displayName"] is None
    bad = await league.client.put(
        path, json={"isActive": "sometimes"}, headers=league.auth["alice"]
    )
    assert bad.status_code == 422


async def test_blocked_and_failed_polls_show_in_the_status(league: League) -> None:
    from fakes.trn_server import Reply

    [tracker] = await register(league, "alice", league.profile("76561198000000004"))
    league.site.script(
        "steam", "76561198000000004", Reply(429, "slow down", headers={"Retry-After": "120"})
    )
    await league.work()
    status = (await league.get(f"/api/trackers/{tracker['id']}/status", "alice")).json()
    assert status["scrapingStatus"] == "BLOCKED"
    assert "rate limiting" in status["lastScrapingError"]
    assert status["nextAttemptAt"] is not None
    listed = await league.get("/api/trackers", "alice", status="BLOCKED")
    assert [t["id"] for t in listed.json()["trackers"]] == [tracker["id"]]
    assert (await league.get("/api/trackers", "alice", status="COMPLETED")).json()["total"] == 0

    league.clock.advance(3600)
    await league.work()
    status = (await league.get(f"/api/trackers/{tracker['id']}/status", "alice")).json()
    assert status["scrapingStatus"] == "COMPLETED"

    [gone] = await register(league, "bob", url("steam", "nobody"))
    await league.work()
    failed = (await league.get(f"/api/trackers/{gone['id']}/status", "bob")).json()
    assert failed["scrapingStatus"] == "FAILED"
    assert "no such Rocket League profile" in failed["lastScrapingError"]


async def test_list_filters_sort_and_paging(league: League) -> None:
    await league.post(
        "/internal/trackers/register-multiple",
        "bot",
        {"userId": "u1", "guildId": "g1", "urls": [url("steam", "a"), url("psn", "b")]},
    )
    await league.post(
        "/internal/trackers/register-multiple",
        "bot",
        {"userId": "u2", "guildId": "g2", "urls": [url("psn", "c")]},
    )
    everyone = (await league.get("/api/trackers", "reader")).json()
    assert everyone["total"] == 3
    g1 = (await league.get("/api/trackers", "reader", guildId="g1")).json()
    assert {t["username"] for t in g1["trackers"]} == {"a", "b"}
    psn = (
        await league.get("/api/trackers", "reader", platform="psn", sort="platform", order="asc")
    ).json()
    assert [t["username"] for t in psn["trackers"]] == ["b", "c"]
    page = (await league.get("/api/trackers", "reader", limit=2, offset=2, order="asc")).json()
    assert (page["total"], len(page["trackers"]), page["trackers"][0]["username"]) == (3, 1, "c")
    pending = (await league.get("/api/trackers", "reader", status="PENDING")).json()
    assert pending["total"] == 3
    assert (await league.get("/api/trackers", "reader", platform="origin")).status_code == 422
    assert (await league.get("/api/trackers", "reader", limit=1000)).status_code == 422


async def test_manual_snapshots_and_history(league: League) -> None:
    player = "76561198000000005"
    [tracker] = await register(league, "alice", league.profile(player))
    await league.work()
    path = f"/api/trackers/{tracker['id']}/snapshots"
    entered = await league.post(
        path,
        "alice",
        {
            "season": 34,
            "playlists": {"2v2": {"rank": "Champion II", "rating": 1560, "matchesPlayed": 120}},
        },
    )
    assert entered.status_code == 201, entered.text
    body = entered.json()
    assert body["manual"] is True and body["enteredBy"] == "alice" and body["seq"] == 2
    paths = {c["path"] for c in body["changes"]}
    assert {"playlists.2v2.rating", "playlists.2v2.rank"} <= paths
    history = (await league.get(path, "bob", season=34)).json()["snapshots"]
    assert [s["seq"] for s in history] == [2, 1]
    assert history[1]["data"]["playlists"]["2v2"]["rating"] == 1500  # the fetched one is kept
    everything = (await league.get(path, "bob", limit=3)).json()
    assert len(everything["snapshots"]) == 3 and everything["nextBefore"] is not None
    rest = (await league.get(path, "bob", limit=3, before=everything["nextBefore"])).json()
    assert len(rest["snapshots"]) == 2 and rest["nextBefore"] is None
    bad = await league.post(path, "alice", {"season": 0, "playlists": {}})
    assert bad.status_code == 422
    unknown = await league.post(path, "alice", {"season": 3, "playlists": {"5v5": {}}})
    assert unknown.status_code == 422


# On PostgreSQL, where requests run truly at once; SQLite lets one writer in at a time.
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_concurrent_requests_cannot_pass_the_rules(league: League) -> None:
    # Two adds at once for a user with three trackers: the limit holds.
    await register(league, "alice", url("epic", "a1"), url("epic", "a2"), url("epic", "a3"))
    adds = await asyncio.gather(
        *(league.post("/api/trackers/add", "alice", {"url": url("epic", n)}) for n in ("x", "y"))
    )
    assert sorted(r.status_code for r in adds) == [201, 400]
    # Two users registering one profile at once: one gets it.
    both = await asyncio.gather(
        *(
            league.post("/api/trackers/register", who, {"urls": [url("psn", "same")]})
            for who in ("bob", "admin")
        )
    )
    assert sorted(r.status_code for r in both) == [201, 400]
    refused = next(r for r in both if r.status_code == 400)
    assert "registered" in message(refused)
