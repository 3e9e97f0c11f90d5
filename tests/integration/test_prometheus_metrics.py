"""GET /metrics after a real workload, read with prometheus_client's own parser, on SQLite and
PostgreSQL: events through POST /v1/events and the bus, a finished, a failed-and-retried and a
refused task, a dead letter, a blocked poll, a dead outbox message and a late schedule.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import test_api_task_reads
import yaml
from prometheus_client.parser import text_string_to_metric_families
from runtime_support import started

from trackd.domain.polls import PollStatus
from trackd.domain.schedules import ScheduleKind, ScheduleSpec
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.repos import outbox, polls, schedules
from trackd.testing import EventFactory

ACME, GLOBEX = "acme", "globex"
# test_api_task_reads' client and tokens (acme's service and reader, globex's), on this module's
# runtime.
client = test_api_task_reads.client
auth = test_api_task_reads.auth
DOCS = Path(__file__).resolve().parents[2] / "docs" / "grafana"
LAG_SECONDS = 120.0
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    # A long cache window: the test sees gauges kept between scrapes whatever its speed.
    settings = Settings(database_url=database_url, publish_timeout_s=15, metrics_cache_s=300)
    async with started(settings, metrics_top_types=2) as runtime:
        yield runtime


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


async def workload(runtime: Runtime, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    start = datetime.now(UTC) - timedelta(seconds=LAG_SECONDS + 60)
    f = EventFactory(now=start)
    events: list[Any] = [
        f.request("t-ok", "report.build"),
        f.request("t-retry", "report.build"),
        f.request("t-live", "email.send"),
        f.request("t-third", "image.resize"),
    ]
    f.advance(30)
    events.append(f.result("t-ok", "report.done"))
    events.append(f.result("t-retry", "report.done", success=False, error="boom"))
    f.advance(30)
    # Back to work on a second attempt; and t-ok cannot run again without one: an anomaly.
    events.append(f.progress("t-retry", "running", attempt=2))
    events.append(f.progress("t-ok", "running"))
    for event in events:
        response = await client.post("/v1/events", json=event, headers=headers)
        assert response.status_code == 202, response.text
    # What the API would refuse reaches ingest from the bus: a dead letter, not a stop.
    await runtime.bus.publish(
        "action-requests",
        [json.dumps({"id": "bad-1", "type": "report.build", "tenantId": ACME}).encode()],
    )
    now = datetime.now(UTC)
    async with runtime.sessions() as s, s.begin():
        [poll_id] = await polls.add(
            s,
            [polls.NewPoll(ACME, "rocket_league", {"url": "x"}, max_attempts=3)],
            now=now,
        )
        [claim] = await polls.claim(s, owner="w1", now=now, lease_seconds=30, limit=1)
        poll = await polls.get(s, ACME, poll_id)
        assert poll is not None and claim is not None
        await polls.finish(
            s,
            poll,
            owner="w1",
            now=now,
            status=PollStatus.BLOCKED,
            not_before=now + timedelta(hours=1),
            blocked_host="api.tracker.gg",
        )
        await outbox.enqueue(
            s, ACME, [outbox.Message("webhook", "k1", "rank.changed", {"x": 1})], max_attempts=1
        )
        [held] = await outbox.claim(s, worker="n1", limit=1, lease=timedelta(minutes=1))
        assert await outbox.mark_failed(s, held, error="410 Gone", retry_at=None)
        await schedules.create(
            s,
            ACME,
            name="nightly",
            source="rocket_league",
            targets=[{"url": "x"}],
            spec=ScheduleSpec(ScheduleKind.ONCE, run_at=now - timedelta(hours=1)),
            max_attempts=3,
            timeout_seconds=None,
            owner=None,
            labels={},
            now=now - timedelta(hours=2),
        )


async def test_a_tenant_scrape_counts_the_workload(
    runtime: Runtime, client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    await workload(runtime, client, auth["acme"])
    response = await client.get("/metrics", headers=auth["reader"])
    assert response.status_code == 200
    m = parse(response.text)
    a = {"tenant": ACME}

    # Events by type and outcome; past the cap of 2 types (report.build, email.send first
    # seen), the rest are "other".
    assert value(m, "trackd_events_total", **a, type="report.build", outcome="accepted") == 2
    assert value(m, "trackd_events_total", **a, type="email.send", outcome="accepted") == 1
    assert value(m, "trackd_events_total", **a, type="other", outcome="accepted") == 4
    assert value(m, "trackd_events_total", **a, type="other", outcome="refused") == 1
    assert value(m, "trackd_events_total", **a, type="report.build", outcome="dead_lettered") == 1
    assert value(m, "trackd_anomalies_total", **a) == 1
    # Ingest lag of the 8 stored events: each was dated at least LAG_SECONDS ago.
    assert value(m, "trackd_ingest_lag_seconds_count", **a) == 8
    assert value(m, "trackd_ingest_lag_seconds_sum", **a) >= 8 * LAG_SECONDS
    assert value(m, "trackd_ingest_lag_seconds_bucket", **a, le="60.0") == 0
    # The finished task ran 30 s by its events; the failed one counts as failed then retried.
    assert value(m, "trackd_task_runtime_seconds_count", **a, type="report.build") == 2
    assert value(m, "trackd_task_runtime_seconds_sum", **a, type="report.build") == 60
    assert value(m, "trackd_tasks_finished_total", **a, type="report.build", state="completed") == 1
    assert value(m, "trackd_tasks_finished_total", **a, type="report.build", state="failed") == 1
    assert value(m, "trackd_task_retries_total", **a, type="report.build") == 1

    # Store gauges: live tasks by state and type, capped by TRACKD_METRICS_TOP_TYPES (20 here).
    live = {
        (dict(labels)["state"], dict(labels)["type"]): v
        for (name, labels), v in m.items()
        if name == "trackd_tasks_live" and dict(labels)["tenant"] == ACME
    }
    assert live == {
        ("running", "report.build"): 1,
        ("running", "email.send"): 1,
        ("running", "image.resize"): 1,
    }
    assert value(m, "trackd_dead_letters", **a) == 1
    assert value(m, "trackd_polls", **a, source="rocket_league", status="blocked") == 1
    assert value(m, "trackd_poll_hosts_blocked", **a, host="api.tracker.gg") == 1
    assert value(m, "trackd_outbox_messages", **a, status="dead") == 1
    assert value(m, "trackd_outbox_messages", **a, status="pending") == 0
    assert value(m, "trackd_schedules_late", **a) == 1
    # The process's own series are still there, as without a token.
    assert value(m, "trackd_ingest_events_folded_total") == 8


async def test_series_name_only_the_tokens_tenant(
    runtime: Runtime, client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    await workload(runtime, client, auth["acme"])
    anonymous = parse((await client.get("/metrics")).text)
    assert not any(dict(labels).get("tenant") for _, labels in anonymous)
    assert value(anonymous, "trackd_ingest_events_folded_total") == 8
    globex = parse((await client.get("/metrics", headers=auth["globex"])).text)
    tenants = {dict(labels).get("tenant") for _, labels in globex} - {None}
    assert tenants == {GLOBEX}
    assert value(globex, "trackd_dead_letters", tenant=GLOBEX) == 0
    bad = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.json()["error"]["code"]


async def test_store_gauges_are_cached_between_scrapes(
    runtime: Runtime, client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    first = parse((await client.get("/metrics", headers=auth["acme"])).text)
    assert value(first, "trackd_dead_letters", tenant=ACME) == 0
    await runtime.bus.publish("action-requests", [b'{"tenantId": "acme"}'])
    again = parse((await client.get("/metrics", headers=auth["acme"])).text)
    # The counter moved at once; the store gauge waits for its cache window (300 s here).
    assert (
        value(again, "trackd_events_total", tenant=ACME, type="invalid", outcome="dead_lettered")
        == 1
    )
    assert value(again, "trackd_dead_letters", tenant=ACME) == 0


def promql_names(expr: str) -> set[str]:
    """The trackd metric names a PromQL expression uses (as scraped: with _total, _bucket)."""
    return set(re.findall(r"\btrackd_[a-zA-Z0-9_:]*", expr))


async def test_dashboard_and_alerts_use_scraped_names(
    runtime: Runtime, client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    await workload(runtime, client, auth["acme"])
    scraped = names(parse((await client.get("/metrics", headers=auth["acme"])).text))

    dashboard = json.loads((DOCS / "trackd.json").read_text())
    assert dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    exprs: list[str] = []
    for panel in dashboard["panels"]:
        assert {"id", "type", "title", "gridPos"} <= set(panel), panel
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"]
            exprs.append(target["expr"])

    rules = yaml.safe_load((DOCS / "alerts.yml").read_text())
    assert set(rules) == {"groups"}
    alerts: set[str] = set()
    for group in rules["groups"]:
        assert isinstance(group["name"], str) and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert isinstance(rule["alert"], str) and isinstance(rule["expr"], str)
            assert rule["annotations"]["summary"]
            alerts.add(rule["alert"])
            exprs.append(rule["expr"])
    assert {
        "TrackdIngestLagHigh",
        "TrackdDeadLettersGrowing",
        "TrackdOutboxDead",
        "TrackdSchedulerNotFiring",
    } <= alerts

    used = set().union(*(promql_names(e) for e in exprs))
    assert used, "no trackd metric named"
    assert used <= scraped, sorted(used - scraped)
