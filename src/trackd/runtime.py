"""The running pieces of one trackd process, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trackd.bus.base import Bus, from_url
from trackd.ingest.consumer import IngestConsumer, IngestOptions
from trackd.notify.notifier import Notifier
from trackd.settings import Settings
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade

log = logging.getLogger(__name__)


def default_consumer_name() -> str:
    """hostname-pid: two processes sharing a consumer name would share its partitions."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Runtime:
    """Engine, sessions, bus and (for roles that ingest) the ingest consumer."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    ingest: IngestConsumer | None = None
    notifier: Notifier | None = None
    _tasks: list[asyncio.Task[object]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        ingest: bool = True,
        consumer: str | None = None,
        notify: bool = False,
    ) -> Runtime:
        """Everything a process needs; `consumer` names its ingest consumer in the group
        (default: hostname-pid, unique per process as a shared bus requires); `notify` runs
        the notifier too, unless `settings.notifier_enabled` is off."""
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        bus = from_url(settings.bus_url)
        runtime = cls(settings, engine, sessions, bus)
        if ingest:
            runtime.ingest = IngestConsumer(
                bus,
                sessions,
                IngestOptions(
                    default_tenant=settings.default_tenant,
                    batch_size=settings.ingest_batch_size,
                    max_wait=settings.ingest_max_wait_ms / 1000,
                    consumer=consumer or default_consumer_name(),
                ),
            )
        if notify and settings.notifier_enabled:
            runtime.notifier = Notifier(sessions, bus, settings)
        return runtime

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await upgrade(self.engine)
        if self.ingest is not None:
            self._tasks.append(asyncio.create_task(self.ingest.run(), name="trackd-ingest"))
        if self.notifier is not None:
            self._tasks.append(asyncio.create_task(self.notifier.run(), name="trackd-notifier"))
        log.info(
            "trackd started database=%s bus=%s ingest=%s",
            self.engine.url.render_as_string(hide_password=True),
            self.settings.bus_url,
            self.ingest is not None,
        )

    async def stop(self) -> None:
        # The notifier first: its bus publishes wait for ingest to take them.
        if self.notifier is not None:
            self.notifier.stop()
        if self.ingest is not None:
            self.ingest.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=10)
        self._tasks.clear()
        if self.notifier is not None:
            await self.notifier.aclose()
        await self.bus.close()
        await self.engine.dispose()
