"""The dashboard's observer pages: the tenant's observed users, their latest runs and their
findings (filtered like `GET /v1/observer/findings`), and a finding with its three charts —
the outcome by driver level, the effect by lag, the journal beside the driver.

A `user` token sees its own user's runs and findings only (another user's finding is a 403
page); the other roles see the tenant's. Another tenant's finding is not found.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from trackd.access.deps import SessionDep
from trackd.domain.access import Role
from trackd.modules.observer_charts import (
    FindingCharts,
    FindingNotFound,
    finding_charts,
    finding_row,
    overview,
)
from trackd.web.auth import Viewer
from trackd.web.interval_chart import Estimate, IntervalChart, intervals
from trackd.web.line_chart import LineChart, Series, lines_over_time
from trackd.web.pages import PageRoute
from trackd.web.render import PageError, page

router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)

STATUSES = ("holding", "stopped", "all")
RUNS_SHOWN = 20
FINDINGS_SHOWN = 100
BESIDE_HEIGHT = 180
# What the effect is, by the driver's kind (as the run measures it).
EFFECT_NAMES = {
    "numeric": "Spearman's rho",
    "binary": "difference in means (driver days minus the others)",
    "circular": "Mardia's circular-linear R",
}


def _max_q(value: str) -> float | None:
    if not value:
        return None
    try:
        q = float(value)
    except ValueError:
        q = math.nan
    if not 0 < q <= 1:
        raise PageError(400, f"max_q: {value!r} is not a number in (0, 1], like 0.05")
    return q


@router.get("/observer")
async def observer(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    status: Annotated[str, Query(max_length=20)] = "holding",
    max_q: Annotated[str, Query(max_length=20)] = "",
    user: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Observed users, latest runs and findings."""
    if status not in STATUSES:
        raise PageError(400, f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    q = _max_q(max_q)
    whom = user or None
    if principal.role is Role.USER:
        if whom is not None and whom != principal.user_id:
            raise PageError(403, "a user's login shows only that user's observer")
        whom = principal.user_id
    found = await overview(
        session,
        principal.tenant_id,
        whom,
        status=None if status == "all" else status,
        max_q=q,
        runs=RUNS_SHOWN,
        findings=FINDINGS_SHOWN,
    )
    context = {
        "principal": principal,
        "view": found,
        "statuses": STATUSES,
        "filters": {"status": status, "max_q": max_q, "user": user},
        "own_only": principal.role is Role.USER,
        "moment": _moment,
    }
    return page(request, "observer.html", context)


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _level_chart(charts: FindingCharts) -> IntervalChart | None:
    return intervals(
        [
            Estimate(
                lv.label,
                lv.mean,
                lv.low,
                lv.high,
                f"{lv.label}: mean {lv.mean:.2f}"
                + (f", 95% CI {lv.low:.2f} to {lv.high:.2f}" if lv.low is not None else "")
                + f", {lv.n} days",
            )
            for lv in charts.levels
        ]
    )


def _lag_chart(charts: FindingCharts, lag: int) -> IntervalChart | None:
    return intervals(
        [
            Estimate(
                f"lag {e.lag}",
                e.effect,
                e.low,
                e.high,
                f"lag {e.lag}: {e.effect:.3f}, CI {e.low:.3f} to {e.high:.3f}, {e.n} days"
                if e.effect is not None and e.low is not None and e.high is not None
                else f"lag {e.lag}: too few days or a constant series ({e.n} days)",
            )
            for e in charts.lags
        ],
        marked=lag,
        zero_line=True,
    )


def _beside(charts: FindingCharts) -> tuple[LineChart | None, LineChart | None]:
    if not charts.outcome_days:
        return None, None
    span = (_at(charts.outcome_days[0][0]), _at(charts.outcome_days[-1][0]))

    def chart(label: str, index: int, days: list[tuple[date, float]]) -> LineChart | None:
        # An empty series keeps its colour index: the driver is always the second colour.
        series = [Series("", []) for _ in range(index)] + [
            Series(label, [(_at(d), v) for d, v in days])
        ]
        return lines_over_time(series, height=BESIDE_HEIGHT, between=span)

    return (
        chart(charts.outcome_label, 0, charts.outcome_days),
        chart(charts.driver_label, 1, charts.driver_days),
    )


@router.get("/observer/findings/{finding_id}")
async def observer_finding(
    request: Request,
    finding_id: Annotated[str, Path(max_length=100)],
    session: SessionDep,
    principal: Viewer,
) -> Response:
    """A finding: its sentence, its figures and its three charts."""
    try:
        wanted = uuid.UUID(finding_id)
    except ValueError:
        raise FindingNotFound(f"no observer finding {finding_id!r} in this tenant") from None
    row = await finding_row(session, principal.tenant_id, wanted)
    if principal.role is Role.USER and row.user_id != principal.user_id:
        raise PageError(403, "a user's login shows only that user's findings")
    charts = await finding_charts(session, row)
    above, below = _beside(charts)
    context: dict[str, Any] = {
        "principal": principal,
        "charts": charts,
        "f": charts.finding,
        "user_id": row.user_id,
        "effect_name": EFFECT_NAMES.get(charts.driver_kind, "effect"),
        "levels": _level_chart(charts),
        "by_lag": _lag_chart(charts, row.lag),
        "above": above,
        "below": below,
        "moment": _moment,
    }
    return page(request, "observer_finding.html", context)
