"""Channel payloads and how each channel reads its receiver's answers (httpx.MockTransport; no
network)."""

from __future__ import annotations

import ipaddress
import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from trackd.domain.channels import (
    ChannelKind,
    InvalidChannel,
    mask_url,
    validate_options,
    validate_url,
)
from trackd.notify.channels import ChannelConfig, Delivery, DeliveryError
from trackd.notify.channels.apprise_urls import AppriseSender
from trackd.notify.channels.discord import DiscordSender, message
from trackd.notify.channels.webhook import WebhookSender, verify_signature
from trackd.notify.render import TEST_EVENT
from trackd.notify.service import check_destination
from trackd.outbound.http import AddressGuard, outbound_client
from trackd.settings import Settings

HOOK = "https://hooks.example/trackd"
DISCORD = "https://discord.com/api/webhooks/123456789012/abcdefghijklmnopqrstuvwxyz-_0123"
PAYLOAD: dict[str, Any] = {
    "type": "snapshot.changed",
    "change_id": "0192",
    "source": "rocket_league",
    "subject": "steam/76561198",
    "season": "25",
    "taken_at": "2026-03-01T12:00:00+00:00",
    "changes": [
        {"path": "2v2.tier", "kind": "changed", "old": "Diamond II", "new": "Diamond III"},
        {"path": "2v2.rating", "kind": "changed", "old": 1180, "new": 1201},
        {"path": "3v3", "kind": "added", "old": None, "new": {"rating": 900}},
    ],
}


def channel(kind: str, url: str, **kw: Any) -> ChannelConfig:
    return ChannelConfig(uuid.uuid4(), "t1", kind, f"my {kind}", url, **kw)


def delivery(payload: dict[str, Any] = PAYLOAD, event: str = "snapshot.changed") -> Delivery:
    return Delivery("change-1:chan-1", event, payload, attempt=2)


async def send(
    sender: Any,
    config: ChannelConfig,
    handler: Callable[[httpx.Request], httpx.Response],
    item: Delivery | None = None,
) -> None:
    public = {"hooks.example": "93.184.215.14", "discord.com": "162.159.135.232"}

    async def resolve(host: str, port: int) -> list[Any]:
        import ipaddress

        return [ipaddress.ip_address(public[host])]

    guard = AddressGuard(resolver=resolve)
    client = outbound_client(Settings(), guard=guard, inner=httpx.MockTransport(handler))
    async with client:
        await sender.send(config, item or delivery(), client, guard)


async def test_webhook_posts_the_payload_with_idempotency_key_and_signature() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    secret = "s3cret-s3cret-s3cret"
    await send(WebhookSender(), channel("webhook", HOOK, secret=secret), handler)

    [request] = seen
    assert request.method == "POST"
    assert json.loads(request.content) == PAYLOAD
    assert request.headers["idempotency-key"] == "change-1:chan-1"
    assert request.headers["x-trackd-event"] == "snapshot.changed"
    assert request.headers["x-trackd-attempt"] == "2"
    timestamp = request.headers["x-trackd-timestamp"]
    signature = request.headers["x-trackd-signature"]
    assert signature.startswith("sha256=")
    assert verify_signature(secret, timestamp, request.content, signature)
    assert not verify_signature("another-secret-value", timestamp, request.content, signature)
    assert not verify_signature(secret, timestamp, request.content + b" ", signature)
    stale = str(int(time.time()) - 3600)
    assert not verify_signature(secret, stale, request.content, signature)


async def test_an_unsigned_webhook_has_no_signature_header() -> None:
    seen: list[httpx.Request] = []
    await send(
        WebhookSender(), channel("webhook", HOOK), lambda r: seen.append(r) or httpx.Response(200)
    )
    assert "x-trackd-signature" not in seen[0].headers


@pytest.mark.parametrize(
    ("status", "permanent", "rate_limited"),
    [
        (500, False, False),
        (503, False, False),
        (408, False, False),
        (404, True, False),
        (410, True, False),
        (401, True, False),
        (429, False, True),
    ],
)
async def test_webhook_answers_decide_retry_or_dead(
    status: int, permanent: bool, rate_limited: bool
) -> None:
    with pytest.raises(DeliveryError) as failed:
        await send(
            WebhookSender(),
            channel("webhook", HOOK),
            lambda r: httpx.Response(status, headers={"Retry-After": "12"}),
        )
    assert failed.value.permanent is permanent
    assert failed.value.rate_limited is rate_limited
    assert failed.value.retry_after == (None if permanent else 12.0)
    assert HOOK not in str(failed.value)  # the URL is a credential


