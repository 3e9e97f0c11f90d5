"""The Bus contract, run against every backend: memory, and Redis Streams and NATS JetStream
on real servers.

Every test in `TestBusContract` runs once per backend (ids `[memory]`, `[redis]`, `[nats]`).
A backend is a `Backend`: a way to open another client on the same broker (as another process
would), what it promises beyond the protocol, and its housekeeping. To add one: write a
fixture `_{name}_backend` returning a `Backend`, and add `pytest.param(name)` to `BACKENDS`.

Publishing runs as a task, because the memory bus's `publish` returns only once its messages
are acknowledged; every test awaits its publishes at the end, which also proves that.

Redis tests keep to a key prefix of their own on the shared server and delete it afterwards.
After the contract, `TestRedisStreams` covers what only the Redis backend does: partition
leases, trimming, and an unreachable or emptied server.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import nats
import nats.js.errors
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from trackd.bus.base import Bus, Message, Subscription
from trackd.bus.memory import MemoryBus
from trackd.bus.nats import NatsBus
from trackd.bus.redis.bus import RedisStreamsBus
from trackd.bus.redis.consumer import RedisStreamsSubscription
from trackd.bus.redis.layout import RedisStreamsOptions, partition_of, stream_name
from trackd.errors import BusUnavailableError, ConfigError

TOPIC = "system-events"
GROUP = "ingest"
# Every wait in these tests is bounded by this, well under the per-test timeout.
WITHIN = 20.0


async def _no_housekeeping(_: Subscription) -> None:
    return None


def _always_settled(_: Sequence[Subscription]) -> bool:
    return True


@dataclass
class Backend:
    """One bus backend under test.

    Attributes:
        name: the test id.
        connect: a new client on the same broker, as another process would open it.
        exclusive_keys: consumers of one group never hold one key at the same time, so a
            key's messages reach the group in order however many consumers there are.
        housekeep: the backend's background upkeep, run now (Redis: trimming).
        settled: whether these consumers have finished sharing out the work.
    """

    name: str
    connect: Callable[[], Bus]
    exclusive_keys: bool
    housekeep: Callable[[Subscription], Awaitable[None]] = _no_housekeeping
    settled: Callable[[Sequence[Subscription]], bool] = _always_settled


BACKENDS = [pytest.param("memory"), pytest.param("redis"), pytest.param("nats")]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each backend in turn; looked up by name so that a memory run never needs a server."""
    found: Backend = request.getfixturevalue(f"_{request.param}_backend")
    return found


@pytest_asyncio.fixture
async def _memory_backend() -> AsyncIterator[Backend]:
    bus = MemoryBus()
    # One bus is the whole broker: every "client" of it is the same object.
    yield Backend("memory", lambda: bus, exclusive_keys=False)
    await bus.close()


def redis_test_url(server: str, prefix: str, **params: object) -> str:
    """The server's URL with a prefix of its own and leases quick enough for tests."""
    query = {"prefix": prefix, "lease_ttl": 2, "rebalance_interval": 0.1, **params}
    return f"{server}?{urlencode(query)}"


async def delete_prefix(server: str, prefix: str) -> None:
    client = Redis.from_url(server)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@dataclass
class RedisScope:
    """A key prefix of one test's own on the shared server, and the buses opened on it."""

    server: str
    prefix: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:12]}")
    buses: list[RedisStreamsBus] = field(default_factory=list)

    def url(self, **params: object) -> str:
        return redis_test_url(self.server, self.prefix, **params)

    def connect(self, **params: object) -> RedisStreamsBus:
        bus = RedisStreamsBus.from_url(self.url(**params))
        self.buses.append(bus)
        return bus

    async def aclose(self) -> None:
        for bus in self.buses:
            await bus.close()
        await delete_prefix(self.server, self.prefix)


@pytest_asyncio.fixture
async def redis_scope(redis_url: str) -> AsyncIterator[RedisScope]:
    scope = RedisScope(redis_url)
    try:
        yield scope
    finally:
        await scope.aclose()


async def _trim(sub: Subscription) -> None:
    assert isinstance(sub, RedisStreamsSubscription)
    await sub.trim()


