"""Which process exposes which metrics when the roles are split on Redis and PostgreSQL:
`trackd serve --role api` serves the store gauges on /metrics (it ingests nothing, so it has no
ingest series), and `trackd ingest --metrics-port` serves the ingest-time counters and
histograms of every tenant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from procs import (
    Spawn,
    StartApi,
    assert_stopped_cleanly,
    create_token,
    eventually,
    free_port,
    ingest_args,
    recent_start,
)
from prometheus_client.parser import text_string_to_metric_families

from trackd.testing import EventFactory, research_workflow

pytestmark = pytest.mark.postgres


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            yield s.name, s.labels, s.value


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for n, got, v in samples(text) if n == name and labels.items() <= got.items())


async def test_api_role_serves_store_gauges_and_ingest_its_counters(
    databases: list[str], redis_bus_url: str, spawn: Spawn, start_api: StartApi
) -> None:
    database, bus = databases[0], redis_bus_url
    token = await asyncio.to_thread(create_token, "acme", database=database)
    metrics_port = free_port()
    api, url = await start_api(database, bus)
    ingest = spawn(
        "ingest", ingest_args(database, bus, "ingest-0", "--metrics-port", str(metrics_port))
    )

    events = research_workflow(EventFactory(now=recent_start(), id_prefix="m"))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        response = await client.post("/v1/events", json={"events": events}, headers=headers)
        assert response.status_code == 202, response.text
        exported = f"http://127.0.0.1:{metrics_port}/metrics"
        text = ""

        async def counted() -> bool:
            nonlocal text
            try:
                text = (await client.get(exported)).text
            except httpx.TransportError:
                text = ""
            return total(text, "trackd_events_total", tenant="acme") >= len(events)

        await eventually(counted, ingest)
        assert total(text, "trackd_events_total", tenant="acme", outcome="accepted") == len(events)
        assert total(text, "trackd_ingest_lag_seconds_count", tenant="acme") == len(events)
        assert total(text, "trackd_tasks_finished_total", tenant="acme") > 0

        scraped = (await client.get("/metrics", headers=headers)).text
    names = {n for n, _, _ in samples(scraped)}
    # The API process reads the store: the same gauges whichever process ingested.
    assert {"trackd_dead_letters", "trackd_schedules_late", "trackd_outbox_messages"} <= names
    assert total(scraped, "trackd_dead_letters", tenant="acme") == 0
    # ... and has no ingest of its own to count.
    assert not names & {"trackd_events_total", "trackd_ingest_lag_seconds_count"}
    assert "trackd_ingest_batches_total" not in names
    assert_stopped_cleanly(ingest)
    api.stop()
