"""The observer's runs: a user's journal against their drivers, as tracked tasks, with the
findings kept across runs.

A run is a poll of the `observer` source (`ObserverRuns`), so it is a tracked task on the
timeline (task id = the poll's id) that the workers execute:

- on demand: `request_analysis` stores a pending run and a poll whose target names it;
- nightly: `ensure_nightly_schedule` gives the tenant a daily schedule whose targets are
  shards of the users (by the bucket of their id); each poll runs every user of its shard
  who keeps a journal.

A run stores its counts (tests run, skipped with their reasons, found) and its one-sentence
summary, and merges its findings into the user's: a new one is stored (first seen) and sent
to the user's channels through the outbox; one found again is confirmed (last confirmed,
figures updated); one that no longer passes is marked `stopped`, never deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.journal import METRIC_PREFIX, SYMPTOM_PREFIX, DailySeries, local_day, zone
from trackd.domain.observer import AnalysisOptions, Driver, Finding, Outcome, RunResult, analyze
from trackd.errors import NotFound
from trackd.modules import journal, transits
from trackd.modules.observer import ObserverConfig
from trackd.modules.observer_drivers import (
    SOLAR_SOURCE,
    SOLAR_SUBJECT,
    Reading,
    readings,
    user_drivers,
)
from trackd.notify.service import enqueue_user_events
from trackd.scheduling.service import active_schedule, create_schedule, request_poll
from trackd.sources.base import InvalidTarget, Snapshot
from trackd.store.models import ObserverFindingRow, ObserverRunRow, PollRow
from trackd.store.repos import observer as repo
from trackd.store.repos.natal_charts import BUCKETS, bucket_of

if TYPE_CHECKING:
    import httpx

SOURCE = "observer"
NIGHTLY_CRON = "30 3 * * *"
NIGHTLY_SHARDS = 32
WINDOW_DAYS = 365
RUN_TIMEOUT_SECONDS = 900.0
# An on-demand run is tried again (after the poller's backoff) when its worker died or the
# store failed mid-run; a run whose data cannot be analysed fails at once (`Unanalysable`).
ON_DEMAND_ATTEMPTS = 3
NIGHTLY_TIMEOUT_SECONDS = 6 * 3600.0
FINDING_EVENT = "finding"


class Unanalysable(InvalidTarget):
    """The user's data cannot be analysed as it stands: another attempt would read the same
    data, so the run fails without one."""


class RunNotFound(NotFound):
    """No such run in the tenant."""


def options_of(config: ObserverConfig) -> AnalysisOptions:
    """The analysis options a tenant's configuration sets."""
    return AnalysisOptions(
        lags=tuple(config.lags),
        q=config.q,
        min_overlap_days=config.min_overlap_days,
        min_group_size=config.min_group_size,
        permutations=config.permutations,
        seed=config.seed,
    )


def options_json(options: AnalysisOptions) -> dict[str, Any]:
    """The options as stored with a run (JSON values)."""
    return {**asdict(options), "lags": list(options.lags)}


def _selected(name: str, wanted: Sequence[str]) -> bool:
    if name in wanted:
        return True
    for prefix in (METRIC_PREFIX, SYMPTOM_PREFIX):
        if name.startswith(prefix) and f"{prefix}*" in wanted:
            return True
    return False


def outcomes_of(series: DailySeries, wanted: Sequence[str]) -> list[Outcome]:
    """The daily outcomes the configuration names, from the user's daily series."""
    found = []
    for name, column in series.columns.items():
        if not _selected(name, wanted):
            continue
        values = {d: v for d, v in zip(series.days, column, strict=True) if v is not None}
        if name.startswith(SYMPTOM_PREFIX):
            tag = name.removeprefix(SYMPTOM_PREFIX)
            found.append(Outcome(name, values, "binary", label=tag.replace("_", " ")))
        else:
            label = name.removeprefix(METRIC_PREFIX).replace("_", " ")
            unit = "hours" if name == "sleep_hours" else "points"
            found.append(Outcome(name, values, "numeric", label=label, unit=unit))
    return found


def _figures(finding: Finding) -> dict[str, Any]:
    result = finding.result
    return {
        "test": result.test,
        "statistic": result.statistic,
        "effect": result.effect,
        "p": result.p,
        "q": result.q,
        "n_days": result.n_days,
        "days_on": result.days_on,
        "means": list(result.means) if result.means else None,
        "peak_degrees": result.peak_degrees,
        "amplitude": result.amplitude,
        "ci_level": finding.ci_level,
        "family": finding.family or finding.driver,
        "also": [asdict(a) for a in finding.also],
    }


