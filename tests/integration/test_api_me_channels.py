"""A user's own notification channels over HTTP (`/v1/me/channels`), on SQLite and
PostgreSQL, and the rank changes of the user's trackers reaching them through the outbox."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from league_support import ACME, League, league, season_payload, site
from sqlalchemy import select

from trackd.store.models import NotificationChannel, OutboxRow
from trackd.store.repos import channels as channels_repo

__all__ = ["league", "site"]  # fixtures

pytestmark = pytest.mark.timeout(60)

HOOK = "https://alice.example.com/hooks/private-token-123"
DISCORD = "https://discord.com/api/webhooks/123456789012/abcdefghijklmnopqrstuvwxyz"
SECRET = "s3cret-signing-key-0123456789"


def message(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return str(body["error"]["message"])


async def add(league: League, who: str, **body: Any) -> dict[str, Any]:
    response = await league.post("/v1/me/channels", who, body)
    assert response.status_code == 201, response.text
    channel: dict[str, Any] = response.json()
    return channel


async def test_create_list_delete_masked(league: League) -> None:
    signed = await league.post(
        "/v1/me/channels", "alice", {"kind": "webhook", "url": HOOK, "secret": SECRET}
    )
    assert signed.status_code == 201, signed.text
    hook = signed.json()
    assert hook["url"] == "https://alice.example.com/…"
    assert hook["signed"] is True and hook["enabled"] is True
    assert hook["owner_user_id"] == "alice" and hook["tenant_id"] == ACME
    assert hook["name"] == "webhook https://alice.example.com/…"
    assert "secret" not in hook
    assert SECRET not in signed.text and "private-token-123" not in signed.text

    discord = await add(league, "alice", kind="discord", url=DISCORD, name="my pings")
    assert (discord["url"], discord["name"], discord["signed"]) == (
        "https://discord.com/…",
        "my pings",
        False,
    )
    await add(league, "bob", kind="webhook", url="https://bob.example.com/hook")

    listed = await league.get("/v1/me/channels", "alice")
    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["channels"]] == [hook["id"], discord["id"]]
    assert "abcdefghijklmnopqrstuvwxyz" not in listed.text and SECRET not in listed.text
    # The secret is stored (the notifier signs with it), only never shown.
    async with league.runtime.sessions() as s:
        stored = await s.get(NotificationChannel, uuid.UUID(hook["id"]))
        assert stored is not None and stored.secret == SECRET and stored.url == HOOK

    gone = await league.client.delete(f"/v1/me/channels/{hook['id']}", headers=league.auth["alice"])
    assert gone.status_code == 204
    after = (await league.get("/v1/me/channels", "alice")).json()["channels"]
    assert [c["id"] for c in after] == [discord["id"]]
    again = await league.client.delete(
        f"/v1/me/channels/{hook['id']}", headers=league.auth["alice"]
    )
    assert again.status_code == 404


async def test_refusals(league: League) -> None:
    mine = await add(league, "alice", kind="webhook", url=HOOK)
    path = f"/v1/me/channels/{mine['id']}"

    # A token naming no user (the league's bot) has no channels of its own.
    for response in (
        await league.get("/v1/me/channels", "bot"),
        await league.post("/v1/me/channels", "bot", {"kind": "webhook", "url": HOOK}),
        await league.client.delete(path, headers=league.auth["bot"]),
    ):
        assert response.status_code == 403
        assert "names no user" in message(response)
    reader = await league.post("/v1/me/channels", "reader", {"kind": "webhook", "url": HOOK})
    assert reader.status_code == 403 and "reader" in message(reader)
    assert (await league.get("/v1/me/channels", "reader")).json() == {"channels": []}

    # Another user of the tenant: 403; another tenant (even a user named alice there): 404.
    bobs = await league.client.delete(path, headers=league.auth["bob"])
    assert bobs.status_code == 403 and "not yours" in message(bobs)
    other_tenant = await league.client.delete(path, headers=league.auth["globex"])
    assert other_tenant.status_code == 404
    assert (await league.get("/v1/me/channels", "globex")).json() == {"channels": []}
    missing = await league.client.delete(
        f"/v1/me/channels/{uuid.uuid4()}", headers=league.auth["alice"]
    )
    assert missing.status_code == 404
    not_an_id = await league.client.delete("/v1/me/channels/abc", headers=league.auth["alice"])
    assert not_an_id.status_code == 422
    # The tenant's shared channels (a guild's webhook) are no user's to delete.
    async with league.runtime.sessions() as s, s.begin():
        shared = await channels_repo.create_channel(s, ACME, kind="discord", url=DISCORD)
    tenants = await league.client.delete(
        f"/v1/me/channels/{shared.id}", headers=league.auth["alice"]
    )
    assert tenants.status_code == 403

    bad = [
        ({"kind": "webhook", "url": "ftp://x.example.com/h"}, 400, "http(s)://host/path"),
        ({"kind": "webhook", "url": "not a url"}, 400, "without spaces"),
        ({"kind": "discord", "url": "https://example.com/x"}, 400, "discord"),
        ({"kind": "discord", "url": DISCORD, "secret": SECRET}, 400, "only webhook"),
        ({"kind": "webhook", "url": HOOK + "x", "secret": "short"}, 400, "16 to 512"),
        ({"kind": "webhook", "url": HOOK + "y", "name": "   "}, 400, "1 to 255"),
        ({"kind": "webhook", "url": "http://[::1"}, 400, "cannot be read"),
        ({"kind": "webhook", "url": "http://[zz::]/"}, 400, "cannot be read"),
        ({"kind": "apprise", "url": "json://[::1/x"}, 400, "cannot be read"),
        ({"kind": "webhook", "url": "http://127.0.0.1:9/x"}, 400, "loopback"),
        ({"kind": "webhook", "url": "http://[::ffff:169.254.169.254]/"}, 400, "metadata"),
        ({"kind": "apprise", "url": "json://127.0.0.1:+9999/x"}, 400, "loopback"),
        ({"kind": "apprise", "url": "json://localhost/x"}, 400, "loopback"),
        ({"kind": "webhook", "url": HOOK}, 409, "already have"),
        ({"kind": "sms", "url": HOOK}, 422, "kind"),
        ({"kind": "webhook"}, 422, "url"),
        ({"kind": "webhook", "url": HOOK, "owner": "bob"}, 422, "owner"),
        ({"kind": "webhook", "url": "https://h.example.com/" + "a" * 2100}, 422, "url"),
        ([1, 2], 422, ""),
    ]
    for body, status, expected in bad:
        response = await league.post("/v1/me/channels", "alice", body)
        assert response.status_code == status, (body, response.text)
        assert expected in message(response), body
    raw = await league.client.post(
        "/v1/me/channels", content=b"{not json", headers=league.auth["alice"]
    )
    assert raw.status_code == 422
    # Nothing of a refused request was kept.
    assert len((await league.get("/v1/me/channels", "alice")).json()["channels"]) == 1


async def test_channel_added_after_tracker_hears_rank_change(league: League) -> None:
    player = "76561198000000901"
    registered = await league.post(
        "/api/trackers/register", "alice", {"urls": [league.profile(player)]}
    )
    assert registered.status_code == 201, registered.text
    [tracker] = registered.json()["trackers"]
    await league.work()

    # Channels made after the tracker: alice's hears it, bob's does not.
    channel = await add(league, "alice", kind="webhook", url=HOOK)
    bobs = await add(league, "bob", kind="webhook", url="https://bob.example.com/hook")
    # A tracker added after the channel is subscribed too, by registration's own rule.
    added = await league.post(
        "/api/trackers/add", "alice", {"url": league.profile("76561198000000902")}
    )
    assert added.status_code == 201, added.text
    async with league.runtime.sessions() as s:
        subjects = {
            x.subject for x in await channels_repo.subscriptions(s, ACME, uuid.UUID(channel["id"]))
        }
        assert await channels_repo.subscriptions(s, ACME, uuid.UUID(bobs["id"])) == []
    assert subjects == {tracker["id"], added.json()["id"]}

    league.site.add_profile(
        "steam", player, season_payload(player, 34, rating=1580, rank="Champion II")
    )
    refreshed = await league.post(f"/api/trackers/{tracker['id']}/refresh", "alice")
    assert refreshed.status_code == 202
    await league.work()
    async with league.runtime.sessions() as s:
        rows = (await s.scalars(select(OutboxRow).where(OutboxRow.channel_id.is_not(None)))).all()
    mine = [r for r in rows if r.channel_id == uuid.UUID(channel["id"])]
    assert all(r.channel_id != uuid.UUID(bobs["id"]) for r in rows)
    assert len(mine) == 1 and mine[0].kind == "webhook"
    assert mine[0].payload["subject"] == tracker["id"]
    changed = {c["path"]: (c["old"], c["new"]) for c in mine[0].payload["changes"]}
    assert changed["playlists.2v2.rank"] == ("Champion I", "Champion II")
    assert changed["playlists.2v2.rating"] == (1500, 1580)

    # Deleting the channel takes its subscriptions and undelivered messages with it.
    gone = await league.client.delete(
        f"/v1/me/channels/{channel['id']}", headers=league.auth["alice"]
    )
    assert gone.status_code == 204
    async with league.runtime.sessions() as s:
        left = await s.scalars(
            select(OutboxRow).where(OutboxRow.channel_id == uuid.UUID(channel["id"]))
        )
        assert left.all() == []
        assert await channels_repo.subscriptions(s, ACME, uuid.UUID(channel["id"])) == []
