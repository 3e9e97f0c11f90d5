"""`BaseTaskTrackingService`: what each operation on a tracking row means.

    service = ETFPriceUpdateService(session, publisher=BusEventPublisher(bus))
    task = await service.create_tracking(etf_id="VWCE", date=date(2026, 3, 2))
    await service.update_status(task.id, "PROCESSING")
    await service.update_status(task.id, "COMPLETED")

Every public method is one unit of work: it commits the session it was given, then publishes
the trackd events of the changes it made and counts them in the Prometheus metrics (so
nothing is announced that was rolled back). The rules themselves (which change is legal, what
it does to timestamps and attempts, when prerequisites let a task start) are pure functions in
`trackd.domain.jobs`; this class loads rows, applies them and follows the dependencies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import delete
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.events import EventEnvelope
from trackd.domain.jobs import (
    IllegalJobTransition,
    JobChange,
    Prerequisite,
    Readiness,
    Verdict,
    blocked_reason,
    change_status,
    check_max_attempts,
    clip_error,
    is_due,
    is_stale,
    parse_status,
    prerequisites_verdict,
)
from trackd.domain.retry import Backoff
from trackd.domain.states import TaskState
from trackd.errors import ConfigError, ConflictError, NotFoundError, TrackdError
from trackd.jobs.crud import BaseTaskTrackingCRUD
from trackd.jobs.events import DEFAULT_SOURCE, JobEventPublisher, state_changed, trackd_task_id
from trackd.jobs.metrics import JobMetrics, default_metrics
from trackd.jobs.models import (
    AGGREGATES_TABLE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TENANT,
    STANDARD_COLUMNS,
    BaseTaskTracking,
    utcnow,
)
from trackd.store.upsert import upsert

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseTaskTracking)

DEFAULT_BACKOFF = Backoff(base=5.0, factor=2.0, cap=3600.0, jitter=0.5)
DEFAULT_STALE_AFTER = timedelta(minutes=30)
DEFAULT_RETENTION_DAYS = 30
_RESERVED_METADATA = ("depends_on", "parent_id")
_ATTRIBUTES = frozenset({"task_metadata", "celery_task_id"})
_SCAN_PAGE = 500


class PrerequisitePolicy(StrEnum):
    """What becomes of a pending task when one of its prerequisites fails or is cancelled."""

    FAIL = "fail"  # it fails too, with the prerequisite's failure as its error
    BLOCK = "block"  # it stays pending, blocked with that reason, until the prerequisite
    # is retried and completes


class StaleAction(StrEnum):
    FAIL = "failed"
    CANCEL = "cancelled"


class TaskNotFound(NotFoundError):
    """No tracking row with this id for this tenant."""


class IllegalStatusChange(ConflictError):
    """The status flow does not allow the change; the message says why."""


class TaskBlocked(ConflictError):
    """The task may not start: its prerequisites have not all completed."""


class PrerequisiteFailed(ConflictError):
    """The task was failed when it was asked to start, because a prerequisite failed."""


class InvalidTask(TrackdError):
    """A task cannot be created as asked (unknown field, bad dependency, bad max_attempts)."""


@dataclass(frozen=True, slots=True)
class TaskView(Generic[M]):
    """A tracking row with what is derived from it and its neighbours, not stored."""

    task: M
    domain: str
    trackd_task_id: str
    blocked_by: tuple[int, ...]
    blocked_reason: str | None
    stale: bool

    @property
    def duration_seconds(self) -> float | None:
        t = self.task
        if t.started_at is None or t.completed_at is None:
            return None
        return max(0.0, (t.completed_at - t.started_at).total_seconds())


@dataclass(frozen=True, slots=True)
class CleanupResult:
    deleted: int
    batches: int
    kept_for_dependents: int


@dataclass(slots=True)
class _Effect:
    task: BaseTaskTracking
    change: JobChange
    previous: str | None
    error_type: str = "error"


CancelHook = Callable[[Any, str], Awaitable[None]]


class BaseTaskTrackingService(Generic[M]):
    """Operations on one domain's tracking rows, for one tenant.

    Args:
        db: the session; every public method commits it.
        model: the tracking model; subclasses may set the class attribute `model` instead.
        tenant_id: whose rows these are ("default" for a single-tenant application).
        publisher: where trackd events go; None publishes nothing.
        metrics: the Prometheus metrics to feed (prometheus-client's default registry if None).
        backoff: delays between retries (exponential with jitter).
        on_prerequisite_failure: "fail" or "block" (see `PrerequisitePolicy`).
        stale_after: how long a running task may go without an update before it is stale.
        on_cancel: called for every cancelled task (cascaded ones too) after the commit, to
            release what it held; subclasses may override `on_cancel` instead.
        source: the `source` of the events (which application sent them).
        publish_timeout: seconds to wait for the publisher before giving up (logged).
        clock: the time now, timezone-aware.
        rng: the random numbers of the retry jitter.
    """

    model: type[M]

    def __init__(
        self,
        db: AsyncSession,
        model: type[M] | None = None,
        *,
        tenant_id: str = DEFAULT_TENANT,
        publisher: JobEventPublisher | None = None,
        metrics: JobMetrics | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        on_prerequisite_failure: PrerequisitePolicy | str = PrerequisitePolicy.FAIL,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        on_cancel: CancelHook | None = None,
        source: str = DEFAULT_SOURCE,
        publish_timeout: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        resolved = model if model is not None else getattr(type(self), "model", None)
        if resolved is None:
            raise ConfigError(
                f"{type(self).__name__} needs a model: pass one, or set `model = YourTracking`"
            )
        if db.sync_session.expire_on_commit:
            raise ConfigError(
                "the service commits and then reads its rows, which a session that expires "
                "them on commit cannot do in async code: make sessions with "
                "async_sessionmaker(engine, expire_on_commit=False)"
            )
        self.db = db
        self.model: type[M] = resolved
        self.domain = resolved.tracking_domain()
        self.tenant_id = tenant_id
        self.crud: BaseTaskTrackingCRUD[M] = BaseTaskTrackingCRUD(resolved, tenant_id)
        self.publisher = publisher
        self.metrics = metrics
        self.backoff = backoff
        self.policy = PrerequisitePolicy(on_prerequisite_failure)
        self.stale_after = stale_after
        self.source = source
        self.publish_timeout = publish_timeout
        self.clock = clock
        self.rng = rng
        self._on_cancel = on_cancel
        self._effects: list[_Effect] = []
        self._cancelled: list[tuple[M, str]] = []
        self._wrote = False

    # -- reads --------------------------------------------------------------------------------

    async def get_status(self, tracking_id: int) -> M:
        """The row. Raises TaskNotFound."""
        return await self._load(tracking_id, lock=False)

    async def describe(self, tracking_id: int) -> TaskView[M]:
        """The row with its derived fields (blocked, stale). Raises TaskNotFound."""
        return (await self.describe_many([await self._load(tracking_id, lock=False)]))[0]

    async def describe_many(self, rows: Sequence[M]) -> list[TaskView[M]]:
        """Derived fields for a page of rows, reading their prerequisites in one query."""
        wanted = {p for r in rows if r.status == TaskState.PENDING for p in r.depends_on}
        found = await self.crud.get_many(self.db, wanted)
        now = self.clock()
        views = []
        for row in rows:
            verdict = Verdict(Readiness.READY)
            if row.status == TaskState.PENDING and row.depends_on:
                verdict = prerequisites_verdict(_prerequisites(row.depends_on, found))
            blocking = verdict.waiting_on
            views.append(
                TaskView(
                    task=row,
                    domain=self.domain,
                    trackd_task_id=trackd_task_id(self.domain, row.id),
                    blocked_by=blocking,
                    blocked_reason=verdict.reason,
                    stale=is_stale(row.facts(), now, self.stale_after),
                )
            )
        return views

    async def children(self, tracking_id: int) -> list[M]:
        """Tasks created with `parent_id=tracking_id`, oldest first."""
        m = self.model
        stmt = (
            self.crud.query()
            .where(m.task_metadata["parent_id"].as_integer() == tracking_id)
            .order_by(m.id)
        )
        return list((await self.db.execute(stmt)).scalars())

    # -- creating -----------------------------------------------------------------------------

    async def create_tracking(
        self,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        job_id: str | None = None,
        depends_on: Iterable[int] = (),
        parent_id: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> M:
        """Create a pending task; `fields` are the domain's own columns.

        `depends_on` lists prerequisites (tasks of this domain that must complete before this
        one starts); `parent_id` makes it a child of a larger task (cancelling the parent
        cancels it). Both must exist for this tenant.

        Raises:
            InvalidTask: an unknown or reserved field, a missing prerequisite or parent, or
                max_attempts out of range.
        """
        async with self._unit():
            return await self._create(max_attempts, job_id, depends_on, parent_id, metadata, fields)

    async def create_chain(
        self, steps: Sequence[Mapping[str, Any]], *, parent_id: int | None = None
    ) -> list[M]:
        """Create tasks that run one after another: each depends on the one before.

        Each step holds `create_tracking`'s arguments. All are created, or none.
        """
        if not steps:
            raise InvalidTask("a chain needs at least one step")
        created: list[M] = []
        async with self._unit():
            for step in steps:
                args = dict(step)
                depends = list(args.pop("depends_on", ()))
                if created:
                    depends.append(created[-1].id)
                created.append(
                    await self._create(
                        args.pop("max_attempts", DEFAULT_MAX_ATTEMPTS),
                        args.pop("job_id", None),
                        depends,
                        args.pop("parent_id", parent_id),
                        args.pop("metadata", None),
                        args,
                    )
                )
        return created

    async def _create(
        self,
        max_attempts: int,
        job_id: str | None,
        depends_on: Iterable[int],
        parent_id: int | None,
        metadata: Mapping[str, Any] | None,
        fields: Mapping[str, Any],
    ) -> M:
        try:
            check_max_attempts(max_attempts)
        except ValueError as exc:
            raise InvalidTask(str(exc)) from None
        standard = sorted(STANDARD_COLUMNS.union(_ATTRIBUTES).intersection(fields))
        if standard:
            raise InvalidTask(
                f"{', '.join(standard)} cannot be set when creating a task: trackd sets them "
                "(use metadata=..., max_attempts=..., job_id=...)"
            )
        meta = dict(metadata or {})
        try:
            text = json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise InvalidTask(f"metadata must be JSON: {exc}") from None
        if "\\u0000" in text:
            # PostgreSQL cannot store NUL in JSON; refused on every backend alike.
            raise InvalidTask("metadata contains a NUL character (\\u0000); remove it")
        reserved = [k for k in _RESERVED_METADATA if k in meta]
        if reserved:
            raise InvalidTask(
                f"metadata keys {', '.join(reserved)} are trackd's: pass depends_on=... and "
                "parent_id=... instead"
            )
        prerequisites = sorted({_task_id("depends_on", d) for d in depends_on})
        found = await self.crud.get_many(self.db, prerequisites)
        missing = [p for p in prerequisites if p not in found]
        if missing:
            raise InvalidTask(
                f"depends_on: no {self.domain} task {', '.join(map(str, missing))} "
                f"for tenant {self.tenant_id}"
            )
        if prerequisites:
            meta["depends_on"] = prerequisites
        if parent_id is not None:
            parent_id = _task_id("parent_id", parent_id)
            if await self.crud.get(self.db, parent_id) is None:
                raise InvalidTask(f"parent_id: no {self.domain} task {parent_id}")
            meta["parent_id"] = parent_id
        now = self.clock()
        make: Callable[..., M] = self.model
        try:
            row = make(
                tenant_id=self.tenant_id,
                status=TaskState.PENDING.value,
                created_at=now,
                updated_at=now,
                attempts=0,
                max_attempts=max_attempts,
                job_id=job_id,
                task_metadata=meta,
                **fields,
            )
        except (TypeError, ArgumentError) as exc:
            raise InvalidTask(f"{self.model.__name__}: {exc}") from None
        self._wrote = True
        self.db.add(row)
        await self.db.flush()
        facts = row.facts()
        self._record(row, JobChange(facts, facts), None)
        if prerequisites:
            verdict = prerequisites_verdict(_prerequisites(prerequisites, found))
            if verdict.readiness is Readiness.BROKEN:
                await self._on_broken(row, verdict.reason or "a prerequisite failed")
        return row

    # -- status changes -----------------------------------------------------------------------

    async def update_status(
        self, tracking_id: int, status: str | TaskState, error_message: str | None = None
    ) -> M:
        """Move a task to `status`, in any vocabulary trackd knows.

        running checks the prerequisites first (`start`); cancelled cascades (`cancel`);
        pending or RETRY on a failed task retries it (`retry`); failed records the error and
        fails or blocks the dependents.

        Raises:
            TaskNotFound, IllegalStatusChange, TaskBlocked, PrerequisiteFailed.
        """
        try:
            new, retry_word = parse_status(status)
        except IllegalJobTransition as exc:
            raise IllegalStatusChange(str(exc)) from None
        if retry_word or new is TaskState.PENDING:
            return await self.retry(tracking_id, reason=error_message)
        if new is TaskState.RUNNING:
            return await self.start(tracking_id)
        if new is TaskState.CANCELLED:
            return (await self.cancel(tracking_id, error_message or "cancelled"))[0]
        if new is TaskState.FAILED:
            return await self.fail(tracking_id, error_message or "failed")
        async with self._unit():
            row = await self._load(tracking_id)
            self._change(row, new, error_message)
        return row

    async def start(self, tracking_id: int) -> M:
        """Mark a task running, if its prerequisites have all completed.

        A task already running (or waiting) just gets its `updated_at` moved: a heartbeat.

        Raises:
            TaskBlocked: a prerequisite has not completed yet, or (policy "block") failed.
            PrerequisiteFailed: (policy "fail") a prerequisite failed, so this task failed.
        """
        row = await self._start(tracking_id, claim=False)
        if row is None:  # only a claim gives up on a task it finds taken
            raise TaskNotFound(f"no {self.domain} task {tracking_id}")
        return row

    async def claim(self, tracking_id: int) -> M | None:
        """Start a task only if it is pending and due: what a worker does to take a task
        (the row lock makes two workers take it once). None if it is not there to take.

        Raises:
            TaskBlocked, PrerequisiteFailed: as for `start`.
        """
        return await self._start(tracking_id, claim=True)

    async def _start(self, tracking_id: int, *, claim: bool) -> M | None:
        outcome: Exception | None = None
        async with self._unit():
            row = await self._load(tracking_id)
            if claim and not is_due(row.facts(), self.clock()):
                return None
            if row.status == TaskState.PENDING and row.depends_on:
                found = await self.crud.get_many(self.db, row.depends_on)
                verdict = prerequisites_verdict(_prerequisites(row.depends_on, found))
                if verdict.readiness is Readiness.WAITING:
                    raise TaskBlocked(f"task {tracking_id} cannot start: {verdict.reason}")
                if verdict.readiness is Readiness.BROKEN:
                    reason = verdict.reason or "a prerequisite failed"
                    await self._on_broken(row, reason)
                    outcome = (
                        PrerequisiteFailed(f"task {tracking_id} failed: {reason}")
                        if self.policy is PrerequisitePolicy.FAIL
                        else TaskBlocked(f"task {tracking_id} is blocked: {reason}")
                    )
            if outcome is None:
                self._change(row, TaskState.RUNNING)
        if outcome is not None:
            raise outcome
        return row

    async def heartbeat(self, tracking_id: int) -> M:
        """Say a running task is alive (stale detection looks at `updated_at`)."""
        async with self._unit():
            row = await self._load(tracking_id)
            self._change(row, TaskState(row.status))
        return row

    async def complete(self, tracking_id: int) -> M:
        async with self._unit():
            row = await self._load(tracking_id)
            self._change(row, TaskState.COMPLETED)
        return row

    async def fail(self, tracking_id: int, error: BaseException | str, *, retry: bool = False) -> M:
        """Mark a task failed with `error`; with `retry`, schedule its next attempt after a
        backoff if it has attempts left. A task that stays failed fails (or blocks) the tasks
        that depend on it.
        """
        message = _describe(error)
        async with self._unit():
            row = await self._load(tracking_id)
            await self._fail_row(row, message, retry=retry)
            if isinstance(error, BaseException):
                for effect in self._effects:
                    if effect.task is row and effect.change.after.status is TaskState.FAILED:
                        effect.error_type = type(error).__name__
        return row

    async def retry(
        self, tracking_id: int, *, delay: float | None = None, reason: str | None = None
    ) -> M:
        """Make a failed task pending again for its next attempt, due after `delay` seconds
        (the backoff's delay for this retry if None).

        Raises:
            IllegalStatusChange: the task is not failed, or used all its attempts.
        """
        async with self._unit():
            row = await self._load(tracking_id)
            self._retry_row(row, delay, reason)
        return row

    async def cancel(self, tracking_id: int, reason: str = "cancelled") -> list[M]:
        """Cancel a task that has not ended, and every open task depending on it or under it.

        Returns the cancelled tasks, the one asked for first. `on_cancel` runs for each after
        the commit; an error there is logged and does not undo the cancellation.

        Raises:
            TaskNotFound; IllegalStatusChange: the task already ended.
        """
        async with self._unit():
            row = await self._load(tracking_id)
            if TaskState(row.status).terminal:
                raise IllegalStatusChange(
                    f"task {tracking_id} is {row.status}; only a task that has not ended can "
                    "be cancelled"
                )
            cancelled = await self._cancel_tree(row, reason)
        await self._run_cancel_hooks()
        return cancelled

    async def sweep_stale(
        self,
        stale_after: timedelta | None = None,
        *,
        action: StaleAction | str = StaleAction.FAIL,
        retry: bool = False,
        limit: int = 500,
    ) -> list[M]:
        """Fail (or cancel) running tasks with no update for longer than `stale_after`
        (the service's own if None).

        With `retry`, a stale task that has attempts left is retried after a backoff instead
        of staying failed: the worker that ran it is presumed gone. Returns the tasks acted on.
        """
        timeout = self.stale_after if stale_after is None else stale_after
        act = StaleAction(action)
        now = self.clock()
        candidates = await self.crud.get_stale(self.db, now - timeout, limit=limit)
        await self.db.commit()
        swept: list[M] = []
        for candidate in candidates:
            async with self._unit():
                row = await self._load(candidate.id)
                if not is_stale(row.facts(), self.clock(), timeout):
                    continue  # it moved on since it was listed
                idle = (self.clock() - row.updated_at).total_seconds()
                reason = (
                    f"stale: no update for {idle:.0f} s (timeout {timeout.total_seconds():.0f} s)"
                )
                if act is StaleAction.CANCEL:
                    await self._cancel_tree(row, reason)
                else:
                    await self._fail_row(row, reason, retry=retry)
                swept.append(row)
            await self._run_cancel_hooks()
        for _ in swept:
            self._metrics().increment(self.domain, "stale")
        return swept

    # -- retention ----------------------------------------------------------------------------

    async def cleanup(
        self, older_than_days: float = DEFAULT_RETENTION_DAYS, *, batch_size: int = 500
    ) -> CleanupResult:
        """Delete tasks that ended more than `older_than_days` ago, in batches, after adding
        them to the daily aggregates table (see `task_tracking_aggregates`).

        Ended tasks that an open task still depends on, or is a child of, are kept.
        """
        if older_than_days < 0 or batch_size < 1:
            raise ValueError("older_than_days must not be negative and batch_size at least 1")
        aggregates = self.model.__table__.metadata.tables.get(AGGREGATES_TABLE)
        if aggregates is None:
            raise ConfigError(
                f"retention keeps daily aggregates in {AGGREGATES_TABLE}: add "
                "`task_tracking_aggregates(Base.metadata)` to the models and migrate"
            )
        cutoff = self.clock() - timedelta(days=older_than_days)
        referenced = await self._referenced_by_open_tasks()
        await self.db.commit()
        deleted = batches = 0
        kept: set[int] = set()
        after = 0
        while True:
            rows = await self.crud.get_finished_before(
                self.db, cutoff, after_id=after, limit=batch_size
            )
            doomed = [r for r in rows if r.id not in referenced]
            kept.update(r.id for r in rows if r.id in referenced)
            if not rows:
                await self.db.commit()
                break
            # Kept rows stay behind the keyset; deleted ones are gone either way.
            after = rows[-1].id
            if not doomed:
                await self.db.commit()
                continue
            totals = _daily_totals(self.tenant_id, self.domain, doomed)
            await self.db.execute(
                upsert(
                    self.db,
                    aggregates,
                    ("tenant_id", "domain", "day", "status"),
                    add=(
                        "task_count",
                        "attempts_total",
                        "duration_count",
                        "duration_seconds_total",
                    ),
                    newest=("duration_seconds_max",),
                ),
                totals,
            )
            m = self.model
            await self.db.execute(
                delete(m).where(m.tenant_id == self.tenant_id, m.id.in_([r.id for r in doomed]))
            )
            await self.db.commit()
            deleted += len(doomed)
            batches += 1
        log.info(
            "retention domain=%s tenant=%s deleted=%d batches=%d kept=%d",
            self.domain,
            self.tenant_id,
            deleted,
            batches,
            len(kept),
        )
        return CleanupResult(deleted=deleted, batches=batches, kept_for_dependents=len(kept))

    # -- hooks --------------------------------------------------------------------------------

    async def on_cancel(self, task: M, reason: str) -> None:
        """Release what a cancelled task held (override, or pass `on_cancel=`)."""
        if self._on_cancel is not None:
            await self._on_cancel(task, reason)

    # -- internals ----------------------------------------------------------------------------

    async def _load(self, tracking_id: int, *, lock: bool = True) -> M:
        row = await self.crud.get(self.db, tracking_id, lock=lock)
        if row is None:
            raise TaskNotFound(f"no {self.domain} task {tracking_id}")
        return row

    def _change(
        self,
        row: M,
        new: TaskState | str,
        error: str | None = None,
        *,
        retry_delay: float = 0.0,
    ) -> JobChange:
        before = row.status
        try:
            change = change_status(
                row.facts(), new, self.clock(), error=error, retry_delay=retry_delay
            )
        except IllegalJobTransition as exc:
            raise IllegalStatusChange(f"task {row.id}: {exc}") from None
        self._wrote = True
        row.apply(change.after)
        if change.changed:
            self._record(row, change, before)
        return change

    def _retry_row(self, row: M, delay: float | None, reason: str | None) -> None:
        if delay is None:
            delay = self.backoff.delay(max(row.attempts, 1), self.rng)
        self._change(row, "retry", reason, retry_delay=delay)

    async def _fail_row(self, row: M, message: str, *, retry: bool) -> None:
        self._change(row, TaskState.FAILED, message)
        if retry and row.facts().can_retry:
            self._retry_row(row, None, None)
            return
        await self._fail_dependents(row, f"prerequisite {row.id} failed: {message}")

    async def _on_broken(self, row: M, reason: str) -> None:
        """A pending task whose prerequisites can no longer all complete."""
        if self.policy is PrerequisitePolicy.FAIL:
            self._change(row, TaskState.FAILED, reason)
            await self._fail_dependents(row, f"prerequisite {row.id} failed: {reason}")
        else:
            row.error_message = blocked_reason(reason)
            row.updated_at = self.clock()

    async def _fail_dependents(self, failed: M, reason: str) -> None:
        graph = await self._open_graph()
        if self.policy is PrerequisitePolicy.BLOCK:
            direct = [i for i, (deps, _) in graph.items() if failed.id in deps]
            for row in (await self.crud.get_many(self.db, direct, lock=True)).values():
                if row.status == TaskState.PENDING:
                    row.error_message = blocked_reason(reason)
                    row.updated_at = self.clock()
            return
        # Failing a dependent fails its own dependents in turn.
        doomed = _reachable(graph, failed.id, via_children=False)
        rows = await self.crud.get_many(self.db, doomed, lock=True)
        for task_id in doomed:
            dependent = rows.get(task_id)
            if dependent is not None and dependent.status == TaskState.PENDING:
                self._change(dependent, TaskState.FAILED, clip_error(reason))

    async def _cancel_tree(self, root: M, reason: str) -> list[M]:
        graph = await self._open_graph()
        others = _reachable(graph, root.id, via_children=True)
        rows = await self.crud.get_many(self.db, others, lock=True)
        cancelled = [root]
        self._change(root, TaskState.CANCELLED, reason)
        self._cancelled.append((root, reason))
        for task_id in others:
            row = rows.get(task_id)
            if row is None or TaskState(row.status).terminal:
                continue
            why = clip_error(f"task {root.id} was cancelled: {reason}") or reason
            self._change(row, TaskState.CANCELLED, why)
            self._cancelled.append((row, why))
            cancelled.append(row)
        return cancelled

    async def _open_graph(self) -> dict[int, tuple[list[int], int | None]]:
        """Prerequisites and parent of every open task of this tenant, by id.

        Dependencies live in JSON, which each backend searches differently; the open tasks
        are few next to the finished ones, so they are read in pages and searched here.
        """
        graph: dict[int, tuple[list[int], int | None]] = {}
        after = 0
        while True:
            page = await self.crud.get_open_after(self.db, after, limit=_SCAN_PAGE)
            for row in page:
                graph[row.id] = (row.depends_on, row.parent_id)
            if len(page) < _SCAN_PAGE:
                return graph
            after = page[-1].id

    async def _referenced_by_open_tasks(self) -> set[int]:
        graph = await self._open_graph()
        referenced: set[int] = set()
        for deps, parent in graph.values():
            referenced.update(deps)
            if parent is not None:
                referenced.add(parent)
        return referenced

    def _record(self, row: BaseTaskTracking, change: JobChange, previous: str | None) -> None:
        self._effects.append(_Effect(row, change, previous))

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[None]:
        """One transaction: commit, then announce what changed; on error, roll back quietly."""
        self._effects.clear()
        self._cancelled.clear()
        self._wrote = False
        try:
            yield
            effects, self._effects = self._effects, []
            # Built before the commit: a session that expires on commit would have to load
            # every row again to read its id.
            envelopes = self._envelopes(effects) if self.publisher is not None else []
            await self.db.commit()
        except BaseException:
            self._effects.clear()
            self._cancelled.clear()
            s = self.db
            if self._wrote or s.new or s.dirty or s.deleted:
                await s.rollback()
            else:
                # Refused before anything was written (an illegal change, a blocked start):
                # ending the transaction with a commit releases the row lock without the
                # rollback's expiry of every loaded row, which async code cannot reload.
                await s.commit()
            raise
        self._count(effects)
        await self._publish(envelopes)

    def _metrics(self) -> JobMetrics:
        return self.metrics if self.metrics is not None else default_metrics()

    def _count(self, effects: Sequence[_Effect]) -> None:
        metrics = self._metrics()
        for e in effects:
            after = e.change.after
            if e.previous is None:
                metrics.increment(self.domain, "created")
                continue
            if e.change.retried:
                metrics.increment(self.domain, "retried")
                continue
            label = "started" if after.status is TaskState.RUNNING else after.status.value
            metrics.increment(self.domain, label)
            if after.status is TaskState.FAILED:
                metrics.errors.labels(task=self.domain, error_type=e.error_type).inc()
            if after.status.terminal and after.started_at and after.completed_at:
                seconds = (after.completed_at - after.started_at).total_seconds()
                metrics.observe_duration(self.domain, seconds)

    def _envelopes(self, effects: Sequence[_Effect]) -> list[EventEnvelope]:
        return [
            state_changed(
                domain=self.domain,
                tracking_id=e.task.id,
                tenant_id=self.tenant_id,
                source=self.source,
                change=e.change,
                previous=e.previous,
                job_id=e.task.job_id,
                parent_id=e.task.parent_id,
            )
            for e in effects
        ]

    async def _publish(self, envelopes: Sequence[EventEnvelope]) -> None:
        if self.publisher is None or not envelopes:
            return
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self.publisher.publish(envelopes)
        except Exception as exc:
            # The row is the truth and it is committed; the events are what trackd learns of
            # it. Losing them is logged and counted rather than failing the caller's change.
            self._metrics().publish_failures.labels(task=self.domain).inc(len(envelopes))
            log.warning(
                "trackd events not published domain=%s tenant=%s count=%d error=%r",
                self.domain,
                self.tenant_id,
                len(envelopes),
                exc,
            )

    async def _run_cancel_hooks(self) -> None:
        pending, self._cancelled = self._cancelled, []
        for task, reason in pending:
            try:
                await self.on_cancel(task, reason)
            except Exception:
                log.exception("cancel hook failed domain=%s task=%s", self.domain, task.id)


def _reachable(
    graph: Mapping[int, tuple[list[int], int | None]], root: int, *, via_children: bool
) -> list[int]:
    """Open tasks that depend on `root`, directly or through others (and its descendants
    when `via_children`), in the order they are reached."""
    dependents: dict[int, list[int]] = {}
    for task_id, (deps, parent) in graph.items():
        for d in deps:
            dependents.setdefault(d, []).append(task_id)
        if via_children and parent is not None:
            dependents.setdefault(parent, []).append(task_id)
    seen = {root}
    order: list[int] = []
    frontier = [root]
    while frontier:
        nxt: list[int] = []
        for node in frontier:
            for child in sorted(dependents.get(node, ())):
                if child not in seen:
                    seen.add(child)
                    order.append(child)
                    nxt.append(child)
        frontier = nxt
    return order


def _prerequisites(ids: Iterable[int], found: Mapping[int, BaseTaskTracking]) -> list[Prerequisite]:
    out = []
    for task_id in ids:
        row = found.get(task_id)
        if row is None:
            out.append(Prerequisite(task_id, None))
        else:
            out.append(Prerequisite(task_id, TaskState(row.status), row.error_message))
    return out


def _task_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise InvalidTask(f"{name}: task ids are positive whole numbers, not {value!r}")
    return value


def _describe(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        text = str(error)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return error


def _daily_totals(
    tenant_id: str, domain: str, rows: Sequence[BaseTaskTracking]
) -> list[dict[str, Any]]:
    totals: dict[tuple[date, str], dict[str, Any]] = {}
    for row in rows:
        ended: datetime = row.completed_at or row.updated_at
        key = (ended.date(), row.status)
        t = totals.setdefault(
            key,
            {
                "tenant_id": tenant_id,
                "domain": domain,
                "day": key[0],
                "status": key[1],
                "task_count": 0,
                "attempts_total": 0,
                "duration_count": 0,
                "duration_seconds_total": 0.0,
                "duration_seconds_max": 0.0,
            },
        )
        t["task_count"] += 1
        t["attempts_total"] += row.attempts
        if row.started_at is not None and row.completed_at is not None:
            seconds = max(0.0, (row.completed_at - row.started_at).total_seconds())
            t["duration_count"] += 1
            t["duration_seconds_total"] += seconds
            t["duration_seconds_max"] = max(t["duration_seconds_max"], seconds)
    return [totals[k] for k in sorted(totals)]
