"""Request bodies of the league tracker routes (camelCase, as the league's bot sends them;
snake_case is accepted too), and their id path parameters."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import Depends, Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from trackd.api.openapi import self_contained
from trackd.errors import NotFound
from trackd.league.mmr import MmrConfig
from trackd.sources.rocket_league_stats import Mode

log = logging.getLogger(__name__)

GuildId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]
UserId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]
Url = Annotated[str, Field(max_length=2048)]
UserData = Annotated[dict[str, Any], Field(max_length=50)]


def _as_id(text: str, missing: str) -> uuid.UUID:
    # An id that is not even a UUID names nothing: to the caller that is a missing object
    # (404), not a malformed request.
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(missing) from None


def _tracker_id(
    tracker_id: Annotated[str, Path(description="The tracker's id (a UUID).")],
) -> uuid.UUID:
    return _as_id(tracker_id, "no such tracker: tracker ids are UUIDs")


def _batch_id(
    schedule_id: Annotated[str, Path(description="The batch's id (a UUID).")],
) -> uuid.UUID:
    return _as_id(schedule_id, "no tracker processing schedule: their ids are UUIDs")


TrackerId = Annotated[uuid.UUID, Depends(_tracker_id)]
"""A `{tracker_id}` path parameter; one that is not a UUID is a 404 like an unknown one."""
BatchId = Annotated[uuid.UUID, Depends(_batch_id)]
"""A `{schedule_id}` path parameter of a guild's batch, read as TrackerId is."""


class _In(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RegisterIn(_In):
    urls: Annotated[list[Url], Field(max_length=100)]
    guild_id: GuildId | None = None
    user_data: UserData | None = None


class AddIn(_In):
    url: Url
    guild_id: GuildId | None = None
    user_data: UserData | None = None


class RegisterForIn(RegisterIn):
    user_id: UserId


class AddForIn(AddIn):
    user_id: UserId


class UpdateIn(_In):
    display_name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    is_active: bool | None = None


class ManualPlaylistIn(_In):
    rank: Annotated[str, Field(max_length=100)] | None = None
    tier: Annotated[int, Field(ge=0, le=100)] | None = None
    division: Annotated[str, Field(max_length=50)] | None = None
    division_number: Annotated[int, Field(ge=1, le=5)] | None = None
    rating: Annotated[int, Field(ge=0, le=10_000)] | None = None
    matches_played: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    win_streak: Annotated[int, Field(ge=-1000, le=1000)] | None = None
    peak_rating: Annotated[int, Field(ge=0, le=10_000)] | None = None


class ManualSnapshotIn(_In):
    season: Annotated[int, Field(ge=1, le=1000)]
    playlists: dict[Mode, ManualPlaylistIn]
    taken_at: AwareDatetime | None = None


class ProcessIn(_In):
    guild_id: GuildId


class ScheduleIn(_In):
    guild_id: GuildId
    scheduled_at: AwareDatetime
    metadata: Annotated[dict[str, Any], Field(max_length=50)] | None = None


class GuildSettingsIn(_In):
    webhook_url: Url | None = None
    webhook_kind: Literal["discord", "webhook", "apprise"] | None = None
    # Validated by the route, which answers a 400 in the rules' own words; documented as
    # the rules' shape.
    mmr: Annotated[dict[str, Any], WithJsonSchema(self_contained(MmrConfig))] | None = None
