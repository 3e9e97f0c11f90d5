"""GET /metrics: Prometheus metrics of this trackd process, and of the caller's tenant.

Without a token (as before): the process's default registry (job metrics of `trackd.jobs`,
process and Python metrics) followed by this runtime's ingest totals, which name no tenant.
With a bearer token of any role: also the series labelled with the token's tenant, and only
those — ingest's per-event counters and histograms (if this process ingests) and gauges read
from the store (`trackd.store.repos.gauges`), cached for `metrics_cache_s` so a scrape storm
reads the store once per window. An unknown token is a 401, as on every other route.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from trackd.access.deps import RuntimeDep
from trackd.api.deps import get_principal
from trackd.ingest.consumer import IngestStats
from trackd.runtime import Runtime
from trackd.store.repos import gauges
from trackd.store.repos import outbox as outbox_repo
from trackd.store.repos.gauges import TenantGauges

router = APIRouter(tags=["health"])
_bearer = HTTPBearer(auto_error=False, description="Optional: adds the token's tenant's series.")


class _IngestCollector(Collector):
    def __init__(self, stats: IngestStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self._stats
        for name, help_text, value in (
            ("trackd_ingest_batches", "Batches of events ingest committed.", s.batches),
            ("trackd_ingest_events_folded", "Events folded into records.", s.folded),
            ("trackd_ingest_events_duplicate", "Events dropped as already seen.", s.duplicates),
            ("trackd_ingest_events_rejected", "Events sent to dead letters.", s.rejected),
            ("trackd_ingest_anomalies", "Events refused by the fold (anomalies).", s.anomalies),
            ("trackd_ingest_batch_failures", "Batches whose transaction failed.", s.failures),
        ):
            yield CounterMetricFamily(name, help_text, value=value)


class _TenantOnly(Collector):
    """The series of `source` whose `tenant` label is `tenant`."""

    def __init__(self, source: CollectorRegistry, tenant: str) -> None:
        self._source = source
        self._tenant = tenant

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if s.labels.get("tenant") == self._tenant]
            yield kept


class _GaugeCollector(Collector):
    def __init__(self, tenant: str, g: TenantGauges) -> None:
        self._tenant = tenant
        self._g = g

    def collect(self) -> Iterator[Metric]:
        t, g = self._tenant, self._g
        yield _gauge(
            "trackd_tasks_live",
            "Tasks not yet finished (pending, running, delegated, waiting) by state and type, "
            "from the store; types past the top N (TRACKD_METRICS_TOP_TYPES) are 'other'.",
            t,
            ["state", "type"],
            g.live_tasks.items(),
        )
        yield _gauge(
            "trackd_dead_letters",
            "Dead letters stored (events that could not be validated or stored), from the store.",
            t,
            [],
            {(): g.dead_letters}.items(),
        )
        yield _gauge(
            "trackd_polls",
            "Polls in the store by source and status (completed, failed, blocked, pending, "
            "running, cancelled); finished ones grow until pruned: use delta() over a window.",
            t,
            ["source", "status"],
            g.polls.items(),
        )
        yield _gauge(
            "trackd_poll_hosts_blocked",
            "Polls waiting out a host's backoff after bot protection answered, by host: what "
            "the store knows (blocked polls by host), not the outbound client's live limits.",
            t,
            ["host"],
            {(host,): n for host, n in g.blocked_hosts.items()}.items(),
        )
        yield _gauge(
            "trackd_outbox_messages",
            "Notification outbox messages by status: pending is the depth, dead gave up.",
            t,
            ["status"],
            {(status,): g.outbox.get(status, 0) for status in outbox_repo.STATUSES}.items(),
        )
        yield _gauge(
            "trackd_schedules_late",
            "Active schedules due longer ago than TRACKD_METRICS_SCHEDULE_LATE_S and not fired.",
            t,
            [],
            {(): g.schedules_late}.items(),
        )


def _gauge(
    name: str,
    help_text: str,
    tenant: str,
    labels: list[str],
    values: Iterable[tuple[tuple[str, ...], int]],
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=["tenant", *labels])
    for key, n in sorted(values):
        family.add_metric([tenant, *key], n)
    return family


class GaugeCache:
    """Store gauges per tenant, reused for `ttl` seconds; one read at a time refreshes them."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._entries: dict[str, tuple[float, TenantGauges]] = {}

    async def get(self, runtime: Runtime, tenant: str) -> TenantGauges:
        async with self._lock:
            hit = self._entries.get(tenant)
            if hit is not None and time.monotonic() - hit[0] < self._ttl:
                return hit[1]
            settings = runtime.settings
            async with runtime.sessions() as session:
                value = await gauges.read(
                    session,
                    tenant,
                    now=datetime.now(UTC),
                    type_limit=settings.metrics_top_types,
                    late_after=timedelta(seconds=settings.metrics_schedule_late_s),
                )
            self._entries[tenant] = (time.monotonic(), value)
            return value


def _cache(request: Request, runtime: Runtime) -> GaugeCache:
    cache: GaugeCache | None = getattr(request.app.state, "metric_gauges", None)
    if cache is None:
        cache = GaugeCache(runtime.settings.metrics_cache_s)
        request.app.state.metric_gauges = cache
    return cache


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    body = generate_latest(REGISTRY)
    own = CollectorRegistry(auto_describe=False)
    if runtime.ingest is not None:
        own.register(_IngestCollector(runtime.ingest.stats))
    if credentials is not None:
        async with runtime.sessions() as session:
            principal = await get_principal(session, credentials)
        tenant = principal.tenant_id
        if runtime.ingest is not None:
            own.register(_TenantOnly(runtime.ingest.metrics.registry, tenant))
        own.register(_GaugeCollector(tenant, await _cache(request, runtime).get(runtime, tenant)))
    body += generate_latest(own)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
