"""The dashboard's league trackers: the list with scraping status, and each tracker's seasons
with its rating history per playlist as a line chart.

A user token sees its own trackers; admin, reader and service tokens see the tenant's.
Another tenant's tracker is a 404 page, another user's a 403 page (DESIGN §7).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from trackd.access.deps import SessionDep
from trackd.domain.access import Principal, Role
from trackd.domain.league import PLATFORMS, ScrapingStatus
from trackd.league import service
from trackd.league.views import poll_states
from trackd.sources.rocket_league_stats import Mode
from trackd.store.models import SnapshotRow, TrackerRow
from trackd.store.repos import league_trackers as repo
from trackd.store.repos import snapshots as snapshots_repo
from trackd.store.repos.snapshots import HistoryKey
from trackd.web import line_chart
from trackd.web.auth import Viewer
from trackd.web.pages import PageRoute
from trackd.web.paging import PAGE_SIZE, PerPage, choice, paged
from trackd.web.render import PageError, page

router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)

# Points drawn per season: retention keeps up to 1,000 snapshots of a history, and a 640 px
# chart shows no more detail than this.
CHART_POINTS = 400
Filter = Annotated[str | None, Query(max_length=40)]


def own_only(principal: Principal) -> str | None:
    """The user whose trackers a principal may see, or None for all of the tenant's."""
    if principal.role is Role.USER:
        return principal.user_id or ""  # a user token naming no user owns nothing
    return None


@router.get("/trackers")
async def trackers(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    status: Filter = None,
    platform: Filter = None,
    user: Annotated[str | None, Query(max_length=100)] = None,
    before: uuid.UUID | None = None,
    per: PerPage = PAGE_SIZE,
) -> Response:
    """League trackers with their latest poll, filtered by status, platform and user."""
    wanted = choice(status, [s.value for s in ScrapingStatus], "status")
    owner = own_only(principal)
    where = repo.TrackerFilter(
        user_id=owner if owner is not None else (user or None),
        platform=choice(platform, PLATFORMS, "platform"),
        status=ScrapingStatus(wanted) if wanted else None,
    )
    rows = await repo.page(session, principal.tenant_id, where, limit=per + 1, before=before)
    listed = paged(request, rows, lambda t: t.id, per)
    states = await poll_states(session, principal.tenant_id, listed.rows)
    context = {
        "principal": principal,
        "listed": listed,
        "states": states,
        "statuses": [s.value for s in ScrapingStatus],
        "platforms": PLATFORMS,
        "chosen": {"status": wanted or "", "platform": where.platform or "", "user": user or ""},
        "own_only": owner is not None,
    }
    return page(request, "league_trackers.html", context)


def rating_series(history: list[SnapshotRow]) -> list[line_chart.Series]:
    """Each playlist's rating over a season's snapshots, in the league's playlist order."""
    series = []
    for mode in Mode:
        points = []
        for row in history:
            stats = row.data.get("playlists", {}).get(mode.value) or {}
            rating = stats.get("rating")
            if isinstance(rating, int | float) and not isinstance(rating, bool):
                points.append((row.taken_at, float(rating)))
        if points:
            series.append(line_chart.Series(mode.value, points))
    return series


async def visible_tracker(session: Any, principal: Principal, tracker_id: uuid.UUID) -> TrackerRow:
    tracker = await service.get(session, principal.tenant_id, tracker_id)
    owner = own_only(principal)
    if owner is not None and tracker.user_id != owner:
        raise PageError(403, "this tracker is another user's")
    return tracker


@router.get("/trackers/{tracker_id}")
async def tracker(
    request: Request,
    tracker_id: uuid.UUID,
    session: SessionDep,
    principal: Viewer,
    season: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """A tracker's polling state, its seasons and one season's ratings over time."""
    row = await visible_tracker(session, principal, tracker_id)
    state = (await poll_states(session, principal.tenant_id, [row]))[row.id]
    heads = await service.season_heads(session, row)
    subject = str(row.id)
    known = await snapshots_repo.seasons(session, principal.tenant_id, repo.SOURCE, subject)
    shown = season if season else (heads[0].season if heads else None)
    if shown is not None and shown not in known:
        raise PageError(404, f"tracker {row.id} has no snapshots of season {shown!r}")
    history: list[SnapshotRow] = []
    if shown is not None:
        key = HistoryKey(principal.tenant_id, repo.SOURCE, subject, shown)
        history = await snapshots_repo.history(session, key, limit=CHART_POINTS)
    series = rating_series(history)
    context = {
        "principal": principal,
        "tracker": row,
        "state": state.as_json(),
        "polling": state,
        "heads": heads,
        "season": shown,
        "series": series,
        "chart": line_chart.lines_over_time(series),
        "history": history,
    }
    return page(request, "league_tracker.html", context)
