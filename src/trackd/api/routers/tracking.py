"""Cosmic tracking over HTTP: `/v1/tracking/...`.

Any token of a tenant reads what its tenant tracks: space weather and the Moon are the same for
every user and stored once per tenant. A personal history (a user's transits) is its user's:
another user's is 403 (admin and service tokens may read any user of their tenant), and a user
the tenant does not know is 404. Every read says `as_of` (when what it shows was true) and
`stale` (whether the last good reading is older than its module allows).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from trackd.access.deps import SessionDep
from trackd.api.deps import CurrentPrincipal
from trackd.api.errors import ApiError
from trackd.domain import cursors
from trackd.domain.access import Principal, Role
from trackd.domain.aurora import aurora_visibility
from trackd.modules import service
from trackd.modules.tracking import (
    NotYourChannel,
    ensure_schedules,
    follow,
    history_of,
    read_history,
    read_module,
    reading_view,
    readings_view,
)
from trackd.modules.tracking import by_key as module_by_key
from trackd.store.engine import transaction
from trackd.store.repos.tokens import user_exists

router = APIRouter(prefix="/v1/tracking", tags=["tracking"])

ModuleName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]
HistoryKey = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]
UserId = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=255,
        description="Whose personal history (default: the token's user); ignored by shared "
        "histories.",
    ),
]


def _now() -> datetime:
    return datetime.now(UTC)


@router.get(
    "/solar",
    responses={409: {"description": "The solar module is switched off for the tenant."}},
)
async def solar(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Space weather from the tenant's latest NOAA SWPC reading: Kp and storm level (and which
    Kp decided it), X-ray class, the latest flare, solar wind and Bz, judged by the module's
    thresholds. A failed poll invents nothing: the last good reading stays, `stale` with its
    `age_seconds`; before any poll `data.reading` is null."""
    return reading_view(
        await read_module(session, principal.tenant_id, principal.user_id, "solar", _now())
    )


@router.get(
    "/solar/location",
    responses={409: {"description": "The solar module is switched off for the tenant."}},
)
async def aurora(
    principal: CurrentPrincipal,
    session: SessionDep,
    latitude: Annotated[float, Query(ge=-90, le=90, description="Degrees north.")],
    longitude: Annotated[float, Query(ge=-180, le=180, description="Degrees east.")],
) -> dict[str, Any]:
    """Whether an aurora may be seen from a place at the latest Kp: the place's corrected
    geomagnetic latitude (AACGM-v2; null near the magnetic equator) against the auroral oval's
    equatorward edge at that Kp (Gussenhoven et al. 1983); the centred-dipole latitude is
    given for reference. `model` states them."""
    solar = reading_view(
        await read_module(session, principal.tenant_id, principal.user_id, "solar", _now())
    )
    storm = solar["data"].get("storm") or {}
    kp = storm.get("kp")
    answer: dict[str, Any] = {"as_of": solar["as_of"], "stale": solar["stale"]}
    if kp is None:
        return {
            **answer,
            "visibility": None,
            "reason": "no Kp reading yet: the noaa_swpc source has not been polled",
        }
    return {**answer, **aurora_visibility(latitude, longitude, float(kp), _now())}


