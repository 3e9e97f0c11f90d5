"""What the league tracker routes share: their error mapping, the transaction they own, waking
workers for the scrapes they asked for, and registration for a user (by the user or the bot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Path
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.api.errors import ApiError
from trackd.bus.urls import in_process
from trackd.domain.channels import InvalidChannel
from trackd.domain.schedules import InvalidSchedule
from trackd.domain.trackers import TrackerRuleError
from trackd.modules.mmr import MmrError
from trackd.modules.trackers import service
from trackd.modules.trackers.service import TrackerForbidden
from trackd.modules.trackers.views import trackers_json
from trackd.runtime import Runtime
from trackd.scheduling.service import announce_polls
from trackd.sources.base import InvalidTarget
from trackd.store.models import PollRow

log = logging.getLogger(__name__)


def _as_id(text: str, missing: str) -> uuid.UUID:
    # An id that is not even a UUID names nothing: to the caller that is a missing object
    # (404), not a malformed request.
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ApiError(404, missing) from None


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


async def register_trackers(
    session: AsyncSession,
    runtime: Runtime,
    tenant_id: str,
    who: service.Registration,
    urls: Sequence[str],
) -> list[dict[str, Any]]:
    """Register 1 to 4 trackers for a user who has none yet; their JSON."""
    with rules():
        async with transaction(session):
            outcome = await service.register(
                session, runtime.settings, tenant_id, who, urls, now=now_utc()
            )
            shown = await trackers_json(session, tenant_id, outcome.trackers)
    announce(runtime, outcome.polls)
    return shown


async def add_tracker(
    session: AsyncSession, runtime: Runtime, tenant_id: str, who: service.Registration, url: str
) -> dict[str, Any]:
    """Add one tracker for a user, up to the limit of live ones; its JSON."""
    with rules():
        async with transaction(session):
            outcome = await service.add(
                session, runtime.settings, tenant_id, who, url, now=now_utc()
            )
            [shown] = await trackers_json(session, tenant_id, outcome.trackers)
    announce(runtime, outcome.polls)
    return shown


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
    if runtime.poller is None and in_process(runtime.settings.bus_url):
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
    return datetime.now(UTC)