def _tests_of(row: ObserverFindingRow) -> set[tuple[str, int]]:
    """(driver, lag) of a stored finding's test and of its supporting tests."""
    also = row.details.get("also") if isinstance(row.details, dict) else None
    supporting = {
        (str(a["driver"]), int(a["lag"]))
        for a in also or []
        if isinstance(a, dict) and "driver" in a and "lag" in a
    }
    return {(row.driver, row.lag), *supporting}


def _stored(
    finding: Finding, rows: Sequence[ObserverFindingRow], taken: set[uuid.UUID]
) -> ObserverFindingRow | None:
    """The stored finding a run's finding confirms: the one with its driver and lag, else
    one of the same outcome that shares a test with it (holding ones first, then the latest
    confirmed): one phenomenon keeps one history while its strongest test moves."""
    same = [r for r in rows if r.outcome == finding.outcome and r.id not in taken]
    exact = [r for r in same if (r.driver, r.lag) == (finding.driver, finding.lag)]
    if exact:
        return exact[0]
    sharing = [r for r in same if _tests_of(r) & finding.tests]
    sharing.sort(key=lambda r: (r.status != repo.HOLDING, -r.last_confirmed.timestamp()))
    return sharing[0] if sharing else None


async def merge_findings(
    session: AsyncSession,
    run: ObserverRunRow,
    result: RunResult,
    now: datetime,
    *,
    max_attempts: int,
) -> list[ObserverFindingRow]:
    """Fold the run's findings into the user's; returns the new ones (notified).

    A finding is a phenomenon (see `_stored`): the stored finding it confirms takes the
    run's strongest test as its driver and lag; a stored one no finding confirms stops.
    """
    rows = list(await repo.findings(session, run.tenant_id, run.user_id))
    new: list[ObserverFindingRow] = []
    confirmed: set[uuid.UUID] = set()
    for finding in result.findings:
        figures = {
            "driver": finding.driver,
            "lag": finding.lag,
            "direction": finding.direction,
            "effect": finding.result.effect,
            "ci_low": finding.ci_low,
            "ci_high": finding.ci_high,
            "p": finding.result.p,
            "q": finding.result.q,
            "n_days": finding.result.n_days,
            "sentence": finding.sentence,
            "details": _figures(finding),
        }
        row = _stored(finding, rows, confirmed)
        if row is None:
            row = ObserverFindingRow(
                tenant_id=run.tenant_id,
                user_id=run.user_id,
                outcome=finding.outcome,
                status=repo.HOLDING,
                first_seen=now,
                last_confirmed=now,
                first_run_id=run.id,
                last_run_id=run.id,
                confirmations=1,
                **figures,
            )
            session.add(row)
            new.append(row)
            continue
        confirmed.add(row.id)
        for name, value in figures.items():
            setattr(row, name, value)
        row.status, row.stopped_at = repo.HOLDING, None
        row.last_confirmed, row.last_run_id = now, run.id
        row.confirmations += 1
    for row in rows:
        if row.id not in confirmed and row.status == repo.HOLDING:
            row.status, row.stopped_at = repo.STOPPED, now
    await session.flush()
    for row in new:
        await enqueue_user_events(
            session,
            run.tenant_id,
            run.user_id,
            {"source": SOURCE, "subject": run.user_id, "snapshot_id": f"{run.id}:{row.id}"},
            now,
            [{"type": FINDING_EVENT, "summary": row.sentence, **finding_view(row)}],
            max_attempts=max_attempts,
        )
    return new


async def analysis_inputs(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    config: ObserverConfig,
    now: datetime,
    solar: Sequence[Reading] | None,
) -> tuple[list[Outcome], list[Driver]]:
    """The user's daily outcomes and drivers a run at `now` tests (`solar`: the solar
    history's readings when the caller has them already)."""
    tz = zone(await journal.timezone(session, tenant_id, user_id))
    today = local_day(now, tz)
    series = await journal.daily_series(
        session, tenant_id, user_id, since=today - timedelta(days=WINDOW_DAYS), until=today
    )
    outcomes = outcomes_of(series, config.outcomes)
    if not series.days:
        return outcomes, []
    first = series.days[0] - timedelta(days=max(config.lags))
    drivers = await user_drivers(
        session,
        tenant_id,
        user_id,
        config.drivers,
        first=first,
        last=series.days[-1],
        tz=tz,
        solar=solar,
    )
    return outcomes, drivers


def _skipped_view(result: RunResult) -> list[dict[str, Any]]:
    return [asdict(s) for s in result.skipped]


