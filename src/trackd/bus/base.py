"""The Bus protocol: publish bytes to topics; consume them in groups and acknowledge.

A bus only moves bytes; encoding events is the caller's business. Which backend a URL names
is `trackd.bus.urls`. Delivery is at least once:
a message that is fetched but never acknowledged is delivered again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One delivered message. `key` partitions: messages with one key keep their order."""

    id: str
    topic: str
    body: bytes
    key: str | None = None


class Subscription(Protocol):
    """A consumer's handle on a group's messages."""

    async def fetch(self, max_messages: int, block: float) -> list[Message]:
        """Up to `max_messages` messages; waits at most `block` seconds for the first."""
        ...

    async def ack(self, messages: Sequence[Message]) -> None:
        """Mark messages done; call only after their effects are committed."""
        ...

    async def nack(self, messages: Sequence[Message]) -> None:
        """Give messages back for redelivery (their batch failed)."""
        ...

    async def close(self) -> None: ...


class Bus(Protocol):
    async def publish(
        self, topic: str, bodies: Sequence[bytes], keys: Sequence[str | None] | None = None
    ) -> None:
        """Publish messages; returns once the bus holds them durably.

        The in-memory bus holds nothing durably, so it returns once a consumer group has
        committed and acknowledged them.
        """
        ...

    async def subscribe(self, topics: Sequence[str], group: str, consumer: str) -> Subscription: ...

    async def close(self) -> None: ...
