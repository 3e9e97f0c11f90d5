"""The poller: takes due polls, runs their source, stores what it saw (DESIGN §9).

    poller = Poller(bus, sessions, PollerOptions(consumer="worker-1"))
    await poller.run()              # until stop(); run(burst=True) ends once nothing is due

A worker learns of new polls from `poll-requests` on the bus (consumer group
`trackd-pollers`), and sweeps the database every `sweep_interval` for the rest: retries whose
backoff passed, blocked polls whose host may be asked again, polls whose worker died (their
lease expired) and requests the bus lost. The database decides who runs a poll (a claim under
a lease), so the bus only wakes workers up: a request is acknowledged once the claim is
committed, and a request for a poll someone else took is simply dropped.

While a poll runs, its lease is renewed every third of `lease_seconds`; a worker that cannot
renew it (another took the poll over) abandons the run without writing anything. On success
every snapshot is recorded (`trackd.snapshots.service.record_snapshot`: history, retention,
notifications) and the poll completed in one transaction, so a run is stored once or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.polls import (
    DEFAULT_MAX_BLOCKS,
    HOST_BACKOFF,
    RETRY_BACKOFF,
    Next,
    PollStatus,
    after_block,
    after_failure,
)
from trackd.domain.retry import Backoff
from trackd.domain.states import TaskState
from trackd.errors import ConfigError
from trackd.scheduling.events import TOPIC, PollEvent
from trackd.scheduling.hosts import HostBackingOff, HostBackoffs
from trackd.scheduling.requests import POLL_REQUESTS, POLLERS_GROUP, decode_request
from trackd.settings import Settings
from trackd.sources.base import InvalidTarget, Snapshot, Source, SourceBlocked
from trackd.sources.http import outbound_client
from trackd.store.models import PollRow
from trackd.store.repos import polls as poll_repo
from trackd.store.repos.polls import Claim

if TYPE_CHECKING:
    import httpx

    from trackd.bus.base import Bus, Message, Subscription

log = logging.getLogger(__name__)

_STOP_CHECK = 0.5  # seconds

RecordSnapshot = Callable[[AsyncSession, str, Snapshot], Awaitable[Mapping[str, Any]]]
SourceLookup = Callable[[str], Source]
ClientFactory = Callable[[], "httpx.AsyncClient"]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PollerOptions:
    """How a worker runs polls.

    Attributes:
        consumer: this worker's name: its lease owner and its name in the consumer group.
        concurrency: polls run at once.
        lease_seconds: how long a claim holds without a heartbeat; a dead worker's polls run
            again this long after its last one.
        timeout_seconds: the longest a fetch may take, for polls that set none.
        sweep_interval: seconds between looks at the database for due polls.
        max_blocks: refusals in a row after which a blocked poll fails.
        publish_timeout: seconds to wait for the bus to take a poll's events.
    """

    consumer: str
    concurrency: int = 4
    lease_seconds: float = 30.0
    timeout_seconds: float = 60.0
    sweep_interval: float = 1.0
    max_blocks: int = DEFAULT_MAX_BLOCKS
    publish_timeout: float = 10.0
    retry_backoff: Backoff = RETRY_BACKOFF
    host_backoff: Backoff = HOST_BACKOFF


@dataclass(slots=True)
class PollerStats:
    claimed: int = 0
    completed: int = 0
    retried: int = 0
    failed: int = 0
    blocked: int = 0
    lost: int = 0
    snapshots: int = 0


class _LeaseLost(Exception):
    """Another worker took the poll over; this run must not write anything."""


class Poller:
    """Runs due polls with leases, retries and per-host backoff; see the module docstring."""

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
        clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        if options.concurrency < 1:
            raise ValueError("a poller runs at least one poll at a time")
        self._bus = bus
        self._sessions = sessions
        self.options = options
        self._sources = sources or _registry_lookup
        # The deployment's settings decide the outbound client and the snapshots' retention
        # and notifications, unless a test passes its own.
        self._client_factory = client_factory or partial(outbound_client, settings)
        self._record = record or partial(_record_snapshot, settings=settings)
        self._settings = settings
        self._clock = clock
        self._rng = rng
        self.hosts = HostBackoffs(clock, options.host_backoff, rng)
        self.stats = PollerStats()
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._freed = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        # SQLite has one writer: two of this worker's polls storing snapshots of one subject
        # at once would both read the same latest one and the second would fail on its
        # number. Taking turns costs nothing there; PostgreSQL locks each history instead.
        self._store_turn = asyncio.Lock()
        self._sqlite = sessions.kw.get("bind") is not None and (
            sessions.kw["bind"].dialect.name == "sqlite"
        )

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
            await asyncio.gather(*(self._handle(c) for c in claims))
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
                ended.extend(_claim_events(claim, now))
                self.stats.failed += 1
                self.stats.lost += 1
                log.warning("poll failed id=%s reason=%s", claim.poll.id, claim.ended.reason)
        # The events of the claims that run are sent by their own tasks, so that claiming
        # does not wait on the bus.
        await self._publish(ended)
        return [c for c in claims if c.runs], len(claims)

    def _start(self, claim: Claim) -> None:
        task = asyncio.create_task(self._handle(claim), name=f"trackd-poll-{claim.poll.id}")
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._freed.set()

    async def _wait_running(self) -> None:
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    # -- running one poll -----------------------------------------------------------------------

    async def _handle(self, claim: Claim) -> None:
        poll = claim.poll
        try:
            work = asyncio.create_task(self._announce_and_fetch(claim))
            beat = asyncio.create_task(self._heartbeat(poll, work))
            try:
                snapshots = await work
            except asyncio.CancelledError:
                if beat.done() and not beat.cancelled() and beat.exception() is None:
                    self.stats.lost += 1
                    log.warning("poll lease lost id=%s; another worker runs it", poll.id)
                    return
                raise
            except Exception as exc:
                await self._after_error(poll, exc)
                return
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
            await self._complete(poll, snapshots)
        except _LeaseLost:
            self.stats.lost += 1
            log.warning("poll lease lost id=%s; another worker runs it", poll.id)
        except Exception:
            # Whatever went wrong, the worker carries on: the poll's lease will expire and
            # it runs again (or fails once its attempts are used up).
            log.exception("poll could not be finished id=%s", poll.id)

    async def _announce_and_fetch(self, claim: Claim) -> list[Snapshot]:
        # The claim's events go out under the heartbeat too: a slow bus must not let the
        # lease lapse before the fetch has even begun.
        await self._publish(_claim_events(claim, claim.poll.heartbeat_at or self._clock()))
        return await self._fetch(claim.poll)

    async def _fetch(self, poll: PollRow) -> list[Snapshot]:
        try:
            source = self._sources(poll.source)
        except ConfigError as exc:
            raise InvalidTarget(str(exc)) from None
        target = source.validate(poll.target)
        timeout = poll.timeout_seconds or self.options.timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                return list(await source.fetch(target, self._outbound()))
        except TimeoutError:
            raise TimeoutError(f"the fetch took longer than {timeout:g} s") from None

    async def _heartbeat(self, poll: PollRow, work: asyncio.Task[list[Snapshot]]) -> None:
        """Renew the lease until cancelled; cancel `work` and return if it was lost."""
        interval = self.options.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            now = self._clock()
            try:
                async with self._sessions() as session, session.begin():
                    seq = await poll_repo.renew(
                        session,
                        poll,
                        owner=self.options.consumer,
                        now=now,
                        lease_seconds=self.options.lease_seconds,
                    )
            except Exception:
                # The lease has a margin of two intervals; the next beat may get through.
                log.warning("lease renewal failed id=%s", poll.id, exc_info=True)
                continue
            if seq is None:
                work.cancel()
                return
            event = PollEvent(poll, seq, now, TaskState.RUNNING, poll.attempt, heartbeat=True)
            await self._publish([event])

    async def _complete(self, poll: PollRow, snapshots: list[Snapshot]) -> None:
        now = self._clock()
        stored: list[Mapping[str, Any]] = []
        try:
            async with (
                self._store_turn if self._sqlite else contextlib.nullcontext(),
                self._sessions() as session,
                session.begin(),
            ):
                if self._bulk(poll.source):
                    result = await self._record_bulk(session, poll.tenant_id, snapshots)
                else:
                    for snapshot in snapshots:
                        stored.append(await self._record(session, poll.tenant_id, snapshot))
                    result = _result(snapshots, stored)
                seq = await poll_repo.finish(
                    session,
                    poll,
                    owner=self.options.consumer,
                    now=now,
                    status=PollStatus.COMPLETED,
                    result=result,
                )
                if seq is None:
                    raise _LeaseLost
        except _LeaseLost:
            raise
        except Exception as exc:
            log.exception("storing a poll's snapshots failed id=%s", poll.id)
            await self._after_error(poll, exc)
            return
        self.stats.completed += 1
        self.stats.snapshots += len(snapshots)
        log.info(
            "poll completed id=%s source=%s snapshots=%d attempt=%d",
            poll.id,
            poll.source,
            len(snapshots),
            poll.attempt,
        )
        await self._publish(
            [
                PollEvent(
                    poll,
                    seq,
                    now,
                    TaskState.COMPLETED,
                    poll.attempt,
                    previous=TaskState.RUNNING,
                    extra={"snapshots": len(snapshots), "changes": result["changes"]},
                )
            ]
        )

    def _bulk(self, source: str) -> bool:
        """Whether `source` writes one history per subject at scale (`bulk_history`): its
        snapshots are then stored in bulk, without field diffs or change notifications."""
        try:
            return bool(getattr(self._sources(source), "bulk_history", False))
        except ConfigError:
            return False

    async def _record_bulk(
        self, session: AsyncSession, tenant_id: str, snapshots: Sequence[Snapshot]
    ) -> dict[str, Any]:
        from trackd.snapshots.service import record_bulk

        done = await record_bulk(session, tenant_id, snapshots, settings=self._settings)
        return {
            "snapshots": done.stored,
            "changes": done.changed,
            "pruned": done.pruned,
            "bulk": True,
        }

    async def _after_error(self, poll: PollRow, exc: BaseException) -> None:
        now = self._clock()
        blocked_host = None
        if isinstance(exc, SourceBlocked):
            if isinstance(exc, HostBackingOff):
                until = self.hosts.until(exc.host) or now
            else:
                until = self.hosts.strike(exc.host, exc.retry_after)
            outcome = after_block(
                blocks=poll.blocks + 1,
                max_blocks=self.options.max_blocks,
                host=exc.host,
                until=until,
                message=str(exc),
            )
            blocked_host = exc.host
        else:
            outcome = after_failure(
                attempt=poll.attempt,
                max_attempts=poll.max_attempts,
                error=_describe(exc),
                now=now,
                retryable=not isinstance(exc, InvalidTarget),
                backoff=self.options.retry_backoff,
                rng=self._rng,
            )
        async with self._sessions() as session, session.begin():
            seq = await poll_repo.finish(
                session,
                poll,
                owner=self.options.consumer,
                now=now,
                status=outcome.status,
                not_before=outcome.not_before,
                error=outcome.reason,
                blocked_host=blocked_host,
            )
        if seq is None:
            raise _LeaseLost
        self._count(outcome)
        log.log(
            logging.WARNING if outcome.status is PollStatus.FAILED else logging.INFO,
            "poll %s id=%s source=%s attempt=%d reason=%s",
            outcome.status.value,
            poll.id,
            poll.source,
            poll.attempt,
            outcome.reason,
        )
        await self._publish([_outcome_event(poll, seq, now, outcome)])

    def _count(self, outcome: Next) -> None:
        if outcome.status is PollStatus.PENDING:
            self.stats.retried += 1
        elif outcome.status is PollStatus.BLOCKED:
            self.stats.blocked += 1
        else:
            self.stats.failed += 1

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
        """Send events to ingest; a bus that is down costs the tracker's view, not the poll."""
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


