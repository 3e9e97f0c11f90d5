"""The job tracking REST API as a router an application mounts on its own FastAPI app.

    registry = DomainRegistry()
    registry.add(ETFPriceUpdateTracking, sessions, service=ETFPriceUpdateService)
    app.include_router(tasks_router(registry))

serves `POST /v1/tasks/{domain}`, `GET /v1/tasks/{domain}?status=&limit=&offset=`,
`GET /v1/tasks/{domain}/{id}`, `POST /v1/tasks/{domain}/{id}/cancel` and `.../retry`.
Errors leave in trackd's shape, `{"error": {"code", "message"}}`, whatever the application's
own error handlers: an unknown domain or task is a 404, a change the status flow refuses a
409 with the reason, bad input a 422.

Whose tasks a request sees is the `caller` dependency's answer: `single_tenant()` (the
default) puts everything in one tenant and leaves authentication to the application (mount
the router with its own `dependencies=[...]`); `trackd.api.job_caller.trackd_bearer()` uses
trackd's bearer tokens, so a router mounted in trackd's own app keeps tenants apart.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, create_model
from sqlalchemy import BigInteger, Integer, Numeric, SmallInteger, String
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from trackd.domain.jobs import MAX_ATTEMPTS_LIMIT, IllegalJobTransition, parse_status
from trackd.errors import NotFound, TrackdError, status_of
from trackd.http_errors import code_for, describe_invalid, error_body
from trackd.jobs.crud import MAX_PAGE
from trackd.jobs.models import DEFAULT_TENANT, STANDARD_COLUMNS, BaseTaskTracking
from trackd.jobs.service import BaseTaskTrackingService, InvalidTask, TaskView

log = logging.getLogger(__name__)

ID_MAX = 2**63 - 1
_PRINTABLE = r"^[^\x00]*$"  # PostgreSQL stores no NUL in text
# Keys of the request and response bodies that a domain's own columns may not take.
RESERVED_FIELDS = frozenset(
    {
        "domain",
        "depends_on",
        "parent_id",
        "blocked_by",
        "blocked_reason",
        "stale",
        "duration_seconds",
        "trackd_task_id",
        "fields",
    }
)
_INT_RANGES: tuple[tuple[type[Any], int], ...] = (
    (SmallInteger, 2**15 - 1),
    (BigInteger, 2**63 - 1),
    (Integer, 2**31 - 1),
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: the tenant whose tasks they see, and whether they may change them."""

    tenant_id: str
    may_write: bool = True
    role: str | None = None


CallerDependency = Callable[..., Caller] | Callable[..., Awaitable[Caller]]


def single_tenant(tenant_id: str = DEFAULT_TENANT) -> Callable[[], Caller]:
    """Every request is the one tenant's (an application that authenticates on its own)."""

    def caller() -> Caller:
        return Caller(tenant_id)

    return caller


@dataclass(frozen=True)
class JobDomain:
    """A tracking table served under `/v1/tasks/{name}`.

    Attributes:
        model: the tracking model.
        sessions: makes sessions on the application's database (expire_on_commit=False).
        service: the service class; the domain's own subclass, if it has one.
        options: more keyword arguments for the service (publisher, on_prerequisite_failure,
            on_cancel, backoff…).
    """

    model: type[BaseTaskTracking]
    sessions: async_sessionmaker[AsyncSession]
    service: type[BaseTaskTrackingService[Any]] = BaseTaskTrackingService
    options: Mapping[str, Any] = field(default_factory=dict)
    create_schema: type[BaseModel] = field(init=False)

    def __post_init__(self) -> None:
        clash = sorted(RESERVED_FIELDS.intersection(c.key for c in self.model.__table__.columns))
        if clash:
            raise ValueError(
                f"{self.model.__name__}: columns {', '.join(clash)} clash with fields of the "
                "task API; rename them"
            )
        object.__setattr__(self, "create_schema", create_schema(self.model))

    @property
    def name(self) -> str:
        return self.model.tracking_domain()

    def make_service(self, session: AsyncSession, tenant_id: str) -> BaseTaskTrackingService[Any]:
        return self.service(session, self.model, tenant_id=tenant_id, **self.options)


