"""League trackers for the league's bot: `/internal/trackers/...` (seed 002's
InternalTrackerController), for service and admin tokens only.

The bot acts for the users it names in bodies (`userId`); the tenant is still the token's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from trackd.access.deps import SessionDep
from trackd.api.deps import CurrentPrincipal, LeagueDep
from trackd.api.errors import ApiError
from trackd.api.routers.league_schemas import (
    AddForIn,
    BatchId,
    GuildSettingsIn,
    ProcessIn,
    RegisterForIn,
    ScheduleIn,
)
from trackd.domain.access import Principal, Role
from trackd.league import service
from trackd.league.batches import BatchStatus


async def _bot(principal: CurrentPrincipal) -> Principal:
    if principal.role not in (Role.SERVICE, Role.ADMIN):
        raise ApiError(
            403,
            f"the internal tracker routes are for service and admin tokens, not {principal.role}",
        )
    return principal


Bot = Annotated[Principal, Depends(_bot)]
GuildPath = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]

router = APIRouter(prefix="/internal/trackers", tags=["league trackers (internal)"])


@router.post("/register-multiple", status_code=201)
async def register_multiple(
    body: RegisterForIn, principal: Bot, session: SessionDep, league: LeagueDep
) -> dict[str, Any]:
    """Register 1 to 4 trackers for `userId`, who must have none yet."""
    who = service.Registration(
        user_id=body.user_id,
        guild_id=body.guild_id,
        user_data=body.user_data,
        created_by=principal.user_id or principal.role.value,
    )
    return {"trackers": await league.register(session, principal.tenant_id, who, body.urls)}


@router.post("/add", status_code=201)
async def add(
    body: AddForIn, principal: Bot, session: SessionDep, league: LeagueDep
) -> dict[str, Any]:
    """Add a tracker for `userId`, up to 4 live ones."""
    who = service.Registration(
        user_id=body.user_id,
        guild_id=body.guild_id,
        user_data=body.user_data,
        created_by=principal.user_id or principal.role.value,
    )
    return await league.add(session, principal.tenant_id, who, body.url)


@router.post("/process-pending", status_code=202)
async def process_pending(principal: Bot, session: SessionDep, league: LeagueDep) -> dict[str, Any]:
    """Poll every active tracker never polled or whose last poll failed."""
    return await league.process_pending(
        session, principal.tenant_id, requested_by=principal.user_id
    )


@router.post("/process", status_code=202)
async def process_guild(
    body: ProcessIn, principal: Bot, session: SessionDep, league: LeagueDep
) -> dict[str, Any]:
    """Poll every active tracker of a guild now."""
    return await league.process_guild(
        session, principal.tenant_id, body.guild_id, requested_by=principal.user_id
    )


@router.post("/schedule", status_code=201)
async def schedule(
    body: ScheduleIn, principal: Bot, session: SessionDep, league: LeagueDep
) -> dict[str, Any]:
    """Schedule the guild's trackers to be polled at `scheduledAt` (in the future)."""
    return await league.schedule_batch(
        session,
        principal.tenant_id,
        body.guild_id,
        body.scheduled_at,
        metadata=body.metadata,
        created_by=principal.user_id or principal.role.value,
    )


@router.get("/schedule/guild/{guild_id}")
async def schedules(
    guild_id: GuildPath,
    principal: Bot,
    session: SessionDep,
    status: BatchStatus | None = None,
    include_completed: Annotated[bool, Query(alias="includeCompleted")] = True,
) -> dict[str, Any]:
    """The guild's scheduled batches by time; `status` wins over `includeCompleted`."""
    return await service.batches_of_guild(
        session, principal.tenant_id, guild_id, status=status, include_completed=include_completed
    )


@router.post("/schedule/{schedule_id}/cancel")
async def cancel(
    schedule_id: BatchId, principal: Bot, session: SessionDep, league: LeagueDep
) -> dict[str, Any]:
    """Cancel a PENDING batch."""
    return await league.cancel_batch(session, principal.tenant_id, schedule_id)


@router.get("/guilds/{guild_id}")
async def guild_settings(
    guild_id: GuildPath, principal: Bot, session: SessionDep
) -> dict[str, Any]:
    """The guild's webhook (masked) and MMR rules."""
    return await service.guild_settings(session, principal.tenant_id, guild_id)


@router.put("/guilds/{guild_id}")
async def set_guild_settings(
    guild_id: GuildPath,
    body: GuildSettingsIn,
    principal: Bot,
    session: SessionDep,
    league: LeagueDep,
) -> dict[str, Any]:
    """Set the guild's webhook for rank and rating changes (`webhookUrl`, null to remove) and
    its MMR rules (`mmr`, null for the defaults); fields left out stay as they are."""
    changes: dict[str, Any] = {}
    if "webhook_url" in body.model_fields_set:
        changes["webhook_url"] = body.webhook_url
    if "mmr" in body.model_fields_set:
        changes["mmr"] = body.mmr
    return await league.set_guild_settings(
        session, principal.tenant_id, guild_id, webhook_kind=body.webhook_kind, **changes
    )