async def run_for_user(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    user_id: str,
    config: ObserverConfig,
    *,
    now: datetime,
    run_id: uuid.UUID | None = None,
    solar: Sequence[Reading] | None = None,
    max_attempts: int = 8,
) -> uuid.UUID:
    """Run the user's analysis and store it: the run `run_id` (made pending by
    `request_analysis`) or a new one; returns the run's id."""
    options = options_of(config)
    async with sessions() as session, session.begin():
        run = await repo.get_run(session, tenant_id, run_id) if run_id else None
        if run is None:
            run = await repo.start_run(
                session, tenant_id, user_id, task_id=None, options=options_json(options), now=now
            )
        run.status, run.started_at, run.error = "running", now, None
        run_id = run.id
        outcomes, drivers = await analysis_inputs(session, tenant_id, user_id, config, now, solar)
    try:
        # CPU work off the event loop: the poll's lease heartbeat keeps beating.
        result = await asyncio.to_thread(analyze, outcomes, drivers, options)
    except ValueError as exc:
        async with sessions() as session, session.begin():
            run = await repo.get_run(session, tenant_id, run_id)
            if run is not None:
                run.status, run.error, run.finished_at = "failed", str(exc), now
        raise
    async with sessions() as session, session.begin():
        run = await repo.get_run(session, tenant_id, run_id)
        if run is None:  # pragma: no cover - stored above
            raise RunNotFound(f"run {run_id} vanished")
        run.status = "completed"
        run.finished_at = max(datetime.now(UTC), now)
        run.tests_run, run.tests_skipped = result.tests_run, result.tests_skipped
        run.found, run.summary = len(result.findings), result.summary
        run.skipped = _skipped_view(result)
        run.options = {**options_json(options), "outcomes": len(outcomes), "drivers": len(drivers)}
        await merge_findings(session, run, result, now, max_attempts=max_attempts)
    return run_id


# -- views --------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def finding_view(row: ObserverFindingRow) -> dict[str, Any]:
    """A finding as JSON: its strongest test (driver, lag, figures), its driver family and the
    supporting tests of the same phenomenon (`also`: driver, lag, p, q, effect)."""
    details = row.details if isinstance(row.details, dict) else {}
    return {
        "id": str(row.id),
        "outcome": row.outcome,
        "driver": row.driver,
        "lag": row.lag,
        "status": row.status,
        "direction": row.direction,
        "effect": row.effect,
        "ci_low": row.ci_low,
        "ci_high": row.ci_high,
        "p": row.p,
        "q": row.q,
        "n_days": row.n_days,
        "sentence": row.sentence,
        "details": row.details,
        "family": details.get("family", row.driver),
        "also": details.get("also", []),
        "first_seen": _iso(row.first_seen),
        "last_confirmed": _iso(row.last_confirmed),
        "stopped_at": _iso(row.stopped_at),
        "confirmations": row.confirmations,
    }


def run_view(row: ObserverRunRow, *, skipped: bool = False) -> dict[str, Any]:
    """A run as JSON; a completed run that found nothing says how many tests ran."""
    shown: dict[str, Any] = {
        "id": str(row.id),
        "user_id": row.user_id,
        "task_id": row.task_id,
        "status": row.status,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "tests_run": row.tests_run,
        "tests_skipped": row.tests_skipped,
        "found": row.found,
        "summary": row.summary,
        "error": row.error,
        "options": row.options,
    }
    if row.status == "completed" and row.found == 0:
        shown["nothing_passed"] = (
            f"{row.tests_run} tests were run and none passed the false discovery rate "
            f"q = {row.options.get('q')}: no finding"
        )
    if skipped:
        shown["skipped"] = row.skipped
    return shown


async def findings(
    session: AsyncSession, tenant_id: str, user_id: str, *, history: bool, min_q: float | None
) -> list[dict[str, Any]]:
    """The user's findings: those holding, or (`history`) also those that stopped;
    `min_q`: only those with q at or under it."""
    rows = await repo.findings(
        session, tenant_id, user_id, status=None if history else repo.HOLDING
    )
    return [finding_view(r) for r in rows if min_q is None or r.q <= min_q]


async def runs(
    session: AsyncSession, tenant_id: str, user_id: str, limit: int
) -> list[dict[str, Any]]:
    return [run_view(r) for r in await repo.runs(session, tenant_id, user_id, limit=limit)]


async def run(session: AsyncSession, tenant_id: str, run_id: uuid.UUID) -> ObserverRunRow:
    """The tenant's run `run_id`.

    Raises:
        RunNotFound: no such run in the tenant.
    """
    row = await repo.get_run(session, tenant_id, run_id)
    if row is None:
        raise RunNotFound(f"no observer run {run_id} in this tenant")
    return row


# -- runs as tracked tasks -------------------------------------------------------------------


