"""The ingest loop: fetch a batch (bounded by size and time), fold and commit it, then ack.

A batch whose transaction fails is given back to the bus and retried with backoff, so a
store that is away for a while pauses ingestion instead of losing events; nothing is held
in memory beyond the batch being written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.base import Bus, Message, Subscription
from trackd.domain.events import PLATFORM_TOPICS, EventRules
from trackd.ingest.batch import BatchResult, apply_batch, undeliverable
from trackd.ingest.metrics import EventSeen, IngestMetrics
from trackd.store.repos import dead_letters

log = logging.getLogger(__name__)

INGEST_GROUP = "trackd-ingest"
BURST_IDLE_FETCHES = 3


@dataclass(frozen=True, slots=True)
class IngestOptions:
    default_tenant: str = "default"
    batch_size: int = 2500
    max_wait: float = 0.02  # seconds a partial batch waits for more events
    idle_wait: float = 1.0  # seconds to block waiting for the first event of a batch
    # Every platform topic: the untracked ones' events still belong on the timeline.
    topics: tuple[str, ...] = PLATFORM_TOPICS
    rules: EventRules = field(default_factory=EventRules)
    group: str = INGEST_GROUP
    consumer: str = "ingest-1"
    # Event and task types a tenant's metrics name before the rest are counted as "other".
    metrics_top_types: int = 20


@dataclass(slots=True)
class IngestStats:
    batches: int = 0
    folded: int = 0
    duplicates: int = 0
    rejected: int = 0
    anomalies: int = 0
    failures: int = 0

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.folded += result.folded
        self.duplicates += result.duplicates
        self.rejected += result.rejected
        self.anomalies += result.anomalies


class IngestConsumer:
    """Consumes the tracked topics in one consumer group and writes what they say."""

    def __init__(
        self, bus: Bus, sessions: async_sessionmaker[AsyncSession], options: IngestOptions
    ) -> None:
        self._bus = bus
        self._sessions = sessions
        self._opts = options
        self._stop = asyncio.Event()
        self.stats = IngestStats()
        self.metrics = IngestMetrics(options.metrics_top_types)

    def stop(self) -> None:
        self._stop.set()

    async def run(self, *, burst: bool = False) -> IngestStats:
        """Consume until stopped; in burst mode, stop once `BURST_IDLE_FETCHES` fetches in a
        row (each waiting up to `idle_wait`) found nothing.

        One empty fetch is not enough to call a bus drained: a consumer that has just taken
        over partitions may get nothing until its leases settle and what a dead consumer left
        pending is claimed.
        """
        opts = self._opts
        sub = await self._bus.subscribe(opts.topics, opts.group, opts.consumer)
        empty = 0
        try:
            while not self._stop.is_set():
                batch = await self._collect(sub)
                if not batch:
                    empty += 1
                    if burst and empty >= BURST_IDLE_FETCHES:
                        break
                    continue
                empty = 0
                await self._write_with_retry(sub, batch)
        finally:
            await sub.close()
        return self.stats

    async def _collect(self, sub: Subscription) -> list[Message]:
        opts = self._opts
        batch = await sub.fetch(opts.batch_size, opts.idle_wait)
        if not batch:
            return batch
        deadline = time.monotonic() + opts.max_wait
        while len(batch) < opts.batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = await sub.fetch(opts.batch_size - len(batch), left)
            if not more:
                break
            batch.extend(more)
        return batch

    async def _commit(self, batch: Sequence[Message]) -> BatchResult:
        async with self._sessions() as session, session.begin():
            return await apply_batch(
                session, batch, self._opts.default_tenant, rules=self._opts.rules
            )

    async def _write_with_retry(self, sub: Subscription, batch: list[Message]) -> None:
        """Commit a batch, then ack it.

        A store that cannot be reached pauses here, retrying the same batch with backoff:
        nothing is acknowledged, so nothing is lost, and nothing more is fetched, so memory
        stays bounded. Any other failure is the data's: the batch is split until the event
        that cannot be stored is alone, and that event goes to the dead letters.
        """
        delay = 0.1
        while True:
            try:
                result = await self._commit(batch)
            except Exception as exc:
                self.stats.failures += 1
                if not is_transient(exc):
                    log.warning(
                        "ingest batch of %d failed, isolating the bad event: %s", len(batch), exc
                    )
                    result = await self._isolate(batch)
                    break
                log.warning("store unavailable, retrying the batch in %.1fs: %s", delay, exc)
                if self._stop.is_set():
                    await sub.nack(batch)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            break
        committed_at = datetime.now(UTC)
        await sub.ack(batch)
        self.stats.add(result)
        self.metrics.observe(result.events, result.changes, committed_at)

    async def _isolate(self, batch: Sequence[Message]) -> BatchResult:
        """Commit what can be committed by halves; dead-letter single events that cannot."""
        if len(batch) == 1:
            try:
                return await self._commit(batch)
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.error(
                    "event cannot be stored, dead-lettered message_id=%s: %s", batch[0].id, exc
                )
                letter = undeliverable(
                    batch[0], self._opts.default_tenant, f"could not be stored: {exc}"
                )
                async with self._sessions() as session, session.begin():
                    await dead_letters.add(session, [letter])
                return BatchResult(
                    rejected=1, events=[EventSeen(letter.tenant_id, "invalid", "dead_lettered")]
                )
        middle = len(batch) // 2
        total = BatchResult()
        for half in (batch[:middle], batch[middle:]):
            try:
                part = await self._commit(half)
            except Exception as exc:
                if is_transient(exc):
                    raise
                part = await self._isolate(half)
            total.merge(part)
        return total


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is the store's (unreachable, locked, restarting), not the data's."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
            return True
        exc = exc.orig or exc
    transient_names = {
        "PostgresConnectionError",
        "CannotConnectNowError",
        "InterfaceError",
        "ConnectionDoesNotExistError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
    }
    return isinstance(exc, OSError | ConnectionError | TimeoutError) or any(
        cls.__name__ in transient_names for cls in type(exc).__mro__
    )
