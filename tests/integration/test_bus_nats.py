"""The NATS bus against a real nats-server with JetStream: the platform's subjects and queue
group on NATS core, and at-least-once delivery through a JetStream durable consumer.

Each test keeps to a subject prefix (and stream) of its own, except the ones that prove the
platform's literal subjects, which pick out their own events by id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import nats
import nats.js.errors
import pytest
import pytest_asyncio
from nats.aio.client import Client
from soorma_common.events import EventEnvelope as SoormaEnvelope
from soorma_common.events import EventTopic
from soorma_common.tracking import TaskProgressEvent
from soorma_common.tracking import TaskState as SoormaState
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus import from_url
from trackd.bus.base import Message
from trackd.bus.nats import NatsBus, NatsOptions, NatsSubscription, default_stream_name
from trackd.domain.events import TRACKED_TOPICS, decode_envelope
from trackd.domain.states import TaskState
from trackd.errors import BusUnavailableError, ConfigError
from trackd.ingest.consumer import INGEST_GROUP, IngestConsumer, IngestOptions
from trackd.store.repos import tasks

SYSTEM = "system-events"
TENANT = "acme"


@dataclass(frozen=True)
class Scope:
    """A subject prefix and stream name no other test uses."""

    server: str
    prefix: str
    stream: str

    def url(self, **params: Any) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"prefix": self.prefix, **params}.items())
        return f"{self.server}?{query}"

    def durable_url(self, **params: Any) -> str:
        return self.url(stream=self.stream, create_stream="true", **params)


@pytest_asyncio.fixture
async def raw(nats_url: str) -> AsyncIterator[Client]:
    """A plain nats-py connection: the platform's publisher, and an admin for streams."""
    nc = await nats.connect(nats_url)
    try:
        yield nc
    finally:
        await nc.close()


@pytest_asyncio.fixture
async def scope(nats_url: str, raw: Client) -> AsyncIterator[Scope]:
    tag = uuid.uuid4().hex[:12]
    scope = Scope(nats_url, f"t{tag}.events", f"TRACKD_TEST_{tag}")
    yield scope
    try:
        await raw.jetstream().delete_stream(scope.stream)
    except nats.js.errors.NotFoundError:
        pass


@pytest_asyncio.fixture
async def buses() -> AsyncIterator[list[NatsBus]]:
    """Buses a test opens; closed at its end however it ends."""
    opened: list[NatsBus] = []
    yield opened
    for bus in opened:
        await bus.close()


def open_bus(buses: list[NatsBus], url: str) -> NatsBus:
    """A bus as trackd's runtime builds it: ingest's group is the platform's queue group."""
    bus = from_url(url, platform_group=INGEST_GROUP)
    assert isinstance(bus, NatsBus)
    buses.append(bus)
    return bus


def soorma_event(topic: EventTopic, etype: str, data: dict[str, Any], **extra: Any) -> bytes:
    """An event as the platform's event service puts it on the wire."""
    envelope = SoormaEnvelope(
        source="research-worker", type=etype, topic=topic, data=data, tenant_id=TENANT, **extra
    )
    return json.dumps(envelope.model_dump(by_alias=True, mode="json")).encode()


async def fetch_all(
    sub: NatsSubscription, count: int, within: float = 5.0, batch: int = 100
) -> list[Message]:
    """Fetch until `count` messages arrived (never more) or `within` seconds passed."""
    got: list[Message] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(got) < count and (left := deadline - loop.time()) > 0:
        got.extend(await sub.fetch(min(batch, count - len(got)), min(left, 0.5)))
    return got


def bodies(n: int, tag: str = "m") -> list[bytes]:
    return [f"{tag}-{i}".encode() for i in range(n)]


async def consumer_info(raw: Client, scope: Scope, durable: str) -> Any:
    return await raw.jetstream().consumer_info(scope.stream, durable)


# --- URLs and errors ---------------------------------------------------------------------------


