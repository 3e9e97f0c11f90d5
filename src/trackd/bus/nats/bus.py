"""`NatsBus`: topics as subjects, groups as queue groups or durable pull consumers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from trackd.bus.nats.connection import NATS_FAILURES, open_connection
from trackd.bus.nats.messages import key_headers
from trackd.bus.nats.options import NatsOptions, split_url, token
from trackd.bus.nats.publisher import publish_core, publish_jetstream
from trackd.bus.nats.streams import StreamLookup, ensure_stream, find_stream
from trackd.bus.nats.subscription import NatsSubscription
from trackd.errors import BusUnavailableError

log = logging.getLogger(__name__)

# Pull consumers are shared by every process of a group; this bounds what they hold together.
_MAX_ACK_PENDING = 20_000
_CORE_SETTLE = 0.05  # seconds a new core subscription waits before it is used
_SLOW_LOG_EVERY = 10.0  # seconds between two slow-consumer warnings


class NatsBus:
    """Topics as NATS subjects `{prefix}.{topic}`; groups as queue groups or durable consumers.

    `platform_group` names the consumer group that takes the agent platform's tracker's
    place: on NATS it joins the queue group the URL's `queue=` names (default
    `tracker-service`). Every other group uses its own name. trackd's composition root
    passes its ingest group.

    Connects on first use. A server that cannot be reached raises `BusUnavailableError`; once
    connected, the client reconnects by itself and operations fail with that error meanwhile.
    """

    def __init__(
        self,
        server: str = "nats://127.0.0.1:4222",
        options: NatsOptions | None = None,
        *,
        platform_group: str | None = None,
    ):
        self.server = server
        self.options = options or NatsOptions()
        self.platform_group = platform_group
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._connecting = asyncio.Lock()
        self._streams = StreamLookup()
        self._subscriptions: set[NatsSubscription] = set()
        self._core_noted: set[str] = set()
        self._dropped = 0
        self._dropped_logged_at = 0.0
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, platform_group: str | None = None) -> NatsBus:
        """The bus for `nats://host:port?...` (or `tls://`); see the package for parameters.

        Raises:
            ConfigError: the URL's query holds something unknown or unusable.
        """
        server, options = split_url(url)
        return cls(server, options, platform_group=platform_group)

    def subject(self, topic: str) -> str:
        """The subject a topic is published on."""
        return self.options.subject(topic)

    def queue_name(self, group: str) -> str:
        """The queue group (and durable consumer prefix) a consumer group uses on NATS."""
        return self.options.queue if group == self.platform_group else token(group, "group")

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
        headers = key_headers(len(bodies), None if keys is None else list(keys))
        nc, js = await self._connection()
        try:
            if await self._streams.find(js, subject) is not None:
                try:
                    await publish_jetstream(js, subject, bodies, headers)
                    return
                except nats.js.errors.NoStreamResponseError:
                    # The stream was deleted after the lookup: look again, and publish with
                    # core only if no stream covers the subject any more.
                    self._streams.forget(subject)
                    if await self._streams.find(js, subject) is not None:
                        raise
            self._note_core_publish(subject)
            await publish_core(
                nc, subject, bodies, headers, confirm_within=self.options.request_timeout
            )
        except NATS_FAILURES as exc:
            # The stream may be what changed (a publish to a deleted stream's subject that
            # has core subscribers times out): look it up again next time.
            self._streams.forget(subject)
            raise BusUnavailableError(
                f"NATS at {self.server} did not confirm {len(bodies)} message(s) on {subject}: "
                f"{exc!r}; publish them again once it is reachable"
            ) from exc

    async def subscribe(self, topics: Sequence[str], group: str, consumer: str) -> NatsSubscription:
        """Join `group` on each topic: a durable pull consumer where a stream covers the
        topic, else the core queue group; returns once the server knows the interest.

        Logs the mode each topic runs in: a topic on NATS core is delivered at most once.

        Raises:
            BusUnavailableError: the server cannot be reached.
        """
        name = self.queue_name(group)
        nc, js = await self._connection()
        sub = NatsSubscription(nc, self.options.buffer, consumer)
        try:
            for topic in dict.fromkeys(topics):
                subject = self.subject(topic)
                stream = await find_stream(js, subject)
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
        except NATS_FAILURES as exc:
            await sub.close()
            raise BusUnavailableError(
                f"could not subscribe to {topics} on NATS at {self.server}: {exc!r}"
            ) from exc
        self._subscriptions = {s for s in self._subscriptions if not s.closed}
        self._subscriptions.add(sub)
        self._log_modes(group, name, consumer, sub.modes)
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

    def _log_modes(self, group: str, queue: str, consumer: str, modes: dict[str, str]) -> None:
        for topic, mode in modes.items():
            if mode == "core":
                log.warning(
                    "nats topic=%s group=%s queue=%s consumer=%s mode=core: no JetStream "
                    "stream covers %s, so delivery is at most once (add create_stream=true "
                    "to the bus URL for durable delivery)",
                    topic,
                    group,
                    queue,
                    consumer,
                    self.subject(topic),
                )
            else:
                log.info(
                    "nats topic=%s group=%s queue=%s consumer=%s mode=jetstream stream=%s: "
                    "durable, at least once",
                    topic,
                    group,
                    queue,
                    consumer,
                    mode.removeprefix("jetstream:"),
                )

    def _note_core_publish(self, subject: str) -> None:
        if subject not in self._core_noted:
            self._core_noted.add(subject)
            log.info(
                "nats no stream covers subject=%s: publishing with NATS core, at most once", subject
            )

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
                nc = await open_connection(
                    self.server,
                    self.options,
                    on_error=self._on_error,
                    on_disconnected=self._on_disconnected,
                    on_reconnected=self._on_reconnected,
                )
                js = nc.jetstream(timeout=self.options.request_timeout)
                try:
                    await ensure_stream(js, self.server, self.options)
                except BaseException:
                    await nc.close()
                    raise
                self._nc, self._js = nc, js
            return self._nc, self._js

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