async def test_a_private_webhook_is_refused_for_good() -> None:
    with pytest.raises(DeliveryError, match="TRACKD_ALLOW_PRIVATE_FETCH") as failed:
        await send(
            WebhookSender(),
            channel("webhook", "http://127.0.0.1:9/x"),
            lambda r: httpx.Response(200),
        )
    assert failed.value.permanent


def test_discord_message_has_an_embed_per_change_and_no_mentions() -> None:
    body = message(delivery(), {"username": "trackd bot"})

    assert body["allowed_mentions"] == {"parse": []}
    assert body["username"] == "trackd bot"
    [embed] = body["embeds"]
    assert embed["title"] == "steam/76561198 changed"
    assert embed["description"] == "rocket_league · season 25"
    assert embed["timestamp"] == "2026-03-01T12:00:00+00:00"
    assert embed["fields"] == [
        {"name": "2v2.tier", "value": "Diamond II → Diamond III", "inline": False},
        {"name": "2v2.rating", "value": "1180 → 1201", "inline": False},
        {"name": "3v3", "value": '{"rating": 900} (new)', "inline": False},
    ]


def test_discord_message_stays_within_discords_limits() -> None:
    changes = [
        {"path": f"f{i}", "kind": "changed", "old": "x" * 2000, "new": "y"} for i in range(40)
    ]
    body = message(delivery({**PAYLOAD, "subject": "s" * 400, "changes": changes}), {})
    [embed] = body["embeds"]
    assert len(embed["title"]) <= 256
    assert len(embed["fields"]) <= 25
    assert all(len(f["value"]) <= 1024 for f in embed["fields"])
    total = (
        len(embed["title"])
        + len(embed["description"])
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= 6000


def test_discord_test_message_is_plain_content() -> None:
    body = message(delivery({"message": "hello"}, TEST_EVENT), {})
    assert body == {"allowed_mentions": {"parse": []}, "content": "hello"}


async def test_discord_rate_limits_honour_retry_after_from_the_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            429,
            json={"message": "You are being rate limited.", "retry_after": 1.75, "global": False},
        )

    with pytest.raises(DeliveryError) as failed:
        await send(DiscordSender(), channel("discord", DISCORD), handler)
    assert failed.value.rate_limited and failed.value.retry_after == 1.75
    assert "embeds" in json.loads(seen[0].content)


async def test_apprise_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if it were not installed
    with pytest.raises(DeliveryError, match=r"pip install 'trackd\[apprise\]'") as failed:
        await send(
            AppriseSender(),
            channel("apprise", "json://hooks.example/x"),
            lambda r: httpx.Response(200),
        )
    assert failed.value.permanent


async def test_apprise_refuses_a_private_host_before_calling_apprise() -> None:
    with pytest.raises(DeliveryError, match="loopback") as failed:
        await send(
            AppriseSender(),
            channel("apprise", "json://127.0.0.1:9/x"),
            lambda r: httpx.Response(200),
        )
    assert failed.value.permanent


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("webhook", "ftp://x.example/"),
        ("webhook", "https:///nohost"),
        ("discord", "https://evil.example/api/webhooks/123456/abcdefghijklmnopqrstuvwxyz"),
        ("discord", "https://discord.com/api/webhooks/abc/def"),
        ("apprise", "not a url"),
    ],
)
def test_channel_urls_are_checked_without_echoing_them(kind: str, url: str) -> None:
    with pytest.raises(InvalidChannel) as invalid:
        validate_url(ChannelKind(kind), url)
    assert url not in str(invalid.value)


