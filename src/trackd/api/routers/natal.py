"""A user's own birth chart: `/v1/me/natal`.

The user is the token's; a token that names no user has no chart. A reader token reads but
does not change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from trackd.access.deps import RuntimeDep, SessionDep
from trackd.api.deps import CurrentPrincipal
from trackd.api.errors import ApiError
from trackd.domain.access import Principal, Role
from trackd.modules import natal
from trackd.modules.transits import TransitsModule, ensure_refresh_schedule
from trackd.store.engine import transaction

router = APIRouter(prefix="/v1/me/natal", tags=["cosmic tracking"])


class NatalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    birth: datetime = Field(
        description="The birth instant: in UTC or with an offset ('1990-05-01T10:00:00Z'), or "
        "a local wall-clock time without offset ('1990-05-01T12:00:00') with `timezone`.",
        examples=["1990-05-01T12:00:00"],
    )
    timezone: Annotated[str | None, Field(max_length=100)] = Field(
        default=None,
        description="IANA zone of a local birth time, e.g. 'Europe/Paris'. A local time that "
        "happened twice or never in that zone (a clock change) is refused with 422.",
        examples=["Europe/Paris"],
    )
    latitude: float = Field(gt=-90, lt=90, description="Degrees north (south negative).")
    longitude: float = Field(ge=-180, le=180, description="Degrees east (west negative).")


def _user(principal: Principal, *, changes: bool = False) -> str:
    if principal.user_id is None:
        raise ApiError(403, "this token names no user; use a user's token for /v1/me/natal")
    if changes and principal.role is Role.READER:
        raise ApiError(403, "a reader token may not change a natal chart")
    return principal.user_id


@router.put("")
async def put_chart(
    body: NatalIn, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Store your birth instant and place; the chart (Sun … Pluto, ASC, MC) is computed now.

    The tenant's daily transit refresh is scheduled with the first chart."""
    user = _user(principal, changes=True)
    module = TransitsModule()
    config = (
        await runtime.module_configs.config(principal.tenant_id, module)
        if runtime.module_configs is not None
        else module.default_config()
    )
    try:
        async with transaction(session):
            chart = await natal.set_chart(
                session,
                principal.tenant_id,
                user,
                birth=body.birth,
                timezone=body.timezone,
                latitude=body.latitude,
                longitude=body.longitude,
            )
            await ensure_refresh_schedule(session, principal.tenant_id, config)
    except natal.InvalidChart as exc:
        raise ApiError(422, str(exc), code="invalid_birth") from None
    return natal.chart_view(chart)


@router.get("", responses={404: {"description": "You have stored no chart."}})
async def get_chart(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Your chart: the birth data you gave and the points computed from it."""
    chart = await natal.get_chart(session, principal.tenant_id, _user(principal))
    if chart is None:
        raise ApiError(404, "you have no natal chart; store one with PUT /v1/me/natal")
    return natal.chart_view(chart)


@router.delete("", status_code=204, responses={404: {"description": "No chart to delete."}})
async def delete_chart(principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Delete your chart (your transit history stays until its retention ends)."""
    user = _user(principal, changes=True)
    async with transaction(session):
        deleted = await natal.delete_chart(session, principal.tenant_id, user)
    if not deleted:
        raise ApiError(404, "you have no natal chart to delete")
    return Response(status_code=204)