def _partitions_shared(subs: Sequence[Subscription]) -> bool:
    owned = [set(s.partitions) for s in subs if isinstance(s, RedisStreamsSubscription)]
    total = RedisStreamsOptions().partitions
    return all(owned) and sum(len(o) for o in owned) == total == len(set().union(*owned))


@pytest.fixture
def _redis_backend(redis_scope: RedisScope) -> Backend:
    return Backend(
        "redis",
        redis_scope.connect,
        exclusive_keys=True,
        housekeep=_trim,
        settled=_partitions_shared,
    )


@dataclass
class NatsScope:
    """A subject prefix and JetStream stream of one test's own, and the buses opened on it.

    JetStream, because the contract is at least once; NATS core (at most once, the agent
    platform's own wire) is covered in test_bus_nats.py.
    """

    server: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    buses: list[NatsBus] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return f"TEST_{self.tag}"

    def connect(self) -> NatsBus:
        query = {"prefix": f"test-{self.tag}.events", "stream": self.stream, "create_stream": 1}
        bus = NatsBus.from_url(f"{self.server}?{urlencode(query)}")
        self.buses.append(bus)
        return bus

    async def aclose(self) -> None:
        for bus in self.buses:
            await bus.close()
        admin = await nats.connect(self.server)
        try:
            await admin.jetstream().delete_stream(self.stream)
        except nats.js.errors.NotFoundError:
            pass  # no bus of this test ever connected
        finally:
            await admin.close()


@pytest_asyncio.fixture
async def _nats_backend(nats_url: str) -> AsyncIterator[Backend]:
    scope = NatsScope(nats_url)
    try:
        # A group's members share one durable consumer, and with it a key's messages.
        yield Backend("nats", scope.connect, exclusive_keys=False)
    finally:
        await scope.aclose()


# -- helpers --------------------------------------------------------------------------------


def keyed_messages(keys: int, per_key: int, tag: str = "") -> list[tuple[str, bytes]]:
    """(key, body) pairs, keys interleaved; a body reads `{tag}k{key}:{seq}`."""
    return [
        (f"{tag}k{k}", f"{tag}k{k}:{seq}".encode()) for seq in range(per_key) for k in range(keys)
    ]


def parse(body: bytes) -> tuple[str, int]:
    key, _, seq = body.decode().rpartition(":")
    return key, int(seq)


