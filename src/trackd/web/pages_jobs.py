"""The dashboard's `trackd.jobs` pages: the domains mounted in trackd's app
(`create_app(..., jobs=registry)`), each domain's tasks by status, and a task with its chain:
parent, children, prerequisites and the tasks waiting on it.

A domain's tasks are read through its own sessions (the application's database) and only
the viewer's tenant's: another tenant's task is a 404 page, as in `/v1/tasks`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from trackd.domain.states import TaskState
from trackd.jobs.api import ID_MAX, DomainRegistry, JobDomain, domain_fields, task_json
from trackd.jobs.crud import BaseTaskTrackingCRUD
from trackd.web.auth import Viewer
from trackd.web.pages import PageRoute
from trackd.web.paging import PAGE_SIZE, PerPage, choice, paged
from trackd.web.render import page

router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)

DomainName = Annotated[str, Path(max_length=100)]
TaskId = Annotated[int, Path(ge=1, le=ID_MAX)]
STATES = [s.value for s in TaskState]
# The neighbours shown on a task's page; a fan-out wider than this says how many it shows.
MAX_NEIGHBOURS = 100


def registry_of(request: Request) -> DomainRegistry:
    registry = getattr(request.app.state, "job_domains", None)
    return registry if isinstance(registry, DomainRegistry) else DomainRegistry()


@router.get("/jobs")
async def domains(request: Request, principal: Viewer) -> Response:
    """The job domains this trackd serves, with their tasks counted by status."""
    registry = registry_of(request)
    rows = []
    for name in registry.names():
        domain = registry.get(name)
        async with domain.sessions() as session:
            counts = await BaseTaskTrackingCRUD(domain.model, principal.tenant_id).count_by_status(
                session
            )
        rows.append({"name": name, "counts": counts, "total": sum(counts.values())})
    context = {"principal": principal, "domains": rows, "states": STATES}
    return page(request, "jobs.html", context)


@router.get("/jobs/{domain}")
async def domain_tasks(
    request: Request,
    domain: DomainName,
    principal: Viewer,
    status: Annotated[str | None, Query(max_length=20)] = None,
    before: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    per: PerPage = PAGE_SIZE,
) -> Response:
    """A domain's tasks newest first, in one status if asked."""
    d = registry_of(request).get(domain)
    wanted = choice(status, STATES, "status")
    async with d.sessions() as session:
        service = d.make_service(session, principal.tenant_id)
        rows = await service.crud.get_newest(
            session, status=wanted, before_id=before, limit=per + 1
        )
        listed = paged(request, rows, lambda t: t.id, per)
        views = await service.describe_many(listed.rows)
        counts = await service.crud.count_by_status(session)
    context = {
        "principal": principal,
        "domain": d.name,
        "listed": listed,
        "views": views,
        "counts": counts,
        "states": STATES,
        "chosen": {"status": wanted or ""},
    }
    return page(request, "job_domain.html", context)


async def _chain(d: JobDomain, tenant_id: str, task_id: int) -> dict[str, Any]:
    async with d.sessions() as session:
        service = d.make_service(session, tenant_id)
        view = await service.describe(task_id)
        task = view.task
        wanted = set(task.depends_on)
        if task.parent_id is not None:
            wanted.add(task.parent_id)
        found = await service.crud.get_many(session, wanted)
        children = await service.children(task_id)
        dependents = await service.crud.get_dependents(session, task_id, limit=MAX_NEIGHBOURS)
    return {
        "view": view,
        "fields": domain_fields(task),
        "metadata": task_json(view)["metadata"],
        "parent": found.get(task.parent_id) if task.parent_id is not None else None,
        "prerequisites": [(i, found.get(i)) for i in task.depends_on],
        "children": children[:MAX_NEIGHBOURS],
        "more_children": max(0, len(children) - MAX_NEIGHBOURS),
        "dependents": dependents,
    }


@router.get("/jobs/{domain}/{task_id}")
async def job_task(
    request: Request, domain: DomainName, task_id: TaskId, principal: Viewer
) -> Response:
    """One task: its state, error, attempts and times, and its chain."""
    d = registry_of(request).get(domain)
    context = {
        "principal": principal,
        "domain": d.name,
        **await _chain(d, principal.tenant_id, task_id),
        "max_neighbours": MAX_NEIGHBOURS,
    }
    return page(request, "job_task.html", context)
