"""OpenTelemetry traces in: the OpenTelemetry Python SDK exports spans to a served trackd over
OTLP/HTTP (protobuf, gzip; and JSON), on SQLite and PostgreSQL, and the plan, tasks, timeline
and agent metrics are read back. Bad bodies get JSON errors."""

from __future__ import annotations

import asyncio
import base64
import gzip
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import redis
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from runtime_support import quick_ingest
from test_sdk_server import service_token

from trackd.app import create_app
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.testing_server import LocalServer

AGENT = "research-agent"


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[str, str]]:
    """trackd serving on a free port from a thread of its own: (base URL, service token)."""
    token = asyncio.run(service_token(database_url))
    runtime = Runtime.build(Settings(database_url=database_url, publish_timeout_s=15))
    quick_ingest(runtime)
    with LocalServer(create_app(runtime), lifespan="on") as server:
        yield server.url, token


@pytest.fixture
def roles_on_redis(database_url: str, redis_url: str) -> Iterator[tuple[str, str, Runtime]]:
    """An API-only runtime (what `trackd serve --role api` builds) on a Redis bus of this
    test's own, served; and an ingest runtime on the same bus, not started:
    (API URL, service token, ingest runtime)."""
    token = asyncio.run(service_token(database_url))
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        database_url=database_url,
        bus_url=f"{redis_url}?prefix={prefix}&lease_ttl=3&rebalance_interval=0.2",
        publish_timeout_s=15,
    )
    api = Runtime.build(settings, ingest=False)
    ingest = Runtime.build(settings)
    try:
        with LocalServer(create_app(api), lifespan="on") as server:
            yield server.url, token, ingest
    finally:
        client = redis.Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def research_spans(service: str = AGENT) -> tuple[list[ReadableSpan], dict[str, str]]:
    """A root span with an LLM call and a failed search under it; span ids by name (hex)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("research")
    with tracer.start_as_current_span("research", attributes={"topic": "moths"}):
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 30,
            },
        ):
            pass
        with tracer.start_as_current_span(
            "web.search", record_exception=False, set_status_on_exception=False
        ) as search:
            try:
                raise LookupError("no hits for moths")
            except LookupError as exc:
                search.record_exception(exc)
                search.set_status(Status(StatusCode.ERROR, "search found nothing"))
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    ids = {s.name: format(s.context.span_id, "016x") for s in spans}
    return spans, ids


def export(url: str, token: str, spans: Sequence[ReadableSpan]) -> SpanExportResult:
    exporter = OTLPSpanExporter(
        endpoint=f"{url}/v1/traces",
        headers={"Authorization": f"Bearer {token}"},
        compression=Compression.Gzip,
    )
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def read(client: httpx.Client, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def test_sdk_export_becomes_plan_tasks_timeline_and_metrics(served: tuple[str, str]) -> None:
    url, token = served
    spans, ids = research_spans()
    trace = format(spans[0].context.trace_id, "032x")

    assert export(url, token, spans) is SpanExportResult.SUCCESS
    # Exporting again (an exporter's retry) changes nothing: the event ids come from span ids.
    assert export(url, token, spans) is SpanExportResult.SUCCESS

    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers) as client:
        plan = read(client, f"/v1/tracker/plans/{trace}")
        assert (plan["trace_id"], plan["task_count"]) == (trace, 3)
        assert (plan["completed_tasks"], plan["failed_tasks"]) == (2, 1)

        tasks = {t["task_id"]: t for t in read(client, f"/v1/tracker/plans/{trace}/tasks")["tasks"]}
        assert set(tasks) == set(ids.values())
        by_name = {s.name: s for s in spans}
        for name, span_id in ids.items():
            task = tasks[span_id]
            assert task["event_type"] == name
            assert task["agent_id"] == AGENT
            span = by_name[name]
            assert span.start_time is not None and span.end_time is not None
            expected = (span.end_time - span.start_time) / 1e9
            assert task["duration_seconds"] == pytest.approx(expected, abs=1e-5)
        assert tasks[ids["web.search"]]["state"] == "failed"
        assert tasks[ids["research"]]["state"] == "completed"

        failed = read(client, f"/v1/tracker/tasks/{ids['web.search']}")["task"]
        assert failed["error"] == "search found nothing"
        assert failed["parent_event_id"] == f"{ids['research']}-start"
        assert failed["trace_id"] == trace
        assert "LookupError: no hits for moths" in failed["result"]["traceback"]
        exception = failed["result"]["events"][0]
        assert exception["name"] == "exception"
        assert exception["attributes"]["exception.type"] == "LookupError"

        chat = read(client, f"/v1/tracker/tasks/{ids['chat gpt-4o']}")["task"]
        assert chat["data"]["attributes"] == {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
        }
        assert chat["data"]["span_kind"] == "SPAN_KIND_INTERNAL"

        timeline = read(client, f"/v1/tracker/plans/{trace}/timeline")
        assert timeline["trace_id"] == trace
        assert {e["event_id"] for e in timeline["events"]} == {
            f"{i}-{end}" for i in ids.values() for end in ("start", "end")
        }
        (root,) = timeline["tree"]
        assert root["event_id"] == f"{ids['research']}-start"
        assert {c["event_id"] for c in root["children"]} >= {
            f"{ids['chat gpt-4o']}-start",
            f"{ids['web.search']}-start",
        }

        metrics = read(client, f"/v1/tracker/metrics?agent_id={AGENT}&period=1h")
        assert (metrics["total_tasks"], metrics["completed_tasks"], metrics["failed_tasks"]) == (
            3,
            2,
            1,
        )
        assert (metrics["input_tokens"], metrics["output_tokens"]) == (120, 30)


def test_json_encoding_and_a_plan_attribute(served: tuple[str, str]) -> None:
    url, token = served
    spans, ids = research_spans("json-agent")
    request = encode_spans(spans)
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                attribute = span.attributes.add()
                attribute.key = "trackd.plan_id"
                attribute.value.string_value = "plan-json"
    body = json_format.MessageToDict(request)
    # OTLP JSON writes ids in hex, not protobuf JSON's base64.
    for resource in body["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers) as client:
        response = client.post("/v1/traces", json=body)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {}
        tasks = read(client, "/v1/tracker/plans/plan-json/tasks")["tasks"]
        assert {t["task_id"] for t in tasks} == set(ids.values())
        assert {t["agent_id"] for t in tasks} == {"json-agent"}
        metrics = read(client, "/v1/tracker/metrics?agent_id=json-agent&period=1h")
        assert (metrics["input_tokens"], metrics["output_tokens"]) == (120, 30)


def test_partial_success_names_the_refused_spans(served: tuple[str, str]) -> None:
    url, token = served
    spans, ids = research_spans("partial-agent")
    request = encode_spans(spans)
    # A span with no start time cannot be placed on the timeline: refused, the others kept.
    broken = request.resource_spans[0].scope_spans[0].spans[0]
    broken.start_time_unix_nano = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"}
    with httpx.Client(base_url=url, headers=headers) as client:
        response = client.post("/v1/traces", content=request.SerializeToString())
        assert response.status_code == 200, response.text
        answer = ExportTraceServiceResponse.FromString(response.content)
        assert answer.partial_success.rejected_spans == 1
        assert "time" in answer.partial_success.error_message
        trace = format(spans[0].context.trace_id, "032x")
        tasks = read(client, f"/v1/tracker/plans/{trace}/tasks")["tasks"]
        assert {t["task_id"] for t in tasks} == set(ids.values()) - {broken.span_id.hex()}


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"]
    message: str = body["error"]["message"]
    return message


def test_bad_bodies_get_json_errors(served: tuple[str, str]) -> None:
    url, token = served
    auth = {"Authorization": f"Bearer {token}"}
    proto = {**auth, "Content-Type": "application/x-protobuf"}
    with httpx.Client(base_url=url) as client:
        anonymous = {"Content-Type": "application/x-protobuf"}
        assert "token" in error(client.post("/v1/traces", content=b"", headers=anonymous), 401)
        garbage = client.post("/v1/traces", content=b"\xff\xff\xff\xff", headers=proto)
        assert "protobuf" in error(garbage, 400)
        wrong_type = client.post(
            "/v1/traces", content=b"x", headers={**auth, "Content-Type": "text/plain"}
        )
        assert "application/x-protobuf" in error(wrong_type, 415)
        not_gzip = client.post(
            "/v1/traces", content=b"plain", headers={**proto, "Content-Encoding": "gzip"}
        )
        assert "gzip" in error(not_gzip, 400)
        brotli = client.post(
            "/v1/traces", content=b"x", headers={**proto, "Content-Encoding": "br"}
        )
        error(brotli, 415)
        # A gzip bomb: small on the wire, far over the body limit once inflated.
        bomb = gzip.compress(b"\0" * (Settings().max_request_bytes + 1))
        inflated = client.post(
            "/v1/traces", content=bomb, headers={**proto, "Content-Encoding": "gzip"}
        )
        assert "decompressed" in error(inflated, 413)
        not_json = client.post(
            "/v1/traces", content=b"{", headers={**auth, "Content-Type": "application/json"}
        )
        error(not_json, 422)  # the request boundary judges unencoded JSON first
        not_export = client.post("/v1/traces", json={"resourceSpans": 3}, headers=auth)
        assert "OTLP JSON" in error(not_export, 400)
        bad_id = client.post(
            "/v1/traces",
            json={"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]},
            headers=auth,
        )
        assert "hex" in error(bad_id, 400)
        # A gzip body on another route is judged as sent: the header opens no way round.
        events = client.post(
            "/v1/events",
            content=b"{",
            headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        error(events, 422)


def test_api_role_on_redis_publishes_spans_that_ingest_stores(
    roles_on_redis: tuple[str, str, Runtime],
) -> None:
    url, token, ingest = roles_on_redis
    spans, ids = research_spans("redis-agent")
    trace = format(spans[0].context.trace_id, "032x")
    # Success once Redis holds the events: nothing has stored them yet.
    assert export(url, token, spans) is SpanExportResult.SUCCESS
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers) as client:
        assert client.get(f"/v1/tracker/plans/{trace}").status_code == 404
        with LocalServer(create_app(ingest), lifespan="on"):
            deadline = time.monotonic() + 60
            while True:
                plan = client.get(f"/v1/tracker/plans/{trace}")
                body = plan.json()
                if plan.status_code == 200 and body["completed_tasks"] + body["failed_tasks"] == 3:
                    break
                assert time.monotonic() < deadline, f"ingest did not store the spans: {body}"
                time.sleep(0.1)
        assert (body["completed_tasks"], body["failed_tasks"]) == (2, 1)
        failed = read(client, f"/v1/tracker/tasks/{ids['web.search']}")["task"]
        assert (failed["state"], failed["error"]) == ("failed", "search found nothing")
        metrics = read(client, "/v1/tracker/metrics?agent_id=redis-agent&period=1h")
        assert (metrics["total_tasks"], metrics["input_tokens"], metrics["output_tokens"]) == (
            3,
            120,
            30,
        )
