"""The dashboard's sources: polls (due, running, failed, blocked) with the hosts they wait for,
schedules, and the notification outbox (pending, retrying, dead, with the last error).

Polls and schedules are the operators' view of the tenant (admin, reader and service tokens);
a user token sees the outbox's messages to its own channels only. Channel URLs and URLs in
delivery errors are masked: a webhook's URL is a credential.

Host backoff lives in each worker's memory (`scheduling.hosts`); what the store knows of it
is the blocked polls and the host each waits for, which is what the polls page shows.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from trackd.access.deps import SessionDep
from trackd.domain.access import Principal, Role
from trackd.domain.channels import mask_url, mask_urls
from trackd.domain.polls import PollStatus
from trackd.domain.schedules import ScheduleStatus
from trackd.store.models import utcnow
from trackd.store.repos import outbox, polls, schedules
from trackd.web.auth import Viewer
from trackd.web.pages import PageRoute
from trackd.web.pages_league import own_only
from trackd.web.paging import PAGE_SIZE, PerPage, choice, paged
from trackd.web.render import PageError, page

router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)

POLL_VIEWS = (polls.DUE, *(s.value for s in PollStatus))
Filter = Annotated[str | None, Query(max_length=40)]
SourceFilter = Annotated[str | None, Query(max_length=100)]


def operators_only(principal: Principal) -> None:
    if principal.role is Role.USER:
        raise PageError(403, "polls and schedules are the operators' pages; see your trackers")


@router.get("/polls")
async def poll_list(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    status: Filter = None,
    source: SourceFilter = None,
    before: uuid.UUID | None = None,
    per: PerPage = PAGE_SIZE,
) -> Response:
    """The tenant's polls newest first, how many are in each status, and the blocked hosts."""
    operators_only(principal)
    wanted = choice(status, POLL_VIEWS, "status")
    now = utcnow()
    rows = await polls.page(
        session,
        principal.tenant_id,
        status=wanted,
        source=source or None,
        now=now,
        limit=per + 1,
        before=before,
    )
    context = {
        "principal": principal,
        "listed": paged(request, rows, lambda p: p.id, per),
        "counts": await polls.status_counts(session, principal.tenant_id, now=now),
        "hosts": await polls.blocked_hosts(session, principal.tenant_id),
        "views": POLL_VIEWS,
        "chosen": {"status": wanted or "", "source": source or ""},
        "now": now,
    }
    return page(request, "polls.html", context)


@router.get("/schedules")
async def schedule_list(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    status: Filter = None,
    source: SourceFilter = None,
    before: uuid.UUID | None = None,
    per: PerPage = PAGE_SIZE,
) -> Response:
    """The tenant's schedules newest first: when each fires next, last ran, and missed runs."""
    operators_only(principal)
    wanted = choice(status, [s.value for s in ScheduleStatus], "status")
    rows = await schedules.page(
        session,
        principal.tenant_id,
        status=ScheduleStatus(wanted) if wanted else None,
        source=source or None,
        limit=per + 1,
        before=before,
    )
    context = {
        "principal": principal,
        "listed": paged(request, rows, lambda s: s.id, per),
        "statuses": [s.value for s in ScheduleStatus],
        "chosen": {"status": wanted or "", "source": source or ""},
    }
    return page(request, "schedules.html", context)


@router.get("/outbox")
async def outbox_list(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    status: Filter = None,
    before: uuid.UUID | None = None,
    per: PerPage = PAGE_SIZE,
) -> Response:
    """Notifications on their way: pending, retrying after a failure, dead, or sent."""
    wanted = choice(status, outbox.VIEWS, "status")
    owner = own_only(principal)
    rows = await outbox.page(
        session,
        principal.tenant_id,
        view=wanted,
        owner_user_id=owner,
        limit=per + 1,
        before=before,
    )
    listed = paged(request, rows, lambda r: r[0].id, per)
    messages = [
        {
            "row": message,
            "view": outbox.RETRYING
            if message.status == outbox.PENDING and message.last_error
            else message.status,
            "channel": channel.name if channel else None,
            "url": mask_url(channel.url) if channel else None,
            "error": mask_urls(message.last_error) if message.last_error else None,
        }
        for message, channel in listed.rows
    ]
    context = {
        "principal": principal,
        "listed": listed,
        "messages": messages,
        "counts": await outbox.view_counts(session, principal.tenant_id, owner_user_id=owner),
        "views": outbox.VIEWS,
        "chosen": {"status": wanted or ""},
        "own_only": owner is not None,
    }
    return page(request, "outbox.html", context)