@router.get(
    "/lunar",
    responses={409: {"description": "The lunar module is switched off for the tenant."}},
)
async def lunar(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """The Moon now: phase angle (0-360°), waxing or waning, phase name, illuminated fraction,
    sign and degree, distance, the next quarter instants, the next sign ingress and the
    void-of-course period (computed from DE421, no network)."""
    return reading_view(
        await read_module(session, principal.tenant_id, principal.user_id, "lunar", _now())
    )


@router.get("/all")
async def all_tracking(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Every active tracking module's reading for the token's user, by module name."""
    now = _now()
    contributions = await service.synthesis(
        session, principal.tenant_id, principal.user_id, now, layer="tracking"
    )
    return readings_view(contributions)


async def _whose(principal: Principal, session: SessionDep, user: str | None) -> str | None:
    """The user a personal history is read for: the token's own unless another is named."""
    if user is None or user == principal.user_id:
        return principal.user_id
    if principal.role not in (Role.ADMIN, Role.SERVICE):
        raise ApiError(403, "a user's history is theirs: this token may read only its own")
    if not await user_exists(session, principal.tenant_id, user):
        raise ApiError(404, f"your tenant has no user {user!r}")
    return user


@router.get(
    "/history/{key}",
    responses={
        400: {"description": "A damaged cursor, or `since` not before `until`."},
        403: {"description": "Another user's personal history."},
        404: {"description": "No such history key, or no such user in the tenant."},
    },
)
async def history(
    key: HistoryKey,
    principal: CurrentPrincipal,
    session: SessionDep,
    since: Annotated[
        datetime | None, Query(description="Entries taken at or after (ISO-8601).")
    ] = None,
    until: Annotated[datetime | None, Query(description="Entries taken before (ISO-8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the page before.")
    ] = None,
    user: UserId = None,
) -> dict[str, Any]:
    """A tracking history (`solar_tracking`, `lunar_tracking`, or a module's own key), newest
    first, each entry `{"timestamp", "data"}`, paged with `next_cursor`."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ApiError(422, f"{name} must carry a time zone, e.g. 2026-09-01T00:00:00Z")
    if since and until and since >= until:
        raise ApiError(400, "since must be before until")
    after = None
    if cursor is not None:
        try:
            after = cursors.decode(cursor)
        except cursors.BadCursor:
            raise ApiError(400, "cursor is damaged: start again without it") from None
    module = module_by_key(key)
    whose = await _whose(principal, session, user)
    if history_of(module).per_user and not whose:
        raise ApiError(403, f"{key} is kept per user: use a user's token, or name ?user=")
    page = await read_history(
        session,
        principal.tenant_id,
        key,
        whose,
        since=since,
        until=until,
        limit=limit,
        after=after,
    )
    newest = page.items[0].taken_at if page.items else None
    return {
        "key": key,
        "module": module.name,
        "as_of": newest.isoformat() if newest else None,
        "stale": newest is None,
        "entries": [
            {"timestamp": item.taken_at.isoformat(), "season": item.season, "data": item.data}
            for item in page.items
        ],
        "next_cursor": cursors.encode(page.next_after) if page.next_after else None,
    }


@router.put(
    "/{module}/channels/{channel_id}",
    responses={
        403: {"description": "Not a user's token, a reader's, or another user's channel."},
        404: {"description": "No such tracking module or channel in the tenant."},
    },
)
async def follow_module(
    module: ModuleName,
    channel_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> dict[str, Any]:
    """Send a tracking module's events (e.g. solar storms) to one of your own channels
    (`/v1/me/channels`); doing it twice is once."""
    return await _follow(principal, session, module, channel_id, on=True)


@router.delete(
    "/{module}/channels/{channel_id}",
    responses={
        403: {"description": "Not a user's token, a reader's, or another user's channel."},
        404: {"description": "No such tracking module or channel in the tenant."},
    },
)
async def unfollow_module(
    module: ModuleName,
    channel_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
) -> dict[str, Any]:
    """Stop sending a tracking module's events to your channel."""
    return await _follow(principal, session, module, channel_id, on=False)


async def _follow(
    principal: Principal, session: SessionDep, module: str, channel_id: uuid.UUID, *, on: bool
) -> dict[str, Any]:
    if principal.user_id is None or principal.role is Role.READER:
        raise ApiError(403, "use a user's token (not a reader's) to route events to your channel")
    try:
        async with transaction(session):
            changed = await follow(
                session, principal.tenant_id, principal.user_id, module, channel_id, on=on
            )
    except NotYourChannel as exc:
        raise ApiError(403, str(exc)) from None
    return {"module": module, "channel_id": str(channel_id), "following": on, "changed": changed}


@router.post(
    "/schedules",
    responses={403: {"description": "Only an admin token creates its tenant's schedules."}},
)
async def schedules(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Create the hourly polls of the tenant's active tracking modules (solar: NOAA SWPC;
    lunar: computed locally) unless they exist; calling again changes nothing."""
    if principal.role is not Role.ADMIN:
        raise ApiError(403, f"only an admin token creates schedules, not a {principal.role}")
    async with transaction(session):
        done = await ensure_schedules(session, principal.tenant_id)
    return {
        "schedules": [
            {"module": s.module, "schedule_id": s.schedule_id, "created": s.created} for s in done
        ]
    }