class DomainRegistry:
    """The domains an application serves, by name."""

    def __init__(self, domains: Iterable[JobDomain] = ()) -> None:
        self._domains: dict[str, JobDomain] = {}
        for d in domains:
            self.register(d)

    def register(self, domain: JobDomain) -> JobDomain:
        if domain.name in self._domains:
            raise ValueError(f"task domain {domain.name!r} is registered already")
        self._domains[domain.name] = domain
        return domain

    def add(
        self,
        model: type[BaseTaskTracking],
        sessions: async_sessionmaker[AsyncSession],
        *,
        service: type[BaseTaskTrackingService[Any]] = BaseTaskTrackingService,
        **options: Any,
    ) -> JobDomain:
        return self.register(JobDomain(model, sessions, service, options))

    def get(self, name: str) -> JobDomain:
        domain = self._domains.get(name)
        if domain is None:
            known = ", ".join(sorted(self._domains)) or "none"
            raise NotFound(f"no task domain {name!r}; known domains: {known}")
        return domain

    def names(self) -> list[str]:
        return sorted(self._domains)


# -- schemas -----------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CancelIn(_Strict):
    reason: str = Field(default="cancelled", min_length=1, max_length=2000, pattern=_PRINTABLE)


class RetryIn(_Strict):
    delay_seconds: float | None = Field(
        default=None, ge=0, le=7 * 86400, description="None: the service's backoff decides."
    )


def create_schema(model: type[BaseTaskTracking]) -> type[BaseModel]:
    """The body of `POST /v1/tasks/{domain}`: the standard options and the domain's columns.

    Types and limits come from the columns, so that bad values are a 422 here rather than an
    error from the database.
    """
    fields: dict[str, Any] = {
        "max_attempts": (int, Field(default=3, ge=1, le=MAX_ATTEMPTS_LIMIT, strict=True)),
        "job_id": (
            str | None,
            Field(default=None, min_length=1, max_length=255, pattern=_PRINTABLE),
        ),
        "depends_on": (
            list[Annotated[int, Field(ge=1, le=ID_MAX)]],
            Field(default=[], max_length=100),
        ),
        "parent_id": (int | None, Field(default=None, ge=1, le=ID_MAX)),
        "metadata": (dict[str, Any] | None, None),
    }
    for column in model.__table__.columns:
        if column.key in STANDARD_COLUMNS or column.key in fields:
            continue
        attr = _attribute_of(model, column.key)
        optional = (
            column.nullable or column.default is not None or column.server_default is not None
        )
        kind, limits = _python_type(column)
        fields[attr] = (
            (kind | None, Field(default=None, **limits)) if optional else (kind, Field(**limits))
        )
    schema: type[BaseModel] = create_model(
        f"{model.__name__}Create", __config__=ConfigDict(extra="forbid"), **fields
    )
    return schema


def _attribute_of(model: type[BaseTaskTracking], column_key: str) -> str:
    for attr in model.__mapper__.column_attrs:  # type: ignore[attr-defined]
        if any(c.key == column_key for c in attr.columns):
            return str(attr.key)
    return column_key