def test_url_query_sets_the_options() -> None:
    bus = from_url(
        "nats://user:pw@127.0.0.1:4222?prefix=acme.events&queue=tracker-b&stream=EVENTS"
        "&create_stream=true&ack_wait=2.5&buffer=50",
        platform_group=INGEST_GROUP,
    )
    assert isinstance(bus, NatsBus)
    assert bus.server == "nats://user:pw@127.0.0.1:4222"
    assert bus.options == NatsOptions(
        prefix="acme.events",
        queue="tracker-b",
        stream="EVENTS",
        create_stream=True,
        ack_wait=2.5,
        buffer=50,
    )
    assert bus.subject("action-results") == "acme.events.action-results"
    assert bus.queue_name(INGEST_GROUP) == "tracker-b"
    assert bus.queue_name("audit") == "audit"


def test_defaults_are_the_platforms_subjects_and_queue_group() -> None:
    bus = NatsBus.from_url("nats://127.0.0.1:4222", platform_group=INGEST_GROUP)
    assert bus.subject(SYSTEM) == "soorma.events.system-events"
    assert bus.queue_name(INGEST_GROUP) == "tracker-service"
    assert bus.options.stream_name is None


def test_the_platform_group_is_the_callers_not_the_buses() -> None:
    """Any group the caller names takes the platform's queue group; with none named, every
    group (ingest's too) keeps its own name."""
    audit = NatsBus.from_url("nats://127.0.0.1:4222", platform_group="audit")
    assert audit.queue_name("audit") == "tracker-service"
    assert audit.queue_name(INGEST_GROUP) == INGEST_GROUP
    assert NatsBus.from_url("nats://127.0.0.1:4222").queue_name(INGEST_GROUP) == INGEST_GROUP


def test_create_stream_without_a_name_names_the_default_stream() -> None:
    options = NatsOptions.from_query("create_stream=true")
    assert options.stream_name == default_stream_name("soorma.events") == "SOORMA_EVENTS"
    assert NatsOptions.from_query("prefix=acme-1.events&create_stream=1").stream_name == (
        "ACME_1_EVENTS"
    )
    assert NatsOptions.from_query("stream=MINE&create_stream=true").stream_name == "MINE"


@pytest.mark.parametrize(
    "query",
    [
        "colour=red",
        "prefix=soorma.*",
        "prefix=",
        "queue=tracker service",
        "stream=a.b",
        "create_stream=maybe",
        "buffer=0",
        "ack_wait=soon",
    ],
)
def test_bad_url_query_is_a_config_error(query: str) -> None:
    with pytest.raises(ConfigError):
        NatsBus.from_url(f"nats://127.0.0.1:4222?{query}")


async def test_unreachable_server_is_bus_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bus = NatsBus.from_url(f"nats://127.0.0.1:{port}")
    with pytest.raises(BusUnavailableError, match="cannot reach NATS"):
        await bus.publish(SYSTEM, [b"{}"])
    with pytest.raises(BusUnavailableError, match="cannot reach NATS"):
        await bus.subscribe([SYSTEM], INGEST_GROUP, "c1")
    await bus.close()


async def test_named_stream_that_does_not_exist_is_a_config_error(
    scope: Scope, buses: list[NatsBus]
) -> None:
    bus = open_bus(buses, scope.url(stream=scope.stream))
    with pytest.raises(ConfigError, match="create_stream=true"):
        await bus.publish(SYSTEM, [b"{}"])


# --- NATS core: the platform's wire ------------------------------------------------------------


