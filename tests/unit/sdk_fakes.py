"""Buses for the SDK's unit tests: they record what the tracker publishes, or refuse it.

Every event a fake bus receives is also run through trackd's own decoding and interpretation,
so a test that passes here has sent events the ingest side accepts.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from trackd.domain.events import decode_envelope
from trackd.domain.interpret import interpret

Event = dict[str, Any]


class RecordingBus:
    """Keeps every published event, decoded, and the size of every publish call."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.keys: list[str | None] = []
        self.batches: list[int] = []
        self.closed = False
        self._lock = threading.Lock()

    async def publish(
        self, topic: str, bodies: Sequence[bytes], keys: Sequence[str | None] | None = None
    ) -> None:
        decoded = []
        for body in bodies:
            interpret(decode_envelope(body))  # raises if trackd would refuse it
            event = json.loads(body)
            assert event["topic"] == topic
            decoded.append(event)
        with self._lock:
            self.events.extend(decoded)
            self.keys.extend(keys or [None] * len(bodies))
            self.batches.append(len(bodies))

    async def subscribe(self, topics: Sequence[str], group: str, consumer: str) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        self.closed = True

    def of_task(self, task_id: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e["data"]["task_id"] == task_id]

    def wait_for(self, count: int, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while len(self.events) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.events)} events arrived, expected {count}")
            time.sleep(0.005)


class GatedBus(RecordingBus):
    """Holds every publish until `gate` is set: a bus that has stopped taking events."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    async def publish(
        self, topic: str, bodies: Sequence[bytes], keys: Sequence[str | None] | None = None
    ) -> None:
        while not self.gate.is_set():  # noqa: ASYNC110 - released from another thread
            await asyncio.sleep(0.002)
        await super().publish(topic, bodies, keys)


class FlakyBus(RecordingBus):
    """Fails the first `failures` publish calls, as a bus that is restarting would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    async def publish(
        self, topic: str, bodies: Sequence[bytes], keys: Sequence[str | None] | None = None
    ) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"bus unavailable (call {self.calls})")
        await super().publish(topic, bodies, keys)


def states(events: list[Event]) -> list[str]:
    """The state each event reports: new_state for state changes, state for progress."""
    return [e["data"].get("new_state") or e["data"]["state"] for e in events]
