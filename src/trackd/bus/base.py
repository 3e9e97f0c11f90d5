"""The Bus protocol: publish bytes to topics; consume them in groups and acknowledge.

A bus only moves bytes; encoding events is the caller's business. Delivery is at least once:
a message that is fetched but never acknowledged is delivered again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from trackd.errors import ConfigError


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


def from_url(url: str, *, platform_group: str | None = None) -> Bus:
    """The bus for a URL, its backend imported only when used.

    `memory://` (in-process, the default), `redis://host:port/db` (Redis Streams),
    `nats://host:port` (NATS, compatible with the agent platform's subjects). On NATS the
    consumer group `platform_group` (trackd's ingest, when the runtime builds the bus) joins
    the agent platform's queue group (`tracker-service` unless the URL says `queue=`).

    Raises:
        ConfigError: the scheme is unknown, or the backend's optional dependency is missing.
    """
    scheme = _scheme(url)
    if scheme == "memory":
        from trackd.bus.memory import MemoryBus

        return MemoryBus()
    if scheme in ("redis", "rediss"):
        try:
            from trackd.bus.redis.bus import RedisStreamsBus
        except ImportError as exc:
            raise ConfigError(_missing("redis", exc)) from None
        return RedisStreamsBus.from_url(url)
    if scheme in ("nats", "tls"):
        try:
            from trackd.bus.nats import NatsBus
        except ImportError as exc:
            raise ConfigError(_missing("nats", exc)) from None
        return NatsBus.from_url(url, platform_group=platform_group)
    raise ConfigError(
        f"unsupported bus URL {url!r}; use memory://, redis://host:6379/0 or nats://host:4222"
    )


def in_process(url: str) -> bool:
    """Whether a bus URL names the in-process bus (`memory://`), which only the process
    that holds it can hear: another process's worker or ingest never sees its messages."""
    return _scheme(url) == "memory"


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _missing(extra: str, exc: ImportError) -> str:
    return (
        f"the {extra} bus needs an optional dependency ({exc.name}): pip install 'trackd[{extra}]'"
    )
