"""Envelopes handed over by a thread, sent to trackd (its bus or its HTTP API) in batches.

Celery's event receiver and signal handlers run on threads of their own; the bus lives on an
asyncio loop. Between them sits a bounded queue: a producer that outruns the bus waits for
room (for the receiver, Celery's events then wait in the broker) instead of growing memory.
A batch that cannot be sent is kept and sent again, ids unchanged, so ingest deduplicates
whatever got through twice; only a batch refused for good (`RefusedError`) is dropped, loudly.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from trackd.bus.base import Bus
from trackd.domain.events import EventEnvelope
from trackd.ingest import service
from trackd.sdk.sinks import RefusedError, Sink

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 10_000
Send = Callable[[Sequence[EventEnvelope]], Awaitable[None]]


def bus_sender(bus: Bus) -> Send:
    """Publish on a bus, one call per topic, partitioned by task id."""

    async def send(envelopes: Sequence[EventEnvelope]) -> None:
        await service.publish(bus, ((e.topic or "", e.correlation_id, e) for e in envelopes))

    return send


def sink_sender(sink: Sink) -> Send:
    """Send through an SDK sink (a trackd server over HTTP); refusals are logged per event."""

    async def send(envelopes: Sequence[EventEnvelope]) -> None:
        wire = [(e.id, e.correlation_id or "", service.encode(e)) for e in envelopes]
        result = await sink.send(wire)
        for event_id, reason in result.rejected:
            log.error("trackd refused event id=%s: %s", event_id, reason)

    return send


@dataclass(slots=True)
class ForwarderStats:
    published: int = 0
    batches: int = 0
    failures: int = 0  # sends that failed and were retried
    refused: int = 0  # events trackd refused for good


class Forwarder:
    """Takes envelopes from any thread and publishes them from the loop that runs `run()`."""

    def __init__(
        self, send: Send, *, batch_size: int = 500, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        self._send = send
        self._batch_size = batch_size
        self._queue: queue.Queue[EventEnvelope] = queue.Queue(maxsize=max_pending)
        self._stop = asyncio.Event()
        self.stats = ForwarderStats()

    def put(self, envelopes: Sequence[EventEnvelope], timeout: float | None = None) -> bool:
        """Queue envelopes (from any thread), waiting for room; False if `timeout` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for envelope in envelopes:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._queue.put(envelope, timeout=left)
            except queue.Full:
                return False
        return True

    @property
    def pending(self) -> int:
        """Envelopes queued or being sent."""
        return self._queue.unfinished_tasks

    def stop(self) -> None:
        """Publish what is queued, then end `run()` (call on the forwarder's loop)."""
        self._stop.set()

    async def run(self) -> ForwarderStats:
        """Send until stopped and drained."""
        while True:
            batch = await asyncio.to_thread(self._take, 0.2)
            if batch:
                try:
                    await self.publish(batch)
                finally:
                    for _ in batch:
                        self._queue.task_done()
            elif self._stop.is_set():
                return self.stats

    async def publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        """Send now, retrying while trackd is away."""
        delay = 0.2
        while True:
            try:
                await self._send(envelopes)
            except RefusedError as exc:
                self.stats.refused += len(envelopes)
                log.error("trackd refused %d events, dropped: %s", len(envelopes), exc)
                return
            except Exception as exc:  # the bus or server is away: keep the batch, try again
                self.stats.failures += 1
                log.warning("sending %d events failed, retrying: %r", len(envelopes), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.stats.published += len(envelopes)
            self.stats.batches += 1
            return

    def _take(self, wait: float) -> list[EventEnvelope]:
        """Up to a batch: waits `wait` seconds for the first envelope, then takes what is there."""
        try:
            batch = [self._queue.get(timeout=wait)]
        except queue.Empty:
            return []
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch
