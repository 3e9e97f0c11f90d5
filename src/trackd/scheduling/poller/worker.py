"""The worker's loop: hear requests, sweep for due polls, claim them under a lease, and
start each claimed poll (`running.PollRunner`) while slots are free."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.outbound.http import outbound_client
from trackd.scheduling.events import TOPIC, PollEvent
from trackd.scheduling.hosts import HostBackoffs
from trackd.scheduling.poller.options import PollerOptions, PollerStats
from trackd.scheduling.poller.running import (
    Clock,
    PolicyLookup,
    PollRunner,
    RecordSnapshot,
    SourceLookup,
    record_snapshot,
    registry_lookup,
    utcnow,
)
from trackd.scheduling.poller.transitions import claim_events
from trackd.scheduling.requests import POLL_REQUESTS, POLLERS_GROUP, decode_request
from trackd.settings import Settings
from trackd.store.repos import polls as poll_repo
from trackd.store.repos.polls import Claim

if TYPE_CHECKING:
    import httpx

    from trackd.bus.base import Bus, Message, Subscription

log = logging.getLogger(__name__)

_STOP_CHECK = 0.5  # seconds

ClientFactory = Callable[[], "httpx.AsyncClient"]


class Poller:
    """Runs due polls with leases, retries and per-host backoff; see the package docstring."""

    def __init__(
        self,
        bus: Bus | None,
        sessions: async_sessionmaker[AsyncSession],
        options: PollerOptions,
        *,
        settings: Settings,
        sources: SourceLookup | None = None,
        client_factory: ClientFactory | None = None,
        record: RecordSnapshot | None = None,
        policies: PolicyLookup | None = None,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        if options.concurrency < 1:
            raise ValueError("a poller runs at least one poll at a time")
        self._bus = bus
        self._sessions = sessions
        self.options = options
        # The deployment's settings decide the outbound client and the snapshots' retention
        # and notifications, unless a test passes its own.
        self._client_factory = client_factory or partial(outbound_client, settings)
        self._clock = clock
        self.hosts = HostBackoffs(clock, options.host_backoff, rng)
        self.stats = PollerStats()
        self._runner = PollRunner(
            sessions,
            options,
            sources=sources or registry_lookup,
            record=record or partial(record_snapshot, settings=settings, policies=policies),
            settings=settings,
            publish=self._publish,
            outbound=self._outbound,
            hosts=self.hosts,
            stats=self.stats,
            clock=clock,
            rng=rng,
        )
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._freed = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    def stop(self) -> None:
        """Stop taking polls; `run` returns once the running ones have ended."""
        self._stopping.set()

    async def run(self, *, burst: bool = False) -> PollerStats:
        """Take and run polls until `stop()`, or with `burst` until none is due or running."""
        subscription = None
        if self._bus is not None:
            subscription = await self._bus.subscribe(
                [POLL_REQUESTS], POLLERS_GROUP, self.options.consumer
            )
        loop = asyncio.get_running_loop()
        next_sweep = 0.0
        # More polls may be due than the last claim took (it filled every free slot, or
        # requests came while none was free): claim again as soon as a slot frees up,
        # rather than at the next sweep.
        backlog = False
        idle = 0
        try:
            while not self._stopping.is_set():
                free = self.options.concurrency - len(self._running)
                if free <= 0:
                    await self._slot_freed()
                    messages = await self._requests(subscription, 0.0)
                elif backlog:
                    messages = await self._requests(subscription, 0.0)
                else:
                    messages = await self._wait(subscription, next_sweep - loop.time())
                free = self.options.concurrency - len(self._running)
                ids = [i for i in (decode_request(m.body) for m in messages) if i is not None]
                sweep = free > 0 and (backlog or loop.time() >= next_sweep)
                claims: list[Claim] = []
                if sweep:
                    claims, taken = await self._claim(free, None)
                    backlog = taken >= free
                    next_sweep = loop.time() + self.options.sweep_interval
                elif ids:
                    if free > 0:
                        claims, taken = await self._claim(free, ids)
                    backlog = backlog or len(ids) > free
                if subscription is not None and messages:
                    await subscription.ack(messages)
                for claim in claims:
                    self._start(claim)
                if burst:
                    busy = claims or messages or self._running or backlog
                    idle = 0 if busy else idle + (1 if sweep else 0)
                    if idle >= 2:
                        break
            await self._wait_running()
        finally:
            if subscription is not None:
                await subscription.close()
            await self._close_client()
        return self.stats

    async def run_due(self) -> int:
        """Run every poll due now to its end, in this task; returns how many ran.

        For tests and for callers with their own loop: no bus, no sweeping timer.
        """
        ran = 0
        while True:
            claims, taken = await self._claim(self.options.concurrency, None)
            if not taken:
                break
            ran += len(claims)
            await asyncio.gather(*(self._runner.handle(c) for c in claims))
        await self._close_client()
        return ran

    # -- claiming -------------------------------------------------------------------------------

    async def _requests(self, subscription: Subscription | None, block: float) -> list[Message]:
        return await subscription.fetch(100, block) if subscription is not None else []

    async def _slot_freed(self) -> None:
        """Wait until a running poll ends (at most a sweep interval)."""
        self._freed.clear()
        if len(self._running) < self.options.concurrency:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._freed.wait(), self.options.sweep_interval)

    async def _wait(self, subscription: Subscription | None, until_sweep: float) -> list[Message]:
        block = max(0.0, min(until_sweep, self.options.sweep_interval))
        if subscription is None:
            if block > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), block)
            return []
        # Bounded, so that stop() is noticed soon even with a long sweep interval.
        return await subscription.fetch(100, min(block, _STOP_CHECK))

    async def _claim(self, limit: int, ids: Sequence[uuid.UUID] | None) -> tuple[list[Claim], int]:
        """The claims to run, and how many polls were taken (those that failed on the spot
        for a lost lease included)."""
        now = self._clock()
        try:
            async with self._sessions() as session, session.begin():
                claims = await poll_repo.claim(
                    session,
                    owner=self.options.consumer,
                    now=now,
                    lease_seconds=self.options.lease_seconds,
                    limit=limit,
                    poll_ids=ids,
                )
        except Exception:
            # A database hiccup or, on SQLite, a write race with another process: the polls
            # stay due and the next sweep takes them.
            log.warning("claiming polls failed; retrying at the next sweep", exc_info=True)
            return [], 0
        ended: list[PollEvent] = []
        for claim in claims:
            self.stats.claimed += 1
            if claim.ended is not None:
                ended.extend(claim_events(claim, now))
                self.stats.failed += 1
                self.stats.lost += 1
                log.warning("poll failed id=%s reason=%s", claim.poll.id, claim.ended.reason)
        # The events of the claims that run are sent by their own tasks, so that claiming
        # does not wait on the bus.
        await self._publish(ended)
        return [c for c in claims if c.runs], len(claims)

    def _start(self, claim: Claim) -> None:
        task = asyncio.create_task(self._runner.handle(claim), name=f"trackd-poll-{claim.poll.id}")
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._freed.set()

    async def _wait_running(self) -> None:
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    # -- outbound client and events -------------------------------------------------------------

    def _outbound(self) -> httpx.AsyncClient:
        if self._client is None:
            factory = self._client_factory
            self._client = factory()
            self.hosts.install(self._client)
        return self._client

    async def _close_client(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _publish(self, events: Sequence[PollEvent]) -> None:
        """Send events to ingest; a bus that is down costs the task reads' view, not the poll."""
        if self._bus is None or not events:
            return
        encoded = [e.encode(self.options.consumer) for e in events]
        try:
            async with asyncio.timeout(self.options.publish_timeout):
                await self._bus.publish(TOPIC, [b for _, b in encoded], [k for k, _ in encoded])
        except Exception:
            log.warning(
                "poll events not published ids=%s", [e.poll.id for e in events], exc_info=True
            )