def _python_type(column: Any) -> tuple[Any, dict[str, Any]]:
    sql_type = column.type
    limits: dict[str, Any] = {}
    try:
        kind: Any = sql_type.python_type
    except NotImplementedError:
        return Any, limits
    if kind is str:
        if isinstance(sql_type, String) and sql_type.length:
            limits["max_length"] = sql_type.length
        limits["pattern"] = _PRINTABLE
    elif kind is int and not isinstance(kind, bool):
        for family, top in _INT_RANGES:
            if isinstance(sql_type, family):
                limits.update(ge=-top - 1, le=top, strict=True)
                break
    elif kind is Decimal and isinstance(sql_type, Numeric):
        if sql_type.precision is not None:
            limits["max_digits"] = sql_type.precision
        if sql_type.scale is not None:
            limits["decimal_places"] = sql_type.scale
        limits["allow_inf_nan"] = False
    elif kind is float:
        limits["allow_inf_nan"] = False
    elif kind is datetime:
        kind = AwareDatetime  # naive times are refused, as everywhere in trackd
    elif kind in (dict, list):
        kind = Any
    return kind, limits


# -- responses ---------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exactly as stored; a float would round money
    return value


def task_json(view: TaskView[Any]) -> dict[str, Any]:
    t = view.task
    body: dict[str, Any] = {
        "id": t.id,
        "domain": view.domain,
        "status": t.status,
        "created_at": _iso(t.created_at),
        "updated_at": _iso(t.updated_at),
        "started_at": _iso(t.started_at),
        "completed_at": _iso(t.completed_at),
        "next_attempt_at": _iso(t.next_attempt_at),
        "duration_seconds": view.duration_seconds,
        "error_message": t.error_message,
        "attempts": t.attempts,
        "max_attempts": t.max_attempts,
        "job_id": t.job_id,
        "depends_on": t.depends_on,
        "parent_id": t.parent_id,
        "blocked_by": list(view.blocked_by),
        "blocked_reason": view.blocked_reason,
        "stale": view.stale,
        "trackd_task_id": view.trackd_task_id,
        "metadata": {
            k: v for k, v in (t.task_metadata or {}).items() if k not in ("depends_on", "parent_id")
        },
    }
    body.update(domain_fields(t))
    return body


def domain_fields(task: BaseTaskTracking) -> dict[str, Any]:
    """A task's own columns (those its domain adds), by attribute name, as JSON values."""
    fields: dict[str, Any] = {}
    for column in type(task).__table__.columns:
        if column.key not in STANDARD_COLUMNS:
            attr = _attribute_of(type(task), column.key)
            fields[attr] = _jsonable(getattr(task, attr))
    return fields


# -- errors in trackd's shape, whatever the app's handlers ---------------------------------------