def test_channel_options_are_checked() -> None:
    assert validate_options(ChannelKind.DISCORD, {"username": "x", "fields": ["rank"]})
    with pytest.raises(InvalidChannel, match="unknown options"):
        validate_options(ChannelKind.WEBHOOK, {"username": "x"})
    with pytest.raises(InvalidChannel, match="fields"):
        validate_options(ChannelKind.WEBHOOK, {"fields": "rank"})


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("webhook", "http://[::1"),
        ("webhook", "http://[zz::]/"),
        ("webhook", "https://[::1]:99999/x"),
        ("apprise", "json://[::1/x"),
        ("apprise", "json://[zz::]/"),
    ],
)
def test_urls_that_cannot_be_parsed_are_invalid_not_errors(kind: str, url: str) -> None:
    with pytest.raises(InvalidChannel, match="cannot be read"):
        validate_url(ChannelKind(kind), url)


def test_masking_never_fails_on_a_malformed_url() -> None:
    assert mask_url("json://[::1/x") == "json://…"
    assert mask_url("http://[zz::]/") == "http://…"


def guard_with(table: dict[str, str]) -> AddressGuard:
    async def resolve(host: str, port: int) -> list[Any]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return [ipaddress.ip_address(table[host])]

    return AddressGuard(resolver=resolve)


@pytest.mark.parametrize(
    ("kind", "url", "reason"),
    [
        ("webhook", "http://127.0.0.1:8080/hook", "loopback"),
        ("webhook", "http://[::ffff:10.0.0.1]/hook", "private network"),
        ("webhook", "https://inside.example/hook", "private network"),
        ("webhook", "http://[::1", "cannot be read"),
        ("apprise", "json://127.0.0.1:+9999/x", "loopback"),
        ("apprise", "json://inside.example:+80/x", "private network"),
        ("apprise", "mailto://user:pass@hooks.example?smtp=169.254.169.254", "metadata"),
        ("apprise", "json://[zz::]/", "cannot be read"),
        ("apprise", "nosuchservice://hooks.example/x", "does not recognise"),
    ],
)
async def test_destinations_are_checked_at_input_with_the_reason(
    kind: str, url: str, reason: str
) -> None:
    guard = guard_with({"inside.example": "10.1.2.3", "hooks.example": "93.184.215.14"})
    with pytest.raises(InvalidChannel, match=reason) as refused:
        await check_destination(ChannelKind(kind), url, guard)
    assert url not in str(refused.value)


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("webhook", "https://hooks.example/trackd"),
        # Not resolvable now: the check at delivery judges what it resolves to then.
        ("webhook", "https://later.example/trackd"),
        ("discord", DISCORD),
        ("apprise", "json://hooks.example:8080/x"),
        # The host part is the bot's token: apprise talks to Telegram's own host.
        ("apprise", "tgram://123456789:abcdefg_hijklmnopqrstuvwxyz12345/12315544/"),
        ("apprise", "ntfy://my-topic"),
    ],
)
async def test_public_destinations_pass(kind: str, url: str) -> None:
    guard = guard_with({"hooks.example": "93.184.215.14", "discord.com": "162.159.135.232"})
    await check_destination(ChannelKind(kind), url, guard)


async def test_allow_private_lets_a_private_destination_in() -> None:
    allowed = AddressGuard(allow_private=True)
    await check_destination(ChannelKind.WEBHOOK, "http://127.0.0.1:8080/hook", allowed)
    await check_destination(ChannelKind.APPRISE, "json://127.0.0.1:+9999/x", allowed)
    # A URL that cannot be read is refused whatever the setting.
    with pytest.raises(InvalidChannel, match="cannot be read"):
        await check_destination(ChannelKind.WEBHOOK, "http://[::1", allowed)


async def test_apprise_with_a_plus_before_the_port_is_refused_at_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import apprise

    sent: list[str] = []
    monkeypatch.setattr(apprise.Apprise, "notify", lambda self, **kw: sent.append("sent"))
    for url in ("json://127.0.0.1:+9999/x", "json://[::1/x", "json://2130706433/x"):
        with pytest.raises(DeliveryError) as failed:
            await send(AppriseSender(), channel("apprise", url), lambda r: httpx.Response(200))
        assert failed.value.permanent, url
    assert sent == []


async def test_a_stored_webhook_url_that_cannot_be_parsed_fails_for_good() -> None:
    for url in ("http://[::1", "http://[zz::]/"):
        with pytest.raises(DeliveryError, match="cannot be read") as failed:
            await send(WebhookSender(), channel("webhook", url), lambda r: httpx.Response(200))
        assert failed.value.permanent
