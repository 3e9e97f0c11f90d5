"""A user's own notification channels: `/v1/me/channels`.

The user is the token's. A channel's URL is a credential: it leaves only masked, as
`ChannelView` shows it, and a webhook's signing secret never leaves at all. A channel added
here hears the user's trackers, those registered before it and those registered after.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from trackd.access.deps import SessionDep
from trackd.api.deps import CurrentPrincipal, LeagueDep
from trackd.domain.channels import MAX_URL
from trackd.league import service
from trackd.store.repos.channels import ChannelView

router = APIRouter(prefix="/v1/me/channels", tags=["notification channels"])


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook", "discord", "apprise"]
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL)]
    name: Annotated[str | None, Field(max_length=255)] = None
    secret: Annotated[str | None, Field(max_length=512)] = None


def _json(view: ChannelView) -> dict[str, Any]:
    shown = asdict(view)
    shown["id"] = str(view.id)
    shown["created_at"] = view.created_at.isoformat()
    return shown


@router.post("", status_code=201)
async def create(
    body: ChannelIn, principal: CurrentPrincipal, session: SessionDep, league: LeagueDep
) -> dict[str, Any]:
    """Add a channel (webhook, discord or apprise) and subscribe it to your trackers."""
    view = await league.add_channel(
        session,
        principal,
        kind=body.kind,
        url=body.url,
        name=body.name,
        secret=body.secret,
    )
    return _json(view)


@router.get("")
async def list_mine(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Your channels, oldest first, URLs masked."""
    return {"channels": [_json(view) for view in await service.my_channels(session, principal)]}


@router.delete("/{channel_id}", status_code=204)
async def delete(
    channel_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep, league: LeagueDep
) -> Response:
    """Remove your channel, its subscriptions and its undelivered messages."""
    await league.remove_channel(session, principal, channel_id)
    return Response(status_code=204)