async def test_platform_publish_reaches_trackd_in_the_tracker_queue_group(
    nats_url: str, raw: Client, buses: list[NatsBus]
) -> None:
    """The platform publishes with core NATS on soorma.events.{topic}; its tracker listens in
    the queue group tracker-service. A second member of that group, not trackd, shares the load:
    so trackd is in the same group, not a second audience."""
    bus = open_bus(buses, nats_url)
    sub = await bus.subscribe(TRACKED_TOPICS, INGEST_GROUP, "ingest-1")
    assert sub.modes == dict.fromkeys(TRACKED_TOPICS, "core"), (
        "a JetStream stream on the test server covers soorma.events.>; this test needs core"
    )
    other: list[bytes] = []

    async def other_tracker(msg: Any) -> None:
        other.append(msg.data)

    await raw.subscribe("soorma.events.system-events", queue="tracker-service", cb=other_tracker)
    run = uuid.uuid4().hex
    sent: dict[str, bytes] = {}
    for i in range(40):
        progress = TaskProgressEvent(task_id=f"{run}-{i}", state=SoormaState.RUNNING, progress=0.5)
        body = soorma_event(
            EventTopic.SYSTEM_EVENTS, "task.progress", progress.model_dump(mode="json")
        )
        sent[json.loads(body)["id"]] = body
        await raw.publish("soorma.events.system-events", body)
    await raw.flush()

    got = await fetch_all(sub, len(sent), within=1.0)
    ours = {}
    for message in got:
        envelope = decode_envelope(message.body)
        assert message.topic == SYSTEM
        if envelope.data and str(envelope.data.get("task_id", "")).startswith(run):
            ours[envelope.id] = message.body
    theirs = {json.loads(b)["id"] for b in other if json.loads(b)["id"] in sent}
    assert ours, "trackd received none of the platform's events"
    assert theirs, "the other tracker-service member received none: trackd is not in its group"
    assert set(ours) | theirs == set(sent)
    assert not set(ours) & theirs
    assert all(ours[i] == sent[i] for i in ours)


async def test_trackd_members_of_one_group_split_and_another_group_gets_everything(
    scope: Scope, buses: list[NatsBus]
) -> None:
    bus = open_bus(buses, scope.url())
    first = await bus.subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    second = await open_bus(buses, scope.url()).subscribe([SYSTEM], INGEST_GROUP, "ingest-2")
    audit = await bus.subscribe([SYSTEM], "audit", "audit-1")
    await bus.publish(SYSTEM, bodies(50))

    everything = await fetch_all(audit, 50)
    a = await fetch_all(first, 50, within=0.5)
    b = await fetch_all(second, 50, within=0.5)
    assert sorted(m.body for m in everything) == sorted(bodies(50))
    assert a and b, "one member of the queue group received everything"
    assert sorted(m.body for m in a + b) == sorted(bodies(50))


async def test_core_ack_is_a_no_op_and_nack_hands_messages_back_in_process(
    scope: Scope, buses: list[NatsBus]
) -> None:
    bus = open_bus(buses, scope.url())
    sub = await bus.subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    await bus.publish(SYSTEM, bodies(3), keys=["task-1", None, "task-1"])
    got = await fetch_all(sub, 3)
    assert [m.key for m in got] == ["task-1", None, "task-1"]
    await sub.nack(got)
    again = await fetch_all(sub, 3)
    assert again == got
    await sub.ack(again)
    assert await sub.fetch(10, 0.2) == []


async def test_core_buffer_is_bounded_and_overflow_is_dropped_with_a_warning(
    scope: Scope, buses: list[NatsBus], caplog: pytest.LogCaptureFixture
) -> None:
    """Core NATS cannot hold messages back: a consumer that falls behind by more than its
    buffer and the client's queue (16 buffers) loses the rest, and the log says so."""
    bound = 5
    bus = open_bus(buses, scope.url(buffer=bound))
    sub = await bus.subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    with caplog.at_level(logging.WARNING, logger="trackd.bus.nats"):
        await bus.publish(SYSTEM, bodies(500))
        await asyncio.sleep(0.3)  # let the client take in what it will
        got = await fetch_all(sub, 500, within=1.0)
    # The buffer, the client's queue, and one message in the hand-over between them.
    assert 16 * bound <= len(got) <= 17 * bound + 1
    assert "buffer full" in caplog.text
    assert "slow consumer" in caplog.text


