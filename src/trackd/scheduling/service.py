"""What a feature calls to poll on a schedule or at once (the caller owns the transaction).

    from trackd.scheduling import create_schedule, cancel_schedule, request_poll, schedule_run

    # every day at 02:00 UTC
    await create_schedule(session, tenant, name=f"tracker:{tid}:daily", source="rocket_league",
                          target={"url": url}, cron="0 2 * * *")
    # one batch at a given time: one poll per target, its status via schedule_run()
    batch = await create_schedule(session, tenant, name=f"guild:{gid}:{when:%Y%m%dT%H%M}",
                                  source="rocket_league", targets=[...], run_at=when,
                                  labels={"guild_id": gid})
    # now
    poll = await request_poll(session, tenant, "rocket_league", {"url": url}, requested_by=user)
    await session.commit()
    await announce_polls(bus, [poll])   # optional: a worker starts it at once, not at its sweep

Reading schedules and polls back is the store's (`trackd.store.repos.schedules.get` and
`.find`, `trackd.store.repos.polls.get`); this module holds the rules of changing them.

Validation errors are `InvalidSchedule` and `InvalidTarget` (RuleBroken), both with a message
for the user; a name already taken by an active schedule is a `Conflict`; an unknown source
is an `UnknownSource` (a ConfigError).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.polls import DEFAULT_MAX_ATTEMPTS, FINISHED, PollStatus
from trackd.domain.schedules import (
    DEFAULT_GRACE_SECONDS,
    InvalidSchedule,
    RunStatus,
    ScheduleKind,
    ScheduleSpec,
    ScheduleStatus,
    run_status,
)
from trackd.scheduling.requests import announce
from trackd.store.models import PollRow, ScheduleRow
from trackd.store.repos import polls as poll_repo
from trackd.store.repos import schedules as schedule_repo
from trackd.store.repos.polls import NewPoll

if TYPE_CHECKING:
    from trackd.bus.base import Bus
    from trackd.sources.base import Source

_MAX_TARGETS = 10_000
_MAX_ATTEMPTS_LIMIT = 100


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _canonical(source: str, targets: Sequence[Mapping[str, Any]], *, check: bool) -> list[Any]:
    """The targets in the source's canonical form (InvalidTarget says what to fix)."""
    if not check:
        return [dict(t) for t in targets]
    from trackd.sources import registry

    adapter: Source = registry.get(source)
    return [dict(adapter.validate(t)) for t in targets]


def _check_attempts(max_attempts: int, timeout_seconds: float | None) -> None:
    if not 1 <= max_attempts <= _MAX_ATTEMPTS_LIMIT:
        raise InvalidSchedule(
            f"max_attempts is from 1 to {_MAX_ATTEMPTS_LIMIT}, got {max_attempts}"
        )
    if timeout_seconds is not None and not 0 < timeout_seconds <= 86_400:
        raise InvalidSchedule(f"timeout_seconds is from 0 to 86400, got {timeout_seconds}")


async def create_schedule(
    session: AsyncSession,
    tenant_id: str,
    *,
    name: str,
    source: str,
    target: Mapping[str, Any] | None = None,
    targets: Sequence[Mapping[str, Any]] | None = None,
    interval_seconds: float | None = None,
    cron: str | None = None,
    run_at: datetime | None = None,
    timezone: str = "UTC",
    jitter_seconds: float = 0.0,
    misfire_grace_seconds: float = DEFAULT_GRACE_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    timeout_seconds: float | None = None,
    owner: str | None = None,
    labels: Mapping[str, Any] | None = None,
    validate_targets: bool = True,
    allow_no_targets: bool = False,
    now: datetime | None = None,
) -> ScheduleRow:
    """Create an active schedule polling `source` for `target` (or each of `targets`).

    The kind follows from what is given: `cron` (with `timezone`), `interval_seconds`
    (first run at `run_at`, default at once), or `run_at` alone (a one-shot). A run that
    starts makes one poll per target; a one-shot with several targets is a batch whose
    outcome `schedule_run` reports.

    Args:
        name: unique among the tenant's active schedules (a cancelled or finished one frees
            its name).
        jitter_seconds: each run fires up to this much after its time.
        misfire_grace_seconds: how late a run may still start after an outage; later, it is
            recorded as missed.
        max_attempts, timeout_seconds: for each poll (timeout: the worker's default if None).
        owner, labels: the feature's own keys, e.g. a user id and {"guild_id": "..."}, to
            find schedules again with `trackd.store.repos.schedules.find`.
        validate_targets: check each target with its source (on by default).
        allow_no_targets: accept an empty `targets` (a batch scheduled ahead of what it will
            poll, whose owner fills the targets in before it runs); a run with none completes
            with nothing polled.

    Raises:
        InvalidSchedule, InvalidTarget, Conflict, UnknownSource: see the module docstring.
    """
    if (target is None) == (targets is None):
        raise InvalidSchedule("give either target or targets")
    items = [target] if target is not None else list(targets or [])
    fewest = 0 if allow_no_targets else 1
    if not fewest <= len(items) <= _MAX_TARGETS:
        raise InvalidSchedule(
            f"a schedule has {fewest} to {_MAX_TARGETS} targets, got {len(items)}"
        )
    if not name or len(name) > 255:
        raise InvalidSchedule("a schedule's name is 1 to 255 characters")
    kinds = [
        k
        for k, v in ((ScheduleKind.CRON, cron), (ScheduleKind.INTERVAL, interval_seconds))
        if v is not None
    ]
    if len(kinds) > 1:
        raise InvalidSchedule("give cron or interval_seconds, not both")
    kind = kinds[0] if kinds else ScheduleKind.ONCE
    if kind is ScheduleKind.CRON and run_at is not None:
        raise InvalidSchedule("a cron schedule takes no run_at")
    spec = ScheduleSpec(
        kind=kind,
        interval_seconds=interval_seconds,
        cron=cron,
        run_at=run_at,
        timezone=timezone,
        jitter_seconds=jitter_seconds,
        misfire_grace_seconds=misfire_grace_seconds,
    ).validate()
    _check_attempts(max_attempts, timeout_seconds)
    canonical = _canonical(source, items, check=validate_targets)
    return await schedule_repo.create(
        session,
        tenant_id,
        name=name,
        source=source,
        targets=canonical,
        spec=spec,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        owner=owner,
        labels=labels or {},
        now=_now(now),
    )


