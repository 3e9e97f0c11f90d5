"""Seeding the dashboard's operators' pages through trackd's own flows, for the server-side
tests (test_web_ops_pages) and the browser tests (tests/browser/test_ops_pages)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from jobs_support import ReportTracking
from league_support import ACME, League

from trackd.bus.memory import MemoryBus
from trackd.domain.events import SYSTEM_EVENTS
from trackd.domain.retry import Backoff
from trackd.jobs.api import DomainRegistry, JobDomain
from trackd.notify.notifier import Notifier
from trackd.runtime import Runtime
from trackd.settings import Settings
from webfakes import Receiver, serve

STEAM = "76561198000000001"
HOOK_SECRET = "s3cr3t-hook-path"


def report_domain(runtime: Runtime) -> DomainRegistry:
    """The jobs_support application's report tasks, kept in trackd's own database."""
    return DomainRegistry([JobDomain(ReportTracking, runtime.sessions)])


async def register(league: League, who: str, *urls: str) -> list[dict[str, Any]]:
    response = await league.post("/api/trackers/register", who, {"urls": list(urls)})
    assert response.status_code == 201, response.text
    trackers: list[dict[str, Any]] = response.json()["trackers"]
    return trackers


async def poll_again(league: League, tracker_id: str, player: str, rating: int) -> None:
    """The player's ratings change on the stats site, and the tracker is polled again."""
    league.profile(player, rating=rating)
    league.clock.advance(3600)
    refreshed = await league.post(f"/api/trackers/{tracker_id}/refresh", "alice")
    assert refreshed.status_code == 202, refreshed.text
    assert await league.work() >= 1


async def notify_with_failures(league: League, tracker_id: str) -> None:
    """Alice's two webhooks hear of a rating change: one answers 500 (retried later), the
    other 404 (dead), the bus takes the change's event (sent); a second change is queued and
    not delivered (pending)."""
    receiver = Receiver()
    async with serve(receiver.app()) as hooks:
        # The receiver is on 127.0.0.1, which channel set-up refuses unless a deployment
        # allows private addresses: this one does while the channels are added.
        settings = league.runtime.settings
        allowed, settings.allow_private_fetch = settings.allow_private_fetch, True
        try:
            for name in ("a", "b"):
                made = await league.post(
                    "/v1/me/channels",
                    "alice",
                    {
                        "kind": "webhook",
                        "url": f"{hooks}/{HOOK_SECRET}/{name}",
                        "name": f"hook {name}",
                    },
                )
                assert made.status_code == 201, made.text
        finally:
            settings.allow_private_fetch = allowed
        await poll_again(league, tracker_id, STEAM, 1600)
        receiver.script = [500, 404]
        bus = MemoryBus()  # where the change's event goes, taken by a consumer as ingest would
        taken = await bus.subscribe([SYSTEM_EVENTS], "ingest", "c1")

        async def consume() -> None:
            while True:
                await taken.ack(await taken.fetch(10, 0.05))

        consumer = asyncio.create_task(consume())
        settings = Settings(allow_private_fetch=True, notify_lease_s=5)
        notifier = Notifier(
            league.runtime.sessions, bus, settings, backoff=Backoff(base=600, jitter=0)
        )
        try:
            await notifier.drain()
        finally:
            await notifier.aclose()
            consumer.cancel()
    await poll_again(league, tracker_id, STEAM, 1550)


async def report_chain(
    league: League, api: httpx.AsyncClient, tenant: str = ACME
) -> tuple[int, int, int]:
    """A report (root) with two steps, "render" after "gather": gather completes and render
    fails. Created over `/v1/tasks` by the league's bot, run by the domain's service."""

    async def create(body: dict[str, Any]) -> int:
        made = await api.post("/v1/tasks/report", json=body, headers=league.auth["bot"])
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    root = await create({"title": "monthly"})
    first = await create({"title": "gather", "parent_id": root})
    second = await create({"title": "render", "parent_id": root, "depends_on": [first]})
    domain = report_domain(league.runtime).get("report")
    async with league.runtime.sessions() as session:
        service = domain.make_service(session, tenant)
        await service.start(first)
        await service.complete(first)
        await service.start(second)
        await service.fail(second, "the template <b>is</b> missing")
    return root, first, second
