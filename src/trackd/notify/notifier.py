"""The notifier: delivers the outbox to channels and trackd's bus, at least once per message,
with the idempotency key that lets receivers make it exactly once.

    notifier = Notifier(sessions, bus, settings)
    await notifier.run()          # until stop(); `trackd serve` runs it as a role
    await notifier.drain()        # burst: deliver what is due, then return (tests, CLI)

Each round claims due rows (a short transaction), delivers them concurrently, and records
each outcome in a transaction of its own. A notifier that crashes between sending and
recording leaves its rows claimed until their lease passes; then any notifier sends them
again, with the same Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.bus.base import Bus
from trackd.domain.channels import BUS
from trackd.domain.events import SYSTEM_EVENTS
from trackd.domain.retry import Backoff, may_retry
from trackd.notify.channels import (
    ChannelConfig,
    ChannelSender,
    Delivery,
    DeliveryError,
    default_senders,
)
from trackd.outbound.http import AddressGuard, outbound_client
from trackd.settings import Settings
from trackd.store.models import utcnow
from trackd.store.repos import channels as channels_repo
from trackd.store.repos import outbox as repo
from trackd.store.repos.outbox import Claimed

log = logging.getLogger(__name__)

# Notifications wait longer than polls between tries: 30 s, 1 min, 2 min, ... up to 1 h, so
# eight tries span about two hours of a receiver being down.
NOTIFY_BACKOFF = Backoff(base=30.0, factor=2.0, cap=3600.0, jitter=0.2)
HOUSEKEEPING_EVERY_S = 3600.0
# Sent and dead messages are kept this long for inspection.
KEEP_FINISHED = timedelta(days=14)

Pruner = Callable[[AsyncSession], Awaitable[int]]
"""Deletes expired rows of another kind in the session it is given; returns how many."""


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class RoundResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0


class Notifier:
    """Delivers due outbox rows of every tenant.

    Args:
        sessions: the store.
        bus: where `bus` rows are published (topic system-events).
        settings: batch size, lease, poll interval, attempts and the outbound client's limits.
        client: the outbound HTTP client; one from `outbound_client(settings)` by default
            (then closed by `aclose`).
        guard: the address check of that client, for channels that connect by themselves.
        senders: channel kind → sender.
        worker: this notifier's name in claims (hostname-pid by default).
        pruners: other expired rows to delete in the hourly housekeeping, by name (the runtime
            passes the snapshots' retention); finished outbox rows are always pruned.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus | None,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        guard: AddressGuard | None = None,
        senders: Mapping[str, ChannelSender] | None = None,
        worker: str | None = None,
        backoff: Backoff = NOTIFY_BACKOFF,
        concurrency: int = 10,
        pruners: Mapping[str, Pruner] | None = None,
    ) -> None:
        self._sessions = sessions
        self._bus = bus
        self._settings = settings
        self.guard = guard or AddressGuard(allow_private=settings.allow_private_fetch)
        self._own_client = client is None
        self._client = client or outbound_client(settings, guard=self.guard)
        self._senders = dict(senders or default_senders())
        self.worker = worker or default_worker_name()
        self._backoff = backoff
        self._limit = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()
        self._last_housekeeping = time.monotonic()
        self._pruners = dict(pruners or {})

    def stop(self) -> None:
        self._stopping.set()

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def run(self) -> None:
        """Deliver until `stop()`; a failing round is logged and retried, never fatal."""
        log.info("notifier started worker=%s", self.worker)
        while not self._stopping.is_set():
            try:
                result = await self.run_once()
                await self._housekeeping()
            except Exception:
                log.exception("notifier round failed; retrying worker=%s", self.worker)
                result = RoundResult()
            if result.claimed < self._settings.notify_batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stopping.wait(), self._settings.notify_poll_interval_s
                    )
        log.info("notifier stopped worker=%s", self.worker)

    async def drain(self) -> RoundResult:
        """Deliver until nothing is due (burst mode). Rows waiting for a retry stay queued."""
        totals = RoundResult()
        while True:
            result = await self.run_once()
            totals = RoundResult(
                totals.claimed + result.claimed,
                totals.sent + result.sent,
                totals.retried + result.retried,
                totals.dead + result.dead,
            )
            if result.claimed == 0:
                return totals

    async def run_once(self) -> RoundResult:
        """One round: claim a batch and deliver it."""
        lease = timedelta(seconds=self._settings.notify_lease_s)
        async with self._sessions() as session:
            claimed = await repo.claim(
                session, worker=self.worker, limit=self._settings.notify_batch_size, lease=lease
            )
            await session.commit()
        if not claimed:
            return RoundResult()
        outcomes = await asyncio.gather(*(self._deliver(c) for c in claimed))
        return RoundResult(
            len(claimed),
            outcomes.count(repo.SENT),
            outcomes.count(repo.PENDING),
            outcomes.count(repo.DEAD),
        )

    async def _deliver(self, claimed: Claimed) -> str:
        async with self._limit:
            try:
                if claimed.kind == BUS:
                    await self._publish(claimed)
                else:
                    await self._send(claimed)
            except DeliveryError as exc:
                return await self._failed(claimed, exc)
            except Exception as exc:
                # A bug in a sender must not lose the message: it is retried like a failure.
                log.exception("delivery crashed id=%s kind=%s", claimed.id, claimed.kind)
                return await self._failed(claimed, DeliveryError(type(exc).__name__))
            async with self._sessions() as session:
                recorded = await repo.mark_sent(session, claimed)
                await session.commit()
            if not recorded:
                log.warning(
                    "delivered after the lease ran out; another notifier may send it again "
                    "(same idempotency key) id=%s key=%s",
                    claimed.id,
                    claimed.idempotency_key,
                )
            log.info(
                "notification sent tenant=%s kind=%s key=%s attempt=%d",
                claimed.tenant_id,
                claimed.kind,
                claimed.idempotency_key,
                claimed.attempts,
            )
            return repo.SENT

    async def _publish(self, claimed: Claimed) -> None:
        if self._bus is None:
            raise DeliveryError("this notifier has no bus")
        subject = claimed.payload.get("subject")
        body = json.dumps(claimed.payload, separators=(",", ":")).encode()
        try:
            await asyncio.wait_for(
                self._bus.publish(SYSTEM_EVENTS, [body], keys=[subject]),
                self._settings.publish_timeout_s,
            )
        except TimeoutError:
            raise DeliveryError("the bus did not confirm the publish in time") from None

    async def _send(self, claimed: Claimed) -> None:
        if claimed.channel_id is None:
            raise DeliveryError(f"a {claimed.kind} message names no channel", permanent=True)
        async with self._sessions() as session:
            row = await channels_repo.get_channel(session, claimed.tenant_id, claimed.channel_id)
        if row is None:
            raise DeliveryError("the channel was deleted", permanent=True)
        if not row.enabled:
            raise DeliveryError("the channel is disabled", permanent=True)
        sender = self._senders.get(row.kind)
        if sender is None:
            raise DeliveryError(f"no sender for channel kind {row.kind!r}", permanent=True)
        delivery = Delivery(
            claimed.idempotency_key, claimed.event_type, claimed.payload, claimed.attempts
        )
        await sender.send(ChannelConfig.of(row), delivery, self._client, self.guard)

    async def _failed(self, claimed: Claimed, error: DeliveryError) -> str:
        now = utcnow()
        # A receiver that said how long to wait is not failing: that wait does not use a try.
        waited_as_told = error.rate_limited and error.retry_after is not None
        retry_at: datetime | None = None
        if not error.permanent and (
            waited_as_told or may_retry(claimed.attempts, claimed.max_attempts)
        ):
            if waited_as_told:
                delay = max(1.0, error.retry_after or 0.0)
            else:
                delay = max(error.retry_after or 0.0, self._backoff.delay(claimed.attempts))
            retry_at = now + timedelta(seconds=delay)
        async with self._sessions() as session:
            await repo.mark_failed(
                session,
                claimed,
                error=str(error),
                retry_at=retry_at,
                count_attempt=not waited_as_told,
            )
            await session.commit()
        outcome = repo.PENDING if retry_at else repo.DEAD
        log.warning(
            "notification failed tenant=%s kind=%s key=%s attempt=%d/%d outcome=%s error=%s",
            claimed.tenant_id,
            claimed.kind,
            claimed.idempotency_key,
            claimed.attempts,
            claimed.max_attempts,
            "retry" if retry_at else "dead",
            error,
        )
        return outcome

    async def _housekeeping(self) -> None:
        """Hourly: `housekeep`."""
        if time.monotonic() - self._last_housekeeping < HOUSEKEEPING_EVERY_S:
            return
        self._last_housekeeping = time.monotonic()
        await self.housekeep()

    async def housekeep(self) -> dict[str, int]:
        """Expire finished outbox rows and what the pruners keep, one batch of each; returns
        how many rows of each kind were deleted."""
        async with self._sessions() as session:
            deleted = {name: await prune(session) for name, prune in self._pruners.items()}
            deleted["outbox"] = await repo.prune_finished(session, utcnow() - KEEP_FINISHED)
            await session.commit()
        if any(deleted.values()):
            log.info("housekeeping deleted %s", " ".join(f"{k}={n}" for k, n in deleted.items()))
        return deleted
