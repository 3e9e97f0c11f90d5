"""League trackers for the league's bot: `/internal/trackers/...` (seed 002's
InternalTrackerController), for service and admin tokens only.

The bot acts for the users it names in bodies (`userId`); the tenant is still the token's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import ValidationError

from trackd.access.deps import RuntimeDep, SessionDep
from trackd.api.deps import CurrentPrincipal
from trackd.api.errors import ApiError
from trackd.api.routers.tracker_flows import (
    BatchId,
    add_tracker,
    announce,
    now_utc,
    register_trackers,
    rules,
    transaction,
)
from trackd.api.routers.tracker_schemas import (
    AddForIn,
    GuildSettingsIn,
    ProcessIn,
    RegisterForIn,
    ScheduleIn,
)
from trackd.domain.access import Principal, Role
from trackd.modules.mmr import MmrConfig, problems
from trackd.modules.trackers import batches, guilds, service
from trackd.outbound.http import AddressGuard


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
    body: RegisterForIn, principal: Bot, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Register 1 to 4 trackers for `userId`, who must have none yet."""
    who = service.Registration(
        user_id=body.user_id,
        guild_id=body.guild_id,
        user_data=body.user_data,
        created_by=principal.user_id or principal.role.value,
    )
    return {
        "trackers": await register_trackers(session, runtime, principal.tenant_id, who, body.urls)
    }


@router.post("/add", status_code=201)
async def add(
    body: AddForIn, principal: Bot, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Add a tracker for `userId`, up to 4 live ones."""
    who = service.Registration(
        user_id=body.user_id,
        guild_id=body.guild_id,
        user_data=body.user_data,
        created_by=principal.user_id or principal.role.value,
    )
    return await add_tracker(session, runtime, principal.tenant_id, who, body.url)


@router.post("/process-pending", status_code=202)
async def process_pending(
    principal: Bot, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Scrape every active tracker never scraped or whose last scrape failed."""
    async with transaction(session):
        polls, skipped = await service.process_pending(
            session, principal.tenant_id, requested_by=principal.user_id, now=now_utc()
        )
    announce(runtime, polls)
    return {"queued": len(polls), "alreadyQueued": skipped}


@router.post("/process", status_code=202)
async def process_guild(
    body: ProcessIn, principal: Bot, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Scrape every active tracker of a guild now."""
    async with transaction(session):
        polls, skipped = await service.process_guild(
            session,
            principal.tenant_id,
            body.guild_id,
            requested_by=principal.user_id,
            now=now_utc(),
        )
    announce(runtime, polls)
    return {"guildId": body.guild_id, "queued": len(polls), "alreadyQueued": skipped}


@router.post("/schedule", status_code=201)
async def schedule(body: ScheduleIn, principal: Bot, session: SessionDep) -> dict[str, Any]:
    """Schedule the guild's trackers to be scraped at `scheduledAt` (in the future)."""
    with rules():
        async with transaction(session):
            return await batches.schedule(
                session,
                principal.tenant_id,
                body.guild_id,
                body.scheduled_at,
                metadata=body.metadata,
                created_by=principal.user_id or principal.role.value,
                now=now_utc(),
            )


@router.get("/schedule/guild/{guild_id}")
async def schedules(
    guild_id: GuildPath,
    principal: Bot,
    session: SessionDep,
    status: batches.BatchStatus | None = None,
    include_completed: Annotated[bool, Query(alias="includeCompleted")] = True,
) -> dict[str, Any]:
    """The guild's scheduled batches by time; `status` wins over `includeCompleted`."""
    shown = await batches.list_for_guild(
        session, principal.tenant_id, guild_id, status=status, include_completed=include_completed
    )
    return {"guildId": guild_id, "schedules": shown}


@router.post("/schedule/{schedule_id}/cancel")
async def cancel(schedule_id: BatchId, principal: Bot, session: SessionDep) -> dict[str, Any]:
    """Cancel a PENDING batch."""
    with rules():
        async with transaction(session):
            return await batches.cancel(session, principal.tenant_id, schedule_id, now=now_utc())


@router.get("/guilds/{guild_id}")
async def guild_settings(
    guild_id: GuildPath, principal: Bot, session: SessionDep
) -> dict[str, Any]:
    """The guild's webhook (masked) and MMR rules."""
    return await guilds.read_settings(session, principal.tenant_id, guild_id)


@router.put("/guilds/{guild_id}")
async def set_guild_settings(
    guild_id: GuildPath,
    body: GuildSettingsIn,
    principal: Bot,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Set the guild's webhook for rank and rating changes (`webhookUrl`, null to remove) and
    its MMR rules (`mmr`, null for the defaults); fields left out stay as they are."""
    config: MmrConfig | None = None
    if body.mmr is not None:
        try:
            config = MmrConfig.model_validate(body.mmr)
        except ValidationError as exc:
            raise ApiError(400, f"mmr: {problems(exc)}") from None
    now = now_utc()
    with rules():
        async with transaction(session):
            if "webhook_url" in body.model_fields_set:
                await guilds.set_webhook(
                    session,
                    principal.tenant_id,
                    guild_id,
                    body.webhook_url,
                    kind=body.webhook_kind,
                    guard=AddressGuard(allow_private=runtime.settings.allow_private_fetch),
                    now=now,
                )
            if "mmr" in body.model_fields_set:
                await guilds.set_mmr(session, principal.tenant_id, guild_id, config, now=now)
            return await guilds.read_settings(session, principal.tenant_id, guild_id)
