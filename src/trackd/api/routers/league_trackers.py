"""League trackers for users: `/api/trackers/...` (seed 002's TrackerController).

The user is the token's; registration and changes act for that user only. Routes own the
transaction: commit, then wake a worker for the scrapes they asked for.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from trackd.access.deps import RuntimeDep, SessionDep
from trackd.api.deps import CurrentPrincipal
from trackd.api.errors import ApiError
from trackd.api.routers.tracker_flows import (
    TrackerId,
    add_tracker,
    announce,
    now_utc,
    register_trackers,
    rules,
    transaction,
)
from trackd.api.routers.tracker_schemas import AddIn, ManualSnapshotIn, RegisterIn, UpdateIn
from trackd.domain.trackers import ScrapingStatus
from trackd.modules.trackers import guilds, service
from trackd.modules.trackers.views import (
    scrape_states,
    season_json,
    snapshot_json,
    trackers_json,
)
from trackd.snapshots.service import list_snapshots
from trackd.sources.rocket_league_stats import CURRENT_PLAYLISTS, PlaylistStats, SeasonStats
from trackd.store.repos import trackers as repo

router = APIRouter(prefix="/api/trackers", tags=["league trackers"])

Platform = Literal["steam", "epic", "xbl", "psn", "switch"]  # trackd.domain.trackers.PLATFORMS


@router.post("/register", status_code=201)
async def register(
    body: RegisterIn, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Register 1 to 4 trackers for a user who has none yet."""
    with rules():
        who = service.Registration(
            user_id=service.acting_user(principal),
            guild_id=body.guild_id,
            user_data=body.user_data,
            created_by=principal.user_id,
        )
    return {
        "trackers": await register_trackers(session, runtime, principal.tenant_id, who, body.urls)
    }


@router.post("/add", status_code=201)
async def add(
    body: AddIn, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Add a tracker, up to 4 live ones per user."""
    with rules():
        who = service.Registration(
            user_id=service.acting_user(principal),
            guild_id=body.guild_id,
            user_data=body.user_data,
            created_by=principal.user_id,
        )
    return await add_tracker(session, runtime, principal.tenant_id, who, body.url)


@router.get("/me")
async def mine(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """The calling user's live trackers."""
    if principal.user_id is None:
        raise ApiError(403, "this token names no user; GET /api/trackers?userId=... lists a user's")
    rows, total = await repo.search(
        session, principal.tenant_id, repo.TrackerFilter(user_id=principal.user_id), limit=100
    )
    return {"trackers": await trackers_json(session, principal.tenant_id, rows), "total": total}


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
    rows, total = await repo.search(
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
    return {
        "trackers": await trackers_json(session, principal.tenant_id, rows),
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.get("/{tracker_id}")
async def read(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    tracker = await service.get(session, principal.tenant_id, tracker_id)
    [shown] = await trackers_json(session, principal.tenant_id, [tracker])
    return shown


@router.get("/{tracker_id}/detail")
async def detail(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """The tracker with its seasons (each as its newest snapshot holds it) and its MMR under
    its guild's rules."""
    tracker = await service.get(session, principal.tenant_id, tracker_id)
    [shown] = await trackers_json(session, principal.tenant_id, [tracker])
    seasons = await service.seasons(session, tracker)
    return {
        **shown,
        "seasons": [season_json(row) for row in seasons],
        "mmr": await guilds.mmr_json(session, tracker),
    }


@router.get("/{tracker_id}/status")
async def status(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """Scraping status, attempts, last error and last scrape, from the newest poll."""
    tracker = await service.get(session, principal.tenant_id, tracker_id)
    state = (await scrape_states(session, principal.tenant_id, [tracker]))[tracker.id]
    return {"id": str(tracker.id), "isActive": tracker.is_active, **state.as_json()}


@router.get("/{tracker_id}/seasons")
async def seasons(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    tracker = await service.get(session, principal.tenant_id, tracker_id)
    rows = await service.seasons(session, tracker)
    return {"trackerId": str(tracker.id), "seasons": [season_json(row) for row in rows]}


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
    tracker = await service.get(session, principal.tenant_id, tracker_id)
    page = await list_snapshots(
        session,
        principal.tenant_id,
        service.SOURCE,
        str(tracker.id),
        season="*" if season is None else str(season),
        limit=limit,
        before=before,
    )
    return {
        "trackerId": str(tracker.id),
        "snapshots": [
            snapshot_json(
                snapshot_id=s.id,
                season=s.season,
                seq=s.seq,
                taken_at=s.taken_at,
                data=s.data,
                meta=s.meta,
                changes=[c.as_dict() for c in s.changes],
            )
            for s in page.items
        ],
        "nextBefore": str(page.next_before) if page.next_before else None,
    }


@router.post("/{tracker_id}/snapshots", status_code=201)
async def add_snapshot(
    tracker_id: TrackerId,
    body: ManualSnapshotIn,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Enter a season's stats by hand; kept as a snapshot marked manual."""
    taken_at = body.taken_at or now_utc()
    stats = SeasonStats(
        season=body.season,
        current_season=body.season,
        playlists={
            mode: PlaylistStats(mode=mode, playlist_id=_PLAYLIST_IDS[mode], **p.model_dump())
            for mode, p in body.playlists.items()
        },
    )
    with rules():
        async with transaction(session):
            stored = await service.add_snapshot(
                session, principal, tracker_id, stats, taken_at=taken_at, settings=runtime.settings
            )
    return snapshot_json(
        snapshot_id=stored.id,
        season=stored.season,
        seq=stored.seq,
        taken_at=stored.taken_at,
        data=stored.data,
        meta=stored.meta,
        changes=[c.as_dict() for c in stored.changes],
    )


@router.post("/{tracker_id}/refresh", status_code=202)
async def refresh(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Scrape the tracker now (nothing new when a scrape is already on its way)."""
    with rules():
        async with transaction(session):
            done = await service.refresh(session, principal, tracker_id, now=now_utc())
            state = (await scrape_states(session, principal.tenant_id, [done.tracker]))[
                done.tracker.id
            ]
    if done.queued and done.poll is not None:
        announce(runtime, [done.poll])
    return {
        "id": str(done.tracker.id),
        "queued": done.queued,
        "message": "scrape queued" if done.queued else "a scrape is already on its way",
        **state.as_json(),
    }


@router.put("/{tracker_id}")
async def update(
    tracker_id: TrackerId,
    body: UpdateIn,
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Change displayName and/or isActive (false pauses scraping, true resumes it)."""
    changes: dict[str, Any] = {}
    if "display_name" in body.model_fields_set:
        changes["display_name"] = body.display_name
    with rules():
        async with transaction(session):
            outcome = await service.update(
                session,
                runtime.settings,
                principal,
                tracker_id,
                is_active=body.is_active,
                now=now_utc(),
                **changes,
            )
            [shown] = await trackers_json(session, principal.tenant_id, outcome.trackers)
    announce(runtime, outcome.polls)
    return shown


@router.delete("/{tracker_id}", status_code=204)
async def delete(
    tracker_id: TrackerId, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """Soft-delete the tracker: its history stays and its URL can be registered again."""
    with rules():
        async with transaction(session):
            await service.delete(session, principal, tracker_id, now=now_utc())
    return Response(status_code=204)


# Hand-entered stats are filed under the playlist ids of today's seasons.
_PLAYLIST_IDS = {mode: playlist_id for playlist_id, mode in CURRENT_PLAYLISTS.items()}
