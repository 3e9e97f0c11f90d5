"""The dashboard's routes: log in and out, recent plans, one plan, one task, the tasks across
plans, metrics."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from trackd.access.deps import SessionDep
from trackd.access.params import PlanId, TaskId
from trackd.access.tokens import principal_of
from trackd.domain import cursors
from trackd.domain.metrics import PERIODS
from trackd.domain.states import TaskState
from trackd.errors import NotFound
from trackd.http_errors import describe_invalid
from trackd.reads import service as reads
from trackd.store.repos.tasks import TaskFilter
from trackd.web import chart, paging, waterfall
from trackd.web.auth import (
    CSRF_FIELD,
    LoginRequired,
    Viewer,
    clear_login,
    csrf_matches,
    new_csrf,
    same_origin,
    set_csrf,
    set_login,
)
from trackd.web.render import PageError, error_page, page

RECENT_PLANS = 50
TASKS_PER_PAGE = 25
STATES = [s.value for s in TaskState]
MAX_FORM_BYTES = 4096
LOGIN = "/ui/login"


class PageRoute(APIRoute):
    """A route whose failures are pages, not the API's JSON: a browser without a login goes to
    the login page, and bad input or a missing plan is a 4xx page saying so."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handle(request)
            except LoginRequired:
                return RedirectResponse(LOGIN, status_code=303)
            except PageError as exc:
                return error_page(request, exc.status, exc.message)
            except NotFound as exc:
                return error_page(request, 404, str(exc))
            except RequestValidationError as exc:
                return error_page(request, 422, describe_invalid(exc))

        return run


router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)

_STATIC = {
    "trackd.css": "text/css; charset=utf-8",
    "trackd.js": "text/javascript; charset=utf-8",
}
_FILES = {
    name: (resources.files("trackd.web").joinpath("static", name).read_bytes(), media)
    for name, media in _STATIC.items()
}


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The stylesheet and the script; served from the package, so nothing comes from a CDN."""
    if name not in _FILES:
        raise PageError(404, f"no static file {name!r}")
    body, media = _FILES[name]
    return Response(body, media_type=media, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The login form, with a fresh CSRF value in the form and in a cookie."""
    csrf = new_csrf()
    response = page(request, "login.html", {"problem": None, "csrf": csrf})
    set_csrf(response, request, csrf)
    return response


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form post from one of trackd's pages, or a 403/413 page."""
    if not same_origin(request):
        raise PageError(403, "post this form from trackd's own page (cross-site posts are refused)")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "the form is larger than trackd's forms make it")
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if not csrf_matches(request, fields.get(CSRF_FIELD)):
        raise PageError(403, "the form has expired or came from another site: reload the page")
    return fields


@router.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    """Check the token as the API would; keep it in the browser's cookie when it is live."""
    token = (await _form(request)).get("token", "").strip()
    if not token:
        problem = "paste a token from `trackd token create --tenant T --role reader`"
    elif await principal_of(session, token) is None:
        problem = "unknown or revoked token"
    else:
        response = RedirectResponse("/ui", status_code=303)
        set_login(response, request, token)
        return response
    return page(request, "login.html", {"problem": problem}, status=401)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Forget the login; posted from trackd's own pages only, like the login."""
    await _form(request)
    response = RedirectResponse(LOGIN, status_code=303)
    clear_login(response, request)
    return response


@router.get("")
async def plans(request: Request, session: SessionDep, principal: Viewer) -> Response:
    """The tenant's plans with the newest events."""
    v = await reads.recent_plans(session, principal.tenant_id, limit=RECENT_PLANS)
    return page(request, "plans.html", {"principal": principal, "view": v})


@router.get("/plans/{plan_id:path}")
async def plan(
    request: Request, plan_id: PlanId, session: SessionDep, principal: Viewer
) -> Response:
    """A plan's status and its trace as a waterfall of tasks and events."""
    v = await reads.plan_page(session, principal.tenant_id, plan_id)
    context = {
        "principal": principal,
        "status": v.status,
        "timeline": v.timeline,
        "tasks": v.tasks,
        "waterfall": waterfall.build(v.tasks, v.timeline.events, v.anomalies, v.status.as_of),
        "anomalies": v.anomalies,
    }
    return page(request, "plan.html", context)


@router.get("/tasks/{task_id:path}")
async def task(
    request: Request, task_id: TaskId, session: SessionDep, principal: Viewer
) -> Response:
    """A task: its state, attempts with their errors, transitions, events, anomalies, and the
    tasks around it."""
    v = await reads.task_page(session, principal.tenant_id, task_id)
    return page(request, "task.html", {"principal": principal, "view": v})


@router.get("/tasks")
async def tasks_across_plans(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    state: Annotated[str, Query(max_length=20)] = "",
    agent: Annotated[str, Query(max_length=100)] = "",
    kind: Annotated[str, Query(alias="type", max_length=100)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    after: Annotated[str, Query(max_length=200)] = "",
    rows: Annotated[bool, Query()] = False,
) -> Response:
    """Every task of the tenant, newest event first, filtered and paged; `rows=1` is the
    table body alone, which the page's script fetches to stay live."""
    if state and state not in STATES:
        raise PageError(400, f"unknown state {state!r}: use one of {', '.join(STATES)}")
    where = TaskFilter(
        state=state or None,
        agent=agent or None,
        event_type=kind or None,
        search=q.strip() or None,
        since=_moment("since", since),
        until=_moment("until", until),
    )
    cursor = paging.decode(after) if after else None
    v = await reads.task_list(
        session, principal.tenant_id, where, limit=TASKS_PER_PAGE, after=cursor
    )
    filters = {"state": state, "agent": agent, "type": kind, "q": q, "since": since, "until": until}
    kept = {k: val for k, val in filters.items() if val}
    context = {
        "principal": principal,
        "view": v,
        "filters": filters,
        "states": STATES,
        "first_page": not after,
        "live_url": "/ui/tasks?" + urlencode({**kept, "rows": "1"}),
        "next_url": (
            "/ui/tasks?" + urlencode({**kept, "after": cursors.encode(v.next_cursor)})
            if v.next_cursor
            else None
        ),
        "first_url": "/ui/tasks?" + urlencode(kept),
    }
    return page(request, "task_rows.html" if rows else "tasks.html", context)


def _moment(name: str, value: str) -> datetime | None:
    """A time from a filter's field (an `<input type=datetime-local>` gives no zone: UTC)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        message = f"{name}: {value!r} is not a date and time like 2026-12-01T09:30"
        raise PageError(400, message) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/metrics")
async def metrics(
    request: Request,
    session: SessionDep,
    principal: Viewer,
    period: Annotated[str, Query(max_length=10)] = "24h",
) -> Response:
    """Each agent's tasks by outcome and state (totals add up), and durations over time."""
    if period not in PERIODS:
        raise PageError(400, f"unknown period {period!r}: use one of {', '.join(PERIODS)}")
    v = await reads.outcomes(session, principal.tenant_id, period)
    context = {
        "principal": principal,
        "view": v,
        "periods": list(PERIODS),
        "states": STATES,
        "chart": chart.ended_by_agent(v.agents),
        "durations": chart.durations_over_time(
            v.durations, "%H:%M" if period in ("1h", "24h") else "%m-%d %H:%M"
        ),
    }
    return page(request, "metrics.html", context)