# --- JetStream: durable publish, at-least-once consume -----------------------------------------


async def test_publish_is_durable_when_a_stream_covers_the_subject(
    scope: Scope, raw: Client, buses: list[NatsBus]
) -> None:
    bus = open_bus(buses, scope.durable_url())
    await bus.publish(SYSTEM, bodies(20), keys=[f"task-{i % 3}" for i in range(20)])
    info = await raw.jetstream().stream_info(scope.stream)
    assert info.state.messages == 20
    assert info.config.subjects == [f"{scope.prefix}.>"]

    # Published before anyone subscribed, and still delivered: the stream held them.
    sub = await open_bus(buses, scope.url()).subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    assert sub.modes == {SYSTEM: f"jetstream:{scope.stream}"}
    got = await fetch_all(sub, 20)
    assert [m.body for m in got] == bodies(20)
    assert [m.key for m in got] == [f"task-{i % 3}" for i in range(20)]
    assert [m.id for m in got] == [f"{scope.stream}-{i}" for i in range(1, 21)]
    durable = await consumer_info(raw, scope, "tracker-service-system-events")
    assert durable.config.durable_name == "tracker-service-system-events"


async def test_create_stream_without_a_name_creates_the_default_stream_and_logs_the_mode(
    scope: Scope, raw: Client, buses: list[NatsBus], caplog: pytest.LogCaptureFixture
) -> None:
    """`?create_stream=true` asks for durable delivery: with no `stream=` it gets the default
    stream rather than core NATS, and the start-up log says which mode each topic runs in."""
    stream = default_stream_name(scope.prefix)
    try:
        bus = open_bus(buses, scope.url(create_stream="true"))
        await bus.publish(SYSTEM, bodies(3))
        info = await raw.jetstream().stream_info(stream)
        assert info.state.messages == 3
        assert info.config.subjects == [f"{scope.prefix}.>"]
        with caplog.at_level(logging.INFO, logger="trackd.bus.nats"):
            sub = await bus.subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
        assert sub.modes == {SYSTEM: f"jetstream:{stream}"}
        assert [m.body for m in await fetch_all(sub, 3)] == bodies(3)
        assert f"topic={SYSTEM}" in caplog.text
        assert f"mode=jetstream stream={stream}" in caplog.text
    finally:
        for bus in buses:
            await bus.close()
        buses.clear()
        try:
            await raw.jetstream().delete_stream(stream)
        except nats.js.errors.NotFoundError:
            pass


async def test_a_topic_on_core_nats_is_logged_as_at_most_once(
    scope: Scope, buses: list[NatsBus], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="trackd.bus.nats"):
        sub = await open_bus(buses, scope.url()).subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    assert sub.modes == {SYSTEM: "core"}
    core = [r for r in caplog.records if "mode=core" in r.getMessage()]
    assert len(core) == 1
    assert core[0].levelno == logging.WARNING
    assert "at most once" in core[0].getMessage()


async def test_core_publish_by_the_platform_is_stored_by_a_stream(
    scope: Scope, raw: Client, buses: list[NatsBus]
) -> None:
    bus = open_bus(buses, scope.durable_url())
    await bus.connect()  # creates the stream
    await raw.publish(f"{scope.prefix}.{SYSTEM}", b"from-core")
    await raw.flush()
    sub = await bus.subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    assert [m.body for m in await fetch_all(sub, 1)] == [b"from-core"]


async def test_publish_falls_back_to_core_when_the_stream_is_deleted(
    scope: Scope, raw: Client, buses: list[NatsBus]
) -> None:
    bus = open_bus(buses, scope.durable_url())
    await bus.publish(SYSTEM, [b"stored"])  # the bus now remembers the stream
    await raw.jetstream().delete_stream(scope.stream)
    await bus.publish(SYSTEM, [b"unheard"])  # no stream answers: core, and nobody listens
    sub = await open_bus(buses, scope.url()).subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    assert sub.modes == {SYSTEM: "core"}
    await bus.publish(SYSTEM, [b"after"])
    assert [m.body for m in await fetch_all(sub, 1)] == [b"after"]


