"""A finding's history across runs when a run reports one finding per phenomenon, on SQLite
and PostgreSQL: the stored finding follows its phenomenon while the strongest test moves
between the drivers of a family and neighbouring lags; it stops, holds again, and a new
phenomenon is a new finding (notified once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.observer import Comparison, Finding, RunResult, Supporting
from trackd.modules.observer_runs import merge_findings
from trackd.store.models import ObserverFindingRow
from trackd.store.repos import observer as repo

T0 = datetime(2026, 11, 1, 3, 30, tzinfo=UTC)


def _finding(
    driver: str, lag: int, p: float, family: str, also: tuple[tuple[str, int], ...] = ()
) -> Finding:
    result = Comparison(
        outcome="energy",
        driver=driver,
        lag=lag,
        test="spearman",
        statistic=-0.4,
        effect=-0.4,
        p=p,
        p_empirical=0.003,
        shifts=334,
        q=p * 10,
        n_days=160,
    )
    supporting = tuple(
        Supporting(d, lag_, p * (i + 2), p * 10 * (i + 2), -0.3) for i, (d, lag_) in enumerate(also)
    )
    return Finding(
        result, "negative", -0.5, -0.3, 0.95, f"{driver} at lag {lag}", family, supporting
    )


async def _run(
    sessions: async_sessionmaker[AsyncSession], day: int, *findings: Finding
) -> list[ObserverFindingRow]:
    """Merge one run's findings; the user's stored findings afterwards (and the new ones)."""
    now = T0 + timedelta(days=day)
    result = RunResult(tests=(), skipped=(), findings=findings, summary="", q=0.1)
    async with sessions() as session, session.begin():
        run = await repo.start_run(session, "acme", "ann", task_id=None, options={}, now=now)
        await merge_findings(session, run, result, now, max_attempts=3)
    async with sessions() as session:
        return list(await repo.findings(session, "acme", "ann"))


def _by_id(rows: list[ObserverFindingRow]) -> dict[str, ObserverFindingRow]:
    return {str(r.id): r for r in rows}


async def test_a_finding_follows_its_phenomenon_across_runs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    geo = "geomagnetic"
    (first,) = await _run(sessions, 0, _finding("storm_day", 1, 1e-4, geo, (("kp_max", 1),)))
    assert (first.driver, first.lag, first.confirmations) == ("storm_day", 1, 1)
    assert first.details["family"] == geo
    assert first.details["also"][0]["driver"] == "kp_max"

    # The strongest test moved to Kp: the same finding, confirmed, now Kp at lag 1.
    rows = await _run(
        sessions, 1, _finding("kp_max", 1, 5e-5, geo, (("storm_day", 1), ("kp_max", 2)))
    )
    (again,) = rows
    assert str(again.id) == str(first.id)
    assert (again.driver, again.lag, again.confirmations) == ("kp_max", 1, 2)
    assert again.first_seen == first.first_seen and again.status == repo.HOLDING
    assert [(a["driver"], a["lag"]) for a in again.details["also"]] == [
        ("storm_day", 1),
        ("kp_max", 2),
    ]

    # Another phenomenon only: a new finding; the geomagnetic one stops (kept).
    rows = await _run(sessions, 2, _finding("flare_day", 0, 1e-4, "flare_day"))
    shown = _by_id(rows)
    assert shown[str(first.id)].status == repo.STOPPED
    (flare,) = [r for r in rows if r.driver == "flare_day"]
    assert flare.status == repo.HOLDING and flare.confirmations == 1

    # The geomagnetic phenomenon again, through Bz at lag 2 and Kp at lag 2 (one of the stored
    # finding's supporting tests): it holds again, the same finding; the flare one stops.
    rows = await _run(sessions, 3, _finding("bz_south", 2, 2e-4, geo, (("kp_max", 2),)))
    shown = _by_id(rows)
    back = shown[str(first.id)]
    assert (back.driver, back.lag, back.status, back.stopped_at) == (
        "bz_south",
        2,
        repo.HOLDING,
        None,
    )
    assert back.confirmations == 3 and back.first_seen == first.first_seen
    assert shown[str(flare.id)].status == repo.STOPPED
    assert len(rows) == 2


async def test_findings_stored_per_test_fold_into_one_phenomenon(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    geo = "geomagnetic"
    # Two findings of one phenomenon stored by separate runs, each its own test (as runs
    # stored them before they grouped tests by phenomenon).
    await _run(sessions, 0, _finding("storm_day", 1, 1e-4, geo))
    rows = await _run(
        sessions, 1, _finding("storm_day", 1, 1e-4, geo), _finding("kp_max", 2, 1e-3, geo)
    )
    assert {(r.driver, r.lag) for r in rows if r.status == repo.HOLDING} == {
        ("storm_day", 1),
        ("kp_max", 2),
    }
    # A run that reports them as one finding confirms the one with its strongest test; the
    # other is marked stopped (its test is listed as supporting evidence), not deleted.
    rows = await _run(sessions, 2, _finding("storm_day", 1, 1e-4, geo, (("kp_max", 2),)))
    status = {(r.driver, r.lag): (r.status, r.confirmations) for r in rows}
    assert status == {("storm_day", 1): (repo.HOLDING, 3), ("kp_max", 2): (repo.STOPPED, 1)}
