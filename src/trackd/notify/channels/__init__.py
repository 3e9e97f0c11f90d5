"""Channel senders by kind: webhook, discord, apprise."""

from __future__ import annotations

from trackd.notify.channels.apprise_urls import AppriseSender
from trackd.notify.channels.base import ChannelConfig, ChannelSender, Delivery, DeliveryError
from trackd.notify.channels.discord import DiscordSender
from trackd.notify.channels.webhook import WebhookSender

__all__ = [
    "SENDERS",
    "ChannelConfig",
    "ChannelSender",
    "Delivery",
    "DeliveryError",
    "default_senders",
]


def default_senders() -> dict[str, ChannelSender]:
    return {s.kind: s for s in (WebhookSender(), DiscordSender(), AppriseSender())}


SENDERS = default_senders()