async def test_nack_delivers_again_first_and_ack_settles(
    scope: Scope, raw: Client, buses: list[NatsBus]
) -> None:
    bus = open_bus(buses, scope.durable_url())
    await bus.publish(SYSTEM, bodies(10))
    sub = await bus.subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    first = await fetch_all(sub, 4, batch=4)
    await sub.nack(first)
    # Before what was pulled after them, so one task's events keep their order.
    again = await fetch_all(sub, 10)
    assert [m.body for m in again] == bodies(10)
    assert again[:4] == first
    await sub.ack(again)
    assert await sub.fetch(10, 0.3) == []
    info = await consumer_info(raw, scope, "tracker-service-system-events")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0
    assert info.num_redelivered == 0  # given back here, not to the stream


async def test_unacked_messages_go_to_the_next_consumer_after_close(
    scope: Scope, buses: list[NatsBus]
) -> None:
    bus = open_bus(buses, scope.durable_url())
    await bus.publish(SYSTEM, bodies(8))
    sub = await bus.subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    taken = await fetch_all(sub, 8)
    await sub.ack(taken[:3])
    await sub.close()  # five fetched, never acknowledged

    after = await open_bus(buses, scope.url()).subscribe([SYSTEM], INGEST_GROUP, "ingest-2")
    redelivered = await fetch_all(after, 5)
    assert sorted(m.id for m in redelivered) == sorted(m.id for m in taken[3:])


CRASHING_CONSUMER = """
import asyncio, os, sys
from trackd.bus.nats import NatsBus

async def main() -> None:
    bus = NatsBus.from_url(sys.argv[1], platform_group=sys.argv[3])
    sub = await bus.subscribe([sys.argv[2]], sys.argv[3], "doomed")
    got = []
    while len(got) < int(sys.argv[4]):
        got += await sub.fetch(100, 5)
    print(" ".join(m.id for m in got), flush=True)
    os._exit(0)  # die holding them, unacknowledged, as a killed process would

asyncio.run(main())
"""


async def test_messages_of_a_crashed_consumer_are_redelivered_after_ack_wait(
    scope: Scope, buses: list[NatsBus]
) -> None:
    url = scope.durable_url(ack_wait=1)
    await open_bus(buses, url).publish(SYSTEM, bodies(6))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_CONSUMER,
        url,
        SYSTEM,
        INGEST_GROUP,
        "6",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
    held = out.decode().split()
    assert len(held) == 6

    survivor = await open_bus(buses, url).subscribe([SYSTEM], INGEST_GROUP, "ingest-2")
    redelivered = await fetch_all(survivor, 6, within=5.0)
    assert sorted(m.id for m in redelivered) == sorted(held)


async def test_members_of_one_group_share_the_durable_consumer(
    scope: Scope, buses: list[NatsBus]
) -> None:
    url = scope.durable_url(buffer=5)
    await open_bus(buses, url).publish(SYSTEM, bodies(40))
    first = await open_bus(buses, url).subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    second = await open_bus(buses, url).subscribe([SYSTEM], INGEST_GROUP, "ingest-2")
    a: list[Message] = []
    b: list[Message] = []
    for _ in range(40):
        if len(a) + len(b) == 40:
            break
        for sub, into in ((first, a), (second, b)):
            got = await sub.fetch(5, 0.2)
            await sub.ack(got)
            into.extend(got)
    assert a and b
    assert sorted(m.body for m in a + b) == sorted(bodies(40))


