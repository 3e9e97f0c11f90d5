"""OpenTelemetry traces in: OTLP/HTTP bodies decoded and each span turned into trackd events.

A span is a task: an `action-requests` event at its start and an `action-results` event at its
end, so spans take the one intake path every other event takes (`intake.check` → publish) and
re-exporting a span is harmless (its event ids are derived from the span id).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trackd.domain.jsonpolicy import JsonPolicy, JsonRefused, check, parse

try:
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
except ImportError as exc:  # pragma: no cover - the package is a main dependency
    raise ImportError(
        "OTLP traces need the opentelemetry-proto package: pip install 'opentelemetry-proto'"
    ) from exc

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
PLAN_ATTRIBUTE = "trackd.plan_id"
"""A span attribute naming the plan its task belongs to; without it the trace is the plan."""
UNKNOWN_SERVICE = "unknown_service"  # what the SDKs name a service that set no name
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class OtlpRefused(Exception):
    """A body that is not an OTLP trace export; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def media_type(content_type: str | None) -> str:
    """The OTLP encoding a Content-Type names, or OtlpRefused (415) for any other."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise OtlpRefused(
            415,
            f"content type {media or '(none)'!r} is not an OTLP encoding; "
            f"send {PROTOBUF} or {JSON}",
        )
    return media


def inflate(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    """The body without its Content-Encoding, never more than `max_bytes` once inflated.

    Exporters gzip their bodies: the request boundary bounds the compressed size, and a small
    gzip body can inflate a thousandfold, so the inflated size is bounded here as it grows.
    """
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name not in ("gzip", "deflate"):
        raise OtlpRefused(415, f"content encoding {name!r} is not supported; use gzip or none")
    # 16 + MAX_WBITS reads a gzip header; MAX_WBITS a zlib one.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if name == "gzip" else zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise OtlpRefused(400, f"the body is not valid {name} data: {exc}") from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise OtlpRefused(
            413, f"request body over the limit of {max_bytes} bytes once decompressed"
        )
    if not inflater.eof:
        raise OtlpRefused(400, f"the {name} body is truncated")
    return out


def decode(body: bytes, media: str, policy: JsonPolicy) -> ExportTraceServiceRequest:
    """An ExportTraceServiceRequest from a protobuf or OTLP JSON body.

    Raises:
        OtlpRefused: 400 when the body is not a trace export in that encoding.
    """
    request = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise OtlpRefused(
                400, f"the body is not an OTLP protobuf trace export: {exc}"
            ) from None
        return request
    try:
        value = parse(body)
        check(value, policy)
    except JsonRefused as exc:
        raise OtlpRefused(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise OtlpRefused(400, "an OTLP JSON trace export is an object with resourceSpans")
    try:
        # OTLP JSON writes trace and span ids in hex where protobuf's JSON mapping expects
        # base64 (the OTLP specification's one departure from that mapping).
        json_format.ParseDict(_ids_as_base64(value), request, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise OtlpRefused(400, f"the body is not an OTLP JSON trace export: {exc}") from None
    return request


def _ids_as_base64(value: Any) -> Any:
    if isinstance(value, list):
        return [_ids_as_base64(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _ID_FIELDS and isinstance(item, str):
            try:
                item = base64.b64encode(bytes.fromhex(item)).decode()
            except ValueError:
                raise OtlpRefused(400, f"{key} {item[:40]!r} is not a hex id") from None
        out[key] = _ids_as_base64(item)
    return out


def response(media: str, rejected: int, message: str) -> bytes:
    """The ExportTraceServiceResponse in the request's encoding; partial_success when spans
    were refused."""
    answer = ExportTraceServiceResponse()
    if rejected:
        answer.partial_success.rejected_spans = rejected
        answer.partial_success.error_message = message
    if media == PROTOBUF:
        return answer.SerializeToString()
    return json_format.MessageToJson(answer, indent=None).encode()


@dataclass(frozen=True, slots=True)
class SpanEvents:
    """The events one span becomes; `index` counts spans in the request."""

    index: int
    events: list[dict[str, Any]]


def spans(request: ExportTraceServiceRequest) -> Iterator[SpanEvents]:
    """Every span of the export as trackd events (docs/operations.md, "OpenTelemetry traces
    in")."""
    index = 0
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or UNKNOWN_SERVICE)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name or None
            for span in scope_spans.spans:
                yield SpanEvents(index, span_events(span, service, scope))
                index += 1


def span_events(span: Span, service: str, scope: str | None = None) -> list[dict[str, Any]]:
    """A span's start event and, once it has ended, its end event (raw, for intake.check)."""
    span_id = span.span_id.hex()
    attributes = _attributes(span.attributes)
    plan = attributes.get(PLAN_ATTRIBUTE)
    common: dict[str, Any] = {
        "source": service,
        # The type is a bounded name; a longer span name is kept whole in data.name.
        "type": span.name[:255] or "span",
        "trace_id": span.trace_id.hex() or None,
        "correlation_id": span_id or None,
        "plan_id": plan if isinstance(plan, str) else span.trace_id.hex() or None,
    }
    start: dict[str, Any] = {
        **common,
        "id": f"{span_id}-start",
        "topic": "action-requests",
        "time": _time(span.start_time_unix_nano),
        "parent_event_id": f"{span.parent_span_id.hex()}-start" if span.parent_span_id else None,
        "data": {
            "name": span.name,
            "span_kind": _kind_name(span.kind),
            "scope": scope,
            "attributes": attributes,
        },
    }
    if not span.end_time_unix_nano:
        return [start]
    failed = span.status.code == Status.STATUS_CODE_ERROR
    result: dict[str, Any] = {"attributes": attributes}
    events = [_event(e) for e in span.events]
    if events:
        result["events"] = events
    exception = next((e for e in events if e["name"] == "exception"), None)
    error: str | None = None
    if failed:
        error = span.status.message or _exception_message(exception) or "span status ERROR"
        trace = exception["attributes"].get("exception.stacktrace") if exception else None
        if isinstance(trace, str):
            result["traceback"] = trace
    end: dict[str, Any] = {
        **common,
        "id": f"{span_id}-end",
        "topic": "action-results",
        "time": _time(span.end_time_unix_nano),
        "parent_event_id": f"{span_id}-start",
        "success": not failed,
        "error": error,
        "result": result,
    }
    return [start, end]


def _kind_name(kind: int) -> str:
    # Protobuf enums are open: an exporter newer than this package may send a kind unknown here.
    try:
        return Span.SpanKind.Name(kind)  # type: ignore[arg-type]
    except ValueError:
        return str(kind)


def _exception_message(exception: dict[str, Any] | None) -> str | None:
    if exception is None:
        return None
    attrs = exception["attributes"]
    kind, message = attrs.get("exception.type"), attrs.get("exception.message")
    text = ": ".join(str(p) for p in (kind, message) if p)
    return text or None


def _event(event: Span.Event) -> dict[str, Any]:
    return {
        "name": event.name,
        "time": _time(event.time_unix_nano) if event.time_unix_nano else None,
        "attributes": _attributes(event.attributes),
    }


def _time(unix_nano: int) -> str | None:
    if not unix_nano:
        return None  # intake refuses the event: a span has a start time
    return datetime.fromtimestamp(unix_nano / 1e9, UTC).isoformat()


def _attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)  # noqa: S101 - narrows the generated type
        found[pair.key] = _value(pair.value)
    return found


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)
