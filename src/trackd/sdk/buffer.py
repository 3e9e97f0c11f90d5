"""The bounded buffer between producers (any thread) and the one delivery loop that drains it."""

from __future__ import annotations

import threading
from collections import deque

from trackd.sdk.wire import Pending


class EventBuffer:
    """A FIFO that holds about `capacity` events at most and counts what became of them.

    `accepted` counts every event put in; `settled` every event the delivery loop is done with
    (delivered, rejected or given up on). A flush waits for `settled` to reach the `accepted`
    it saw, so it covers events that are in flight as well as those still queued.

    Producers add without a lock: a deque's `extend` is atomic, and `accepted` is not a
    counter they keep but the events taken out so far plus those queued, read under the
    lock that the delivery loop takes once per batch. So a tracked call and the delivery
    thread never wait for each other. Producers racing on several threads may overfill the
    buffer by the few events they add at the same moment.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("max_buffer must be at least 1")
        self.capacity = capacity
        self.settled = 0
        self._taken = 0  # events moved out of the queue for good (taken, or cleared)
        self._items: deque[Pending] = deque()
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._progress = threading.Condition(self._lock)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def accepted(self) -> int:
        """Events put in so far."""
        with self._lock:
            return self._taken + len(self._items)

    def offer(self, items: tuple[Pending, ...]) -> int:
        """Add all of `items` if there is room for all; the length they brought the buffer to,
        or 0 if there is not.

        All or none, so a task's pending and running events are taken or refused together.
        The length is counted before adding, not read after: the delivery thread may take the
        events at once, and an answer of 0 would have the caller add them a second time.
        """
        queue = self._items
        length = len(queue) + len(items)
        if length > self.capacity:
            return 0
        queue.extend(items)
        return length

    def put(self, items: tuple[Pending, ...], timeout: float) -> int:
        """Add `items`, waiting up to `timeout` seconds for room; 0 if none came."""
        if len(items) > self.capacity:
            return 0
        with self._space:
            room = self.capacity - len(items)
            if not self._space.wait_for(lambda: len(self._items) <= room, timeout):
                return 0
            self._items.extend(items)
            return len(self._items)

    def take(self, limit: int) -> list[Pending]:
        """Up to `limit` events from the front; they stay counted until `settle`d."""
        with self._lock:
            items = self._items
            n = min(limit, len(items))
            # Producers only append at the other end, so these n are there to pop.
            batch = [items.popleft() for _ in range(n)]
            self._taken += n
            if n:
                self._space.notify_all()
            return batch

    def requeue(self, items: list[Pending]) -> None:
        """Put taken events back at the front, in order (their delivery loop was cancelled).

        They may overfill the buffer for a moment; they were counted in already.
        """
        with self._lock:
            self._items.extendleft(reversed(items))
            self._taken -= len(items)

    def clear(self) -> int:
        """Remove every queued event and settle it (they are given up on); how many there were."""
        with self._lock:
            items = self._items
            n = 0
            # One at a time: an event a producer adds meanwhile is removed and counted too.
            while items:
                items.popleft()
                n += 1
            self._taken += n
            self.settled += n
            self._space.notify_all()
            self._progress.notify_all()
            return n

    def settle(self, count: int) -> None:
        """The delivery loop is done with `count` events taken earlier."""
        with self._lock:
            self.settled += count
            self._progress.notify_all()

    def wait_settled(self, target: int, timeout: float | None) -> bool:
        """Block until `settled` reaches `target`; False if `timeout` ran out first."""
        with self._progress:
            return self._progress.wait_for(lambda: self.settled >= target, timeout)