async def test_a_slow_consumer_leaves_messages_on_the_server(
    scope: Scope, raw: Client, buses: list[NatsBus]
) -> None:
    """The pull consumer asks only for what fits in the buffer; the rest stays in the stream."""
    bus = open_bus(buses, scope.durable_url(buffer=5))
    await bus.publish(SYSTEM, bodies(50))
    sub = await bus.subscribe([SYSTEM], INGEST_GROUP, "ingest-1")
    await asyncio.sleep(0.3)
    info = await consumer_info(raw, scope, "tracker-service-system-events")
    assert info.num_ack_pending == 5
    assert info.num_pending == 45
    got = await fetch_all(sub, 50, batch=5)
    assert len(got) == 50


# --- End to end: the platform's events become task records -------------------------------------


def soorma_task(task_id: str) -> list[tuple[str, bytes]]:
    """One task as the platform reports it: request, progress, result; (topic, body)."""
    progress = TaskProgressEvent(
        task_id=task_id, state=SoormaState.RUNNING, progress=0.5, message="halfway"
    )
    return [
        (
            "action-requests",
            soorma_event(
                EventTopic.ACTION_REQUESTS,
                "web.search.requested",
                {"query": "moths"},
                correlation_id=task_id,
            ),
        ),
        (
            SYSTEM,
            soorma_event(
                EventTopic.SYSTEM_EVENTS, "task.progress", progress.model_dump(mode="json")
            ),
        ),
        (
            "action-results",
            soorma_event(
                EventTopic.ACTION_RESULTS,
                "web.search.completed",
                {"success": True, "result": {"hits": 3}},
                correlation_id=task_id,
            ),
        ),
    ]


async def platform_publish(raw: Client, prefix: str, events: Sequence[tuple[str, bytes]]) -> None:
    for topic, body in events:
        await raw.publish(f"{prefix}.{topic}", body)
        await raw.flush()  # one at a time, in order, as the platform's workers would


async def assert_completed(sessions: async_sessionmaker[AsyncSession], task_id: str) -> None:
    async with sessions() as s:
        record = await tasks.get(s, TENANT, task_id)
    assert record is not None
    assert record.state is TaskState.COMPLETED
    assert record.event_type == "web.search.requested"
    assert record.progress == 1.0  # completion fills the bar whatever order events came in
    assert record.requester == "research-worker"


async def test_platform_events_become_task_records_through_jetstream(
    scope: Scope, raw: Client, buses: list[NatsBus], sessions: async_sessionmaker[AsyncSession]
) -> None:
    bus = open_bus(buses, scope.durable_url())
    await bus.connect()  # creates the stream
    await platform_publish(raw, scope.prefix, soorma_task("task-1"))

    consumer = IngestConsumer(bus, sessions, IngestOptions(idle_wait=0.3))
    stats = await consumer.run(burst=True)
    assert stats.folded == 3
    await assert_completed(sessions, "task-1")
    for topic in TRACKED_TOPICS:
        info = await consumer_info(raw, scope, f"tracker-service-{topic}")
        assert info.num_ack_pending == 0, f"{topic}: acknowledged only after the commit"


class _AnnouncingBus(NatsBus):
    """Says when ingest has subscribed: core NATS delivers only what is published after."""

    subscribed: asyncio.Event

    async def subscribe(self, topics: Sequence[str], group: str, consumer: str) -> NatsSubscription:
        sub = await super().subscribe(topics, group, consumer)
        self.subscribed.set()
        return sub


async def test_platform_events_become_task_records_over_core_nats(
    scope: Scope, raw: Client, buses: list[NatsBus], sessions: async_sessionmaker[AsyncSession]
) -> None:
    bus = _AnnouncingBus(scope.server, NatsOptions(prefix=scope.prefix))
    bus.subscribed = asyncio.Event()
    buses.append(bus)
    consumer = IngestConsumer(bus, sessions, IngestOptions(idle_wait=0.5))
    running = asyncio.create_task(consumer.run(burst=True))
    await asyncio.wait_for(bus.subscribed.wait(), timeout=10)
    await platform_publish(raw, scope.prefix, soorma_task("task-2"))
    stats = await asyncio.wait_for(running, timeout=20)
    assert stats.folded == 3
    await assert_completed(sessions, "task-2")
