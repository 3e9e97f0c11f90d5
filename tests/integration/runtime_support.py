"""A runtime for API tests: started on an already migrated database, its ingest consumer
waiting little for events that never come, so that stopping it is quick; tokens for it, and
an HTTP client on its API in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from trackd.app import create_app
from trackd.domain.access import Role
from trackd.ingest.consumer import IngestConsumer, IngestOptions
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.repos import tokens

Headers = dict[str, str]
Holder = tuple[str, str | None, Role]  # a token's tenant, user id (None: a producer) and role


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
    async with running(runtime):
        yield runtime


@asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[Runtime]:
    """`runtime` started without migrating (test databases are cloned migrated), stopped on
    leaving."""
    await runtime.start(migrate=False)
    try:
        yield runtime
    finally:
        await runtime.stop()


async def bearer_headers(runtime: Runtime, holders: dict[str, Holder]) -> dict[str, Headers]:
    """Tokens made in one transaction, `{name: (tenant, user id, role)}`: the
    `Authorization` headers that carry them, by the same names."""
    async with runtime.sessions() as s, s.begin():
        issued = {
            name: await tokens.create(s, tenant, user_id=user, role=role)
            for name, (tenant, user, role) in holders.items()
        }
    return {name: {"Authorization": f"Bearer {token}"} for name, token in issued.items()}


@asynccontextmanager
async def api_client(
    runtime: Runtime, base_url: str = "http://trackd.test", headers: Headers | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on `runtime`'s app in this process (no server, no port)."""
    transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
    async with httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers) as client:
        yield client
