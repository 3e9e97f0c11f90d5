"""Request bodies of the league tracker routes (camelCase, as the league's bot sends them;
snake_case is accepted too), and the error mapping those routes share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.api.errors import ApiError
from trackd.domain.channels import InvalidChannel
from trackd.domain.schedules import InvalidSchedule
from trackd.domain.trackers import TrackerRuleError
from trackd.modules.mmr import MmrError
from trackd.modules.trackers.service import TrackerForbidden
from trackd.runtime import Runtime
from trackd.scheduling.service import announce_polls
from trackd.sources.base import InvalidTarget
from trackd.sources.rocket_league_stats import Mode
from trackd.store.models import PollRow

log = logging.getLogger(__name__)

GuildId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]
UserId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]
Url = Annotated[str, Field(max_length=2048)]
UserData = Annotated[dict[str, Any], Field(max_length=50)]


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
    mmr: dict[str, Any] | None = None


@contextlib.contextmanager
def rules() -> Iterator[None]:
    """Rule errors of the tracker module as HTTP errors with their messages."""
    try:
        yield
    except TrackerForbidden as exc:
        raise ApiError(403, str(exc)) from None
    except (
        TrackerRuleError,
        InvalidChannel,
        InvalidSchedule,
        InvalidTarget,
        MmrError,
    ) as exc:
        raise ApiError(400, str(exc)) from None


@contextlib.asynccontextmanager
async def transaction(session: AsyncSession) -> AsyncIterator[None]:
    """Commit what the block did, or roll it back if it raised. The session may already be
    in a transaction (the token lookup began one), so this is not `session.begin()`."""
    try:
        yield
    except BaseException:
        await session.rollback()
        raise
    await session.commit()


def announce(runtime: Runtime, polls: Sequence[PollRow]) -> None:
    """Wake a worker for committed polls, in the background: the answer does not wait for
    the bus, and if the bus is down a worker's sweep finds the polls anyway. On the
    in-process bus only an in-process poller could hear the request, so without one there
    is nothing to wake."""
    if not polls:
        return
    if runtime.poller is None and runtime.settings.bus_url.startswith("memory:"):
        return
    task = asyncio.create_task(_announce(runtime, list(polls)), name="trackd-announce-polls")
    _announcing.add(task)
    task.add_done_callback(_announcing.discard)


_announcing: set[asyncio.Task[None]] = set()


async def _announce(runtime: Runtime, polls: list[PollRow]) -> None:
    try:
        async with asyncio.timeout(runtime.settings.publish_timeout_s):
            await announce_polls(runtime.bus, polls)
    except Exception:
        log.warning("poll requests not announced; workers will sweep them", exc_info=True)


def now_utc() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
