"""`trackd serve --role api` on a Redis bus takes an OpenTelemetry export and publishes it;
a `trackd ingest` process stores the spans as tasks (PostgreSQL, real processes)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from procs import Spawn, StartApi, assert_stopped_cleanly, create_token, eventually, ingest_args

pytestmark = pytest.mark.postgres


def export_a_failed_llm_call(url: str, token: str) -> tuple[str, str]:
    """An agent span with a failing LLM call under it, exported by the SDK's span processor
    as each span ends, as an app would: (trace id, child span id)."""
    exporter = OTLPSpanExporter(
        endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {token}"}
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "roles-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("roles")
    with tracer.start_as_current_span("plan trip") as root:
        try:
            with tracer.start_as_current_span(
                "chat", attributes={"gen_ai.usage.input_tokens": 50}
            ) as call:
                child = format(call.get_span_context().span_id, "016x")
                raise TimeoutError("model did not answer")
        except TimeoutError:
            pass  # recorded on the span by the SDK (record_exception, status ERROR)
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x"), child


async def test_api_role_takes_spans_and_an_ingest_process_stores_them(
    databases: list[str], redis_bus_url: str, spawn: Spawn, start_api: StartApi
) -> None:
    database, bus = databases[0], redis_bus_url
    token = await asyncio.to_thread(create_token, "acme", database=database)
    _, url = await start_api(database, bus)

    trace, child = await asyncio.to_thread(export_a_failed_llm_call, url, token)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as client:
        # The export succeeded once Redis held the events: nothing has stored them yet.
        assert (await client.get(f"/v1/tracker/plans/{trace}")).status_code == 404
        ingest = spawn("ingest", ingest_args(database, bus, "ingest-0"))
        done: dict[str, Any] = {}

        async def stored() -> bool:
            plan = await client.get(f"/v1/tracker/plans/{trace}")
            if plan.status_code == 200 and plan.json()["task_count"] == 2:
                done.update(plan.json())
                return bool(done["completed_tasks"] + done["failed_tasks"] == 2)
            return False

        await eventually(stored, ingest)
        task = (await client.get(f"/v1/tracker/tasks/{child}")).json()["task"]
        metrics = (await client.get("/v1/tracker/metrics?agent_id=roles-agent")).json()
    assert (done["completed_tasks"], done["failed_tasks"]) == (1, 1)
    assert task["state"] == "failed"
    assert "TimeoutError" in task["result"]["traceback"]
    assert (metrics["total_tasks"], metrics["input_tokens"]) == (2, 50)
    assert_stopped_cleanly(ingest)
