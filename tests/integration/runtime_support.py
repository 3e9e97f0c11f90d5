"""A runtime for API tests: started on an already migrated database, its ingest consumer
waiting little for events that never come, so that stopping it is quick."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from trackd.ingest.consumer import IngestConsumer, IngestOptions
from trackd.runtime import Runtime
from trackd.settings import Settings


def quick_ingest(runtime: Runtime, **options: Any) -> None:
    """Give `runtime` a consumer with `options` that waits 50 ms for a first event and judges
    events by the runtime's own rules, as the consumer `Runtime.build` makes does."""
    options.setdefault("rules", runtime.event_rules)
    runtime.ingest = IngestConsumer(
        runtime.bus, runtime.sessions, IngestOptions(idle_wait=0.05, **options)
    )


@asynccontextmanager
async def started(settings: Settings, **options: Any) -> AsyncIterator[Runtime]:
    """A runtime built from `settings` with a quick ingest (`options` for its consumer),
    started without migrating (test databases are cloned migrated) and stopped on leaving."""
    runtime = Runtime.build(settings)
    quick_ingest(runtime, **options)
    await runtime.start(migrate=False)
    try:
        yield runtime
    finally:
        await runtime.stop()