class _TrackdErrors(APIRoute):
    """Turns every error of these routes into trackd's JSON error body and status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _error(422, "invalid", describe_invalid(exc))
            except StarletteHTTPException as exc:
                code = getattr(exc, "code", None) or code_for(exc.status_code)
                return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))
            except InvalidTask as exc:
                return _error(422, "invalid", str(exc))
            except IntegrityError as exc:
                return _error(409, "conflict", f"the task breaks a constraint: {_first_line(exc)}")
            except (OperationalError, InterfaceError):
                log.exception("task API: database unavailable")
                return _error(503, "unavailable", "the database is unavailable; try again")
            except (DataError, DBAPIError) as exc:
                return _error(422, "invalid", f"the database refused a value: {_first_line(exc)}")
            except TrackdError as exc:
                # trackd's shared set (trackd.errors), answered as trackd's API answers it.
                status = status_of(exc) or 400
                return _error(status, code_for(status), str(exc))

        return route


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _first_line(exc: DBAPIError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


class _Refused(StarletteHTTPException):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code


DomainName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")]
TaskId = Annotated[int, Path(ge=1, le=ID_MAX)]


# -- the router --------------------------------------------------------------------------------


def tasks_router(
    registry: DomainRegistry,
    *,
    caller: CallerDependency | None = None,
    prefix: str = "/v1/tasks",
    tags: list[str | Enum] | None = None,
) -> APIRouter:
    """The task API over `registry`'s domains; `caller` decides the tenant (see the module)."""
    # Annotations are strings here (PEP 563) and FastAPI resolves them in this module's
    # globals, so the per-router caller dependency goes in as a default instead.
    caller_dep = Depends(caller or single_tenant())
    router = APIRouter(prefix=prefix, tags=tags or ["tasks"], route_class=_TrackdErrors)

    def writer(c: Caller) -> None:
        if not c.may_write:
            raise _Refused(403, "forbidden", f"role {c.role or 'reader'} may not change tasks")

    @router.post("/{domain}", status_code=201, summary="Create a task (pending)")
    async def create_task(
        domain: DomainName, body: Annotated[dict[str, Any], Body()], who: Caller = caller_dep
    ) -> JSONResponse:
        d = registry.get(domain)
        writer(who)
        try:
            parsed = d.create_schema.model_validate(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        values = parsed.model_dump(exclude_unset=True)
        options = {
            k: values.pop(k)
            for k in ("max_attempts", "job_id", "depends_on", "parent_id", "metadata")
            if k in values
        }
        async with d.sessions() as session:
            svc = d.make_service(session, who.tenant_id)
            task = await svc.create_tracking(**options, **values)
            view = (await svc.describe_many([task]))[0]
        body_out = task_json(view)
        return JSONResponse(
            body_out, status_code=201, headers={"Location": f"{prefix}/{domain}/{task.id}"}
        )

    @router.get("/{domain}", summary="List tasks, optionally in one status")
    async def list_tasks(
        domain: DomainName,
        who: Caller = caller_dep,
        status: Annotated[str | None, Query(max_length=20)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> JSONResponse:
        d = registry.get(domain)
        state = None
        if status is not None:
            try:
                state = parse_status(status)[0]
            except IllegalJobTransition as exc:
                raise _Refused(422, "invalid", f"status: {exc}") from None
        async with d.sessions() as session:
            svc = d.make_service(session, who.tenant_id)
            rows = await svc.crud.get_page(session, status=state, skip=offset, limit=limit)
            total = await svc.crud.count(session, status=state)
            views = await svc.describe_many(rows)
        newest = max((r.updated_at for r in rows), default=None)
        return JSONResponse(
            {
                "domain": d.name,
                "status": None if state is None else state.value,
                "total": total,
                "limit": limit,
                "offset": offset,
                "as_of": _iso(newest),
                "tasks": [task_json(v) for v in views],
            }
        )

    @router.get("/{domain}/{task_id}", summary="One task, with what blocks it")
    async def get_task(
        domain: DomainName, task_id: TaskId, who: Caller = caller_dep
    ) -> JSONResponse:
        d = registry.get(domain)
        async with d.sessions() as session:
            view = await d.make_service(session, who.tenant_id).describe(task_id)
        return JSONResponse(task_json(view))

    @router.post("/{domain}/{task_id}/cancel", summary="Cancel a task and what depends on it")
    async def cancel_task(
        domain: DomainName,
        task_id: TaskId,
        who: Caller = caller_dep,
        body: Annotated[CancelIn | None, Body()] = None,
    ) -> JSONResponse:
        d = registry.get(domain)
        writer(who)
        reason = (body or CancelIn()).reason
        async with d.sessions() as session:
            svc = d.make_service(session, who.tenant_id)
            cancelled = await svc.cancel(task_id, reason)
            view = (await svc.describe_many(cancelled[:1]))[0]
        return JSONResponse({"task": task_json(view), "cancelled": [t.id for t in cancelled]})

    @router.post("/{domain}/{task_id}/retry", summary="Retry a failed task")
    async def retry_task(
        domain: DomainName,
        task_id: TaskId,
        who: Caller = caller_dep,
        body: Annotated[RetryIn | None, Body()] = None,
    ) -> JSONResponse:
        d = registry.get(domain)
        writer(who)
        delay = (body or RetryIn()).delay_seconds
        async with d.sessions() as session:
            svc = d.make_service(session, who.tenant_id)
            task = await svc.retry(task_id, delay=delay)
            view = (await svc.describe_many([task]))[0]
        return JSONResponse(task_json(view))

    return router
