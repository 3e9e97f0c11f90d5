"""A user's own journal and settings: `/v1/me/journal` and `/v1/me/settings`.

The user is the token's: another user's entries are never read, changed or counted here (an
entry id of another user's is simply not found). Each entry is returned with the day it is
on in the user's time zone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trackd.access.deps import SessionDep
from trackd.api.deps import CurrentPrincipal
from trackd.api.errors import ApiError
from trackd.domain.access import Principal, Role
from trackd.domain.cursors import BadCursor, decode, encode
from trackd.modules import journal
from trackd.modules.journal import InvalidEntry, JournalEntryIn
from trackd.store.engine import transaction

router = APIRouter(tags=["journal"])

ENTRY = "/v1/me/journal/{entry_id}"


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            description="IANA time zone (Europe/Paris): decides which day an entry is on.",
        ),
    ]


def _user(principal: Principal, *, changes: bool = False) -> str:
    if principal.user_id is None:
        raise ApiError(403, "this token names no user; use a user's token for /v1/me/journal")
    if changes and principal.role is Role.READER:
        raise ApiError(403, "a reader token may not change the journal or settings")
    return principal.user_id


@contextlib.contextmanager
def _invalid() -> Iterator[None]:
    try:
        yield
    except InvalidEntry as exc:
        raise ApiError(422, str(exc)) from None


@router.post(
    "/v1/me/journal",
    status_code=201,
    responses={200: {"description": "An entry with this id was already there: updated or same."}},
)
async def create(
    body: JournalEntryIn, principal: CurrentPrincipal, session: SessionDep, response: Response
) -> dict[str, Any]:
    """Record a journal entry. Sent again with the same `id`, it changes nothing (200), or
    updates the entry (200); a new id is 201."""
    user = _user(principal, changes=True)
    async with transaction(session):
        config = await journal.observer_config(session, principal.tenant_id)
        with _invalid():
            row, saved = await journal.record(session, principal.tenant_id, user, body, config)
        zone = await journal.timezone(session, principal.tenant_id, user)
        shown = journal.view(row, zone, config)
    if saved != "new":
        response.status_code = 200
    return {**shown, "saved": saved}


@router.get("/v1/me/journal")
async def list_mine(
    principal: CurrentPrincipal,
    session: SessionDep,
    since: Annotated[AwareDatetime | None, Query(description="Entries at or after.")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Entries before.")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Your entries, newest first, a page at a time: pass `next_cursor` back as `cursor`."""
    user = _user(principal)
    try:
        after = decode(cursor) if cursor else None
    except BadCursor:
        raise ApiError(422, "cursor: not a cursor this API gave; start without one") from None
    rows, following = await journal.page(
        session, principal.tenant_id, user, since=since, until=until, after=after, limit=limit
    )
    config = await journal.observer_config(session, principal.tenant_id)
    zone = await journal.timezone(session, principal.tenant_id, user)
    return {
        "entries": [journal.view(row, zone, config) for row in rows],
        "next_cursor": encode(following) if following else None,
    }


async def _found(session: SessionDep, principal: Principal, user: str, entry_id: str) -> Any:
    row = await journal.get(session, principal.tenant_id, user, entry_id)
    if row is None:
        raise ApiError(404, f"you have no journal entry {entry_id!r}")
    return row


@router.get(ENTRY)
async def read(entry_id: str, principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """One of your entries."""
    user = _user(principal)
    row = await _found(session, principal, user, entry_id)
    config = await journal.observer_config(session, principal.tenant_id)
    return journal.view(row, await journal.timezone(session, principal.tenant_id, user), config)


@router.delete(ENTRY, status_code=204)
async def delete(entry_id: str, principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Delete one of your entries."""
    user = _user(principal, changes=True)
    async with transaction(session):
        if not await journal.remove(session, principal.tenant_id, user, entry_id):
            raise ApiError(404, f"you have no journal entry {entry_id!r}")
    return Response(status_code=204)


@router.get("/v1/me/settings")
async def read_settings(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    """Your settings: `timezone` (UTC until you set one)."""
    user = _user(principal)
    return {"timezone": await journal.timezone(session, principal.tenant_id, user)}


@router.put("/v1/me/settings")
async def write_settings(
    body: SettingsIn, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """Set your time zone (IANA name); the days of your entries follow it."""
    user = _user(principal, changes=True)
    async with transaction(session):
        with _invalid():
            zone = await journal.set_timezone(session, principal.tenant_id, user, body.timezone)
    return {"timezone": zone}
