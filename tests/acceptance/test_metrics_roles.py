"""Which process exposes which metrics when the roles are split on Redis and PostgreSQL:
`trackd serve --role api` serves the store gauges on /metrics (it ingests nothing, so it has no
ingest series), and `trackd ingest --metrics-port` serves the ingest-time counters and
histograms of every tenant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import free_port
from prometheus_client.parser import text_string_to_metric_families
from test_scale_out import (
    WITHIN,
    Process,
    assert_stopped_cleanly,
    bus_url,
    create_token,
    databases,  # noqa: F401 - a fixture
    ingest_args,
    processes,  # noqa: F401 - a fixture
    recent_start,
    redis_prefixes,  # noqa: F401 - a fixture
    start,
    start_api,
)

from trackd.testing import EventFactory, research_workflow

pytestmark = pytest.mark.postgres


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            yield s.name, s.labels, s.value


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for n, got, v in samples(text) if n == name and labels.items() <= got.items())


async def test_api_role_serves_store_gauges_and_ingest_its_counters(
    redis_url: str,
    databases: list[str],  # noqa: F811
    redis_prefixes: list[str],  # noqa: F811
    processes: list[Process],  # noqa: F811
    tmp_path: Path,
) -> None:
    database = databases[0]
    bus = bus_url(redis_url, redis_prefixes[0])
    token = await asyncio.to_thread(create_token, database, "acme")
    metrics_port = free_port()
    api, url = await start_api(database, bus, tmp_path, processes)
    ingest = start(
        "ingest",
        ingest_args(database, bus, "ingest-0", "--metrics-port", str(metrics_port)),
        tmp_path,
    )
    processes.append(ingest)

    events = research_workflow(EventFactory(now=recent_start(), id_prefix="m"))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        response = await client.post("/v1/events", json={"events": events}, headers=headers)
        assert response.status_code == 202, response.text
        exported = f"http://127.0.0.1:{metrics_port}/metrics"
        async with asyncio.timeout(WITHIN):
            while True:
                ingest.check_running()
                try:
                    text = (await client.get(exported)).text
                except httpx.TransportError:
                    text = ""
                if total(text, "trackd_events_total", tenant="acme") >= len(events):
                    break
                await asyncio.sleep(0.1)
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