def _claim_events(claim: Claim, now: datetime) -> list[PollEvent]:
    poll, was = claim.poll, claim.was
    if claim.ended is not None:
        return [
            PollEvent(
                poll,
                poll.event_seq,
                now,
                TaskState.FAILED,
                poll.attempt,
                previous=TaskState.RUNNING,
                reason=claim.ended.reason,
            )
        ]
    running = PollEvent(
        poll, poll.event_seq, now, TaskState.RUNNING, poll.attempt, previous=TaskState.PENDING
    )
    if was is PollStatus.PENDING and poll.attempt == 1:
        pending = PollEvent(poll, poll.event_seq - 1, poll.created_at, TaskState.PENDING, 1)
        return [pending, running]
    if was is PollStatus.RUNNING:
        reason = f"retry: attempt {poll.attempt - 1} was lost when its worker stopped"
        pending = PollEvent(
            poll, poll.event_seq - 1, now, TaskState.PENDING, poll.attempt, reason=reason
        )
        return [pending, running]
    if was is PollStatus.BLOCKED:
        return [dataclasses.replace(running, previous=TaskState.WAITING)]
    return [running]


def _outcome_event(poll: PollRow, seq: int, now: datetime, outcome: Next) -> PollEvent:
    if outcome.status is PollStatus.PENDING:
        # A retry: the next attempt is pending (the fold starts a new attempt from it).
        return PollEvent(poll, seq, now, TaskState.PENDING, poll.attempt + 1, reason=outcome.reason)
    state = TaskState.WAITING if outcome.status is PollStatus.BLOCKED else TaskState.FAILED
    return PollEvent(
        poll, seq, now, state, poll.attempt, previous=TaskState.RUNNING, reason=outcome.reason
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _result(snapshots: Sequence[Snapshot], stored: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a poll keeps of its run: each snapshot it stored and the fields that changed."""
    entries = [
        {"subject": s.subject, "season": s.season, "taken_at": s.taken_at.isoformat(), **st}
        for s, st in zip(snapshots, stored, strict=True)
    ]
    return {"snapshots": entries, "changes": sum(1 for st in stored if st.get("changed"))}


def _registry_lookup(name: str) -> Source:
    # Imported on first use: the registry loads built-in sources and plugins lazily.
    from trackd.sources import registry

    return registry.get(name)


async def _record_snapshot(
    session: AsyncSession, tenant_id: str, snapshot: Snapshot, *, settings: Settings
) -> Mapping[str, Any]:
    """Store a snapshot with its history, retention and notifications; returns its id, its
    number in its history and the fields that changed against the one before."""
    from trackd.snapshots.service import record_snapshot
    from trackd.store.repos.snapshots import HistoryKey, latest

    change = await record_snapshot(session, tenant_id, snapshot, settings=settings)
    if change is not None:
        return {"id": str(change.id), "seq": change.seq, "changed": change.paths}
    key = HistoryKey(tenant_id, snapshot.source, snapshot.subject, snapshot.season or "")
    row = await latest(session, key)
    return {"id": str(row.id) if row else None, "seq": row.seq if row else None, "changed": []}


def stats_line(stats: PollerStats) -> Mapping[str, int]:
    """The counters as key=value pairs for a log line."""
    return {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)}
