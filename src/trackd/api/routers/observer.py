"""The observer's runs and findings: `/v1/observer/...`.

The user is the token's, or `user` for an admin or service token (and, for reads, a reader
token) of the tenant. A user token naming another user is refused (403); a user of whom the
tenant holds no journal, and a run of another tenant, are not found (404).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.access.deps import RuntimeDep, SessionDep
from trackd.api.deps import CurrentPrincipal
from trackd.api.errors import ApiError
from trackd.domain.access import Principal, Role
from trackd.modules import journal, observer_runs
from trackd.modules.observer_runs import RunNotFound
from trackd.scheduling import announce_polls
from trackd.store.engine import transaction
from trackd.store.repos import observer as observer_repo

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/observer", tags=["observer"])

UserQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        description="Whose: default the token's user. Only admin, reader and service tokens "
        "may name another user of their tenant.",
    ),
]


class AnalyzeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=100,
            description="Whose journal: default the token's user; admin and service tokens "
            "may name another user of their tenant.",
        ),
    ] = None


async def _whom(
    principal: Principal, user: str | None, session: AsyncSession, *, run: bool = False
) -> str:
    own = principal.user_id
    if run and principal.role is Role.READER:
        raise ApiError(403, "a reader token may not start a run")
    if user is None or user == own:
        if own is None:
            raise ApiError(403, "this token names no user; name one with `user`")
        return own
    if principal.role is Role.USER:
        raise ApiError(403, "a user token reads and runs only its own user's observer")
    if not await observer_repo.has_journal(session, principal.tenant_id, user):
        raise ApiError(404, f"no user {user!r} with a journal in this tenant")
    return user


@router.post(
    "/analyze",
    status_code=202,
    responses={
        403: {"description": "Another user's analysis asked with a user token, or a reader."},
        404: {"description": "No such user with a journal in this tenant."},
    },
)
async def analyze(
    principal: CurrentPrincipal,
    session: SessionDep,
    runtime: RuntimeDep,
    body: AnalyzeIn | None = None,
) -> dict[str, Any]:
    """Run the user's analysis now: answers the run and its task id at once; the run is a
    tracked task (its events on the timeline) that a worker executes."""
    async with transaction(session):
        whom = await _whom(principal, body.user if body else None, session, run=True)
        if not await observer_repo.has_journal(session, principal.tenant_id, whom):
            raise ApiError(404, f"user {whom!r} has no journal entries: record some first")
        config = await journal.observer_config(session, principal.tenant_id)
        run, poll = await observer_runs.request_analysis(
            session, principal.tenant_id, whom, config, requested_by=principal.user_id
        )
        shown = {"task_id": str(poll.id), "run_id": str(run.id), "user_id": whom}
    if runtime.poll_requests_heard:
        # Wakes a worker at once; without it the poll waits for a worker's next sweep.
        try:
            async with asyncio.timeout(runtime.settings.publish_timeout_s):
                await announce_polls(runtime.bus, [poll])
        except TimeoutError:
            log.warning("observer run %s not announced; workers will sweep it", poll.id)
    return {**shown, "status": "pending", "run": f"/v1/observer/runs/{shown['run_id']}"}


@router.get(
    "/findings",
    responses={
        403: {"description": "Another user's findings asked with a user token."},
        404: {"description": "No such user with a journal in this tenant."},
    },
)
async def findings(
    principal: CurrentPrincipal,
    session: SessionDep,
    user: UserQuery = None,
    history: Annotated[bool, Query(description="Also the findings that stopped holding.")] = False,
    max_q: Annotated[
        float | None, Query(gt=0, le=1, description="Only findings with q at or under this.")
    ] = None,
    status: Annotated[
        Literal["holding", "stopped"] | None,
        Query(description="Only the findings in this status (implies `history` for stopped)."),
    ] = None,
) -> dict[str, Any]:
    """The user's findings: those the latest run confirmed; with `history`, also those that
    stopped holding (kept, marked `stopped`)."""
    whom = await _whom(principal, user, session)
    found = await observer_runs.findings(
        session, principal.tenant_id, whom, history=history or status is not None, min_q=max_q
    )
    if status is not None:
        found = [f for f in found if f["status"] == status]
    return {"user_id": whom, "findings": found}


@router.get(
    "/runs",
    responses={
        403: {"description": "Another user's runs asked with a user token."},
        404: {"description": "No such user with a journal in this tenant."},
    },
)
async def runs(
    principal: CurrentPrincipal,
    session: SessionDep,
    user: UserQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """The user's runs, newest first."""
    whom = await _whom(principal, user, session)
    return {
        "user_id": whom,
        "runs": await observer_runs.runs(session, principal.tenant_id, whom, limit),
    }


@router.get(
    "/runs/{run_id}",
    responses={
        403: {"description": "Another user's run asked with a user token."},
        404: {"description": "No such run in this tenant."},
    },
)
async def run(
    run_id: uuid.UUID, principal: CurrentPrincipal, session: SessionDep
) -> dict[str, Any]:
    """One run: tests run and skipped (each with its reason), what it found, or that nothing
    passed."""
    try:
        row = await observer_runs.run(session, principal.tenant_id, run_id)
    except RunNotFound as exc:
        raise ApiError(404, str(exc)) from None
    if principal.role is Role.USER and row.user_id != principal.user_id:
        raise ApiError(403, "a user token reads only its own user's runs")
    return observer_runs.run_view(row, skipped=True)
