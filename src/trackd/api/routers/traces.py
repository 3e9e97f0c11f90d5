"""POST /v1/traces: OpenTelemetry exporters send spans over OTLP/HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from trackd.access.deps import RuntimeDep, SessionDep
from trackd.api.deps import EventSender
from trackd.api.errors import ApiError
from trackd.domain.access import publishing_user
from trackd.ingest import intake, otlp

router = APIRouter(prefix="/v1", tags=["traces"])


@router.post(
    "/traces",
    response_class=Response,
    responses={
        200: {
            "description": "ExportTraceServiceResponse, with partial_success when spans were "
            "refused.",
            "content": {otlp.PROTOBUF: {}, otlp.JSON: {}},
        },
        415: {"description": "Not an OTLP content type, or a content encoding other than gzip."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An OTLP ExportTraceServiceRequest (protobuf or JSON, gzip allowed).",
            "content": {
                otlp.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                otlp.JSON: {"schema": {"type": "object"}},
            },
        }
    },
)
async def post_traces(
    request: Request, runtime: RuntimeDep, session: SessionDep, principal: EventSender
) -> Response:
    """Accept an OTLP/HTTP trace export; each span becomes a task (see docs/operations.md).

    200 once every accepted span is durably stored, with the spans refused counted in
    `partial_success`; 400 when no span could be accepted. Exporting a span again is harmless.
    """
    try:
        media = otlp.media_type(request.headers.get("content-type"))
        body = otlp.inflate(
            await request.body(),
            request.headers.get("content-encoding"),
            runtime.settings.max_request_bytes,
        )
        export = otlp.decode(body, media, runtime.settings.json_policy)
    except otlp.OtlpRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    items, span_of = [], []
    for span in otlp.spans(export):
        items += span.events
        span_of += [span.index] * len(span.events)
    publisher = publishing_user(principal)
    ok, refused = await intake.admit(
        session, items, principal.tenant_id, runtime.event_rules, publisher
    )
    # A span is refused whole: a task with its start and no end would look forever running.
    refused_spans = {span_of[r.index] for r in refused}
    ok = [c for c in ok if span_of[c.index] not in refused_spans]
    message = f"span {span_of[refused[0].index]}: {refused[0].reason}" if refused else ""
    if refused and not ok:
        raise ApiError(400, f"no span was accepted; {message}", code="invalid_span")
    # Not confirmed in time: a 503 (trackd.api.errors), which exporters retry.
    await intake.publish(runtime.bus, ok, runtime.settings.publish_timeout_s)
    return Response(otlp.response(media, len(refused_spans), message), media_type=media)
