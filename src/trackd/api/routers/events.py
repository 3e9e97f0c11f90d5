"""POST /v1/events: producers send events over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from trackd.access.deps import RuntimeDep, SessionDep
from trackd.api import cloudevents
from trackd.api.deps import EventSender
from trackd.api.errors import ApiError
from trackd.api.openapi import event_body
from trackd.api.schemas import ItemResult, PublishOut
from trackd.domain.access import publishing_user
from trackd.ingest import intake

router = APIRouter(prefix="/v1", tags=["events"])

MAX_EVENTS = 500
BATCH_KEY = "events"

_EXAMPLE = {
    "id": "evt-1",
    "source": "research-worker",
    "type": "task.progress",
    "topic": "system-events",
    "time": "2026-01-11T10:01:00Z",
    "trace_id": "trace-abc123",
    "data": {"task_id": "task-1", "plan_id": "plan-123", "state": "running", "progress": 0.5},
}


@router.post(
    "/events",
    status_code=202,
    response_model=PublishOut,
    responses={
        207: {"model": PublishOut, "description": "Some events were rejected."},
        415: {"description": "A content type that is neither JSON nor binary mode."},
    },
    openapi_extra=event_body(MAX_EVENTS, _EXAMPLE),
)
async def post_events(
    runtime: RuntimeDep,
    session: SessionDep,
    principal: EventSender,
    request: Request,
) -> Any:
    """Accept events in every CloudEvents HTTP mode, and trackd's own JSON forms.

    - structured: `application/cloudevents+json`, one event;
    - binary: the attributes as `ce-<name>` headers (`ce-id`, `ce-source`, `ce-type`,
      `ce-time`, `ce-specversion`, extensions such as `ce-traceid`, `ce-correlationid`,
      `ce-topic`), percent-encoded; the body is the data. JSON data is parsed, any other
      content type is kept base64-encoded in `data_base64`;
    - batched: `application/cloudevents-batch+json`, a JSON array of events (at most 500);
    - `application/json`: one envelope, or `{"events": [...]}` (at most 500).

    202 once every event is durably stored; 207 with a result per event when some were
    rejected (the others are stored); 422 when none could be accepted. The tenant is the
    token's, whatever the events or headers say. Sending an event again is harmless: ids
    are idempotent.
    """
    try:
        received = cloudevents.read(request.headers, await request.body(), BATCH_KEY)
    except cloudevents.UnreadableRequest as exc:
        raise ApiError(exc.status, str(exc)) from None
    items = received.items
    if received.batch:
        if not items:
            raise ApiError(422, "the batch is empty; send at least one event")
        if len(items) > MAX_EVENTS:
            raise ApiError(
                400,
                f"{len(items)} events in one request; the limit is {MAX_EVENTS}",
                code="too_many_events",
            )
    publisher = publishing_user(principal)
    ok, refused = await intake.admit(
        session, items, principal.tenant_id, runtime.event_rules, publisher
    )
    results = [
        ItemResult(index=e.index, id=e.envelope.id, status="accepted", status_code=202) for e in ok
    ]
    results += [
        ItemResult(
            index=r.index,
            id=r.event_id,
            status="rejected",
            status_code=403 if r.forbidden else 422,
            error={"code": "forbidden" if r.forbidden else "invalid_event", "message": r.reason},
        )
        for r in refused
    ]
    results.sort(key=lambda r: r.index)
    out = PublishOut(accepted=len(ok), rejected=len(refused), results=results)
    if not ok:
        message = refused[0].reason if not received.batch else "no event was accepted"
        forbidden = all(r.forbidden for r in refused)
        raise ApiError(
            403 if forbidden else 422,
            message,
            code="forbidden" if forbidden else "invalid_event",
            details=[r.model_dump() for r in results] if received.batch else None,
        )
    await intake.publish(runtime.bus, ok, runtime.settings.publish_timeout_s)
    status = 207 if refused else 202
    return JSONResponse(out.model_dump(mode="json"), status_code=status)
