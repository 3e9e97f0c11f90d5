"""A user's transits and the coming events: `/v1/tracking/transits`, `/v1/tracking/upcoming`.

The user is the token's, or `?user=` for an admin, reader or service token of the tenant. A
user token asking for another user is refused (403); a user of whom the tenant holds no chart
is not found (404), which is what another tenant's user is. The caller's own transits without
a chart are a 409 that says how to store one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.access.deps import RuntimeDep, SessionDep
from trackd.api.deps import CurrentPrincipal
from trackd.api.errors import ApiError
from trackd.domain.access import Principal, Role
from trackd.modules import transits
from trackd.modules.natal import get_chart
from trackd.modules.transits import MAX_UPCOMING_DAYS, TransitsConfig, TransitsModule
from trackd.runtime import Runtime

router = APIRouter(prefix="/v1/tracking", tags=["cosmic tracking"])

UserQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        description="Whose transits: default the token's user. Only admin, reader and service "
        "tokens may name another user of their tenant.",
    ),
]
MODULE = TransitsModule()

NO_CHART = "store your birth data first: PUT /v1/me/natal with birth, timezone, latitude, longitude"


async def _whom(principal: Principal, user: str | None, session: AsyncSession) -> str:
    """The user asked about, once the caller may read them."""
    own = principal.user_id
    if user is None or user == own:
        if own is None:
            raise ApiError(403, "this token names no user; pass ?user=ID")
        return own
    if principal.role is Role.USER:
        raise ApiError(403, "a user token reads only its own user's transits")
    if await get_chart(session, principal.tenant_id, user) is None:
        raise ApiError(404, f"no user {user!r} with a natal chart in this tenant")
    return user


async def _config(runtime: Runtime, tenant_id: str) -> TransitsConfig:
    cache = runtime.module_configs
    if cache is None:  # pragma: no cover - Runtime.build always makes one
        return MODULE.default_config()
    effective = await cache.get(tenant_id, MODULE.name)
    if not effective.is_active:
        raise ApiError(
            409,
            "the transits module is switched off for this tenant; an admin switches it on "
            "with PUT /v1/modules/transits/config",
        )
    return MODULE.parse_config(effective.config)


@router.get(
    "/transits",
    responses={
        403: {"description": "Another user's transits asked with a user token."},
        404: {"description": "No such user with a chart in this tenant."},
        409: {"description": "You have no natal chart (the message says how to store one)."},
    },
)
async def get_transits(
    principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep, user: UserQuery = None
) -> dict[str, Any]:
    """The user's transits: Sun … Pluto now (speed, retrograde), their aspects to the natal
    points (orb, exact, applying or separating) and the planets' stations around now.

    `as_of` is when the reading was true: the daily refresh's instant, or now when no reading
    is stored yet; `stale` is true when it is older than the module's `stale_after_hours`."""
    whom = await _whom(principal, user, session)
    config = await _config(runtime, principal.tenant_id)
    now = datetime.now(UTC)
    found = await transits.current_transits(session, principal.tenant_id, whom, config, now)
    if found is None:
        raise ApiError(409, f"no natal chart for {whom!r}: {NO_CHART}", code="no_chart")
    return found.view(whom)


@router.get(
    "/upcoming",
    responses={
        403: {"description": "Another user's events asked with a user token."},
        404: {"description": "No such user with a chart in this tenant."},
        409: {"description": "The transits module is switched off for the tenant."},
    },
)
async def get_upcoming(
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    days: Annotated[
        int, Query(ge=1, le=MAX_UPCOMING_DAYS, description="How far ahead, 1 to 90 days.")
    ] = 30,
    user: UserQuery = None,
) -> dict[str, Any]:
    """The next `days` days: the Moon's quarters and sign ingresses, the planets' stations,
    and the exact instants of transits to the user's chart (found by root-finding on the
    ephemeris, to the second; `exact_transits` is null without a chart)."""
    whom = await _whom(principal, user, session)
    config = await _config(runtime, principal.tenant_id)
    now = datetime.now(UTC)
    events = await transits.upcoming(session, principal.tenant_id, whom, config, now, days)
    return {"user_id": whom, **events, "as_of": now.isoformat(), "stale": False}
