"""Entry ids of the Redis bus follow publish order across topic streams
(trackd.bus.redis.ordered)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from trackd.bus.redis.bus import RedisStreamsBus
from trackd.bus.redis.merge import id_key


@pytest_asyncio.fixture
async def bus(redis_url: str) -> AsyncIterator[RedisStreamsBus]:
    prefix = f"t-order-{uuid.uuid4().hex[:8]}"
    bus = RedisStreamsBus.from_url(f"{redis_url}?partitions=2&prefix={prefix}")
    try:
        yield bus
    finally:
        keys = [k async for k in bus.redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await bus.redis.delete(*keys)
        await bus.close()


async def _entries(bus: RedisStreamsBus) -> list[tuple[tuple[int, int], bytes]]:
    prefix = bus.options.prefix
    found: list[tuple[tuple[int, int], bytes]] = []
    for topic in ("a", "b", "c"):
        for p in range(bus.options.partitions):
            for entry_id, fields in await bus.redis.xrange(f"{prefix}:{topic}:{p}"):
                found.append((id_key(entry_id.decode()), fields[b"body"]))
    return sorted(found)


async def test_ids_order_messages_as_published_across_topics(bus: RedisStreamsBus) -> None:
    # Many small publishes to three topics within the same milliseconds: Redis's own ids
    # would number each stream from 0 within a millisecond and interleave them.
    published: list[bytes] = []
    for i in range(300):
        topic = "abc"[i % 3]
        body = f"{i}".encode()
        await bus.publish(topic, [body], [f"key-{i % 7}"])
        published.append(body)
    entries = await _entries(bus)
    assert len({entry_id for entry_id, _ in entries}) == len(published), "ids must not tie"
    assert [body for _, body in entries] == published


async def test_a_stream_ahead_of_the_clock_is_written_after(bus: RedisStreamsBus) -> None:
    # A stream written before the clock existed, with an id far in the future.
    stream = f"{bus.options.prefix}:a:1"  # where key "k" goes with 2 partitions
    await bus.redis.xadd(stream, {"body": b"old"}, id="99999999999999-5")
    await bus.publish("a", [b"new-1", b"new-2"], ["k", "k"])
    await bus.publish("b", [b"new-3"], ["k"])
    bodies = [body for _, body in await _entries(bus)]
    assert bodies == [b"old", b"new-1", b"new-2", b"new-3"]
