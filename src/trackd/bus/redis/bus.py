"""The `redis://` bus: Redis Streams partitioned by key, read through consumer groups.

Layout (prefix `trackd` by default): each topic is split into N streams
`trackd:{topic}:{p}` (N = 16, `?partitions=N`); a message with a key goes to partition
`crc32(key) % N`, one without a key goes round-robin. Every consumer group reads every
stream, and inside a group each partition is owned by one consumer at a time (see
`consumer`), so one task's events are folded in order by one process.

    bus = RedisStreamsBus.from_url("redis://localhost:6379/0?partitions=16")

Entry ids come from one clock per prefix (`ordered`), so an entry written after
another has the greater id whichever streams they are in, and consumers merging a partition's
topic streams by id see messages in the order they were published.

Durability: `publish` returns once Redis has acknowledged every XADD. What Redis keeps across
its own restart is the operator's setting (`appendonly yes`, and `appendfsync` for how much
the last second may lose); trackd cannot see it from here.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from trackd.bus.redis.consumer import RedisStreamsSubscription
from trackd.bus.redis.layout import (
    UNREACHABLE,
    RedisStreamsOptions,
    partition_of,
    stream_name,
)
from trackd.bus.redis.ordered import OrderedAppender
from trackd.errors import BusUnavailableError, ConfigError

log = logging.getLogger(__name__)

# XADDs per script call: large enough to amortise the trip, small enough that one
# retry after a dropped connection repeats little.
_CHUNK = 1000


def connect(url: str) -> Redis:
    """A client for a Redis URL, retrying nothing itself: the bus decides how to retry."""
    return Redis.from_url(
        url,
        # One immediate retry replaces a pooled connection that a Redis restart closed.
        retry=Retry(NoBackoff(), 1),
        socket_connect_timeout=5.0,
        # Longer than the longest XREADGROUP BLOCK, so a blocked read never times out.
        socket_timeout=10.0,
        health_check_interval=30,
    )


class RedisStreamsBus:
    """Publishes to and subscribes on Redis Streams; see the module docstring for the layout."""

    def __init__(self, redis: Redis, options: RedisStreamsOptions | None = None) -> None:
        self.redis = redis
        self.options = options or RedisStreamsOptions()
        self._round_robin = itertools.count()
        self._appender = OrderedAppender(redis, self.options.prefix)
        self._layout_checked = False
        self._subscriptions: list[RedisStreamsSubscription] = []
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> RedisStreamsBus:
        """A bus for `redis://[user:password@]host:port/db[?partitions=N&prefix=P&...]`.

        Query parameters named like `RedisStreamsOptions` fields are the bus's; the others
        go to redis-py.

        Raises:
            ConfigError: a bus parameter is malformed.
        """
        redis_url, options = RedisStreamsOptions.split_url(url)
        return cls(connect(redis_url), options)

    async def check_layout(self) -> None:
        """Fails when this Redis is laid out with another partition count.

        The first process records its count; publishers and consumers that disagree would
        otherwise silently miss each other's partitions.

        Raises:
            ConfigError: the partition counts differ.
        """
        if self._layout_checked:
            return
        key = f"{self.options.prefix}:partitions"
        await self.redis.set(key, self.options.partitions, nx=True)
        stored = await self.redis.get(key)
        if stored is not None and int(stored) != self.options.partitions:
            raise ConfigError(
                f"the streams under prefix {self.options.prefix!r} have {int(stored)} "
                f"partitions, this process uses {self.options.partitions}; use the same "
                "?partitions= everywhere (changing it needs every stream drained first)"
            )
        self._layout_checked = True

    async def publish(
        self, topic: str, bodies: Sequence[bytes], keys: Sequence[str | None] | None = None
    ) -> None:
        """XADD each message to its partition's stream; returns once Redis acknowledged all.

        An unreachable Redis is retried with backoff for `publish_timeout` seconds. A chunk
        that failed midway is sent again whole, so a message may be stored twice; ingest is
        idempotent on event ids, so that changes nothing.

        Raises:
            BusUnavailableError: Redis could not be reached in time; some messages may be
                stored, none is confirmed, and publishing again is safe.
        """
        if self._closed:
            raise RuntimeError("the bus is closed")
        if keys is not None and len(keys) != len(bodies):
            raise ValueError("keys and bodies differ in length")
        if not bodies:
            return
        opts = self.options
        entries: list[tuple[str, str | None, bytes]] = []
        for i, body in enumerate(bodies):
            key = keys[i] if keys is not None else None
            if key is None:
                p = next(self._round_robin) % opts.partitions
            else:
                p = partition_of(key, opts.partitions)
            entries.append((stream_name(opts.prefix, topic, p), key, body))
        deadline = time.monotonic() + opts.publish_timeout
        await self._retrying(self.check_layout, deadline, topic)
        for start in range(0, len(entries), _CHUNK):
            chunk = entries[start : start + _CHUNK]
            await self._retrying(partial(self._xadd, chunk), deadline, topic)

    async def _xadd(self, chunk: Sequence[tuple[str, str | None, bytes]]) -> None:
        await self._appender.xadd(chunk)

    async def _retrying(
        self, attempt: Callable[[], Awaitable[None]], deadline: float, topic: str
    ) -> None:
        delay = 0.05
        while True:
            try:
                await attempt()
                return
            except UNREACHABLE as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BusUnavailableError(
                        f"Redis did not accept the messages for {topic!r} within "
                        f"{self.options.publish_timeout:g} s ({exc}); publish them again "
                        "once it is reachable"
                    ) from exc
                log.warning("redis unreachable, retrying publish in %.2fs: %s", delay, exc)
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, 1.0)

    async def subscribe(
        self, topics: Sequence[str], group: str, consumer: str
    ) -> RedisStreamsSubscription:
        """Join `group` as `consumer` (unique per process) and take a fair share of partitions.

        The group is created on every partition's stream (MKSTREAM) starting at the
        beginning, so messages published before the first subscriber are delivered too.
        """
        if self._closed:
            raise RuntimeError("the bus is closed")
        sub = RedisStreamsSubscription(
            self.redis, self.options, tuple(topics), group, consumer, self.check_layout
        )
        await sub.start()
        self._subscriptions.append(sub)
        return sub

    async def close(self) -> None:
        """Closes subscriptions still open (their unacknowledged messages stay pending)."""
        if self._closed:
            return
        self._closed = True
        for sub in self._subscriptions:
            await sub.close()
        self._subscriptions.clear()
        await self.redis.aclose()
