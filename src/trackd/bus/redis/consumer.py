"""One consumer of a group on the Redis Streams bus: owned partitions, fetch, ack, nack.

Ownership: the consumer reads only partitions whose lease it holds (`leases`), taking a
fair share of them and giving some up when more consumers join. When it takes a partition it
first claims (XAUTOCLAIM) whatever the group still has pending there for other consumers,
which the lease proves are gone or gave the partition up, and delivers those entries before
any new ones, so a key's events keep their order across a takeover.

Order: a partition has one stream per topic; entries are handed out across them in id order
(ids are arrival times), so a task's request, progress and result come in the order they
were published, as far as the publisher's calls ordered them. The ordering itself is the pure
`merge.MergeOrder`; this module does the reading, the leases and the acknowledgements.

Redelivery: entries fetched and not acknowledged stay in this consumer's pending list (PEL).
After a nack, or a takeover, the affected streams are re-read from the PEL (XREADGROUP with
an id instead of `>`) before new entries, skipping entries still in flight.

A batch is handed out only while its partitions' leases have a quarter of their ttl left;
messages of a partition whose lease was lost are dropped unacknowledged and reach the new
owner through its claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from trackd.bus.base import Message
from trackd.bus.redis.layout import (
    MAX_BLOCK_S,
    UNREACHABLE,
    RedisStreamsOptions,
    id_before,
    stream_name,
)
from trackd.bus.redis.leases import PartitionLeases, fair_share
from trackd.bus.redis.merge import MergeOrder, id_key
from trackd.bus.redis.trim import StreamTrimmer

log = logging.getLogger(__name__)

# A stream is trimmed after an ack at most this often.
_TRIM_AFTER_ACK_S = 1.0
# How long `ack` keeps trying an unreachable Redis; the entries stay pending meanwhile, and
# come back (harmlessly, ingest is idempotent) if it never answers.
_ACK_RETRY_S = 5.0
_CLAIM_COUNT = 1000
# A consumer with nothing pending, silent this many lease ttls, is removed from a group.
_FORGET_CONSUMER_AFTER_TTLS = 360
# How long closing waits for a renewal under way to finish.
_STOP_RENEWER_S = 5.0
# How long a fetch waits before looking again at ready messages held back for their lease.
_LEASE_WAIT_S = 0.02


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStreamsSubscription:
    """A consumer's handle on its group; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        options: RedisStreamsOptions,
        topics: tuple[str, ...],
        group: str,
        consumer: str,
        check_layout: Callable[[], Awaitable[None]],
    ) -> None:
        self._redis = redis
        self._opts = options
        self._topics = topics
        self._group = group
        self._consumer = consumer
        self._check_layout = check_layout
        self._leases = PartitionLeases(
            redis,
            prefix=options.prefix,
            group=group,
            consumer=consumer,
            partitions=options.partitions,
            ttl=options.lease_ttl,
        )
        self._trimmer = StreamTrimmer(redis)
        self._where: dict[str, tuple[str, int]] = {
            stream_name(options.prefix, t, p): (t, p)
            for p in range(options.partitions)
            for t in topics
        }
        # Streams to re-read from this consumer's PEL, after the id given, before new entries.
        self._cursors: dict[str, str] = {}
        # Delivered and handed out, neither acked nor nacked yet: (stream, entry id).
        self._inflight: set[tuple[str, str]] = set()
        # Delivered, not handed out yet, in the order to hand them out.
        self._merge = MergeOrder(lambda stream: self._where[stream][1])
        self._to_claim: set[int] = set()
        self._groups_ready = False
        self._next_rebalance = 0.0
        self._next_trim = time.monotonic() + options.trim_interval
        self._last_trim: dict[str, float] = {}
        self._margin = options.lease_ttl / 4
        # Lease changes come from fetch (rebalance) and the renewer; they take turns.
        self._lease_lock = asyncio.Lock()
        self._renewer: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._retry_delay = 0.1
        self._unreachable = False
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the group's streams and take partitions; an unreachable Redis is retried
        by `fetch`, so the consumer starts anyway."""
        try:
            await self._maintain()
        except UNREACHABLE as exc:
            self._note_unreachable(exc)
        self._renewer = asyncio.create_task(
            self._renew_forever(), name=f"trackd-redis-leases-{self._consumer}"
        )

    @property
    def partitions(self) -> list[int]:
        """The partitions this consumer owns now."""
        return self._leases.owned

    async def close(self) -> None:
        """Give the partitions up; unacknowledged messages stay pending for the next owner."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        if self._renewer is not None:
            # Stopped by the event rather than by cancellation alone: a cancellation landing
            # inside a redis-py call can be swallowed on Python 3.11 (asyncio.wait_for), and
            # the renewer would then run on.
            await asyncio.wait([self._renewer], timeout=_STOP_RENEWER_S)
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        self._merge.forget()
        self._inflight.clear()
        try:
            async with asyncio.timeout(2.0):
                await self._leases.release(self._leases.owned)
                await self._leases.leave()
        except (*UNREACHABLE, ResponseError) as exc:
            # The leases lapse by themselves after their ttl.
            log.warning(
                "could not release partitions on close consumer=%s: %s", self._consumer, exc
            )

    # -- fetch ----------------------------------------------------------------------------

    async def fetch(self, max_messages: int, block: float) -> list[Message]:
        """Up to `max_messages` from owned partitions: ones already read first, then pending
        ones to redeliver, then new ones (waiting at most `block` seconds, capped at 2 s).

        An unreachable Redis, or one that lost the group, gives an empty list after a short
        backoff; the next call tries again and re-creates what is missing.
        """
        if self._closed:
            return []
        deadline = time.monotonic() + max(0.0, min(block, MAX_BLOCK_S))
        while True:
            try:
                out = await self._fetch_once(max_messages, deadline)
            except UNREACHABLE as exc:
                self._note_unreachable(exc)
                left = deadline - time.monotonic()
                await asyncio.sleep(max(0.0, min(self._retry_delay, left)))
                self._retry_delay = min(self._retry_delay * 2, 5.0)
                return []
            except ResponseError as exc:
                if not self._lost_group(exc):
                    raise
                return []
            if self._unreachable:
                log.info("redis reachable again consumer=%s", self._consumer)
                self._unreachable = False
            self._retry_delay = 0.1
            # Empty with time left: no partition owned yet, all of a read was dropped, or
            # every ready message waits for its lease to be renewed.
            if out or time.monotonic() >= deadline or self._closed:
                return out
            if self._merge.has_ready:
                await asyncio.sleep(min(_LEASE_WAIT_S, max(0.0, deadline - time.monotonic())))

    async def _fetch_once(self, max_messages: int, deadline: float) -> list[Message]:
        await self._maintain()
        if not self._merge.has_ready:
            # Pending entries (a dead owner's, or nacked ones) are merged with new ones by id,
            # not handed out first (see `merge`).
            pending = await self._read_pending(max_messages)
            self._merge.add_pending((*self._locate(m)[:2], m) for m in pending)
            await self._read_new(max_messages, deadline - time.monotonic())
        return self._hand_out(max_messages)

    def _hand_out(self, max_messages: int) -> list[Message]:
        """The first `max_messages` ready ones whose lease is safe; the rest stay ready.

        A message whose partition's lease is close to running out stays ready, in order,
        until the renewer extends the lease (it is then handed out) or reports it lost (it
        is then dropped with the partition, and its next owner claims it).
        """
        out = self._merge.take(
            max_messages, lambda stream, _: self._leases.valid(self._where[stream][1], self._margin)
        )
        self._inflight.update((stream, self._locate(msg)[1]) for stream, msg in out)
        return [msg for _, msg in out]

    def _message(self, stream: str, entry_id: str, fields: dict[Any, Any]) -> Message | None:
        body = fields.get(b"body")
        if body is None:
            return None
        topic, partition = self._where[stream]
        key = fields.get(b"key")
        return Message(f"{partition}:{entry_id}", topic, body, _text(key) if key else None)

    def _locate(self, msg: Message) -> tuple[str, str, int]:
        """(stream, entry id, partition) of a message this bus delivered."""
        partition, _, entry_id = msg.id.partition(":")
        p = int(partition)
        return stream_name(self._opts.prefix, msg.topic, p), entry_id, p

    async def _read_pending(self, max_messages: int) -> list[Message]:
        owned = set(self._leases.owned)
        for stream in [s for s in self._cursors if self._where[s][1] not in owned]:
            del self._cursors[stream]
        out: list[Message] = []
        unreadable: dict[str, list[str]] = {}
        # All of it, however many rounds: what is left unread could precede what a new read
        # hands out. Each round moves every cursor on or drops it, so this ends; the PEL is
        # what a consumer had read, about two reads per stream.
        while self._cursors:
            # Typed loosely: redis-py's reply type spans RESP2 and RESP3 shapes.
            positions: dict[Any, Any] = dict(self._cursors)
            reply: Any = await self._redis.xreadgroup(
                self._group, self._consumer, positions, count=max_messages
            )
            answered = {_text(raw_stream) for raw_stream, _ in reply}
            for stream in positions.keys() - answered:
                self._cursors.pop(stream, None)
            for raw_stream, entries in reply:
                stream = _text(raw_stream)
                if not entries:
                    # Everything pending here was redelivered: back to new entries.
                    self._cursors.pop(stream, None)
                    continue
                for raw_id, fields in entries:
                    entry_id = _text(raw_id)
                    self._cursors[stream] = entry_id
                    if (stream, entry_id) in self._inflight:
                        continue
                    msg = self._message(stream, entry_id, fields)
                    if msg is None:  # deleted by hand (XDEL): nothing left to deliver
                        unreadable.setdefault(stream, []).append(entry_id)
                    else:
                        out.append(msg)
        if unreadable:
            log.warning("acknowledging pending entries that were deleted: %s", unreadable)
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream, ids in unreadable.items():
                    pipe.xack(stream, self._group, *ids)
                await pipe.execute()
        return out

    async def _read_new(self, max_messages: int, block: float) -> None:
        """Read new entries of the streams `merge` says may be read, and merge them."""
        streams = self._merge.readable(s for p in self._leases.owned for s in self._streams(p))
        if not streams:
            # Nothing owned yet: wait for the next rebalance rather than spin.
            until_rebalance = self._next_rebalance - time.monotonic()
            await asyncio.sleep(max(0.0, min(block, until_rebalance)))
            return
        # COUNT applies per stream: ask each for a share, so one read returns at most about
        # twice what was asked for.
        count = max(1, min(max_messages, math.ceil(2 * max_messages / len(streams))))
        # Only wait for new entries when none are held: held ones are ready by the next read.
        block_ms = int(block * 1000) if not self._merge.holding else 0
        positions: dict[Any, Any] = dict.fromkeys(streams, ">")
        reply: Any = await self._redis.xreadgroup(
            self._group,
            self._consumer,
            positions,
            count=count,
            block=block_ms if block_ms > 0 else None,
        )
        returned: dict[str, list[tuple[str, Message | None]]] = {}
        for raw_stream, entries in reply or []:
            stream = _text(raw_stream)
            returned[stream] = [
                (_text(raw_id), self._message(stream, _text(raw_id), fields))
                for raw_id, fields in entries
            ]
        self._merge.add_read(streams, count, returned)

    # -- ack / nack -----------------------------------------------------------------------

    async def ack(self, messages: Sequence[Message]) -> None:
        """XACK per stream, and trim the streams acked (at most once a second each).

        If Redis stays unreachable for a few seconds the entries stay pending and are
        delivered again later; ingest is idempotent, so that costs time, not correctness.
        """
        if not messages:
            return
        by_stream = self._by_stream(messages)
        for stream, ids in by_stream.items():
            self._inflight.difference_update((stream, i) for i in ids)
        now = time.monotonic()
        to_trim = [s for s in by_stream if now - self._last_trim.get(s, 0.0) >= _TRIM_AFTER_ACK_S]
        deadline = now + _ACK_RETRY_S
        delay = 0.05
        while True:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for stream, ids in by_stream.items():
                        pipe.xack(stream, self._group, *ids)
                    for stream in to_trim:
                        await self._trimmer.queue(pipe, stream)
                    await pipe.execute()
                break
            except UNREACHABLE as exc:
                if time.monotonic() + delay > deadline or self._closed:
                    log.warning(
                        "could not acknowledge %d messages, they will be delivered again: %s",
                        len(messages),
                        exc,
                    )
                    self._redeliver(by_stream)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            except ResponseError as exc:
                if not self._lost_group(exc):
                    raise
                return
        for stream in to_trim:
            self._last_trim[stream] = now

    async def nack(self, messages: Sequence[Message]) -> None:
        """Deliver the messages again on the next fetch (and, to keep each key's order, the
        buffered ones that followed them)."""
        by_stream = self._by_stream([*messages, *self._merge.forget()])
        for stream, ids in by_stream.items():
            self._inflight.difference_update((stream, i) for i in ids)
        self._redeliver(by_stream)

    def _by_stream(self, messages: Iterable[Message]) -> dict[str, list[str]]:
        by_stream: dict[str, list[str]] = {}
        for msg in messages:
            stream, entry_id, _ = self._locate(msg)
            by_stream.setdefault(stream, []).append(entry_id)
        return by_stream

    def _redeliver(self, by_stream: dict[str, list[str]]) -> None:
        """Re-read these streams' PEL from just before the oldest id given."""
        for stream, ids in by_stream.items():
            start = id_before(min(ids, key=id_key))
            current = self._cursors.get(stream)
            if current is None or id_key(start) < id_key(current):
                self._cursors[stream] = start

    # -- partitions -----------------------------------------------------------------------

    def _streams(self, partition: int) -> list[str]:
        return [stream_name(self._opts.prefix, t, partition) for t in self._topics]

    async def _maintain(self) -> None:
        """Create missing groups, rebalance and trim when due."""
        if not self._groups_ready:
            await self._check_layout()
            await self._create_groups()
            self._groups_ready = True
            self._next_rebalance = 0.0
        now = time.monotonic()
        if now >= self._next_rebalance or self._to_claim:
            async with self._lease_lock:
                await self._rebalance()
            self._next_rebalance = now + self._opts.rebalance_interval
        if now >= self._next_trim:
            await self._sweep()
            await self.trim()
            self._next_trim = now + self._opts.trim_interval

    async def _create_groups(self) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in self._where:
                # From the start ("0"), so what was published before anyone subscribed is
                # delivered too.
                pipe.xgroup_create(stream, self._group, id="0", mkstream=True)
            results = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, Exception) and "BUSYGROUP" not in str(result):
                raise result

    async def _rebalance(self) -> None:
        """Renew presence, then give up or take partitions towards a fair share.

        Everyone aims at between floor(N / live) and ceil(N / live) partitions. A consumer
        above the ceiling gives the excess up; one above the floor gives one up when someone
        live is below the floor and no free partition is left for them. It takes partitions
        up to the floor first, and up to the ceiling only from what nobody below the floor
        needs. Partitions with messages in flight are kept until those are acked.
        """
        live = await self._leases.heartbeat()
        share = fair_share(self._opts.partitions, len(live))
        self._drop(self._leases.forget_expired())
        owners = await self._leases.owners()
        mine = self._leases.owned
        held = Counter(o for o in owners if o is not None)
        free = sum(1 for o in owners if o is None)
        deficit = sum(max(0, share.least - held[n]) for n in live if n != self._consumer)
        busy = {self._where[s][1] for s, _ in self._inflight}
        idle = [p for p in reversed(mine) if p not in busy]
        release: list[int] = []
        if len(mine) > share.most:
            release = idle[: len(mine) - share.most]
        elif len(mine) > share.least and deficit > free:
            release = idle[:1]
        if release:
            self._drop(release)
            await self._leases.release(release)
            log.info(
                "gave up partitions %s consumer=%s live=%d", release, self._consumer, len(live)
            )
        else:
            base = max(0, share.least - len(mine))
            room = free - base - deficit
            extra = max(0, min(share.most - max(len(mine), share.least), room))
            wanted = min(free, base + extra)
            if wanted:
                taken = await self._leases.acquire(wanted, owners)
                if taken:
                    log.info(
                        "took partitions %s consumer=%s live=%d", taken, self._consumer, len(live)
                    )
                self._to_claim.update(taken)
        for partition in sorted(self._to_claim):
            if partition in self._leases.deadlines:
                await self._claim(partition)
        self._to_claim.clear()

    async def _claim(self, partition: int) -> None:
        """Take over what the group has pending in a partition, to deliver it first."""
        for stream in self._streams(partition):
            start = "0-0"
            while True:
                # Idle time 0: holding the lease means the previous owner is gone or gave the
                # partition up, so nothing pending there is being worked on.
                reply = await self._redis.xautoclaim(
                    stream, self._group, self._consumer, 0, start, count=_CLAIM_COUNT
                )
                start = _text(reply[0])
                if start == "0-0":
                    break
            self._cursors[stream] = "0-0"

    async def _sweep(self) -> None:
        """Claim what other consumers hold pending in owned partitions; forget old consumers.

        Normally empty: a takeover claims everything. But a consumer whose lease lapsed
        mid-read (stalled, or cut off from Redis) may have had entries delivered after the
        takeover; they would wait in its PEL for the next takeover without this. Consumers
        that hold nothing and have not read for a long time (earlier processes: names are
        hostname-pid) are removed from the group so its bookkeeping does not grow forever.
        """
        idle_ms = int(self._opts.lease_ttl * 1000)
        for partition in self._leases.owned:
            for stream in self._streams(partition):
                start, claimed = "0-0", False
                while True:
                    reply = await self._redis.xautoclaim(
                        stream, self._group, self._consumer, idle_ms, start, count=_CLAIM_COUNT
                    )
                    claimed = claimed or bool(reply[1])
                    start = _text(reply[0])
                    if start == "0-0":
                        break
                if claimed:
                    self._cursors[stream] = "0-0"
                for info in await self._redis.xinfo_consumers(stream, self._group):
                    name = _text(info["name"])
                    if name != self._consumer and not info["pending"]:
                        if int(info["idle"]) > _FORGET_CONSUMER_AFTER_TTLS * idle_ms:
                            await self._redis.xgroup_delconsumer(stream, self._group, name)

    def _drop(self, partitions: Iterable[int]) -> None:
        """Forget buffered messages and redelivery plans of partitions no longer owned."""
        gone = set(partitions)
        if not gone:
            return
        streams = {s for p in gone for s in self._streams(p)}
        self._merge.forget(streams)
        for stream in streams & self._cursors.keys():
            del self._cursors[stream]

    async def _renew_forever(self) -> None:
        period = self._opts.lease_ttl / 3
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            try:
                async with self._lease_lock:
                    lost, retaken = await self._leases.renew()
                    await self._leases.heartbeat()
            except UNREACHABLE as exc:
                self._note_unreachable(exc)
                continue
            except Exception:  # the renewer must outlive any one failure
                log.exception("renewing partition leases failed consumer=%s", self._consumer)
                continue
            if lost:
                log.warning("lost partitions %s consumer=%s", lost, self._consumer)
                self._drop(lost)
            if retaken:
                # Redis forgot the leases (restarted): claim again what may have moved.
                self._to_claim.update(retaken)

    # -- trimming and failures ------------------------------------------------------------

    async def trim(self) -> int:
        """Trim the streams of owned partitions to what every group still needs.

        Returns:
            How many entries were removed.
        """
        streams = [s for p in self._leases.owned for s in self._streams(p)]
        if not streams:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                await self._trimmer.queue(pipe, stream)
            removed = await pipe.execute()
        now = time.monotonic()
        for stream in streams:
            self._last_trim[stream] = now
        return sum(int(r) for r in removed)

    def _lost_group(self, exc: ResponseError) -> bool:
        """Whether Redis lost the group (restarted empty); if so, re-create it next fetch."""
        if "NOGROUP" not in str(exc):
            return False
        log.warning("consumer group missing, re-creating it group=%s: %s", self._group, exc)
        self._groups_ready = False
        self._cursors.clear()
        return True

    def _note_unreachable(self, exc: BaseException) -> None:
        if not self._unreachable:
            log.warning("redis unreachable, retrying consumer=%s: %s", self._consumer, exc)
            self._unreachable = True