async def request_analysis(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    config: ObserverConfig,
    *,
    requested_by: str | None,
    now: datetime | None = None,
) -> tuple[ObserverRunRow, PollRow]:
    """A pending run of the user's analysis and the poll (a tracked task) that runs it;
    after the caller commits, a worker takes it (at once after `announce_polls`)."""
    when = now or datetime.now(UTC)
    row = await repo.start_run(
        session,
        tenant_id,
        user_id,
        task_id=None,
        options=options_json(options_of(config)),
        now=when,
    )
    row.status = "pending"
    poll = await request_poll(
        session,
        tenant_id,
        SOURCE,
        {"tenant": tenant_id, "user": user_id, "run": str(row.id)},
        timeout_seconds=RUN_TIMEOUT_SECONDS,
        max_attempts=ON_DEMAND_ATTEMPTS,
        requested_by=requested_by,
        validate_target=False,
        now=when,
    )
    row.task_id = str(poll.id)
    await session.flush()
    return row, poll


def shard_targets(tenant_id: str, shards: int = NIGHTLY_SHARDS) -> list[dict[str, Any]]:
    """The targets of a nightly run: the tenant's user buckets split into `shards` ranges
    (as the transit refresh splits them)."""
    return transits.shard_targets(tenant_id, shards)


async def ensure_nightly_schedule(
    session: AsyncSession,
    tenant_id: str,
    *,
    cron: str = NIGHTLY_CRON,
    shards: int = NIGHTLY_SHARDS,
    now: datetime | None = None,
) -> bool:
    """Create the tenant's nightly observer runs unless it has them; True when created."""
    if await active_schedule(session, tenant_id, source=SOURCE) is not None:
        return False
    await create_schedule(
        session,
        tenant_id,
        name="observer nightly runs",
        source=SOURCE,
        targets=shard_targets(tenant_id, shards),
        cron=cron,
        labels={"module": "observer"},
        timeout_seconds=NIGHTLY_TIMEOUT_SECONDS,
        validate_targets=False,
        now=now,
    )
    return True


class ObserverRuns:
    """The `observer` source: a poll runs one user's pending run (target `tenant`, `user`,
    `run`) or every user with a journal in a range of buckets (target `tenant`, `buckets`).

    It stores runs and findings itself and returns no snapshot. Built by the runtime with
    its sessions (nothing goes over the network).
    """

    name = SOURCE

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Any = None,
        max_attempts: int = 8,
    ) -> None:
        self._sessions = sessions
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_attempts = max_attempts

    def validate(self, target: Mapping[str, Any]) -> Mapping[str, Any]:
        tenant = target.get("tenant")
        if not isinstance(tenant, str) or not tenant:
            raise InvalidTarget("an observer target names its tenant: {'tenant': 'acme', ...}")
        if "buckets" in target:
            buckets = target["buckets"]
            if (
                not isinstance(buckets, list | tuple)
                or len(buckets) != 2
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in buckets)
                or not 0 <= buckets[0] < buckets[1] <= BUCKETS
            ):
                raise InvalidTarget(
                    f"an observer target's 'buckets' is [low, high], 0 <= low < high <= {BUCKETS}"
                )
            return {"tenant": tenant, "buckets": [buckets[0], buckets[1]]}
        user, run_id = target.get("user"), target.get("run")
        if not isinstance(user, str) or not user or not isinstance(run_id, str):
            raise InvalidTarget("an observer target names a user and a run, or buckets")
        try:
            uuid.UUID(run_id)
        except ValueError:
            raise InvalidTarget(f"an observer target's run is a UUID, got {run_id!r}") from None
        return {"tenant": tenant, "user": user, "run": run_id}

    async def fetch(self, target: Mapping[str, Any], client: httpx.AsyncClient) -> list[Snapshot]:
        canonical = self.validate(target)
        tenant = str(canonical["tenant"])
        now = self._clock()
        async with self._sessions() as session:
            config = await journal.observer_config(session, tenant)
        if "buckets" not in canonical:
            try:
                await run_for_user(
                    self._sessions,
                    tenant,
                    str(canonical["user"]),
                    config,
                    now=now,
                    run_id=uuid.UUID(str(canonical["run"])),
                    max_attempts=self._max_attempts,
                )
            except ValueError as exc:
                raise Unanalysable(str(exc)) from exc
            return []
        low, high = canonical["buckets"]
        async with self._sessions() as session:
            users = [
                u
                for u in await repo.users_with_journals(session, tenant)
                if low <= bucket_of(u) < high
            ]
            solar = (
                await readings(
                    session,
                    tenant,
                    SOLAR_SOURCE,
                    [SOLAR_SUBJECT],
                    now - timedelta(days=WINDOW_DAYS + 2 + max(config.lags)),
                    now + timedelta(days=1),
                )
                if users
                else []
            )
        for user in users:
            # A user whose data cannot be analysed has a failed run; the others still run.
            with contextlib.suppress(ValueError):
                await run_for_user(
                    self._sessions,
                    tenant,
                    user,
                    config,
                    now=now,
                    solar=solar,
                    max_attempts=self._max_attempts,
                )
        return []
