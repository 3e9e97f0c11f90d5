"""Running one claimed poll: fetch under a renewed lease, then record what it saw (every
snapshot and the poll's completion in one transaction) or what went wrong (a retry, a block
or a failure)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.polls import Next, PollStatus, after_block, after_failure
from trackd.domain.states import TaskState
from trackd.errors import ConfigError
from trackd.scheduling.events import PollEvent
from trackd.scheduling.hosts import HostBackingOff, HostBackoffs
from trackd.scheduling.poller.options import PollerOptions, PollerStats
from trackd.scheduling.poller.transitions import claim_events, outcome_event
from trackd.settings import Settings
from trackd.sources.base import InvalidTarget, Snapshot, Source, SourceBlocked
from trackd.store.models import PollRow
from trackd.store.repos import polls as poll_repo
from trackd.store.repos.polls import Claim

if TYPE_CHECKING:
    import httpx

    from trackd.snapshots.service import HistoryPolicy

log = logging.getLogger(__name__)

RecordSnapshot = Callable[[AsyncSession, str, Snapshot], Awaitable[Mapping[str, Any]]]
# The policy (retention, event rules) of the history a snapshot joins; None: the settings'.
PolicyLookup = Callable[[AsyncSession, str, Snapshot], Awaitable["HistoryPolicy | None"]]
SourceLookup = Callable[[str], Source]
Clock = Callable[[], datetime]
Publish = Callable[[Sequence[PollEvent]], Awaitable[None]]
Outbound = Callable[[], "httpx.AsyncClient"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class LeaseLost(Exception):
    """Another worker took the poll over; this run must not write anything."""


class PollRunner:
    """Runs claimed polls to their end for one worker (`Poller`), which gives it the store,
    its options, where events go and the outbound client."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        options: PollerOptions,
        *,
        sources: SourceLookup,
        record: RecordSnapshot,
        settings: Settings,
        publish: Publish,
        outbound: Outbound,
        hosts: HostBackoffs,
        stats: PollerStats,
        clock: Clock,
        rng: random.Random | None,
    ) -> None:
        self._sessions = sessions
        self.options = options
        self._sources = sources
        self._record = record
        self._settings = settings
        self._publish = publish
        self._outbound = outbound
        self._hosts = hosts
        self.stats = stats
        self._clock = clock
        self._rng = rng
        # SQLite has one writer: two of this worker's polls storing snapshots of one subject
        # at once would both read the same latest one and the second would fail on its
        # number. Taking turns costs nothing there; PostgreSQL locks each history instead.
        self._store_turn = asyncio.Lock()
        self._sqlite = sessions.kw.get("bind") is not None and (
            sessions.kw["bind"].dialect.name == "sqlite"
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

    async def handle(self, claim: Claim) -> None:
        """Run a claimed poll and record its outcome; never raises (the lease decides)."""
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
        except LeaseLost:
            self.stats.lost += 1
            log.warning("poll lease lost id=%s; another worker runs it", poll.id)
        except Exception:
            # Whatever went wrong, the worker carries on: the poll's lease will expire and
            # it runs again (or fails once its attempts are used up).
            log.exception("poll could not be finished id=%s", poll.id)

    async def _announce_and_fetch(self, claim: Claim) -> list[Snapshot]:
        # The claim's events go out under the heartbeat too: a slow bus must not let the
        # lease lapse before the fetch has even begun.
        await self._publish(claim_events(claim, claim.poll.heartbeat_at or self._clock()))
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
                    result = result_of(snapshots, stored)
                seq = await poll_repo.finish(
                    session,
                    poll,
                    owner=self.options.consumer,
                    now=now,
                    status=PollStatus.COMPLETED,
                    result=result,
                )
                if seq is None:
                    raise LeaseLost
        except LeaseLost:
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

    async def _after_error(self, poll: PollRow, exc: BaseException) -> None:
        now = self._clock()
        outcome, blocked_host = self._outcome(poll, exc, now)
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
            raise LeaseLost
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
        await self._publish([outcome_event(poll, seq, now, outcome)])

    def _outcome(self, poll: PollRow, exc: BaseException, now: datetime) -> tuple[Next, str | None]:
        """Where a run that raised `exc` leaves the poll, and the host that refused it."""
        if isinstance(exc, SourceBlocked):
            if isinstance(exc, HostBackingOff):
                until = self._hosts.until(exc.host) or now
            else:
                until = self._hosts.strike(exc.host, exc.retry_after)
            blocked = after_block(
                blocks=poll.blocks + 1,
                max_blocks=self.options.max_blocks,
                host=exc.host,
                until=until,
                message=str(exc),
            )
            return blocked, exc.host
        failed = after_failure(
            attempt=poll.attempt,
            max_attempts=poll.max_attempts,
            error=describe(exc),
            now=now,
            retryable=not isinstance(exc, InvalidTarget),
            backoff=self.options.retry_backoff,
            rng=self._rng,
        )
        return failed, None

    def _count(self, outcome: Next) -> None:
        if outcome.status is PollStatus.PENDING:
            self.stats.retried += 1
        elif outcome.status is PollStatus.BLOCKED:
            self.stats.blocked += 1
        else:
            self.stats.failed += 1


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def result_of(snapshots: Sequence[Snapshot], stored: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a poll keeps of its run: each snapshot it stored and the fields that changed."""
    entries = [
        {"subject": s.subject, "season": s.season, "taken_at": s.taken_at.isoformat(), **st}
        for s, st in zip(snapshots, stored, strict=True)
    ]
    return {"snapshots": entries, "changes": sum(1 for st in stored if st.get("changed"))}


def registry_lookup(name: str) -> Source:
    # Imported on first use: the registry loads built-in sources and plugins lazily.
    from trackd.sources import registry

    return registry.get(name)


async def record_snapshot(
    session: AsyncSession,
    tenant_id: str,
    snapshot: Snapshot,
    *,
    settings: Settings,
    policies: PolicyLookup | None = None,
) -> Mapping[str, Any]:
    """Store a snapshot with its history, retention and notifications; returns its id, its
    number in its history and the fields that changed against the one before."""
    from trackd.snapshots.service import record_snapshot
    from trackd.store.repos.snapshots import HistoryKey, latest

    policy = await policies(session, tenant_id, snapshot) if policies else None
    change = await record_snapshot(session, tenant_id, snapshot, settings=settings, policy=policy)
    if change is not None:
        return {"id": str(change.id), "seq": change.seq, "changed": change.paths}
    key = HistoryKey(tenant_id, snapshot.source, snapshot.subject, snapshot.season or "")
    row = await latest(session, key)
    return {"id": str(row.id) if row else None, "seq": row.seq if row else None, "changed": []}
