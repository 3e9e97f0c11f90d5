"""`BaseTaskTrackingService`: loads rows, applies the domain's rules, follows the dependencies.

Its seams are modules of this package: `views` (reads), `graph` (the dependency graph),
`stale` (the sweep's rule), `retention` (deletion into daily aggregates) and `unit` (the unit
of work: commit, then announce).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.events import EventEnvelope
from trackd.domain.jobs import (
    IllegalJobTransition,
    JobChange,
    Readiness,
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
from trackd.errors import ConfigError
from trackd.jobs.crud import BaseTaskTrackingCRUD
from trackd.jobs.events import DEFAULT_SOURCE, JobEventPublisher
from trackd.jobs.metrics import JobMetrics, default_metrics
from trackd.jobs.models import (
    AGGREGATES_TABLE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TENANT,
    STANDARD_COLUMNS,
    BaseTaskTracking,
    utcnow,
)
from trackd.jobs.service import unit
from trackd.jobs.service.errors import (
    IllegalStatusChange,
    InvalidTask,
    PrerequisiteFailed,
    TaskBlocked,
    TaskNotFound,
)
from trackd.jobs.service.graph import open_graph, prerequisite_facts, reachable, referenced
from trackd.jobs.service.retention import DEFAULT_RETENTION_DAYS, CleanupResult, delete_ended
from trackd.jobs.service.stale import DEFAULT_STALE_AFTER, StaleAction, stale_reason
from trackd.jobs.service.unit import Effect, UnitOfWork
from trackd.jobs.service.views import TaskView, describe_rows

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseTaskTracking)

DEFAULT_BACKOFF = Backoff(base=5.0, factor=2.0, cap=3600.0, jitter=0.5)
_RESERVED_METADATA = ("depends_on", "parent_id")
_ATTRIBUTES = frozenset({"task_metadata", "celery_task_id"})


class PrerequisitePolicy(StrEnum):
    """What becomes of a pending task when one of its prerequisites fails or is cancelled."""

    FAIL = "fail"  # it fails too, with the prerequisite's failure as its error
    BLOCK = "block"  # it stays pending, blocked with that reason, until the prerequisite
    # is retried and completes


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
        self._work = UnitOfWork()

    # -- reads --------------------------------------------------------------------------------

    async def get_status(self, tracking_id: int) -> M:
        """The row. Raises TaskNotFound."""
        return await self._load(tracking_id, lock=False)

    async def describe(self, tracking_id: int) -> TaskView[M]:
        """The row with its derived fields (blocked, stale). Raises TaskNotFound."""
        return (await self.describe_many([await self._load(tracking_id, lock=False)]))[0]

    async def describe_many(self, rows: Sequence[M]) -> list[TaskView[M]]:
        """Derived fields for a page of rows, reading their prerequisites in one query."""
        return await describe_rows(
            self.db,
            self.crud,
            rows,
            domain=self.domain,
            now=self.clock(),
            stale_after=self.stale_after,
        )

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
        self._work.wrote = True
        self.db.add(row)
        await self.db.flush()
        facts = row.facts()
        self._record(row, JobChange(facts, facts), None)
        if prerequisites:
            verdict = prerequisites_verdict(prerequisite_facts(prerequisites, found))
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
            TaskNotFound: no such task in this domain and tenant.
            IllegalStatusChange: the flow does not allow the change.
            TaskBlocked: a prerequisite has not completed.
            PrerequisiteFailed: a prerequisite failed or was cancelled.
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
                verdict = prerequisites_verdict(prerequisite_facts(row.depends_on, found))
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
                for effect in self._work.effects:
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
                reason = stale_reason(self.clock() - row.updated_at, timeout)
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
        keep = referenced(await open_graph(self.db, self.crud))
        await self.db.commit()
        return await delete_ended(
            self.db,
            self.crud,
            aggregates,
            domain=self.domain,
            cutoff=cutoff,
            keep=keep,
            batch_size=batch_size,
        )

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
        self._work.wrote = True
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
        graph = await open_graph(self.db, self.crud)
        if self.policy is PrerequisitePolicy.BLOCK:
            direct = [i for i, (deps, _) in graph.items() if failed.id in deps]
            for row in (await self.crud.get_many(self.db, direct, lock=True)).values():
                if row.status == TaskState.PENDING:
                    row.error_message = blocked_reason(reason)
                    row.updated_at = self.clock()
            return
        # Failing a dependent fails its own dependents in turn.
        doomed = reachable(graph, failed.id, via_children=False)
        rows = await self.crud.get_many(self.db, doomed, lock=True)
        for task_id in doomed:
            dependent = rows.get(task_id)
            if dependent is not None and dependent.status == TaskState.PENDING:
                self._change(dependent, TaskState.FAILED, clip_error(reason))

    async def _cancel_tree(self, root: M, reason: str) -> list[M]:
        graph = await open_graph(self.db, self.crud)
        others = reachable(graph, root.id, via_children=True)
        rows = await self.crud.get_many(self.db, others, lock=True)
        cancelled = [root]
        self._change(root, TaskState.CANCELLED, reason)
        self._work.cancelled.append((root, reason))
        for task_id in others:
            row = rows.get(task_id)
            if row is None or TaskState(row.status).terminal:
                continue
            why = clip_error(f"task {root.id} was cancelled: {reason}") or reason
            self._change(row, TaskState.CANCELLED, why)
            self._work.cancelled.append((row, why))
            cancelled.append(row)
        return cancelled

    def _record(self, row: BaseTaskTracking, change: JobChange, previous: str | None) -> None:
        self._work.record(row, change, previous)

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[None]:
        """One transaction: commit, then announce what changed; on error, roll back quietly."""
        async with self._work.run(self.db, self._envelopes, self._announce):
            yield

    def _metrics(self) -> JobMetrics:
        return self.metrics if self.metrics is not None else default_metrics()

    def _envelopes(self, effects: Sequence[Effect]) -> list[EventEnvelope]:
        if self.publisher is None:
            return []
        return unit.envelopes(
            effects, domain=self.domain, tenant_id=self.tenant_id, source=self.source
        )

    async def _announce(self, effects: Sequence[Effect], events: list[EventEnvelope]) -> None:
        unit.count(self._metrics(), self.domain, effects)
        await unit.publish(
            self.publisher,
            events,
            metrics=self._metrics(),
            domain=self.domain,
            tenant_id=self.tenant_id,
            give_up_after=self.publish_timeout,
        )

    async def _run_cancel_hooks(self) -> None:
        pending, self._work.cancelled = self._work.cancelled, []
        for task, reason in pending:
            try:
                await self.on_cancel(task, reason)
            except Exception:
                log.exception("cancel hook failed domain=%s task=%s", self.domain, task.id)


def _task_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise InvalidTask(f"{name}: task ids are positive whole numbers, not {value!r}")
    return value


def _describe(error: BaseException | str) -> str:
    if isinstance(error, BaseException):
        text = str(error)
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return error
