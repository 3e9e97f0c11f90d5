"""What a subscription holds that was received and not fetched yet, bounded."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

from trackd.bus.nats.messages import Delivery


class Buffer:
    """Messages received and not yet fetched, at most `bound` of them (plus any handed back).

    Pull consumers reserve room before they pull, so the server keeps what does not fit.
    """

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._items: deque[Delivery] = deque()
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

    def put(self, deliveries: Sequence[Delivery], reserved: int) -> None:
        self._reserved -= reserved
        self._items.extend(deliveries)
        if deliveries:
            self._not_empty.set()
        if reserved > len(deliveries):
            self._not_full.set()

    async def put_one(self, delivery: Delivery, when_full: Callable[[], None]) -> None:
        """Add one delivery, waiting for room; calls `when_full` before it waits."""
        if self.free() <= 0:
            when_full()
        while self.free() <= 0:
            self._not_full.clear()
            await self._not_full.wait()
        self._items.append(delivery)
        self._not_empty.set()

    def give_back(self, deliveries: Sequence[Delivery]) -> None:
        self._items.extendleft(reversed(deliveries))
        if deliveries:
            self._not_empty.set()

    async def take(self, max_messages: int, block: float) -> list[Delivery]:
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

    def drain(self) -> list[Delivery]:
        out = list(self._items)
        self._items.clear()
        return out
