"""The league bot's tracker routes (`/internal/trackers`): registering for users, processing,
scheduled batches per guild, the daily refresh, and guild webhooks and MMR rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from league_support import League, league, season_payload, site, url
from sqlalchemy import select

from trackd.store.models import OutboxRow, PollRow, SnapshotRow
from trackd.store.repos import channels as channels_repo
from trackd.store.repos import league_trackers as trackers_repo

__all__ = ["league", "site"]  # fixtures

pytestmark = pytest.mark.timeout(60)


def message(response: Any) -> str:
    return str(response.json()["error"]["message"])


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def register_for(
    league: League, user: str, guild: str, *players: str
) -> list[dict[str, Any]]:
    response = await league.post(
        "/internal/trackers/register-multiple",
        "bot",
        {"userId": user, "guildId": guild, "urls": [league.profile(p) for p in players]},
    )
    assert response.status_code == 201, response.text
    trackers: list[dict[str, Any]] = response.json()["trackers"]
    return trackers


async def test_only_the_bot_and_admins(league: League) -> None:
    calls = [
        (
            "POST",
            "/internal/trackers/register-multiple",
            {"userId": "u", "urls": [url("psn", "x")]},
        ),
        ("POST", "/internal/trackers/add", {"userId": "u", "url": url("psn", "x")}),
        ("POST", "/internal/trackers/process-pending", None),
        ("POST", "/internal/trackers/process", {"guildId": "g"}),
        (
            "POST",
            "/internal/trackers/schedule",
            {"guildId": "g", "scheduledAt": "2099-01-01T00:00:00Z"},
        ),
        ("GET", "/internal/trackers/schedule/guild/g", None),
        ("POST", "/internal/trackers/schedule/018f0000-0000-7000-8000-000000000000/cancel", None),
        ("GET", "/internal/trackers/guilds/g", None),
    ]
    for method, path, body in calls:
        for who in ("alice", "reader"):
            response = await league.client.request(
                method, path, json=body, headers=league.auth[who]
            )
            assert response.status_code == 403, (path, who)
            assert "service and admin tokens" in message(response)
        unauthenticated = await league.client.request(method, path, json=body)
        assert unauthenticated.status_code == 401
    assert (await league.get("/internal/trackers/guilds/g", "admin")).status_code == 200


async def test_register_and_add_for_users(league: League) -> None:
    [tracker] = await register_for(league, "u1", "g1", "76561198000000101")
    assert (tracker["userId"], tracker["guildId"]) == ("u1", "g1")
    again = await league.post(
        "/internal/trackers/register-multiple", "bot", {"userId": "u1", "urls": [url("psn", "y")]}
    )
    assert again.status_code == 400 and "/api/trackers/add" in message(again)
    for name in ("a", "b", "c"):
        added = await league.post(
            "/internal/trackers/add",
            "bot",
            {"userId": "u1", "url": url("switch", name), "userData": {"username": "U One"}},
        )
        assert added.status_code == 201 and added.json()["userData"] == {"username": "U One"}
    over = await league.post(
        "/internal/trackers/add", "bot", {"userId": "u1", "url": url("switch", "d")}
    )
    assert over.status_code == 400 and "at most 4" in message(over)
    missing_user = await league.post("/internal/trackers/add", "bot", {"url": url("switch", "d")})
    assert missing_user.status_code == 422


async def test_process_pending_and_guild(league: League) -> None:
    await register_for(league, "u1", "g1", "76561198000000201", "76561198000000202")
    await register_for(league, "u2", "g2", "76561198000000203")
    # The first polls are waiting already: nothing more to queue.
    busy = await league.post("/internal/trackers/process", "bot", {"guildId": "g1"})
    assert busy.status_code == 202 and busy.json() == {
        "guildId": "g1",
        "queued": 0,
        "alreadyQueued": 2,
    }
    await league.work()
    processed = await league.post("/internal/trackers/process", "bot", {"guildId": "g1"})
    assert processed.json()["queued"] == 2
    targets = await _targets(league)
    assert sum(1 for t in targets if not t["first_scrape"]) == 2
    await league.work()

    # A tracker whose poll failed is pending work; the others are not.
    [gone] = (
        await league.post(
            "/internal/trackers/register-multiple",
            "bot",
            {"userId": "u3", "urls": [url("xbl", "gone")]},
        )
    ).json()["trackers"]
    await league.work()
    pending = await league.post("/internal/trackers/process-pending", "bot")
    assert pending.json() == {"queued": 1, "alreadyQueued": 0}
    targets = await _targets(league)
    assert targets[-1]["tracker_id"] == gone["id"]
    assert targets[-1]["first_scrape"] is True  # it never got its seasons


async def _targets(league: League) -> list[dict[str, Any]]:
    async with league.runtime.sessions() as s:
        polls = (await s.scalars(select(PollRow).order_by(PollRow.created_at, PollRow.id))).all()
    return [p.target for p in polls]


async def test_scheduled_batches(league: League) -> None:
    await register_for(league, "u1", "g1", "76561198000000301", "76561198000000302")
    await league.work()
    now = datetime.now(UTC)
    past = await league.post(
        "/internal/trackers/schedule",
        "bot",
        {"guildId": "g1", "scheduledAt": iso(now - timedelta(minutes=1))},
    )
    assert past.status_code == 400 and "must be in the future" in message(past)
    naive = await league.post(
        "/internal/trackers/schedule",
        "bot",
        {"guildId": "g1", "scheduledAt": "2099-01-01T00:00:00"},
    )
    assert naive.status_code == 422

    later, soon = now + timedelta(hours=2), now + timedelta(hours=1)
    made = []
    for when in (later, soon):
        response = await league.post(
            "/internal/trackers/schedule",
            "bot",
            {"guildId": "g1", "scheduledAt": iso(when), "metadata": {"reason": "weekly"}},
        )
        assert response.status_code == 201, response.text
        made.append(response.json())
    assert made[0]["status"] == "PENDING" and made[0]["trackerCount"] == 2
    assert made[0]["metadata"] == {"reason": "weekly"}
    listed = (await league.get("/internal/trackers/schedule/guild/g1", "bot")).json()["schedules"]
    assert [s["id"] for s in listed] == [made[1]["id"], made[0]["id"]]  # by time

    cancelled = await league.post(f"/internal/trackers/schedule/{made[0]['id']}/cancel", "bot")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    twice = await league.post(f"/internal/trackers/schedule/{made[0]['id']}/cancel", "bot")
    assert twice.status_code == 400 and "only a PENDING schedule" in message(twice)
    unknown = await league.post(
        "/internal/trackers/schedule/018f0000-0000-7000-8000-000000000000/cancel", "bot"
    )
    assert unknown.status_code == 404
    # An id that is not even well-formed names no batch either.
    malformed = await league.post("/internal/trackers/schedule/not-an-id/cancel", "bot")
    assert malformed.status_code == 404 and "no tracker processing schedule" in message(malformed)

    # The soon one runs when its time comes: one poll per tracker of the guild.
    league.clock.set(soon + timedelta(seconds=5))
    assert await league.tick() >= 1
    running = (
        await league.get("/internal/trackers/schedule/guild/g1", "bot", status="RUNNING")
    ).json()
    assert [s["id"] for s in running["schedules"]] == [made[1]["id"]]
    await league.work()
    done = (await league.get("/internal/trackers/schedule/guild/g1", "bot")).json()["schedules"]
    statuses = {s["id"]: s["status"] for s in done}
    assert statuses == {made[1]["id"]: "COMPLETED", made[0]["id"]: "CANCELLED"}
    assert done[0]["scrapes"] == {"completed": 2} and done[0]["completedAt"] is not None

    hidden = (
        await league.get("/internal/trackers/schedule/guild/g1", "bot", includeCompleted="false")
    ).json()
    assert [s["status"] for s in hidden["schedules"]] == ["CANCELLED"]
    wins = (
        await league.get(
            "/internal/trackers/schedule/guild/g1",
            "bot",
            status="COMPLETED",
            includeCompleted="false",
        )
    ).json()
    assert [s["status"] for s in wins["schedules"]] == ["COMPLETED"]
    assert (
        await league.get("/internal/trackers/schedule/guild/g1", "bot", status="DONE")
    ).status_code == 422
    assert (await league.get("/internal/trackers/schedule/guild/g2", "bot")).json()[
        "schedules"
    ] == []
    # Another tenant's bot does not see them (globex has only a user token: 403 before 404).
    assert (await league.get("/internal/trackers/schedule/guild/g1", "globex")).status_code == 403


async def test_a_batch_missed_while_down_is_missed_not_pending(league: League) -> None:
    await register_for(league, "u1", "g1", "76561198000000401")
    await league.work()
    when = datetime.now(UTC) + timedelta(minutes=5)
    made = (
        await league.post(
            "/internal/trackers/schedule", "bot", {"guildId": "g1", "scheduledAt": iso(when)}
        )
    ).json()
    # trackd comes back two hours later: past the batch's hour of grace.
    league.clock.set(when + timedelta(hours=2))
    await league.tick()
    [batch] = (await league.get("/internal/trackers/schedule/guild/g1", "bot")).json()["schedules"]
    assert (batch["id"], batch["status"]) == (made["id"], "MISSED")


async def test_daily_refresh_of_every_active_tracker(league: League) -> None:
    [one, two] = await register_for(league, "u1", "g1", "76561198000000501", "76561198000000502")
    await league.work()
    paused = await league.client.put(
        f"/api/trackers/{two['id']}", json={"isActive": False}, headers=league.auth["admin"]
    )
    assert paused.status_code == 200
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=2, minute=0, second=30, microsecond=0
    )
    league.clock.set(tomorrow)
    await league.tick()
    await league.work()
    async with league.runtime.sessions() as s:
        counts = {
            subject: len(
                (
                    await s.scalars(
                        select(SnapshotRow).where(
                            SnapshotRow.subject == subject, SnapshotRow.season == "34"
                        )
                    )
                ).all()
            )
            for subject in (one["id"], two["id"])
        }
    assert counts == {one["id"]: 2, two["id"]: 1}


async def test_guild_webhook_hears_rank_and_rating_changes(league: League) -> None:
    async with league.runtime.sessions() as s, s.begin():
        own = await channels_repo.create_channel(
            s, "acme", kind="webhook", url="https://alice.example.com/hook", owner_user_id="u1"
        )
    player = "76561198000000601"
    [tracker] = await register_for(league, "u1", "g1", player)
    await league.work()
    put = await league.client.put(
        "/internal/trackers/guilds/g1",
        json={
            "webhookUrl": "https://discord.com/api/webhooks/123456789012/abcdefghijklmnopqrstuvwxyz"
        },
        headers=league.auth["bot"],
    )
    assert put.status_code == 200, put.text
    assert put.json()["webhook"] == "https://discord.com/…"  # shown masked

    # Only games played changed: the owner's channel hears it, the guild's does not.
    league.site.add_profile("steam", player, season_payload(player, 34, rating=1500, matches=110))
    await league.post(f"/api/trackers/{tracker['id']}/refresh", "bot")
    await league.work()
    # Then the rating and rank change: both hear it.
    league.site.add_profile(
        "steam", player, season_payload(player, 34, rating=1580, rank="Champion II", matches=111)
    )
    await league.post(f"/api/trackers/{tracker['id']}/refresh", "bot")
    await league.work()
    async with league.runtime.sessions() as s:
        rows = (
            await s.scalars(
                select(OutboxRow)
                .where(OutboxRow.channel_id.is_not(None))
                .order_by(OutboxRow.created_at)
            )
        ).all()
    owner = [r for r in rows if r.channel_id == own.id]
    guild = [r for r in rows if r.channel_id != own.id]
    assert len(owner) == 2
    assert len(guild) == 1 and guild[0].kind == "discord"
    changed = {c["path"]: (c["old"], c["new"]) for c in guild[0].payload["changes"]}
    assert changed["playlists.2v2.rating"] == (1500, 1580)
    assert changed["playlists.2v2.rank"] == ("Champion I", "Champion II")
    assert guild[0].payload["subject"] == tracker["id"]

    removed = await league.client.put(
        "/internal/trackers/guilds/g1", json={"webhookUrl": None}, headers=league.auth["bot"]
    )
    assert removed.json()["webhook"] is None
    for body, reason in (
        ({"webhookUrl": "not a url"}, "without spaces"),
        ({"webhookUrl": "http://[::1"}, "cannot be read"),
        ({"webhookUrl": "http://[zz::]/"}, "cannot be read"),
        ({"webhookUrl": "http://127.0.0.1:8080/hook"}, "loopback"),
        ({"webhookUrl": "http://localhost/hook"}, "loopback"),
        ({"webhookUrl": "json://127.0.0.1:+9999/x", "webhookKind": "apprise"}, "loopback"),
        ({"webhookUrl": "json://[::1/x", "webhookKind": "apprise"}, "cannot be read"),
    ):
        bad = await league.client.put(
            "/internal/trackers/guilds/g1", json=body, headers=league.auth["bot"]
        )
        assert bad.status_code == 400, (body, bad.text)
        assert reason in message(bad), body
    assert (await league.get("/internal/trackers/guilds/g1", "bot")).json()["webhook"] is None


async def test_guild_mmr_rules(league: League) -> None:
    [tracker] = await register_for(league, "u1", "g1", "76561198000000701")
    await league.work()
    detail = (await league.get(f"/api/trackers/{tracker['id']}/detail", "alice")).json()
    assert detail["mmr"]["algorithm"] == "WEIGHTED_AVERAGE"
    assert detail["mmr"]["value"] == 1450  # (1500 + 1400) / 2
    put = await league.client.put(
        "/internal/trackers/guilds/g1",
        json={
            "mmr": {
                "algorithm": "CUSTOM",
                "formula": "max(rating_2v2, rating_3v3) + games_prev_2v2",
            }
        },
        headers=league.auth["bot"],
    )
    assert put.status_code == 200 and put.json()["mmrConfigured"] is True
    detail = (await league.get(f"/api/trackers/{tracker['id']}/detail", "alice")).json()
    assert detail["mmr"]["value"] == 1500 + 100  # season 33 had 100 games of 2v2
    for body, status, expected in (
        (
            {"mmr": {"algorithm": "CUSTOM", "formula": "rating_9v9"}},
            400,
            "unknown name 'rating_9v9'",
        ),
        ({"mmr": {"algorithm": "CUSTOM"}}, 400, "needs a formula"),
        ({"mmr": {"weights": {"2v2": -1}}}, 400, "weight of 2v2"),
        ({"mmr": {"weights": {"2v2": 1e308, "3v3": 1e308}}}, 400, "mmr: weights: "),
        ({"mmr": {"min_games": {"2v2": 2**40}}}, 400, "min_games"),
        # Wider than any store holds: the request boundary's JSON policy refuses it first.
        ({"mmr": {"min_games": {"2v2": 2**70}}}, 422, "min_games"),
    ):
        bad = await league.client.put(
            "/internal/trackers/guilds/g1", json=body, headers=league.auth["bot"]
        )
        assert bad.status_code == status and expected in message(bad), message(bad)
    reset = await league.client.put(
        "/internal/trackers/guilds/g1", json={"mmr": None}, headers=league.auth["bot"]
    )
    assert reset.json()["mmrConfigured"] is False


async def test_stored_mmr_rules_never_break_a_read(league: League) -> None:
    [tracker] = await register_for(league, "u1", "g1", "76561198000000702")
    await league.work()
    detail_path = f"/api/trackers/{tracker['id']}/detail"
    for stored, value in (
        # Rules stored before weights were bounded: the MMR is still the weighted average.
        ({"weights": {"2v2": 1e308, "3v3": 1e308}}, 1450),
        # A formula whose numbers overflow: no MMR, with the reason, the rest of the view kept.
        ({"algorithm": "CUSTOM", "formula": "rating_2v2 * 1e308 * 1e308"}, None),
        # Rules that no longer make sense at all.
        ({"algorithm": "SOMETHING"}, None),
    ):
        async with league.runtime.sessions() as s, s.begin():
            guild = await trackers_repo.ensure_guild(s, "acme", "g1", now=datetime.now(UTC))
            guild.mmr_config = stored
        detail = await league.get(detail_path, "alice")
        assert detail.status_code == 200, (stored, detail.text)
        mmr = detail.json()["mmr"]
        assert mmr["value"] == value, (stored, mmr)
        if value is None:
            assert mmr["reason"], mmr
        assert detail.json()["seasons"]
        settings = await league.get("/internal/trackers/guilds/g1", "bot")
        assert settings.status_code == 200, (stored, settings.text)
        assert settings.json()["mmrConfigured"] is True


async def test_a_batch_scheduled_ahead_of_any_tracker(league: League) -> None:
    # A bot schedules the weekly runs before the season's trackers exist.
    when = datetime.now(UTC) + timedelta(hours=1)
    made = await league.post(
        "/internal/trackers/schedule", "bot", {"guildId": "g9", "scheduledAt": iso(when)}
    )
    assert made.status_code == 201, made.text
    batch = made.json()
    assert (batch["status"], batch["trackerCount"], batch["trackerIds"]) == ("PENDING", 0, [])
    # Left empty, its run has nothing to do and completes with nothing processed.
    league.clock.set(when + timedelta(seconds=5))
    await league.tick()
    await league.work()
    [ran] = (await league.get("/internal/trackers/schedule/guild/g9", "bot")).json()["schedules"]
    assert (ran["id"], ran["status"], ran["trackerCount"]) == (batch["id"], "COMPLETED", 0)
    assert ran["scrapes"] == {} and ran["startedAt"] is not None
    assert ran["completedAt"] is not None

    # One scheduled while the guild is empty polls the trackers registered before it runs.
    later = when + timedelta(hours=1)
    waiting = (
        await league.post(
            "/internal/trackers/schedule", "bot", {"guildId": "g9", "scheduledAt": iso(later)}
        )
    ).json()
    [tracker] = await register_for(league, "u1", "g9", "76561198000000901")
    await league.work()
    [_, shown] = (await league.get("/internal/trackers/schedule/guild/g9", "bot")).json()[
        "schedules"
    ]
    assert (shown["id"], shown["trackerIds"]) == (waiting["id"], [tracker["id"]])


async def test_a_waiting_batch_follows_the_guilds_trackers(league: League) -> None:
    [one, two] = await register_for(league, "u1", "g1", "76561198000000801", "76561198000000802")
    await league.work()
    when = datetime.now(UTC) + timedelta(hours=1)
    made = (
        await league.post(
            "/internal/trackers/schedule", "bot", {"guildId": "g1", "scheduledAt": iso(when)}
        )
    ).json()
    assert set(made["trackerIds"]) == {one["id"], two["id"]}
    # Deleted, paused and newly registered trackers change what the batch will poll.
    await league.client.delete(f"/api/trackers/{one['id']}", headers=league.auth["bot"])
    [three] = await register_for(league, "u2", "g1", "76561198000000803")
    [four] = await register_for(league, "u3", "g1", "76561198000000804")
    await league.client.put(
        f"/api/trackers/{four['id']}", json={"isActive": False}, headers=league.auth["bot"]
    )
    await league.work()
    [batch] = (await league.get("/internal/trackers/schedule/guild/g1", "bot")).json()["schedules"]
    assert set(batch["trackerIds"]) == {two["id"], three["id"]}
    league.clock.set(when + timedelta(seconds=5))
    await league.tick()
    targets = await _targets(league)
    assert {t["tracker_id"] for t in targets[-2:]} == {two["id"], three["id"]}
