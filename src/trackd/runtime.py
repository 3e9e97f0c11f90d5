"""The running pieces of one trackd process, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from trackd.bus.base import Bus
from trackd.bus.urls import from_url, in_process
from trackd.domain.events import EventRules
from trackd.ingest.consumer import INGEST_GROUP, IngestConsumer, IngestOptions
from trackd.modules.config import ConfigListener, ModuleConfigCache
from trackd.modules.observer_runs import ObserverRuns
from trackd.modules.registry import registry as module_registry
from trackd.modules.tracking import history_policy
from trackd.modules.transits import TransitRefresh
from trackd.notify.notifier import Notifier
from trackd.scheduling.poller import Poller, PollerOptions
from trackd.scheduling.scheduler import Scheduler, SchedulerOptions
from trackd.settings import Settings
from trackd.snapshots.service import prune_snapshots
from trackd.sources.registry import registry as source_registry
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade

log = logging.getLogger(__name__)


def freeze_startup_heap() -> None:
    """Take what start-up left alive (imports, SQLAlchemy's and FastAPI's tables, the
    runtime) out of the cycle collector's sight (`gc.freeze`) for the life of the process.

    A response of a thousand rows allocates enough to trigger full collections, and each
    walked every object of the process: every twentieth read was several times slower than
    the median. Called once by a server after its runtime has started; not by tests or
    libraries, as frozen objects are never collected.
    """
    gc.collect()
    gc.freeze()


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
    event_rules: EventRules = field(default_factory=EventRules)
    ingest: IngestConsumer | None = None
    notifier: Notifier | None = None
    scheduler: Scheduler | None = None
    poller: Poller | None = None
    # Module configs this process runs with, dropped when any process announces a change.
    module_configs: ModuleConfigCache | None = None
    module_config_listener: ConfigListener | None = None
    _tasks: list[asyncio.Task[object]] = field(default_factory=list)
    _scheduling_tasks: list[asyncio.Task[object]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        ingest: bool = True,
        consumer: str | None = None,
        notify: bool = False,
        schedule: bool = False,
        poll: bool = False,
        modules: bool = True,
    ) -> Runtime:
        """Everything a process needs; `consumer` names its ingest consumer in the group
        (default: hostname-pid, unique per process as a shared bus requires); `notify` runs
        the notifier too, unless `settings.notifier_enabled` is off; `modules` keeps the
        module configs cached and listens for their changes (roles that run no module, such
        as a lone ingest process, leave it off)."""
        # Sources are built from the settings this process runs with.
        source_registry.configure(settings)
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        # Ingest is what takes the agent platform's tracker's place on its bus.
        bus = from_url(settings.bus_url, platform_group=INGEST_GROUP)
        rules = EventRules(max_future=settings.max_event_future, json=settings.json_policy)
        runtime = cls(settings, engine, sessions, bus, rules)
        runtime.module_configs = ModuleConfigCache(
            sessions, module_registry, ttl=settings.module_config_ttl_s
        )
        # The daily transit refresh reads the charts and the module's config from this
        # process's store: a source built here, not from settings.
        source_registry.register(TransitRefresh(sessions, runtime.module_configs), replace=True)
        # The observer's runs read journals and histories from this process's store too.
        source_registry.register(
            ObserverRuns(sessions, max_attempts=settings.notify_max_attempts), replace=True
        )
        if modules:
            runtime.module_config_listener = ConfigListener(
                bus, runtime.module_configs, consumer or default_consumer_name()
            )
        if ingest:
            runtime.ingest = IngestConsumer(
                bus,
                sessions,
                IngestOptions(
                    default_tenant=settings.default_tenant,
                    batch_size=settings.ingest_batch_size,
                    max_wait=settings.ingest_max_wait_ms / 1000,
                    consumer=consumer or default_consumer_name(),
                    rules=rules,
                    metrics_top_types=settings.metrics_top_types,
                ),
            )
        if notify and settings.notifier_enabled:
            runtime.notifier = Notifier(
                sessions,
                bus,
                settings,
                pruners={"snapshots": lambda session: prune_snapshots(session, settings)},
            )
        if poll and settings.worker_enabled:
            runtime.poller = build_poller(settings, bus, sessions, consumer)
        if schedule and settings.scheduler_enabled:
            runtime.scheduler = build_scheduler(
                settings, bus, sessions, announce=runtime.poll_requests_heard
            )
        return runtime

    @property
    def poll_requests_heard(self) -> bool:
        """Whether a poll request published on the bus reaches a worker. On the in-process
        bus only an in-process poller hears it; without one the polls wait in the database
        for another process's worker to sweep."""
        return self.poller is not None or not in_process(self.settings.bus_url)

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await upgrade(self.engine)
        if self.ingest is not None:
            self._tasks.append(asyncio.create_task(self.ingest.run(), name="trackd-ingest"))
        if self.notifier is not None:
            self._tasks.append(asyncio.create_task(self.notifier.run(), name="trackd-notifier"))
        if self.module_config_listener is not None:
            self._tasks.append(
                asyncio.create_task(self.module_config_listener.run(), name="trackd-module-config")
            )
        if self.scheduler is not None:
            self._scheduling_tasks.append(
                asyncio.create_task(self.scheduler.run(), name="trackd-scheduler")
            )
        if self.poller is not None:
            self._scheduling_tasks.append(
                asyncio.create_task(self.poller.run(), name="trackd-poller")
            )
        log.info(
            "trackd started database=%s bus=%s ingest=%s",
            self.engine.url.render_as_string(hide_password=True),
            self.settings.bus_url,
            self.ingest is not None,
        )

    async def stop(self) -> None:
        # Scheduler and pollers before the rest: a poll ending now sends its task events,
        # which ingest must still be there to take.
        for part in (self.scheduler, self.poller):
            if part is not None:
                part.stop()
        for task in self._scheduling_tasks:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=self.settings.poll_timeout_s + 5)
        self._scheduling_tasks.clear()
        # The notifier first: its bus publishes wait for ingest to take them.
        if self.notifier is not None:
            self.notifier.stop()
        if self.ingest is not None:
            self.ingest.stop()
        if self.module_config_listener is not None:
            self.module_config_listener.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=10)
        self._tasks.clear()
        if self.notifier is not None:
            await self.notifier.aclose()
        await self.bus.close()
        await self.engine.dispose()


def build_poller(
    settings: Settings,
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    consumer: str | None = None,
) -> Poller:
    """A poller configured from `settings`, fetching through the guarded outbound client."""
    return Poller(
        bus,
        sessions,
        PollerOptions(
            consumer=consumer or default_consumer_name(),
            concurrency=settings.poll_concurrency,
            lease_seconds=settings.poll_lease_s,
            timeout_seconds=settings.poll_timeout_s,
            sweep_interval=settings.poll_sweep_interval_s,
            max_blocks=settings.poll_max_blocks,
            publish_timeout=settings.publish_timeout_s,
        ),
        settings=settings,
        policies=partial(history_policy, registry=module_registry),
    )


def build_scheduler(
    settings: Settings,
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    *,
    announce: bool = True,
) -> Scheduler:
    """A scheduler configured from `settings`."""
    return Scheduler(
        bus,
        sessions,
        SchedulerOptions(
            tick_seconds=settings.scheduler_tick_s,
            startup_spread_seconds=settings.scheduler_startup_spread_s,
            publish_timeout=settings.publish_timeout_s,
            announce=announce,
        ),
    )
