"""Discord channel webhooks: one embed per change, within Discord's limits.

Mentions are switched off (`allowed_mentions`), so text taken from a remote source can never
ping @everyone. A 429 carries `retry_after` (seconds) in its JSON body, which is honoured.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import httpx

from trackd.notify import render
from trackd.notify.channels.base import (
    ChannelConfig,
    Delivery,
    DeliveryError,
    check,
    post_unchecked,
)
from trackd.outbound.http import AddressGuard, retry_after

# https://discord.com/developers/docs/resources/message#embed-object-embed-limits
TITLE_MAX: Final = 256
DESCRIPTION_MAX: Final = 4096
FIELDS_MAX: Final = 25
FIELD_NAME_MAX: Final = 256
FIELD_VALUE_MAX: Final = 1024
EMBED_TOTAL_MAX: Final = 6000
COLOR: Final = 0x3B82F6


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message(delivery: Delivery, options: dict[str, Any]) -> dict[str, Any]:
    """The webhook body for `delivery`."""
    payload = delivery.payload
    body: dict[str, Any] = {"allowed_mentions": {"parse": []}}
    if options.get("username"):
        body["username"] = options["username"]
    if delivery.event_type == render.TEST_EVENT:
        body["content"] = _cut(render.plain_text(delivery.event_type, payload), 2000)
        return body
    embed: dict[str, Any] = {
        "title": _cut(render.title(delivery.event_type, payload), TITLE_MAX),
        "description": _cut(render.context(payload), DESCRIPTION_MAX),
        "color": COLOR,
        "footer": {"text": "trackd"},
    }
    taken_at = payload.get("taken_at")
    if isinstance(taken_at, str):
        try:
            embed["timestamp"] = datetime.fromisoformat(taken_at).isoformat()
        except ValueError:
            pass
    size = len(embed["title"]) + len(embed["description"]) + len("trackd")
    fields: list[dict[str, Any]] = []
    lines = render.field_lines(payload)
    for path, text in lines:
        name, value = _cut(path, FIELD_NAME_MAX), _cut(text, FIELD_VALUE_MAX)
        if len(fields) == FIELDS_MAX - 1 and len(lines) > FIELDS_MAX:
            name, value = "…", f"and {len(lines) - len(fields)} more"
        if size + len(name) + len(value) > EMBED_TOTAL_MAX:
            break
        fields.append({"name": name, "value": value, "inline": False})
        size += len(name) + len(value)
        if len(fields) == FIELDS_MAX:
            break
    embed["fields"] = fields
    body["embeds"] = [embed]
    return body


class DiscordSender:
    kind = "discord"

    async def send(
        self,
        channel: ChannelConfig,
        delivery: Delivery,
        client: httpx.AsyncClient,
        guard: AddressGuard,
    ) -> None:
        what = f"discord {channel.name!r}"
        response = await post_unchecked(
            client,
            channel.url,
            what=what,
            json=message(delivery, channel.options),
            headers={"Idempotency-Key": delivery.idempotency_key},
        )
        if response.status_code == 429:
            raise DeliveryError(
                f"{what}: rate limited (HTTP 429)",
                retry_after=_retry_after(response),
                rate_limited=True,
            )
        check(response, what)


def _retry_after(response: httpx.Response) -> float | None:
    """Discord's wait in seconds: `retry_after` in the JSON body (fractional), else the
    Retry-After header."""
    try:
        value = response.json().get("retry_after")
        if isinstance(value, int | float) and value >= 0:
            return float(value)
    except (ValueError, AttributeError):
        pass
    return retry_after(response)