class Publishing:
    """Publishes in the background; `wait` checks every publish returned."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, bus: Bus, messages: Sequence[tuple[str, bytes]], topic: str = TOPIC) -> None:
        self._tasks.append(
            asyncio.create_task(
                bus.publish(topic, [b for _, b in messages], [k for k, _ in messages])
            )
        )

    def done(self) -> bool:
        return all(task.done() for task in self._tasks)

    async def wait(self) -> None:
        async with asyncio.timeout(WITHIN):
            await asyncio.gather(*self._tasks)


@pytest_asyncio.fixture
async def publishing() -> AsyncIterator[Publishing]:
    pub = Publishing()
    yield pub
    for task in pub._tasks:
        task.cancel()


async def fetch_until(
    sub: Subscription, count: int, *, max_messages: int = 50, block: float = 0.05
) -> list[Message]:
    """Fetch (without acking) until `count` messages arrived."""
    got: list[Message] = []
    async with asyncio.timeout(WITHIN):
        while len(got) < count:
            got.extend(await sub.fetch(min(max_messages, count - len(got)), block))
    return got


async def drain(sub: Subscription, *, quiet: float = 0.3) -> list[Message]:
    """Fetch and ack until nothing arrives for `quiet` seconds."""
    got: list[Message] = []
    async with asyncio.timeout(WITHIN):
        while batch := await sub.fetch(100, quiet):
            got.extend(batch)
            await sub.ack(batch)
    return got


def bodies(messages: Sequence[Message]) -> list[bytes]:
    return [m.body for m in messages]


def by_key(messages: Sequence[Message]) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        key, seq = parse(m.body)
        seqs[key].append(seq)
    return dict(seqs)


# -- the contract ---------------------------------------------------------------------------


class TestBusContract:
    async def test_publish_fetch_ack(self, backend: Backend, publishing: Publishing) -> None:
        bus = backend.connect()
        sub = await bus.subscribe([TOPIC], GROUP, "c1")
        sent = keyed_messages(keys=5, per_key=4)
        publishing.start(bus, sent)
        got = await fetch_until(sub, len(sent))
        assert sorted(bodies(got)) == sorted(b for _, b in sent)
        assert all(m.topic == TOPIC for m in got)
        assert {m.key for m in got} == {k for k, _ in sent}
        assert by_key(got) == {k: list(range(4)) for k in by_key(got)}
        await sub.ack(got)
        await publishing.wait()
        assert await sub.fetch(10, 0.2) == []
        await sub.close()

    async def test_messages_published_before_the_group_exists_are_delivered(
        self, backend: Backend, publishing: Publishing
    ) -> None:
        bus = backend.connect()
        sent = keyed_messages(keys=3, per_key=2)
        publishing.start(bus, sent)
        await asyncio.sleep(0.05)  # the publish reaches the broker before anyone subscribes
        sub = await bus.subscribe([TOPIC], GROUP, "c1")
        got = await fetch_until(sub, len(sent))
        await sub.ack(got)
        await publishing.wait()
        assert sorted(bodies(got)) == sorted(b for _, b in sent)
        await sub.close()

    async def test_only_the_topics_subscribed_are_delivered(
        self, backend: Backend, publishing: Publishing
    ) -> None:
        bus = backend.connect()
        sub = await bus.subscribe([TOPIC], GROUP, "c1")
        other = await bus.subscribe(["action-results"], "other-group", "c1")
        publishing.start(bus, [("k", b"results")], topic="action-results")
        publishing.start(bus, [("k", b"system")])
        got = await fetch_until(sub, 1)
        await sub.ack(got)
        assert bodies(got) == [b"system"]
        assert await sub.fetch(10, 0.2) == []
        got_other = await fetch_until(other, 1)
        await other.ack(got_other)
        assert bodies(got_other) == [b"results"]
        await publishing.wait()
        await sub.close()
        await other.close()

    async def test_nack_delivers_again_in_order(
        self, backend: Backend, publishing: Publishing
    ) -> None:
        bus = backend.connect()
        sub = await bus.subscribe([TOPIC], GROUP, "c1")
        sent = keyed_messages(keys=4, per_key=5)
        publishing.start(bus, sent)
        first = await fetch_until(sub, 8, max_messages=8)
        await sub.nack(first)
        again = await fetch_until(sub, len(sent))
        assert sorted(bodies(again)) == sorted(b for _, b in sent)
        # Nacked messages come back before later ones of their key.
        assert by_key(again) == {k: list(range(5)) for k in by_key(again)}
        await sub.ack(again)
        await publishing.wait()
        assert await sub.fetch(10, 0.2) == []
        await sub.close()

    async def test_a_closed_consumers_unacked_messages_go_to_the_next(
        self, backend: Backend, publishing: Publishing
    ) -> None:
        """Close without ack: another consumer (another process) takes over its messages."""
        first_bus = backend.connect()
        first = await first_bus.subscribe([TOPIC], GROUP, "c1")
        sent = keyed_messages(keys=6, per_key=5)
        publishing.start(first_bus, sent)
        held = await fetch_until(first, 12)
        await first.ack(held[:4])
        await first.close()

        second_bus = backend.connect()
        second = await second_bus.subscribe([TOPIC], GROUP, "c2")
        rest = await drain(second)
        assert sorted(bodies(held[:4] + rest)) == sorted(b for _, b in sent)
        # The taken-over messages came first: every key's remaining messages are in order.
        assert all(seqs == sorted(seqs) for seqs in by_key(rest).values())
        await publishing.wait()
        await second.close()

    async def test_each_key_in_order_across_several_consumers(
        self, backend: Backend, publishing: Publishing
    ) -> None:
        if not backend.exclusive_keys:
            pytest.skip(f"{backend.name}: consumers of a group may share a key")
        subs = [await backend.connect().subscribe([TOPIC], GROUP, f"c{i}") for i in range(3)]
        keys, per_key = 40, 15
        messages = keyed_messages(keys, per_key)
        processed: list[tuple[str, bytes]] = []  # (consumer, body) in the order handled
        all_handled, done = asyncio.Event(), asyncio.Event()

        async def consume(name: str, sub: Subscription) -> None:
            while not done.is_set():
                batch = await sub.fetch(20, 0.05)
                for m in batch:
                    processed.append((name, m.body))
                if len(processed) >= len(messages):
                    all_handled.set()
                await asyncio.sleep(0.001)  # a commit, during which another consumer runs
                await sub.ack(batch)

        async with asyncio.TaskGroup() as tasks:
            for i, sub in enumerate(subs):
                tasks.create_task(consume(f"c{i}", sub))
            publisher = backend.connect()
            # Waves: some while the consumers are still sharing the partitions out.
            wave = len(messages) // 5
            async with asyncio.timeout(WITHIN):
                for start in range(0, len(messages), wave):
                    publishing.start(publisher, messages[start : start + wave])
                    await asyncio.sleep(0.15)
                await all_handled.wait()
            done.set()
        await publishing.wait()

        seqs: dict[str, list[int]] = defaultdict(list)
        for _, body in processed:
            key, seq = parse(body)
            seqs[key].append(seq)
        assert seqs == {f"k{k}": list(range(per_key)) for k in range(keys)}
        assert len({name for name, _ in processed}) > 1, "one consumer did all the work"
        for sub in subs:
            await sub.close()

    async def test_three_consumers_lose_nothing_when_one_stops_midway(
        self, backend: Backend, publishing: Publishing
    ) -> None:
        """At least once: every message is acked after being handled, whatever stops."""
        subs = [await backend.connect().subscribe([TOPIC], GROUP, f"c{i}") for i in range(3)]
        async with asyncio.timeout(WITHIN):
            while not backend.settled(subs):
                for sub in subs:
                    await sub.nack(await sub.fetch(1, 0.01))
        sent = keyed_messages(keys=50, per_key=20)
        publishing.start(backend.connect(), sent)
        committed: Counter[bytes] = Counter()
        handled: Counter[bytes] = Counter()

        async def consume(sub: Subscription, *, stop_after: int | None = None) -> None:
            batches = 0
            # Until the publisher is released too: the memory bus may hand a message out
            # again after its first commit, and then waits for that delivery's ack.
            while len(committed) < len(sent) or not publishing.done():
                batch = await sub.fetch(25, 0.05)
                handled.update(bodies(batch))
                if stop_after is not None and batch and batches == stop_after:
                    await sub.close()  # stops before acking: this batch must come back
                    return
                await asyncio.sleep(0.001)
                committed.update(bodies(batch))
                await sub.ack(batch)
                batches += bool(batch)

        async with asyncio.timeout(WITHIN), asyncio.TaskGroup() as tasks:
            tasks.create_task(consume(subs[0], stop_after=2))
            tasks.create_task(consume(subs[1]))
            tasks.create_task(consume(subs[2]))
        await publishing.wait()
        assert set(committed) == {b for _, b in sent}
        if backend.exclusive_keys:
            # Only the stopped consumer's last batch was handled twice.
            assert max(committed.values()) == 1
            assert 0 < sum(handled.values()) - len(sent) <= 25
        for sub in subs[1:]:
            await sub.close()

    async def test_housekeeping_never_drops_unacked_messages(
        self, backend: Backend, publishing: Publishing
    ) -> None:
        bus = backend.connect()
        sub = await bus.subscribe([TOPIC], GROUP, "c1")
        # A second group that has read nothing yet: its messages must survive too.
        slow = await bus.subscribe([TOPIC], "slow-group", "s1")
        sent = keyed_messages(keys=10, per_key=10)
        publishing.start(bus, sent)
        got = await fetch_until(sub, 60)
        await sub.ack(got[:30])
        await backend.housekeep(sub)
        await sub.close()

        after = await backend.connect().subscribe([TOPIC], GROUP, "c2")
        await backend.housekeep(after)
        rest = await drain(after)
        assert sorted(bodies(got[:30] + rest)) == sorted(b for _, b in sent)
        await backend.housekeep(after)
        slow_got = await drain(slow)
        assert sorted(bodies(slow_got)) == sorted(b for _, b in sent)
        await publishing.wait()
        await after.close()
        await slow.close()


# -- Redis only -----------------------------------------------------------------------------


def streams_of(prefix: str, topic: str = TOPIC, partitions: int = 16) -> list[str]:
    return [stream_name(prefix, topic, p) for p in range(partitions)]


async def lengths(bus: RedisStreamsBus, prefix: str) -> int:
    return sum([await bus.redis.xlen(s) for s in streams_of(prefix)])


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class TestRedisStreams:
    def test_url_options(self) -> None:
        url, options = RedisStreamsOptions.split_url(
            "redis://h:1/2?partitions=8&prefix=x&lease_ttl=3&socket_timeout=4"
        )
        assert url == "redis://h:1/2?socket_timeout=4"
        assert (options.partitions, options.prefix, options.lease_ttl) == (8, "x", 3.0)
        for bad in ("partitions=0", "partitions=two", "lease_ttl=-1", "prefix="):
            with pytest.raises(ConfigError):
                RedisStreamsOptions.split_url(f"redis://h:1/2?{bad}")

    def test_a_key_always_maps_to_one_partition(self) -> None:
        # crc32, not hash(): the same in every process, whatever PYTHONHASHSEED says.
        assert partition_of("task-1", 16) == 15
        assert {partition_of(f"task-{i}", 16) for i in range(200)} == set(range(16))

    async def test_publish_to_an_unreachable_server_fails_clearly(self, closed_port: int) -> None:
        bus = RedisStreamsBus.from_url(f"redis://127.0.0.1:{closed_port}/0?publish_timeout=0.3")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(BusUnavailableError, match="publish them again"):
            await bus.publish(TOPIC, [b"x"], ["k"])
        assert loop.time() - started < 3.0
        await bus.close()

    async def test_a_consumer_waits_out_an_unreachable_server(
        self, closed_port: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        bus = RedisStreamsBus.from_url(f"redis://127.0.0.1:{closed_port}/0")
        with caplog.at_level(logging.WARNING):
            sub = await bus.subscribe([TOPIC], GROUP, "c1")
            assert await sub.fetch(10, 0.1) == []
            assert await sub.fetch(10, 0.1) == []
        assert "redis unreachable" in caplog.text
        await bus.close()

    async def test_partitions_are_shared_fairly_and_handed_over(
        self, redis_scope: RedisScope
    ) -> None:
        subs = [await redis_scope.connect().subscribe([TOPIC], GROUP, f"c{i}") for i in range(3)]

        async def settle(subs: Sequence[RedisStreamsSubscription]) -> list[int]:
            async with asyncio.timeout(WITHIN):
                while True:
                    for sub in subs:
                        await sub.fetch(1, 0.01)
                    counts = sorted(len(s.partitions) for s in subs)
                    if _partitions_shared(subs) and counts[-1] - counts[0] <= 1:
                        return counts
                    await asyncio.sleep(0.02)

        assert await settle(subs) == [5, 5, 6]
        await subs[0].close()
        assert await settle(subs[1:]) == [8, 8]

    async def test_a_dead_consumers_pending_entries_are_claimed_after_its_lease(
        self, redis_scope: RedisScope
    ) -> None:
        """No close: the consumer just stops renewing; its leases lapse after their ttl."""
        dead_bus = redis_scope.connect(lease_ttl=1)
        dead = await dead_bus.subscribe([TOPIC], GROUP, "dead")
        sent = keyed_messages(keys=8, per_key=5)
        await dead_bus.publish(TOPIC, [b for _, b in sent], [k for k, _ in sent])
        held = await fetch_until(dead, 15)
        assert dead._renewer is not None
        dead._renewer.cancel()  # the process died: nothing renews, nothing is released

        survivor = await redis_scope.connect(lease_ttl=1).subscribe([TOPIC], GROUP, "alive")
        assert survivor.partitions == []  # every partition is still leased to the dead one
        got = await drain(survivor, quiet=1.5)
        assert sorted(bodies(got)) == sorted(b for _, b in sent)
        assert {m.body for m in held} <= set(bodies(got))
        assert all(seqs == list(range(5)) for seqs in by_key(got).values())
        info = await survivor._redis.xpending(stream_name(redis_scope.prefix, TOPIC, 0), GROUP)
        assert info["pending"] == 0

    async def test_trimming_keeps_what_any_group_still_needs(self, redis_scope: RedisScope) -> None:
        bus = redis_scope.connect()
        sub = await bus.subscribe([TOPIC], GROUP, "c1")
        sent = keyed_messages(keys=16, per_key=10)
        await bus.publish(TOPIC, [b for _, b in sent], [k for k, _ in sent])
        held = await fetch_until(sub, 100)
        assert await sub.trim() == 0  # delivered but unacked: all kept
        await sub.ack(held)
        await sub.trim()
        # Acked entries go; undelivered ones, and delivered ones still pending, stay.
        assert await lengths(bus, redis_scope.prefix) == 60
        await drain(sub)
        await sub.trim()
        assert await lengths(bus, redis_scope.prefix) == 0

        late = await bus.subscribe([TOPIC], "late-group", "l1")
        await bus.publish(TOPIC, [b"after"], ["k0"])
        await drain(sub)
        await sub.trim()
        assert bodies(await drain(late)) == [b"after"]  # held back for the group behind
        await sub.close()
        await late.close()

    async def test_a_keys_events_on_several_topics_come_in_publish_order(
        self, redis_scope: RedisScope
    ) -> None:
        """One stream per topic, merged by id: a result never overtakes its progress."""
        bus = redis_scope.connect()
        topics = ["action-requests", TOPIC, "action-results"]
        sub = await bus.subscribe(topics, GROUP, "c1")
        keys = [f"task-{i}" for i in range(200)]
        # A sparse topic and a dense one: three progress events per request and result.
        plan = [("action-requests", 0), (TOPIC, 1), (TOPIC, 2), (TOPIC, 3), ("action-results", 4)]
        for topic, step in plan:
            await bus.publish(topic, [f"{k}:{step}".encode() for k in keys], keys)
        got: list[Message] = []
        async with asyncio.timeout(WITHIN):
            while len(got) < len(keys) * len(plan):
                batch = await sub.fetch(10, 0.05)  # small batches: many reads per stream
                got.extend(batch)
                await sub.ack(batch)
        assert by_key(got) == {k: [0, 1, 2, 3, 4] for k in keys}
        await sub.close()

    async def test_entries_left_pending_for_another_consumer_are_swept_up(
        self, redis_scope: RedisScope
    ) -> None:
        """A consumer whose lease lapsed mid-read may receive entries after the takeover;
        the owner claims them in its periodic sweep."""
        bus = redis_scope.connect(lease_ttl=1, trim_interval=0.2)
        sub = await bus.subscribe([TOPIC], GROUP, "owner")
        await bus.publish(TOPIC, [b"k:0", b"k:1"], ["k", "k"])
        stream = stream_name(redis_scope.prefix, TOPIC, partition_of("k", 16))
        stray = await bus.redis.xreadgroup(GROUP, "stale", {stream: ">"}, count=1)
        assert len(stray[0][1]) == 1
        got = await fetch_until(sub, 2, block=0.2)  # after the entry's idle time (one ttl)
        assert bodies(got) == [b"k:1", b"k:0"]
        await sub.ack(got)
        info = await bus.redis.xpending(stream, GROUP)
        assert info["pending"] == 0
        await sub.close()

    async def test_a_server_that_lost_its_streams_is_set_up_again(
        self, redis_scope: RedisScope
    ) -> None:
        bus = redis_scope.connect()
        sub = await bus.subscribe([TOPIC], GROUP, "c1")
        await bus.publish(TOPIC, [b"one"], ["k"])
        assert bodies(await drain(sub)) == [b"one"]
        await delete_prefix(redis_scope.server, redis_scope.prefix)  # restart without data
        await sub.fetch(10, 0.05)  # notices the group is gone
        await bus.publish(TOPIC, [b"two"], ["k"])
        assert bodies(await drain(sub)) == [b"two"]
        await sub.close()

    async def test_processes_must_agree_on_the_partition_count(
        self, redis_scope: RedisScope
    ) -> None:
        await redis_scope.connect(partitions=8).publish(TOPIC, [b"x"], ["k"])
        with pytest.raises(ConfigError, match="8 partitions"):
            await redis_scope.connect(partitions=16).publish(TOPIC, [b"y"], ["k"])

    async def test_messages_without_a_key_are_spread(self, redis_scope: RedisScope) -> None:
        bus = redis_scope.connect()
        await bus.publish(TOPIC, [b"%d" % i for i in range(32)])
        assert [await bus.redis.xlen(s) for s in streams_of(redis_scope.prefix)] == [2] * 16
