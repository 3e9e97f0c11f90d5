"""Partition leases on Redis: which consumer of a group may read which partitions.

One task's events must be folded by one consumer at a time, so each partition of a group is
owned through a lease key (`{prefix}:lease:{group}:{p}`, value = consumer name, `PX` ttl) that
its owner renews in the background. Consumers announce themselves in one sorted set per group
(`{prefix}:consumers:{group}`, score = when their heartbeat expires), so counting the live ones
is one command rather than a SCAN over per-consumer keys.

Deadlines are kept on the local monotonic clock and start when the command is *sent*, so a
local deadline never outlives the key in Redis.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

# Renew a lease we hold; take it back if Redis lost it (restart without persistence): nobody
# holds it then, and the caller re-claims the partition as if newly acquired.
_RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
if not owner then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 2
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Server time, so that consumers on machines whose clocks disagree still agree on who is live.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

RENEWED, RETAKEN, LOST = 1, 2, 0


@dataclass(frozen=True, slots=True)
class Share:
    """What a consumer should hold: at most `most` partitions, at least `least` when it can."""

    least: int
    most: int


def fair_share(partitions: int, live: int) -> Share:
    live = max(live, 1)
    return Share(partitions // live, math.ceil(partitions / live))


class PartitionLeases:
    """The leases one consumer holds on its group's partitions."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        group: str,
        consumer: str,
        partitions: int,
        ttl: float,
    ) -> None:
        self._redis = redis
        self._group = group
        self._consumer = consumer
        self._partitions = partitions
        self._ttl_ms = max(1, int(ttl * 1000))
        self._ttl = self._ttl_ms / 1000
        self._prefix = prefix
        self._members_key = f"{prefix}:consumers:{group}"
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        # Where the search for free partitions starts, so that consumers starting together do
        # not all race for partition 0 first.
        self._offset = zlib.crc32(consumer.encode()) % partitions
        self.deadlines: dict[int, float] = {}  # owned partition -> local monotonic deadline

    def key(self, partition: int) -> str:
        return f"{self._prefix}:lease:{self._group}:{partition}"

    @property
    def owned(self) -> list[int]:
        return sorted(self.deadlines)

    def valid(self, partition: int, margin: float) -> bool:
        """Whether the lease is held for at least `margin` more seconds."""
        deadline = self.deadlines.get(partition)
        return deadline is not None and deadline - time.monotonic() > margin

    def forget_expired(self) -> list[int]:
        """Drops leases whose deadline passed (renewal failed); returns their partitions."""
        now = time.monotonic()
        gone = [p for p, deadline in self.deadlines.items() if deadline <= now]
        for p in gone:
            del self.deadlines[p]
        return gone

    async def heartbeat(self) -> list[str]:
        """Announces this consumer as live for one ttl; returns the live consumers' names."""
        names = await self._heartbeat(keys=[self._members_key], args=[self._consumer, self._ttl_ms])
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]

    async def leave(self) -> None:
        await self._redis.zrem(self._members_key, self._consumer)

    async def owners(self) -> list[str | None]:
        """The current owner of every partition (None when free)."""
        values = await self._redis.mget([self.key(p) for p in range(self._partitions)])
        return [v.decode() if isinstance(v, bytes) else v for v in values]

    async def acquire(self, wanted: int, owners: Sequence[str | None]) -> list[int]:
        """Takes up to `wanted` free partitions; returns those taken.

        A partition whose lease already names this consumer (left by an earlier run under the
        same name, which cannot be running any more) is taken back too.
        """
        order = [(self._offset + i) % self._partitions for i in range(self._partitions)]
        mine = [p for p in order if owners[p] == self._consumer and p not in self.deadlines]
        free = [p for p in order if owners[p] is None]
        taken: list[int] = []
        for p in mine:
            if len(taken) >= wanted:
                break
            sent = time.monotonic()
            if await self._renew(keys=[self.key(p)], args=[self._consumer, self._ttl_ms]):
                self.deadlines[p] = sent + self._ttl
                taken.append(p)
        candidates = free[: max(0, wanted - len(taken))]
        if candidates:
            sent = time.monotonic()
            async with self._redis.pipeline(transaction=False) as pipe:
                for p in candidates:
                    pipe.set(self.key(p), self._consumer, nx=True, px=self._ttl_ms)
                results = await pipe.execute()
            for p, ok in zip(candidates, results, strict=True):
                if ok:
                    self.deadlines[p] = sent + self._ttl
                    taken.append(p)
        return taken

    async def renew(self) -> tuple[list[int], list[int]]:
        """Extends every lease held; returns (lost, retaken) partitions."""
        owned = self.owned
        if not owned:
            return [], []
        sent = time.monotonic()
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in owned:
                await self._renew(
                    keys=[self.key(p)], args=[self._consumer, self._ttl_ms], client=pipe
                )
            results = await pipe.execute()
        lost: list[int] = []
        retaken: list[int] = []
        for p, result in zip(owned, results, strict=True):
            if result == LOST:
                self.deadlines.pop(p, None)
                lost.append(p)
                continue
            if p in self.deadlines:
                self.deadlines[p] = sent + self._ttl
            if result == RETAKEN:
                retaken.append(p)
        return lost, retaken

    async def release(self, partitions: Sequence[int]) -> None:
        """Gives partitions up (first forgetting them, so no batch starts on them meanwhile)."""
        for p in partitions:
            self.deadlines.pop(p, None)
        if not partitions:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for p in partitions:
                await self._release(keys=[self.key(p)], args=[self._consumer], client=pipe)
            await pipe.execute()
