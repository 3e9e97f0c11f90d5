"""Paging and filters of the dashboard's long lists.

Two kinds of cursor, by what orders a list: a list ordered by time and id (the tasks table)
passes an opaque token of both (`trackd.domain.cursors`); a list ordered by time-ordered ids alone
(trackers, polls, schedules, outbox, job tasks) passes the last id shown (`?before=`, cut by
`paged`). Either way rows added meanwhile never shift a page the way an offset would.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Generic, TypeVar
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Query
from starlette.requests import Request

from trackd.domain import cursors
from trackd.web.render import PageError

DAMAGED = "the page link is damaged: start again from the first page"


def decode(token: str) -> tuple[datetime, UUID]:
    """The (time, row id) of a token from `encode`; a 400 page for anything else."""
    try:
        return cursors.decode(token)
    except cursors.BadCursor:
        raise PageError(400, DAMAGED) from None


T = TypeVar("T")

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# Rows per page, `?per=`; the pager's links keep it with the other filters.
PerPage = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]


@dataclass(frozen=True, slots=True)
class Paged(Generic[T]):
    """The rows of one page and the link to the next, if there is one."""

    rows: list[T]
    next_url: str | None
    first_url: str | None  # back to the first page, when this is not it


def paged(
    request: Request, rows: Sequence[T], cursor: Callable[[T], object], size: int
) -> Paged[T]:
    """Cut `rows` (read with limit `size + 1`: the extra row says there is a next page) to a
    page, linking the next one by the cursor of its last row and keeping the request's
    filters."""
    shown = list(rows[:size])
    params = {k: v for k, v in request.query_params.items() if k != "before" and v != ""}

    def link(**extra: str) -> str:
        query = urlencode({**params, **extra})
        return f"{request.url.path}?{query}" if query else request.url.path

    first_url = link() if "before" in request.query_params else None
    next_url = link(before=str(cursor(shown[-1]))) if len(rows) > size and shown else None
    return Paged(shown, next_url, first_url)


def choice(value: str | None, allowed: Collection[str], what: str) -> str | None:
    """A filter's value: None for "any" (absent or empty, as a form sends it), else one of
    `allowed`, or a 400 page naming them."""
    if value is None or value == "":
        return None
    if value not in allowed:
        raise PageError(400, f"unknown {what} {value!r}: use one of {', '.join(allowed)}")
    return value
