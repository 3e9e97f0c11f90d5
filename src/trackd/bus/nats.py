"""The NATS bus, compatible with the agent platform (soorma).

The platform publishes each event with plain NATS core on `soorma.events.{topic}` and its
tracker subscribes with the queue group `tracker-service`; trackd does the same, so it can
take the tracker's place. Each topic is delivered in one of two modes, chosen by the server:

* **JetStream**, when a stream covers the topic's subject (the platform's core publishes are
  stored by such a stream too). `publish` returns once the stream has acknowledged every
  message, so they are durable. A subscription is a durable pull consumer with explicit acks:
  delivery is at least once. A message fetched and not acknowledged comes back: after `nack`
  to the same subscription, ahead of later ones; after `close` to any member of the group; and
  `ack_wait` seconds after it was pulled when its consumer dies (or takes longer than that to
  acknowledge it, which delivers it twice: harmless, as ingest ignores an event id it has).
  Pull requests never wait on the server (see `_Puller`); an idle subscription asks again
  at most every 0.2 s, so that is the latency a message sees once ingest has caught up.
* **NATS core** otherwise. Delivery is at most once: `publish` returns once the server has
  received the messages, not stored them; a message published while no member of the queue
  group is subscribed is lost; one that reaches a consumer which falls too far behind is
  dropped (slow consumer, logged); there is no acknowledgement, so `ack` does nothing,
  `nack` only hands messages back to the same subscription, and what a subscription holds
  when it closes or its process dies is lost.

Create a stream (`?create_stream=true`, or with the `nats` CLI) for durability. Delivery in a
queue group or a shared pull consumer is spread over its members, so the order of one task's
events across consumers is not kept; ingest's fold does not depend on arrival order.

URL: `nats://host:4222?prefix=soorma.events&queue=tracker-service&stream=SOORMA_EVENTS&
create_stream=true&ack_wait=30&buffer=1000`. `queue` names trackd's ingest group on NATS:
its queue group, and the durable consumers `{queue}-{topic}`; other groups keep their names.
`stream` names a stream that must exist, or is created over `{prefix}.>` with `create_stream`.
`buffer` bounds what a subscription holds that was not fetched yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from trackd.bus.base import Message
from trackd.errors import BusUnavailableError, ConfigError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "soorma.events"
DEFAULT_QUEUE = "tracker-service"
KEY_HEADER = "Trackd-Key"
# trackd.ingest.consumer.INGEST_GROUP, spelled out because bus/ must not import ingest/.
INGEST_GROUP = "trackd-ingest"

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # safe as a subject token, a queue and a durable name
# Idle pull consumers ask again after this long, doubling up to the most; a message waits
# at most that long once ingest has caught up.
_PULL_IDLE_MIN = 0.01
_PULL_IDLE_MAX = 0.2
_JS_API = "$JS.API"  # JetStream's API subjects in the default domain
_PULL_LOST = 5.0  # seconds without an answer before a pull request is taken for lost
_STATUS_HEARTBEAT = "100"
_STATUS_ENDED = {"404", "408"}  # nothing to deliver; the end of what there was
_LOOKUP_TTL = 30.0  # seconds a publisher trusts its stream lookup, so a new stream is noticed
_PUBLISH_WINDOW = 256  # JetStream publishes awaiting their acks at once
# Pull consumers are shared by every ingest process; this bounds what they hold together.
_MAX_ACK_PENDING = 20_000
# A core subscription's client queue holds this many buffers' worth, and at most these bytes.
_CORE_BURST = 16
_CORE_BURST_BYTES = 64 * 1024 * 1024
_CORE_SETTLE = 0.05  # seconds a new core subscription waits before it is used
_SLOW_LOG_EVERY = 10.0  # seconds between two slow-consumer warnings


@dataclass(frozen=True, slots=True)
class NatsOptions:
    """What the query string of a `nats://` URL sets."""

    prefix: str = DEFAULT_PREFIX
    queue: str = DEFAULT_QUEUE
    stream: str | None = None
    create_stream: bool = False
    ack_wait: float = 30.0
    buffer: int = 1000
    # Whole seconds: nats-py takes these as int.
    connect_timeout: int = 2
    request_timeout: int = 5

    @classmethod
    def from_query(cls, query: str) -> NatsOptions:
        """Options from `prefix=...&queue=...`.

        Raises:
            ConfigError: an unknown parameter, or a value that cannot be used.
        """
        raw = dict(parse_qsl(query, keep_blank_values=True))
        unknown = sorted(
            set(raw) - {"prefix", "queue", "stream", "create_stream", "ack_wait", "buffer"}
        )
        if unknown:
            raise ConfigError(
                f"unknown NATS URL parameter(s) {unknown}; use prefix, queue, stream, "
                "create_stream, ack_wait or buffer"
            )
        prefix = raw.get("prefix", DEFAULT_PREFIX)
        if not all(_TOKEN.fullmatch(part) for part in prefix.split(".")):
            raise ConfigError(
                f"NATS prefix {prefix!r} must be dot-separated words like soorma.events"
            )
        queue = _token(raw.get("queue", DEFAULT_QUEUE), "queue")
        stream = _token(raw["stream"], "stream") if "stream" in raw else None
        create = raw.get("create_stream", "false").lower()
        if create not in ("true", "false", "1", "0"):
            raise ConfigError(f"create_stream={create!r}: use true or false")
        try:
            ack_wait = float(raw.get("ack_wait", "30"))
            buffer = int(raw.get("buffer", "1000"))
        except ValueError as exc:
            raise ConfigError(
                f"NATS URL: ack_wait takes seconds and buffer a count ({exc})"
            ) from None
        if ack_wait <= 0 or buffer < 1:
            raise ConfigError("NATS URL: ack_wait and buffer must be positive")
        create_stream = create in ("true", "1")
        return cls(prefix, queue, stream, create_stream, ack_wait, buffer)


def _token(value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ConfigError(f"NATS {what} {value!r} may hold only letters, digits, '-' and '_'")
    return value


class NatsBus:
    """Topics as NATS subjects `{prefix}.{topic}`; groups as queue groups or durable consumers.

    Connects on first use. A server that cannot be reached raises `BusUnavailableError`; once
    connected, the client reconnects by itself and operations fail with that error meanwhile.
    """

    def __init__(self, server: str = "nats://127.0.0.1:4222", options: NatsOptions | None = None):
        self.server = server
        self.options = options or NatsOptions()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._connecting = asyncio.Lock()
        self._streams: dict[str, tuple[str | None, float]] = {}  # subject -> (stream, until)
        self._subscriptions: set[NatsSubscription] = set()
        self._core_noted: set[str] = set()
        self._dropped = 0
        self._dropped_logged_at = 0.0
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> NatsBus:
        """The bus for `nats://host:port?...` (or `tls://`); see the module for parameters.

        Raises:
            ConfigError: the URL's query holds something unknown or unusable.
        """
        parts = urlsplit(url)
        server = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        return cls(server, NatsOptions.from_query(parts.query))

    def subject(self, topic: str) -> str:
        """The subject a topic is published on."""
        return f"{self.options.prefix}.{_token(topic, 'topic')}"

    def queue_name(self, group: str) -> str:
        """The queue group (and durable consumer prefix) a consumer group uses on NATS."""
        return self.options.queue if group == INGEST_GROUP else _token(group, "group")

    async def publish(
        self, topic: str, bodies: Sequence[bytes], keys: Sequence[str | None] | None = None
    ) -> None:
        """Publish; durable when a JetStream stream covers the subject, else at most once.

        A failure may leave part of the batch published; publishing it again is safe, since
        ingest ignores an event id it has already folded.

        Raises:
            BusUnavailableError: the server cannot be reached or did not confirm the messages.
        """
        if keys is not None and len(keys) != len(bodies):
            raise ValueError("keys and bodies differ in length")
        subject = self.subject(topic)
        if not bodies:
            return
        headers = [None if k is None else {KEY_HEADER: k} for k in keys or [None] * len(bodies)]
        nc, js = await self._connection()
        try:
            if await self._stream_for(js, subject) is not None:
                try:
                    await _publish_jetstream(js, subject, bodies, headers)
                    return
                except nats.js.errors.NoStreamResponseError:
                    # The stream was deleted after the lookup: look again, and publish with
                    # core only if no stream covers the subject any more.
                    self._streams.pop(subject, None)
                    if await self._stream_for(js, subject) is not None:
                        raise
            await self._publish_core(nc, subject, bodies, headers)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            # The stream may be what changed (a publish to a deleted stream's subject that
            # has core subscribers times out): look it up again next time.
            self._streams.pop(subject, None)
            raise BusUnavailableError(
                f"NATS at {self.server} did not confirm {len(bodies)} message(s) on {subject}: "
                f"{exc!r}; publish them again once it is reachable"
            ) from exc

    async def subscribe(self, topics: Sequence[str], group: str, consumer: str) -> NatsSubscription:
        """Join `group` on each topic: a durable pull consumer where a stream covers the
        topic, else the core queue group; returns once the server knows the interest.

        Raises:
            BusUnavailableError: the server cannot be reached.
        """
        name = self.queue_name(group)
        nc, js = await self._connection()
        sub = NatsSubscription(nc, self.options.buffer, consumer)
        try:
            for topic in dict.fromkeys(topics):
                subject = self.subject(topic)
                stream = await _find_stream(js, subject)
                if stream is None:
                    await sub.add_core(subject, topic, name)
                else:
                    await sub.add_pull(js, stream, topic, self._consumer_config(name, topic))
            await sub.start()
            # A core subscription receives only what is published after the server holds it.
            await nc.flush(timeout=self.options.request_timeout)
            if "core" in sub.modes.values():
                # Even then nats-server 2.9 was seen to route another client's next publish
                # past a brand-new subscription (about 1 in 100); a moment's wait avoided it.
                await asyncio.sleep(_CORE_SETTLE)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            await sub.close()
            raise BusUnavailableError(
                f"could not subscribe to {topics} on NATS at {self.server}: {exc!r}"
            ) from exc
        self._subscriptions = {s for s in self._subscriptions if not s.closed}
        self._subscriptions.add(sub)
        log.info(
            "nats subscribed group=%s queue=%s consumer=%s modes=%s",
            group,
            name,
            consumer,
            sub.modes,
        )
        return sub

    async def connect(self) -> None:
        """Connect now rather than on first use, creating the stream when the URL asks.

        Raises:
            BusUnavailableError: the server cannot be reached.
            ConfigError: the stream named in the URL does not exist, or cannot.
        """
        await self._connection()

    async def close(self) -> None:
        """Close every subscription (their unacknowledged messages go back) and disconnect."""
        self._closed = True
        for sub in list(self._subscriptions):
            await sub.close()
        self._subscriptions.clear()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    def _consumer_config(self, name: str, topic: str) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=f"{name}-{topic}",
            filter_subject=self.subject(topic),
            ack_policy=AckPolicy.EXPLICIT,
            # A new group reads what the stream already holds, as a consumer group would.
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.options.ack_wait,
            max_ack_pending=_MAX_ACK_PENDING,
        )

    async def _connection(self) -> tuple[Client, JetStreamContext]:
        if self._closed:
            raise RuntimeError("the bus is closed")
        async with self._connecting:
            if self._nc is None or self._js is None:
                nc = await self._connect()
                js = nc.jetstream(timeout=self.options.request_timeout)
                try:
                    if self.options.stream is not None:
                        await self._ensure_stream(js, self.options.stream)
                except BaseException:
                    await nc.close()
                    raise
                self._nc, self._js = nc, js
            return self._nc, self._js

    async def _connect(self) -> Client:
        # nats-py retries a first connection as often as it would reconnect later (minutes by
        # default), which hides a wrong URL. A probe allowed two immediate attempts fails at
        # once instead; the connection kept afterwards reconnects forever.
        failures: list[Exception] = []

        async def remember(exc: Exception) -> None:
            failures.append(exc)

        try:
            probe = await nats.connect(
                servers=[self.server],
                connect_timeout=self.options.connect_timeout,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=remember,
            )
            await probe.close()
            nc = Client()
            async with asyncio.timeout(self.options.connect_timeout * 3):
                await nc.connect(
                    servers=[self.server],
                    name="trackd",
                    connect_timeout=self.options.connect_timeout,
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            cause = failures[-1] if failures else exc
            raise BusUnavailableError(
                f"cannot reach NATS at {self.server}: {cause!r}; is nats-server running there?"
            ) from exc
        return nc

    async def _ensure_stream(self, js: JetStreamContext, name: str) -> None:
        subjects = [f"{self.options.prefix}.>"]
        try:
            try:
                await js.stream_info(name)
                return
            except nats.js.errors.NotFoundError:
                if not self.options.create_stream:
                    raise ConfigError(
                        f"NATS stream {name!r} does not exist; create it or add create_stream=true"
                    ) from None
            try:
                await js.add_stream(
                    StreamConfig(name=name, subjects=subjects, storage=StorageType.FILE)
                )
                log.info("nats stream created name=%s subjects=%s", name, subjects)
            except nats.js.errors.BadRequestError:
                await js.stream_info(name)  # another process created it first
        except nats.js.errors.ServiceUnavailableError:
            raise ConfigError(
                f"NATS at {self.server} has no JetStream, so stream {name!r} cannot be used; "
                "start nats-server with -js, or drop stream= from the URL"
            ) from None

    async def _stream_for(self, js: JetStreamContext, subject: str) -> str | None:
        now = time.monotonic()
        cached = self._streams.get(subject)
        if cached is not None and cached[1] > now:
            return cached[0]
        stream = await _find_stream(js, subject)
        self._streams[subject] = (stream, now + _LOOKUP_TTL)
        return stream

    async def _publish_core(
        self,
        nc: Client,
        subject: str,
        bodies: Sequence[bytes],
        headers: list[dict[str, str] | None],
    ) -> None:
        if subject not in self._core_noted:
            self._core_noted.add(subject)
            log.info(
                "nats no stream covers subject=%s: publishing with NATS core, at most once", subject
            )
        for body, header in zip(bodies, headers, strict=True):
            await nc.publish(subject, body, headers=header)
        # The server has read everything before this round trip returns; that is all core
        # NATS can confirm.
        await nc.flush(timeout=self.options.request_timeout)

    async def _on_error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            self._dropped += 1
            now = time.monotonic()
            if now - self._dropped_logged_at >= _SLOW_LOG_EVERY:
                self._dropped_logged_at = now
                log.warning(
                    "nats core dropped messages for a slow consumer subject=%s dropped=%d: "
                    "ingest is behind and core NATS cannot hold messages back; a JetStream "
                    "stream would keep them",
                    exc.subject,
                    self._dropped,
                )
            return
        log.warning("nats error server=%s: %r", self.server, exc)

    async def _on_disconnected(self) -> None:
        log.warning("nats disconnected server=%s, reconnecting", self.server)

    async def _on_reconnected(self) -> None:
        log.info("nats reconnected server=%s", self.server)


async def _find_stream(js: JetStreamContext, subject: str) -> str | None:
    try:
        return await js.find_stream_name_by_subject(subject)
    except nats.js.errors.NotFoundError:
        return None
    except nats.js.errors.ServiceUnavailableError:
        return None  # the server runs without JetStream


async def _publish_jetstream(
    js: JetStreamContext,
    subject: str,
    bodies: Sequence[bytes],
    headers: list[dict[str, str] | None],
) -> None:
    # Awaiting each ack before the next publish would cost a round trip per message.
    for start in range(0, len(bodies), _PUBLISH_WINDOW):
        window = zip(
            bodies[start : start + _PUBLISH_WINDOW],
            headers[start : start + _PUBLISH_WINDOW],
            strict=True,
        )
        results = await asyncio.gather(
            *(js.publish(subject, body, headers=header) for body, header in window),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


@dataclass(frozen=True, slots=True)
class _Delivery:
    message: Message
    raw: Msg | None  # the JetStream message to ack; None for core NATS


class _Buffer:
    """Messages received and not yet fetched, at most `bound` of them (plus any handed back).

    Pull consumers reserve room before they pull, so the server keeps what does not fit.
    """

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._items: deque[_Delivery] = deque()
        self._reserved = 0
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()

    def free(self) -> int:
        return self.bound - len(self._items) - self._reserved

    async def reserve(self, want: int) -> int:
        """Room for up to `want` deliveries, waiting until there is some."""
        while self.free() <= 0:
            self._not_full.clear()
            await self._not_full.wait()
        got = min(want, self.free())
        self._reserved += got
        return got

    def put(self, deliveries: Sequence[_Delivery], reserved: int) -> None:
        self._reserved -= reserved
        self._items.extend(deliveries)
        if deliveries:
            self._not_empty.set()
        if reserved > len(deliveries):
            self._not_full.set()

    async def put_one(self, delivery: _Delivery, when_full: Callable[[], None]) -> None:
        """Add one delivery, waiting for room; calls `when_full` before it waits."""
        if self.free() <= 0:
            when_full()
        while self.free() <= 0:
            self._not_full.clear()
            await self._not_full.wait()
        self._items.append(delivery)
        self._not_empty.set()

    def give_back(self, deliveries: Sequence[_Delivery]) -> None:
        self._items.extendleft(reversed(deliveries))
        if deliveries:
            self._not_empty.set()

    async def take(self, max_messages: int, block: float) -> list[_Delivery]:
        if not self._items:
            try:
                async with asyncio.timeout(block):
                    while not self._items:
                        self._not_empty.clear()
                        await self._not_empty.wait()
            except TimeoutError:
                return []
        out = [self._items.popleft() for _ in range(min(max_messages, len(self._items)))]
        self._not_full.set()
        return out

    def drain(self) -> list[_Delivery]:
        out = list(self._items)
        self._items.clear()
        return out


class NatsSubscription:
    """One consumer's handle: JetStream pull consumers and core queue subscriptions feeding
    one bounded buffer, from which `fetch` takes.
    """

    def __init__(self, nc: Client, bound: int, consumer: str) -> None:
        self._nc = nc
        self._buffer = _Buffer(bound)
        self._consumer = consumer
        self._pending: dict[str, _Delivery] = {}  # fetched, not yet acked or nacked
        self._pullers: list[_Puller] = []
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
        self._pullers.append(_Puller(self._nc, stream, durable, topic, self._buffer))
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
            message = Message(f"{self._id_prefix}-{next(self._ids)}", topic, raw.data, _key(raw))
            await self._buffer.put_one(_Delivery(message, None), lambda: self._note_full(subject))

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
        except (nats.errors.Error, OSError, TimeoutError) as exc:
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


class _Puller:
    """Pulls one durable consumer's messages into the buffer, one request at a time.

    Each request is followed to its end (its batch filled, or the server's status saying it
    ended) before the next, so none outlives the loop. nats-py's `fetch` returns while its
    request may still wait on the server, and a request whose subscriber has gone takes
    messages that then sit until `ack_wait` (nats-server 2.9 even hands it nacked ones).
    """

    def __init__(self, nc: Client, stream: str, durable: str, topic: str, buffer: _Buffer) -> None:
        self._nc = nc
        self._next = f"{_JS_API}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._topic = topic
        self._buffer = buffer
        self._owed = 0  # messages the request in flight may still bring; room is reserved
        self._ended = asyncio.Event()
        self._sub: CoreSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._share = 1  # the most room one request takes
        self._requesting = False
        self._stopping = False

    async def start(self, share: int) -> None:
        self._share = share
        self._sub = await self._nc.subscribe(self._inbox, cb=self._receive)
        self._task = asyncio.create_task(self._run(), name=f"nats-pull-{self._topic}")

    async def stop(self) -> None:
        """End the loop once its request in flight has ended; then stop listening."""
        self._stopping = True
        task = self._task
        if task is not None:
            if not self._requesting:
                task.cancel()  # waiting for room, with no request on the server
            await asyncio.wait([task])
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.error("nats pull loop failed topic=%s: %r", self._topic, exc)
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):  # gone with its connection
                await self._sub.unsubscribe()

    async def _run(self) -> None:
        idle = _PULL_IDLE_MIN
        failures = 0
        while not self._stopping:
            received, failure = await self._request(await self._buffer.reserve(self._share))
            if self._stopping:
                break
            if failure is not None:
                failures += 1
                delay = min(0.5 * 2**failures, 10.0)
                log.warning(
                    "nats pull failed topic=%s, retrying in %.1fs: %r", self._topic, delay, failure
                )
                await asyncio.sleep(delay)
            elif received:
                failures, idle = 0, _PULL_IDLE_MIN
            else:
                failures = 0
                await asyncio.sleep(idle)
                idle = min(idle * 2, _PULL_IDLE_MAX)

    async def _request(self, room: int) -> tuple[int, Exception | None]:
        """Ask for up to `room` messages and wait for the answer to end; how many came, and
        the error that cut it short, if any.

        `no_wait`: the server answers at once with what it has and an end-of-batch status, so
        no request is ever left waiting on it. Waiting requests are what nats-server 2.9
        mishandles: one expiring as nacked messages are redelivered can swallow a message
        (back only after `ack_wait`) and stall the consumer's other requests.
        """
        self._requesting = True
        self._owed = room
        self._ended.clear()
        request = {"batch": room, "no_wait": True}
        try:
            await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
            # Not hearing the end means the connection dropped, and the request with it.
            async with asyncio.timeout(_PULL_LOST):
                await self._ended.wait()
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            return room - self._owed, exc
        finally:
            self._requesting = False
            received = room - self._owed
            self._buffer.put([], self._owed)  # give back the room no message took
            self._owed = 0
        return received, None

    async def _receive(self, raw: Msg) -> None:
        status = JetStreamContext.is_status_msg(raw)
        if status is not None:
            if status != _STATUS_HEARTBEAT:
                if status not in _STATUS_ENDED:
                    log.warning(
                        "nats pull ended topic=%s status=%s %s", self._topic, status, raw.headers
                    )
                self._ended.set()
            return
        delivery = _Delivery(_jetstream_message(raw, self._topic), raw)
        # A message after its request ended (it crossed a reconnect) has no room reserved;
        # it is kept anyway, one over the bound, rather than left to wait for ack_wait.
        owed = 1 if self._owed > 0 else 0
        self._owed -= owed
        self._buffer.put([delivery], owed)
        if self._owed == 0 and owed:
            self._ended.set()


def _key(raw: Msg) -> str | None:
    headers: dict[str, Any] | None = raw.headers
    return headers.get(KEY_HEADER) if headers else None


def _jetstream_message(raw: Msg, topic: str) -> Message:
    meta = raw.metadata
    # The stream sequence is stable across redeliveries, so a redelivered message keeps its id.
    return Message(f"{meta.stream}-{meta.sequence.stream}", topic, raw.data, _key(raw))
