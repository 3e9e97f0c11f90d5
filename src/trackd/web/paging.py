"""Cursor paging and list filters for the dashboard's long tables.

A page is read one row longer than it shows: the extra row says there is a next page, and
the last row shown is its cursor (`?before=<id>`), so rows added meanwhile never shift a page
the way an offset would.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import Query
from starlette.requests import Request

from trackd.web.render import PageError

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
    """Cut `rows` (read with limit `size + 1`) to a page, linking the next one by the
    cursor of its last row and keeping the request's filters."""
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
