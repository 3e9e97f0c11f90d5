"""League trackers for users: `/api/trackers/...` (seed 002's TrackerController).

The user is the token's; registration and changes act for that user only. Each route parses,
calls the league feature (`trackd.league.service`) and answers what it returns.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from trackd.access.deps import SessionDep
from trackd.api.deps import CurrentPrincipal, LeagueDep
from trackd.api.routers.league_schemas import (
    AddIn,
    ManualSnapshotIn,
    RegisterIn,
    TrackerId,
    UpdateIn,
)
from trackd.domain.league import ScrapingStatus
from trackd.league import service
from trackd.sources.rocket_league_stats import CURRENT_PLAYLISTS, PlaylistStats, SeasonStats
from trackd.store.repos import league_trackers as repo

router = APIRouter(prefix="/api/trackers", tags=["league trackers"])

Platform = Literal["steam", "epic", "xbl", "psn", "switch"]  # trackd.domain.league.PLATFORMS


@router.post("/register", status_code=201)
async def register(
    body: RegisterIn, principal: CurrentPrincipal, session: SessionDep, league: LeagueDep
) -> dict[str, Any]:
    """Register 1 to 4 trackers for a user who has none yet."""
    who = service.Registration(
        user_id=service.acting_user(principal),
        guild_id=body.guild_id,
        user_data=body.user_data,
        created_by=principal.user_id,
    )
    return {"trackers": await league.register(session, principal.tenant_id, who, body.urls)}


@router.post("/add", status_code=201)
async def add(
    body: AddIn, principal: CurrentPrincipal, session: SessionDep, league: LeagueDep
) -> dict[str, Any]:
    """Add a tracker, up to 4 live ones per user."""
    who = service.Registration(
        user_id=service.acting_user(principal),
        guild_id=body.guild_id,
        user_data=body.user_data,
        created_by=principal.user_id,
    )
    return await league.add(session, principal.tenant_id, who, body.url)


@router.get("/me")
async def mine(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """The calling user's live trackers."""
    return await service.mine(session, principal)


@router.get("")
async def search(
    principal: CurrentPrincipal,
    session: SessionDep,
    guild_id: Annotated[str | None, Query(alias="guildId", max_length=100)] = None,
    platform: Platform | None = None,
    status: ScrapingStatus | None = None,
    user_id: Annotated[str | None, Query(alias="userId", max_length=100)] = None,
    is_active: Annotated[bool | None, Query(alias="isActive")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    sort: repo.TrackerSort = repo.TrackerSort.CREATED,
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    """The tenant's live trackers, filtered (guild, platform, scraping status, user, active),
    sorted and paged."""
    return await service.search(
        session,
        principal.tenant_id,
        repo.TrackerFilter(
            user_id=user_id, guild_id=guild_id, platform=platform, status=status, active=is_active
        ),
        sort=sort,
        descending=order == "desc",
        limit=limit,
        offset=offset,
    )


@router.get("/{tracker_id}")
async def read(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    return await service.tracker(session, principal.tenant_id, tracker_id)


@router.get("/{tracker_id}/detail")
async def detail(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """The tracker with its seasons (each as its newest snapshot holds it) and its MMR under
    its guild's rules."""
    return await service.detail(session, principal.tenant_id, tracker_id)


@router.get("/{tracker_id}/status")
async def status(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """Scraping status, attempts, last error and last poll, from the newest poll."""
    return await service.status(session, principal.tenant_id, tracker_id)


@router.get("/{tracker_id}/seasons")
async def seasons(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """The newest snapshot of each of the tracker's seasons, newest season first."""
    return await service.seasons(session, principal.tenant_id, tracker_id)


@router.get("/{tracker_id}/snapshots")
async def snapshots(
    tracker_id: TrackerId,
    principal: CurrentPrincipal,
    session: SessionDep,
    season: Annotated[int | None, Query(ge=1, le=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Every snapshot of the tracker (of one season when given), newest first; history is
    never overwritten. Page on with `before` = the previous page's `nextBefore`."""
    return await service.snapshots(
        session, principal.tenant_id, tracker_id, season=season, limit=limit, before=before
    )


@router.post("/{tracker_id}/snapshots", status_code=201)
async def add_snapshot(
    tracker_id: TrackerId,
    body: ManualSnapshotIn,
    principal: CurrentPrincipal,
    session: SessionDep,
    league: LeagueDep,
) -> dict[str, Any]:
    """Enter a season's stats by hand; kept as a snapshot marked manual."""
    stats = SeasonStats(
        season=body.season,
        current_season=body.season,
        playlists={
            mode: PlaylistStats(mode=mode, playlist_id=_PLAYLIST_IDS[mode], **p.model_dump())
            for mode, p in body.playlists.items()
        },
    )
    return await league.add_snapshot(session, principal, tracker_id, stats, taken_at=body.taken_at)


@router.post("/{tracker_id}/refresh", status_code=202)
async def refresh(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep, league: LeagueDep
) -> dict[str, Any]:
    """Poll the tracker now (nothing new when a poll is already on its way)."""
    return await league.refresh(session, principal, tracker_id)


@router.put("/{tracker_id}")
async def update(
    tracker_id: TrackerId,
    body: UpdateIn,
    principal: CurrentPrincipal,
    session: SessionDep,
    league: LeagueDep,
) -> dict[str, Any]:
    """Change displayName and/or isActive (false pauses polling, true resumes it)."""
    changes: dict[str, Any] = {}
    if "display_name" in body.model_fields_set:
        changes["display_name"] = body.display_name
    return await league.update(session, principal, tracker_id, is_active=body.is_active, **changes)


@router.delete("/{tracker_id}", status_code=204)
async def delete(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep, league: LeagueDep
) -> Response:
    """Soft-delete the tracker: its history stays and its URL can be registered again."""
    await league.delete(session, principal, tracker_id)
    return Response(status_code=204)


# Hand-entered stats are filed under the playlist ids of today's seasons.
_PLAYLIST_IDS = {mode: playlist_id for playlist_id, mode in CURRENT_PLAYLISTS.items()}
