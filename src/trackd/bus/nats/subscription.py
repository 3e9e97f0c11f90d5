"""One consumer's handle: JetStream pull consumers and core queue subscriptions feeding one
bounded buffer, from which `fetch` takes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js.api import ConsumerConfig
from nats.js.client import JetStreamContext

from trackd.bus.base import Message
from trackd.bus.nats.buffer import Buffer
from trackd.bus.nats.connection import NATS_FAILURES
from trackd.bus.nats.messages import Delivery, key_of
from trackd.bus.nats.puller import Puller

log = logging.getLogger(__name__)

# A core subscription's client queue holds this many buffers' worth, and at most these bytes.
_CORE_BURST = 16
_CORE_BURST_BYTES = 64 * 1024 * 1024
_SLOW_LOG_EVERY = 10.0  # seconds between two buffer-full warnings


class NatsSubscription:
    """One consumer's handle: JetStream pull consumers and core queue subscriptions feeding
    one bounded buffer, from which `fetch` takes.
    """

    def __init__(self, nc: Client, bound: int, consumer: str) -> None:
        self._nc = nc
        self._buffer = Buffer(bound)
        self._consumer = consumer
        self._pending: dict[str, Delivery] = {}  # fetched, not yet acked or nacked
        self._pullers: list[Puller] = []
        self._cores: list[CoreSubscription] = []
        # Core messages carry no id; this one is unique per subscription and sorts by arrival.
        self._ids = itertools.count(1)
        self._id_prefix = f"{consumer}-{secrets.token_hex(4)}"
        self._full_logged_at = 0.0
        self.modes: dict[str, str] = {}  # topic -> "jetstream:STREAM" or "core"
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def add_pull(
        self, js: JetStreamContext, stream: str, topic: str, config: ConsumerConfig
    ) -> None:
        """Pull `topic` from the durable consumer `config` describes, creating it if need be."""
        durable = config.durable_name or ""
        try:
            await js.consumer_info(stream, durable)
        except nats.js.errors.NotFoundError:
            try:
                await js.add_consumer(stream, config)
            except nats.js.errors.BadRequestError:
                await js.consumer_info(stream, durable)  # another member created it first
        self._pullers.append(Puller(self._nc, stream, durable, topic, self._buffer))
        self.modes[topic] = f"jetstream:{stream}"

    async def start(self) -> None:
        """Start pulling, each consumer for its share of the buffer.

        Shares, because a request holds its room until its answer is in: one consumer
        holding all of it would starve the others.
        """
        share = max(1, self._buffer.bound // max(1, len(self._pullers)))
        for puller in self._pullers:
            await puller.start(share)

    async def add_core(self, subject: str, topic: str, queue: str) -> None:
        """Receive `subject` as a member of the core queue group `queue`."""

        async def deliver(raw: Msg) -> None:
            message = Message(f"{self._id_prefix}-{next(self._ids)}", topic, raw.data, key_of(raw))
            await self._buffer.put_one(Delivery(message, None), lambda: self._note_full(subject))

        # The client queues what the socket delivers without yielding to `deliver`, so its
        # queue must absorb a burst; while the buffer is full it fills, and beyond its limits
        # nats-py drops messages and reports a slow consumer.
        sub = await self._nc.subscribe(
            subject,
            queue=queue,
            cb=deliver,
            pending_msgs_limit=self._buffer.bound * _CORE_BURST,
            pending_bytes_limit=_CORE_BURST_BYTES,
        )
        self._cores.append(sub)
        self.modes[topic] = "core"

    async def fetch(self, max_messages: int, block: float) -> list[Message]:
        """Up to `max_messages` messages; waits at most `block` seconds for the first."""
        deliveries = await self._buffer.take(max_messages, block)
        for d in deliveries:
            self._pending[d.message.id] = d
        return [d.message for d in deliveries]

    async def ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge JetStream messages (core messages need nothing)."""
        raws = [d.raw for m in messages if (d := self._pending.pop(m.id, None)) and d.raw]
        await self._signal(raws, Msg.ack, "they will be redelivered")

    async def nack(self, messages: Sequence[Message]) -> None:
        """Give messages back to this subscription: the next `fetch` returns them first.

        They stay here, not in the stream, so that each key keeps its order: a JetStream nak
        would put them behind what this subscription has already pulled. The server restarts
        their `ack_wait`; `close` hands them back to the stream for the group's other members.
        """
        back = [d for m in messages if (d := self._pending.pop(m.id, None))]
        self._buffer.give_back(back)
        raws = [d.raw for d in back if d.raw is not None]
        await self._signal(raws, Msg.in_progress, "they may be redelivered after ack_wait")

    async def close(self) -> None:
        """Stop receiving; hand back what was received and not acknowledged.

        Waits for the pull requests in flight to be answered, so that none is left on the
        server to take messages nobody will read.
        """
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(puller.stop() for puller in self._pullers))
        for sub in self._cores:
            with contextlib.suppress(nats.errors.Error):  # already gone with its connection
                await sub.unsubscribe()
        self._buffer.give_back(list(self._pending.values()))
        self._pending.clear()
        leftover = self._buffer.drain()
        lost = sum(1 for d in leftover if d.raw is None)
        if lost:
            log.warning(
                "nats core subscription closed consumer=%s with %d message(s) unprocessed: "
                "core NATS cannot redeliver them",
                self._consumer,
                lost,
            )
        raws = [d.raw for d in leftover if d.raw is not None]
        await self._signal(raws, Msg.nak, "they come back after ack_wait")

    async def _signal(
        self, raws: Sequence[Msg], verb: Callable[[Msg], Awaitable[None]], otherwise: str
    ) -> None:
        """Send one kind of JetStream acknowledgement (`ack`, `nak`, `in_progress`) for each.

        One that does not reach the server is logged, not raised: the message comes back after
        `ack_wait`, and ingest recognises an event id it has already folded.
        """
        if not raws:
            return
        try:
            for raw in raws:
                await verb(raw)
            # On the wire, not in the client's buffer, before this returns.
            await self._nc.flush()
        except NATS_FAILURES as exc:
            name = verb.__name__
            log.warning("nats %s not confirmed count=%d, %s: %r", name, len(raws), otherwise, exc)

    def _note_full(self, subject: str) -> None:
        now = time.monotonic()
        if now - self._full_logged_at >= _SLOW_LOG_EVERY:
            self._full_logged_at = now
            log.warning(
                "nats buffer full consumer=%s subject=%s bound=%d: core NATS drops what "
                "arrives beyond the client's limit while ingest catches up",
                self._consumer,
                subject,
                self._buffer.bound,
            )
