"""GET /metrics: Prometheus metrics of this trackd process.

The process's default registry (job metrics of `trackd.jobs`, process and Python metrics)
followed by this runtime's ingest counters. No token: like /health it is for the operator's
scraper and names no tenant's data.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from trackd.api.deps import RuntimeDep
from trackd.ingest.consumer import IngestStats

router = APIRouter(tags=["health"])


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


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    body = generate_latest(REGISTRY)
    if runtime.ingest is not None:
        own = CollectorRegistry(auto_describe=False)
        own.register(_IngestCollector(runtime.ingest.stats))
        body += generate_latest(own)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
