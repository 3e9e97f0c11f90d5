"""The in-process bus: the embedded default, and a deterministic bus for tests."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from trackd.bus.base import Message


@dataclass(slots=True)
class _Entry:
    message: Message
    done: asyncio.Future[None]
    waiting_groups: int  # acks still owed before the publisher is released


@dataclass(slots=True)
class _Group:
    topics: frozenset[str]
    ready: deque[_Entry] = field(default_factory=deque)
    pending: dict[str, _Entry] = field(default_factory=dict)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryBus:
    """Topics and consumer groups in memory.

    Messages published before any group subscribes wait for the first group. `publish`
    returns when every group that received the messages has acknowledged them, which on the
    embedded default means they are committed to the store.
    """

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}
        self._orphans: deque[_Entry] = deque()
        self._ids = itertools.count(1)
        self._closed = False

    async def publish(
        self, topic: str, bodies: Sequence[bytes], keys: Sequence[str | None] | None = None
    ) -> None:
        if self._closed:
            raise RuntimeError("the bus is closed")
        if keys is not None and len(keys) != len(bodies):
            raise ValueError("keys and bodies differ in length")
        loop = asyncio.get_running_loop()
        groups = [g for g in self._groups.values() if topic in g.topics]
        entries = []
        for i, body in enumerate(bodies):
            msg = Message(str(next(self._ids)), topic, body, keys[i] if keys else None)
            entry = _Entry(msg, loop.create_future(), max(1, len(groups)))
            entries.append(entry)
            if not groups:
                self._orphans.append(entry)
            for g in groups:
                g.ready.append(entry)
        for g in groups:
            g.wakeup.set()
        if entries:
            await asyncio.gather(*(e.done for e in entries))

    async def subscribe(
        self, topics: Sequence[str], group: str, consumer: str
    ) -> MemorySubscription:
        g = self._groups.get(group)
        if g is None:
            g = self._groups[group] = _Group(frozenset(topics))
            for entry in [e for e in self._orphans if e.message.topic in g.topics]:
                self._orphans.remove(entry)
                g.ready.append(entry)
            g.wakeup.set()
        return MemorySubscription(g)

    def backlog(self) -> int:
        """Messages published and not yet acknowledged, over all groups."""
        return len(self._orphans) + sum(
            len(g.ready) + len(g.pending) for g in self._groups.values()
        )

    async def drain(self, within: float = 10.0) -> None:
        """Wait until every published message has been acknowledged (for tests and demos).

        Raises:
            TimeoutError: messages were still unacknowledged after `within` seconds.
        """
        async with asyncio.timeout(within):
            while self.backlog():  # noqa: ASYNC110 - a short poll keeps the hot path free of bookkeeping
                await asyncio.sleep(0.005)

    async def close(self) -> None:
        self._closed = True


class MemorySubscription:
    def __init__(self, group: _Group) -> None:
        self._group = group

    async def fetch(self, max_messages: int, block: float) -> list[Message]:
        g = self._group
        if not g.ready:
            g.wakeup.clear()
            try:
                async with asyncio.timeout(block):
                    await g.wakeup.wait()
            except TimeoutError:
                return []
        out: list[Message] = []
        while g.ready and len(out) < max_messages:
            entry = g.ready.popleft()
            g.pending[entry.message.id] = entry
            out.append(entry.message)
        return out

    async def ack(self, messages: Sequence[Message]) -> None:
        for msg in messages:
            entry = self._group.pending.pop(msg.id, None)
            if entry is None:
                continue
            entry.waiting_groups -= 1
            if entry.waiting_groups <= 0 and not entry.done.done():
                entry.done.set_result(None)

    async def nack(self, messages: Sequence[Message]) -> None:
        g = self._group
        for msg in reversed(messages):
            entry = g.pending.pop(msg.id, None)
            if entry is not None:
                g.ready.appendleft(entry)
        g.wakeup.set()

    async def close(self) -> None:
        pending = list(self._group.pending.values())
        await self.nack([e.message for e in pending])