async def active_schedule(
    session: AsyncSession,
    tenant_id: str,
    *,
    source: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> ScheduleRow | None:
    """The tenant's newest active schedule of `source` with `labels`, if it has one: what a
    feature that keeps one schedule per tenant checks before creating it."""
    found = await schedule_repo.find(
        session,
        tenant_id,
        source=source,
        labels=labels,
        statuses=[ScheduleStatus.ACTIVE],
        limit=1,
    )
    return found[0] if found else None


async def cancel_schedule(
    session: AsyncSession, tenant_id: str, schedule_id: uuid.UUID, *, now: datetime | None = None
) -> ScheduleRow | None:
    """Stop a schedule: it fires no more, and its polls not yet started are cancelled (a
    running one finishes). None when the tenant has no such schedule; one that was already
    over is returned unchanged."""
    when = _now(now)
    row = await schedule_repo.cancel(session, tenant_id, schedule_id, now=when)
    if row is not None and row.cancelled_at == when:
        await poll_repo.cancel_waiting(session, tenant_id, schedule_id=schedule_id, now=when)
    return row


async def request_poll(
    session: AsyncSession,
    tenant_id: str,
    source: str,
    target: Mapping[str, Any],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    timeout_seconds: float | None = None,
    requested_by: str | None = None,
    validate_target: bool = True,
    now: datetime | None = None,
) -> PollRow:
    """A poll of `source` for `target` due at once (a manual refresh). After the caller
    commits, a worker takes it at its next sweep, or at once after `announce_polls`."""
    _check_attempts(max_attempts, timeout_seconds)
    (canonical,) = _canonical(source, [target], check=validate_target)
    when = _now(now)
    (poll_id,) = await poll_repo.add(
        session,
        [
            NewPoll(
                tenant_id=tenant_id,
                source=source,
                target=canonical,
                max_attempts=max_attempts,
                timeout_seconds=timeout_seconds,
                requested_by=requested_by,
            )
        ],
        now=when,
    )
    poll = await poll_repo.get(session, tenant_id, poll_id)
    if poll is None:  # pragma: no cover - inserted just above
        raise RuntimeError("the poll just added is missing")
    return poll


async def cancel_poll(
    session: AsyncSession, tenant_id: str, poll_id: uuid.UUID, *, now: datetime | None = None
) -> bool:
    """Cancel a poll that has not started (pending or blocked); False otherwise."""
    return await poll_repo.cancel_waiting(session, tenant_id, poll_id=poll_id, now=_now(now)) > 0


async def announce_polls(bus: Bus, polls: Sequence[PollRow]) -> None:
    """Wake a worker for each poll (after commit): it starts at once instead of at a sweep."""
    await announce(bus, [(p.tenant_id, p.id) for p in polls])


@dataclass(frozen=True, slots=True)
class ScheduleRun:
    """How a schedule's latest run (a batch's only one) stands.

    Attributes:
        status: pending, running, completed, failed, cancelled or missed (RunStatus).
        scheduled_for: the run's nominal time; for a run not fired, when it is (or was) due.
        polls: how many of the run's polls are in each status.
        finished_at: when its last poll finished, once all have.
    """

    schedule_id: uuid.UUID
    status: RunStatus
    scheduled_for: datetime | None
    polls: Mapping[PollStatus, int]
    finished_at: datetime | None

    @property
    def total(self) -> int:
        return sum(self.polls.values())


async def schedule_run(
    session: AsyncSession, tenant_id: str, schedule_id: uuid.UUID
) -> ScheduleRun | None:
    """The outcome of a schedule's latest run: for a one-shot batch, whether all its polls
    finished and how. None when the tenant has no such schedule."""
    row = await schedule_repo.get(session, tenant_id, schedule_id)
    if row is None:
        return None
    fired_for = row.last_run_at
    if fired_for is None:
        status = run_status(status=ScheduleStatus(row.status), fired=False, unfinished=0, failed=0)
        return ScheduleRun(row.id, status, row.next_nominal_at or row.run_at, {}, None)
    counts = await poll_repo.run_counts(session, tenant_id, row.id, fired_for)
    unfinished = sum(n for s, n in counts.items() if s not in FINISHED)
    status = run_status(
        status=ScheduleStatus(row.status),
        fired=True,
        unfinished=unfinished,
        failed=counts.get(PollStatus.FAILED, 0),
    )
    finished_at = None
    if not unfinished:
        polls = await poll_repo.of_schedule(session, tenant_id, row.id, scheduled_for=fired_for)
        finished_at = max((p.finished_at for p in polls if p.finished_at), default=None)
        if not polls:
            finished_at = fired_for  # a run with nothing to poll finished as it fired
    return ScheduleRun(row.id, status, fired_for, counts, finished_at)
