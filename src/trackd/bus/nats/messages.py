"""How a bus message travels on NATS: its key in a header, its id from the stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg

from trackd.bus.base import Message

KEY_HEADER = "Trackd-Key"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message received, with what acknowledging it needs."""

    message: Message
    raw: Msg | None  # the JetStream message to ack; None for core NATS


def key_headers(count: int, keys: list[str | None] | None) -> list[dict[str, str] | None]:
    """The headers of `count` messages carrying `keys` (none when a message has no key)."""
    return [None if k is None else {KEY_HEADER: k} for k in keys or [None] * count]


def key_of(raw: Msg) -> str | None:
    """The partition key a message was published with."""
    headers: dict[str, Any] | None = raw.headers
    return headers.get(KEY_HEADER) if headers else None


def jetstream_message(raw: Msg, topic: str) -> Message:
    """The bus message of a JetStream delivery."""
    meta = raw.metadata
    # The stream sequence is stable across redeliveries, so a redelivered message keeps its id.
    return Message(f"{meta.stream}-{meta.sequence.stream}", topic, raw.data, key_of(raw))
