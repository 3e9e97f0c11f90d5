"""A finding's charts, from the daily series its latest run tested.

The series are rebuilt as that run built them (`observer_runs.analysis_inputs`, at the run's
time, with the run's lags), for the finding's outcome and driver only; the figures come from
`trackd.domain.observer.charts`. A journal changed since the run shows as it is now.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from trackd.domain.astronomy.zodiac import SIGNS
from trackd.domain.observer import AnalysisOptions
from trackd.domain.observer.charts import LagEffect, Level, beside, by_lag, by_level
from trackd.errors import NotFound
from trackd.modules import journal
from trackd.modules.observer_runs import analysis_inputs, finding_view, run_view
from trackd.store.models import ObserverFindingRow
from trackd.store.repos import observer as repo

# A circular driver's sectors by its name (the lunar phase's octants otherwise).
SECTORS = {"moon_sign": SIGNS}


class FindingNotFound(NotFound):
    """No such finding in the tenant."""


@dataclass(frozen=True, slots=True)
class FindingCharts:
    """A finding with what its three charts show.

    Attributes:
        finding: the finding as the API shows it (`observer_runs.finding_view`).
        outcome_label, driver_label: how the series are named.
        driver_kind: numeric, binary or circular.
        levels: the outcome's mean per level of the driver at the finding's lag (t interval).
        lags: the effect at each lag 0..the run's longest (moving-block bootstrap interval).
        outcome_days: the outcome per day.
        driver_days: the driver moved `lag` days later, over the outcome's days.
        ci_level: the intervals' level.
        as_of: the time of the run the series were rebuilt for.
        missing: why the charts are empty (the series are gone), or None.
    """

    finding: dict[str, Any]
    outcome_label: str
    driver_label: str
    driver_kind: str
    levels: list[Level]
    lags: list[LagEffect]
    outcome_days: list[tuple[date, float]]
    driver_days: list[tuple[date, float]]
    ci_level: float
    as_of: datetime
    missing: str | None = None


async def finding_row(
    session: AsyncSession, tenant_id: str, finding_id: uuid.UUID
) -> ObserverFindingRow:
    """The tenant's finding `finding_id`.

    Raises:
        FindingNotFound: no such finding in the tenant.
    """
    row = await repo.get_finding(session, tenant_id, finding_id)
    if row is None:
        raise FindingNotFound(f"no observer finding {finding_id} in this tenant")
    return row


@dataclass(frozen=True, slots=True)
class Overview:
    """The tenant's observed users, latest runs and findings (of one user when asked)."""

    users: list[str]
    runs: list[dict[str, Any]]
    findings: list[dict[str, Any]]


async def overview(
    session: AsyncSession,
    tenant_id: str,
    user_id: str | None,
    *,
    status: str | None,
    max_q: float | None,
    runs: int,
    findings: int,
) -> Overview:
    """The users with a run or a finding, the newest `runs` runs (as `run_view`, which says
    when nothing passed) and at most `findings` findings in `status` with q at or under
    `max_q` (as `finding_view`, with their user), strongest first; only `user_id`'s when
    given."""
    users = await repo.users_observed(session, tenant_id)
    latest = await repo.recent_runs(session, tenant_id, user_id, limit=runs)
    found = await repo.tenant_findings(
        session, tenant_id, user_id, status=status, max_q=max_q, limit=findings
    )
    return Overview(
        users=[u for u in users if user_id is None or u == user_id],
        runs=[run_view(r) for r in latest],
        findings=[{**finding_view(f), "user_id": f.user_id} for f in found],
    )


def _options(stored: dict[str, Any]) -> AnalysisOptions:
    known = {f.name for f in dataclasses.fields(AnalysisOptions)}
    kept = {k: v for k, v in stored.items() if k in known}
    if "lags" in kept:
        kept["lags"] = tuple(kept["lags"])
    return AnalysisOptions(**kept)


async def finding_charts(session: AsyncSession, row: ObserverFindingRow) -> FindingCharts:
    """What the finding's charts show (see the module's docstring)."""
    run = await repo.get_run(session, row.tenant_id, row.last_run_id)
    options = _options(run.options if run is not None else {})
    as_of = run.started_at if run is not None else row.last_confirmed
    config = (await journal.observer_config(session, row.tenant_id)).model_copy(
        update={"drivers": [row.driver], "outcomes": [row.outcome], "lags": list(options.lags)}
    )
    outcomes, drivers = await analysis_inputs(
        session, row.tenant_id, row.user_id, config, as_of, None
    )
    shown = finding_view(row)
    if not outcomes or not drivers:
        what = row.outcome if not outcomes else row.driver
        empty: list[Any] = []
        return FindingCharts(
            shown,
            row.outcome,
            row.driver,
            "",
            empty,
            empty,
            empty,
            empty,
            options.ci_level,
            as_of,
            f"the daily series of {what} is no longer there",
        )
    outcome, driver = outcomes[0], drivers[0]
    outcome_days, driver_days = beside(outcome, driver, row.lag)
    return FindingCharts(
        finding=shown,
        outcome_label=outcome.title,
        driver_label=driver.title,
        driver_kind=driver.kind,
        levels=by_level(
            outcome, driver, row.lag, level=options.ci_level, sectors=SECTORS.get(driver.name)
        ),
        lags=by_lag(outcome, driver, max(options.lags), options),
        outcome_days=outcome_days,
        driver_days=driver_days,
        ci_level=options.ci_level,
        as_of=as_of,
    )
